package sched

import (
	"syscall"
	"time"
)

// Write-behind sends.
//
// On a completion backend (io_uring) a send that waits for its own
// completion costs the task two coroutine switches and the loop one extra
// iteration per message: the task traps, the loop submits, the kernel copies
// the bytes into the socket at once, and only then does the task resume to
// write its next reply or post its next read. Send avoids that wait, the way
// the kernel's socket buffer does for a blocking write(2): it copies p into
// a per-FD send buffer owned by the loop, submits the send, and returns. The
// next trap of any task submits it; the loop handles its completion (a short
// send is continued, an error is kept and reported by the next Send or
// Flush). One send per FD is in flight at a time, so bytes go out in order;
// bytes written while one is in flight are appended behind it and go with
// the next one.
//
// A write larger than the buffer, or on a backend that completes sends
// inline (epoll tries the syscall at once), waits for its own completion as
// before: there is nothing to save.

// sendBufSize is the size of a write-behind buffer: a Send that does not fit
// in what is free of it waits for the send in flight to drain it.
const sendBufSize = 16 << 10

// closeLinger bounds how long a closed FD keeps its descriptor open for
// write-behind bytes that its peer does not read (at most a buffer's worth
// beyond what the socket holds). Then the send is cancelled and the
// descriptor closed, as the kernel gives up on an orphaned socket whose
// peer does not open its window: a peer that stops reading cannot pin a
// descriptor of the server for ever. A variable for tests.
var closeLinger = 30 * time.Second

// lingerTimeout bounds how long the end of Run waits for write-behind bytes
// (of connections closed or not) to reach the kernel, when the peer does
// not read them.
const lingerTimeout = time.Second

// sendQueue is an FD's write-behind state. It is allocated on the FD's first
// buffered Send and kept; its buffers are taken from the loop's pool while
// bytes are queued and returned once they are sent.
type sendQueue struct {
	op       Op            // the send in flight (op.task == nil: the loop owns it)
	buf      []byte        // the buffer the send in flight reads; nil when none
	off, end int           // buf[off:end] is not yet sent
	next     []byte        // bytes written while a send is in flight: they go next
	err      syscall.Errno // the first failed send's error (0: none), reported by Send and Flush
	closing  bool          // Close was called: close the descriptor once drained
	expired  bool          // closeLinger passed: drop what is left and close
	linger   timer
	shutWR   bool // ShutdownWrite was called: shut down writing once drained
}

// pending reports whether write-behind bytes are queued or in flight (q
// may be nil: nothing is).
func (q *sendQueue) pending() bool { return q != nil && (q.buf != nil || len(q.next) > 0) }

// Send writes all of p to the stream socket fd (MSG_NOSIGNAL) and returns
// how many bytes were written, like a blocking write(2) on a socket: on
// success the bytes are the loop's or the kernel's to deliver, in order,
// and Send may return before they have reached the kernel. A send that
// fails after Send returned (the peer reset the connection, say) makes the
// next Send, or Flush, return its error as -errno in res with a nil error,
// like Do; so does every Send and Flush after any failed send (the error is
// sticky, as the kernel's is), and a Send after ShutdownWrite fails with
// EPIPE. err is the cancellation error, or net.ErrClosed: then n bytes were
// accepted. Send checks for cancellation first, even when it would not wait.
func (t *Task) Send(fd *FD, p []byte) (n int, res int32, err error) {
	if ce := t.cancelled(); ce != nil {
		return 0, 0, ce
	}
	if fd.closed {
		return 0, 0, errFDClosed
	}
	defer fd.releaseWrite(t)
	l := t.loop
	for n < len(p) {
		if fd.closed {
			return n, 0, errFDClosed
		}
		if fd.writer != nil && fd.writer != t {
			// Another task is in the middle of a Send that had to wait:
			// its bytes go out together, so this one queues behind it.
			if err := fd.writeQ.Wait(t, "send"); err != nil {
				return n, 0, err
			}
			continue
		}
		if q := fd.sq; q != nil && q.err != 0 {
			return n, -int32(q.err), nil
		}
		if fd.wrShut {
			return n, -int32(syscall.EPIPE), nil
		}
		if !l.writeBehind || (!fd.sq.pending() && len(p)-n > sendBufSize) {
			// The task waits for the kernel, which reads p itself: on a
			// backend that sends inline, or a write too big to be worth a
			// copy when nothing is queued before it.
			fd.writer = t
			m, res, err := t.sendSync(fd, p[n:])
			if err == nil && res < 0 {
				// Kept for later Sends and Flush, like a write-behind
				// send's failure. (No queue otherwise: no memory per
				// connection on the epoll backend.)
				fd.sendQueue().err = syscall.Errno(-res)
			}
			return n + m, res, err
		}
		q := fd.sendQueue()
		if q.buf == nil {
			// Nothing in flight: a buffer of the write's size, sent now.
			b := l.getSendBuf(len(p) - n)
			k := copy(b, p[n:])
			q.buf, q.off, q.end = b, 0, k
			n += k
			l.startSend(fd, q)
			continue
		}
		// A send is in flight: append to what goes after it (in a buffer
		// of at least nextMin, for pipelined replies).
		if q.next == nil {
			q.next = l.getSendBuf(max(len(p)-n, nextMin))[:0]
		}
		if k := min(cap(q.next)-len(q.next), len(p)-n); k > 0 {
			q.next = append(q.next, p[n:n+k]...)
			n += k
			continue
		}
		// Full: wait for the send in flight to make room, holding the
		// write side so that no other task's bytes get in between.
		fd.writer = t
		if err := fd.writeQ.Wait(t, "send"); err != nil {
			return n, 0, err
		}
	}
	return n, 0, nil
}

// releaseWrite ends t's hold of fd's write side, if it has it, and lets the
// tasks that wait for it try again.
func (fd *FD) releaseWrite(t *Task) {
	if fd.writer == t {
		fd.writer = nil
		fd.writeQ.WakeAll()
	}
}

// sendQueue returns fd's write-behind state, allocating it on first use.
func (fd *FD) sendQueue() *sendQueue {
	if fd.sq == nil {
		fd.sq = &sendQueue{linger: timer{index: -1}}
	}
	return fd.sq
}

// sendSync sends p with the task's own operation record, waiting for each
// completion.
func (t *Task) sendSync(fd *FD, p []byte) (int, int32, error) {
	n := 0
	for n < len(p) {
		op := t.Op(OpSend, fd)
		op.Buf = p[n:]
		res, err := t.Do(op)
		if err != nil || res < 0 {
			return n, res, err
		}
		n += int(res)
	}
	return n, 0, nil
}

// Flush waits until every byte Send accepted for fd has reached the kernel,
// and returns, like Send, -errno in res if a send on fd has failed. It
// returns the cancellation error when t is cancelled first, and
// net.ErrClosed when fd is closed.
func (t *Task) Flush(fd *FD) (res int32, err error) {
	if ce := t.cancelled(); ce != nil {
		return 0, ce
	}
	for {
		if fd.closed {
			return 0, errFDClosed
		}
		q := fd.sq
		if q == nil {
			return 0, nil
		}
		if q.err != 0 {
			return -int32(q.err), nil
		}
		if !q.pending() {
			return 0, nil
		}
		if err := fd.writeQ.Wait(t, "flush"); err != nil {
			return 0, err
		}
	}
}

// startSend submits buf[off:end] as the FD's one send in flight.
func (l *Loop) startSend(fd *FD, q *sendQueue) {
	op := &q.op
	op.reset(OpSend, fd)
	op.Buf = q.buf[q.off:q.end]
	op.task = nil
	l.sendsLive++
	if l.start(op) {
		l.sendDone(op)
	}
}

// sendDone handles the completion of a write-behind send: it continues a
// short one, keeps a failure for Send and Flush to report (and drops what
// was queued behind it: the connection is broken), returns an emptied buffer
// to the pool, and wakes the tasks waiting for room. Once a closed FD has
// nothing left to send, its descriptor is closed.
func (l *Loop) sendDone(op *Op) {
	l.sendsLive--
	fd := op.FD
	q := fd.sq
	op.Buf = nil
	drop := false
	if res := op.Res; res < 0 {
		if q.err == 0 {
			q.err = syscall.Errno(-res)
		}
		drop = true
	} else {
		q.off += int(res)
		if q.expired {
			// Given up on (closeLinger): the rest is dropped.
			if q.err == 0 {
				q.err = syscall.ECANCELED
			}
			drop = true
		}
	}
	if drop {
		q.off = q.end
		l.putSendBuf(q.next)
		q.next = nil
	}
	switch {
	case q.off < q.end:
		l.startSend(fd, q) // the rest of a short send
	case len(q.next) > 0:
		l.putSendBuf(q.buf)
		q.buf, q.off, q.end = q.next[:cap(q.next)], 0, len(q.next)
		q.next = nil
		l.startSend(fd, q)
	default:
		l.timers.remove(&q.linger)
		l.putSendBuf(q.buf)
		q.buf = nil
		q.off, q.end = 0, 0
		switch {
		case q.closing:
			l.backend.CloseFD(fd)
			closeFd(fd.Sysfd)
		case q.shutWR:
			q.shutWR = false
			shutdownWrite(fd.Sysfd)
		}
	}
	fd.writeQ.WakeAll()
}

// lingerExpired gives up on a closed FD's write-behind bytes: the send in
// flight is cancelled, and its completion (sendDone) closes the descriptor.
func (l *Loop) lingerExpired(fd *FD) {
	q := fd.sq
	q.expired = true
	if op := &q.op; op.pending && !op.cancelled {
		op.cancelled = true
		l.backend.Cancel(op)
	}
}

// ShutdownWrite shuts down the writing side of the stream socket fd once
// every byte Send accepted has been sent (at once when none is queued). It
// returns the error of shutdown(2) when that ran at once.
func (fd *FD) ShutdownWrite() error {
	if fd.closed {
		return errFDClosed
	}
	fd.wrShut = true
	if q := fd.sq; q != nil && q.pending() {
		q.shutWR = true
		return nil
	}
	return shutdownWrite(fd.Sysfd)
}

// Write-behind buffers come in size classes, so that many small writes in
// flight at once (a broadcast to 10 000 connections, say) hold a small
// buffer each rather than 16 KiB: a write takes the smallest class that
// holds it, and what later writes append must fit in that buffer too (or
// wait for it to drain). Each class keeps up to sendPoolBytes of free
// buffers for reuse; what a burst needed beyond that goes back to the GC.
var sendClasses = [...]int{256, 2 << 10, sendBufSize}

const sendPoolBytes = 4 << 20

// nextMin is the smallest buffer for bytes written behind a send in flight.
const nextMin = 2 << 10

// sendPool is the loop's free write-behind buffers, by class.
type sendPool [len(sendClasses)][][]byte

// getSendBuf returns a free buffer of the smallest class that holds n
// bytes.
func (l *Loop) getSendBuf(n int) []byte {
	c := 0
	for c < len(sendClasses)-1 && sendClasses[c] < n {
		c++
	}
	free := l.sendBufs[c]
	if k := len(free); k > 0 {
		b := free[k-1]
		free[k-1] = nil
		l.sendBufs[c] = free[:k-1]
		return b
	}
	return make([]byte, sendClasses[c])
}

// putSendBuf returns b (nil: nothing) to its class's free list, unless
// that is full.
func (l *Loop) putSendBuf(b []byte) {
	for c, size := range sendClasses {
		if cap(b) == size {
			if len(l.sendBufs[c])*size < sendPoolBytes {
				l.sendBufs[c] = append(l.sendBufs[c], b[:size])
			}
			return
		}
	}
}
