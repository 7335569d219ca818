package sched

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// errFDClosed is what an operation on a closed FD, or one cancelled by the
// FD's Close, reports.
var errFDClosed = net.ErrClosed

// FD is a file descriptor owned by a loop. The loop tracks the operations in
// flight on it, so Close can cancel them (they return net.ErrClosed) and the
// descriptor is closed exactly once.
type FD struct {
	Sysfd  int
	loop   *Loop
	closed bool
	wrShut bool // ShutdownWrite was called
	// drained: the last recv read less than asked and left nothing (the
	// io_uring backend then polls before the next recv).
	drained bool
	ops     *Op        // in-flight operations (intrusive list)
	sq      *sendQueue // write-behind sends (see Send); nil until the first
	writer  *Task      // holds the write side across a wait in Send
	writeQ  WaitQueue  // tasks waiting for the write side, room or Flush
	pd      pollDesc   // epoll backend state
}

// NewFD wraps sysfd, which the loop now owns.
func (l *Loop) NewFD(sysfd int) *FD {
	return &FD{Sysfd: sysfd, loop: l}
}

func (fd *FD) link(op *Op) {
	op.fdPrev = nil
	op.fdNext = fd.ops
	if fd.ops != nil {
		fd.ops.fdPrev = op
	}
	fd.ops = op
}

func (fd *FD) unlink(op *Op) {
	if op.fdPrev != nil {
		op.fdPrev.fdNext = op.fdNext
	} else if fd.ops == op {
		fd.ops = op.fdNext
	}
	if op.fdNext != nil {
		op.fdNext.fdPrev = op.fdPrev
	}
	op.fdPrev, op.fdNext = nil, nil
}

// Closed reports whether Close was called.
func (fd *FD) Closed() bool { return fd.closed }

// Close cancels every operation in flight on fd (their tasks get
// net.ErrClosed once the cancellation completes) and closes the descriptor;
// with write-behind bytes still queued (see Send), it closes it once they
// are sent, or after closeLinger (30 s) if the peer does not take them.
// The kernel keeps its own reference to the open file for requests still in
// flight, so closing the number at once is safe; it is never closed twice.
// Close must be called on the loop's thread. A second Close returns
// net.ErrClosed.
func (fd *FD) Close() error {
	if fd.closed {
		return errFDClosed
	}
	fd.closed = true
	l := fd.loop
	for op := fd.ops; op != nil; op = op.fdNext {
		// A write-behind send (no task) is not cancelled: its bytes were
		// accepted by a Send that returned, and are delivered as the
		// kernel delivers a closed socket's buffer.
		if op.pending && !op.cancelled && op.task != nil {
			op.cancelled = true
			op.cancelErr = errFDClosed
			l.backend.Cancel(op)
		}
	}
	fd.writeQ.WakeAll() // they find fd closed
	if q := fd.sq; q != nil {
		if q.pending() && abortive(fd.Sysfd) {
			if isUnix(fd.Sysfd) {
				// SO_LINGER means nothing to an AF_UNIX socket: what a
				// Write returned for is the peer's (close(2) drops none
				// of it), so the queued bytes are delivered below. Only
				// the peer's writes fail at once, as after close(2).
				unix.Shutdown(fd.Sysfd, unix.SHUT_RD)
			} else {
				// SO_LINGER 0 asks for an abort: the kernel discards what
				// its send queue holds and resets the connection at once,
				// and so must the loop's queue (keeping the descriptor
				// open for it would delay the reset until the peer read
				// it all). The send in flight is cancelled; its
				// completion closes the descriptor.
				q.closing = true
				l.lingerExpired(fd)
				l.backend.CloseFD(fd) // submits the cancellations
				return nil
			}
		}
		if q.pending() {
			// Bytes are still queued behind the send in flight: the
			// descriptor stays open until they are sent (sendDone closes
			// it), or until the loop ends.
			q.closing = true
			q.linger = timer{when: l.clock.Now().Add(closeLinger), send: fd, index: -1}
			l.timers.push(&q.linger)
			if fd.ops != nil {
				l.backend.CloseFD(fd) // submits the cancellations
			}
			return nil
		}
	}
	l.backend.CloseFD(fd)
	return closeFd(fd.Sysfd)
}

// CloseDetached closes the descriptor of fd after its loop has ended
// (PostFunc reported false), from any goroutine: the loop's state is not
// touched (there is no loop any more). A second Close returns
// net.ErrClosed.
func (fd *FD) CloseDetached() error {
	if fd.closed {
		return errFDClosed
	}
	fd.closed = true
	return closeFd(fd.Sysfd)
}

// abortive reports whether socket fd has SO_LINGER on with a zero timeout,
// which makes close(2) reset the connection.
func abortive(fd int) bool {
	lg, err := unix.GetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER)
	return err == nil && lg.Onoff != 0 && lg.Linger == 0
}

// isUnix reports whether fd is an AF_UNIX socket.
func isUnix(fd int) bool {
	d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	return err == nil && d == unix.AF_UNIX
}

// shutdownWrite shuts down the writing side of socket fd.
func shutdownWrite(fd int) error {
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		return os.NewSyscallError("shutdown", err)
	}
	return nil
}

// closeFd closes fd once. It never retries on EINTR: Linux releases the
// descriptor even then, and a retry could close a number reused meanwhile.
func closeFd(fd int) error {
	if err := unix.Close(fd); err != nil && err != unix.EINTR {
		return err
	}
	return nil
}
