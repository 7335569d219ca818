//go:build linux

package sched

import (
	"time"
	"unsafe"

	epoll "github.com/corio-go/corio/fallback_epoll"
	"golang.org/x/sys/unix"
)

// pollDesc is the epoll backend's per-FD state, embedded in FD.
type pollDesc struct {
	slot uint32 // registration slot + 1; 0 when not registered
	rq   opQueue
	wq   opQueue
}

// opQueue is a FIFO of operations waiting for one kind of readiness.
type opQueue struct{ head, tail *Op }

func (q *opQueue) push(op *Op) {
	op.pdNext = nil
	if q.tail != nil {
		q.tail.pdNext = op
	} else {
		q.head = op
	}
	q.tail = op
}

func (q *opQueue) remove(op *Op) bool {
	var prev *Op
	for o := q.head; o != nil; prev, o = o, o.pdNext {
		if o != op {
			continue
		}
		if prev != nil {
			prev.pdNext = o.pdNext
		} else {
			q.head = o.pdNext
		}
		if q.tail == o {
			q.tail = prev
		}
		o.pdNext = nil
		return true
	}
	return false
}

// wakeData marks the waker's eventfd in epoll events; registration ids
// never have the top bit set.
const wakeData = 1 << 63

// epollBackend implements Backend with non-blocking syscalls and
// edge-triggered readiness: an operation is tried at once; on EAGAIN it
// waits in its FD's read or write queue and is retried when epoll reports
// the FD ready. Nothing is ever in the kernel, so cancellation is immediate.
type epollBackend struct {
	l       *Loop
	p       *epoll.Poller
	evs     []epoll.Event
	done    []*Op // completed off the readiness path, reported by next Wait
	descs   []*FD // registration slots
	gens    []uint32
	free    []uint32
	waiting int // operations in readiness queues
}

func newEpollBackend(l *Loop) (Backend, error) {
	p, err := epoll.New(256)
	if err != nil {
		return nil, err
	}
	if err := p.Add(l.waker.Fd(), epoll.In, wakeData); err != nil {
		p.Close()
		return nil, err
	}
	return &epollBackend{l: l, p: p, evs: make([]epoll.Event, 0, 256)}, nil
}

func (b *epollBackend) Name() string       { return BackendEpoll }
func (b *epollBackend) NativeTimers() bool { return false }
func (b *epollBackend) AsyncSends() bool   { return false }

func (b *epollBackend) Start(op *Op) bool {
	res := b.try(op)
	if res != -int32(unix.EAGAIN) || op.phase == phaseFinal {
		op.Res = res
		return true
	}
	fd := op.FD
	if fd.pd.slot == 0 {
		if err := b.register(fd); err != nil {
			op.Res = -int32(errnoOf(err))
			return true
		}
	}
	if isWriteSide(op.Code) {
		fd.pd.wq.push(op)
	} else {
		fd.pd.rq.push(op)
	}
	b.waiting++
	return false
}

func isWriteSide(c OpCode) bool {
	switch c {
	case OpWrite, OpSend, OpSendTo, OpConnect, OpPollOut:
		return true
	}
	return false
}

func (b *epollBackend) register(fd *FD) error {
	var idx uint32
	if n := len(b.free); n > 0 {
		idx = b.free[n-1]
		b.free = b.free[:n-1]
	} else {
		idx = uint32(len(b.descs))
		b.descs = append(b.descs, nil)
		b.gens = append(b.gens, 0)
	}
	b.gens[idx] = (b.gens[idx] + 1) & 0x7fffffff
	data := uint64(idx) | uint64(b.gens[idx])<<32
	b.l.stats.Syscalls++
	if err := b.p.Add(fd.Sysfd, epoll.In|epoll.Out|epoll.RDHup, data); err != nil {
		b.free = append(b.free, idx)
		return err
	}
	b.descs[idx] = fd
	fd.pd.slot = idx + 1
	return nil
}

// try makes one non-blocking attempt at op and returns its result, which
// is -EAGAIN when the operation must wait for readiness.
func (b *epollBackend) try(op *Op) int32 {
	b.l.stats.Syscalls++
	fd := op.Sysfd()
	switch op.Code {
	case OpNop:
		b.l.stats.Syscalls--
		return 0
	// Reads and writes are the file operations: a regular file is always
	// "ready", and a read from a slow disk (or a hung NFS server) blocks in
	// the kernel. A normal syscall lets the Go scheduler hand the loop's P
	// to other goroutines meanwhile (a raw one would hold it, and a
	// stop-the-world GC would wait for the disk); sockets, never blocking
	// here, keep raw syscalls.
	case OpRead:
		if op.Off < 0 {
			return sysret(unix.Syscall(unix.SYS_READ, uintptr(fd), bufPtr(op.Buf), uintptr(len(op.Buf))))
		}
		return sysret(unix.Syscall6(unix.SYS_PREAD64, uintptr(fd), bufPtr(op.Buf), uintptr(len(op.Buf)), uintptr(op.Off), 0, 0))
	case OpWrite:
		if op.Off < 0 {
			return sysret(unix.Syscall(unix.SYS_WRITE, uintptr(fd), bufPtr(op.Buf), uintptr(len(op.Buf))))
		}
		return sysret(unix.Syscall6(unix.SYS_PWRITE64, uintptr(fd), bufPtr(op.Buf), uintptr(len(op.Buf)), uintptr(op.Off), 0, 0))
	case OpRecv:
		return sysret(unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), bufPtr(op.Buf), uintptr(len(op.Buf)), uintptr(op.Flags), 0, 0))
	case OpSend:
		return sysret(unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), bufPtr(op.Buf), uintptr(len(op.Buf)), uintptr(op.Flags|unix.MSG_NOSIGNAL), 0, 0))
	case OpRecvFrom:
		op.AddrLen = unix.SizeofSockaddrAny
		return sysret(unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), bufPtr(op.Buf), uintptr(len(op.Buf)), uintptr(op.Flags),
			uintptr(unsafe.Pointer(&op.Addr)), uintptr(unsafe.Pointer(&op.AddrLen))))
	case OpSendTo:
		return sysret(unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), bufPtr(op.Buf), uintptr(len(op.Buf)), uintptr(op.Flags|unix.MSG_NOSIGNAL),
			uintptr(unsafe.Pointer(&op.Addr)), uintptr(op.AddrLen)))
	case OpAccept:
		op.AddrLen = unix.SizeofSockaddrAny
		return sysret(unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&op.Addr)),
			uintptr(unsafe.Pointer(&op.AddrLen)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0))
	case OpConnect:
		if op.phase == phaseStart {
			op.phase = phaseConnecting
			r := sysret(unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&op.Addr)), uintptr(op.AddrLen)))
			if r == -int32(unix.EINPROGRESS) || r == -int32(unix.EINTR) {
				return -int32(unix.EAGAIN)
			}
			if r == -int32(unix.EAGAIN) {
				// AF_UNIX with a full accept queue: a final error, as
				// for net.Dial, not a connect in progress (the socket is
				// writable at once and SO_ERROR is 0, so waiting would
				// report an unconnected socket as connected).
				op.phase = phaseFinal
			}
			return r
		}
		// Woken as writable: the outcome is in SO_ERROR.
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			return -int32(errnoOf(err))
		case v == 0:
			return 0
		case unix.Errno(v) == unix.EINPROGRESS || unix.Errno(v) == unix.EALREADY:
			return -int32(unix.EAGAIN)
		}
		return -int32(v)
	case OpFsync:
		return sysret(unix.Syscall(unix.SYS_FSYNC, uintptr(fd), 0, 0))
	case OpPollIn, OpPollOut:
		ev := int16(unix.POLLIN)
		if op.Code == OpPollOut {
			ev = unix.POLLOUT
		}
		pfd := [1]unix.PollFd{{Fd: int32(fd), Events: ev}}
		n, err := unix.Poll(pfd[:], 0)
		if err != nil {
			return -int32(errnoOf(err))
		}
		if n == 0 {
			return -int32(unix.EAGAIN)
		}
		return int32(pfd[0].Revents)
	}
	return -int32(unix.EINVAL)
}

func bufPtr(b []byte) uintptr {
	if len(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

func sysret(r uintptr, _ uintptr, e unix.Errno) int32 {
	if e != 0 {
		return -int32(e)
	}
	return int32(r)
}

func errnoOf(err error) unix.Errno {
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok {
		return errnoOf(u.Unwrap())
	}
	return unix.EIO
}

func (b *epollBackend) Cancel(op *Op) {
	if fd := op.FD; fd != nil && (fd.pd.rq.remove(op) || fd.pd.wq.remove(op)) {
		b.waiting--
		op.Res = -int32(unix.ECANCELED)
		b.done = append(b.done, op)
	}
}

func (b *epollBackend) CloseFD(fd *FD) {
	if fd.pd.slot != 0 {
		idx := fd.pd.slot - 1
		b.descs[idx] = nil
		b.gens[idx]++ // events still queued for the old registration are stale
		b.free = append(b.free, idx)
		fd.pd.slot = 0
	}
}

func (b *epollBackend) Wait(dst []*Op, timeout time.Duration) ([]*Op, error) {
	if len(b.done) > 0 {
		dst = append(dst, b.done...)
		clear(b.done)
		b.done = b.done[:0]
		timeout = 0
	}
	if timeout == 0 && b.waiting == 0 {
		return dst, nil // nothing could become ready: skip the syscall
	}
	b.l.stats.Enters++
	b.l.stats.Syscalls++
	var err error
	b.evs, err = b.p.Wait(b.evs[:0], timeout)
	if err != nil {
		return dst, err
	}
	for _, ev := range b.evs {
		if ev.Data == wakeData {
			continue // the loop drains the waker
		}
		idx := uint32(ev.Data)
		if int(idx) >= len(b.descs) || b.gens[idx] != uint32(ev.Data>>32) || b.descs[idx] == nil {
			continue // stale: the FD was closed
		}
		fd := b.descs[idx]
		if ev.Events&(epoll.In|epoll.Hup|epoll.Err|epoll.RDHup) != 0 {
			dst = b.retry(&fd.pd.rq, dst)
		}
		if ev.Events&(epoll.Out|epoll.Hup|epoll.Err) != 0 {
			dst = b.retry(&fd.pd.wq, dst)
		}
	}
	return dst, nil
}

// retry re-attempts the queued operations in order until one still gets
// EAGAIN: edge-triggered readiness means nothing will report it again
// before that.
func (b *epollBackend) retry(q *opQueue, dst []*Op) []*Op {
	for op := q.head; op != nil; op = q.head {
		res := b.try(op)
		if res == -int32(unix.EAGAIN) {
			break
		}
		q.head = op.pdNext
		if q.head == nil {
			q.tail = nil
		}
		op.pdNext = nil
		b.waiting--
		op.Res = res
		dst = append(dst, op)
	}
	return dst
}

func (b *epollBackend) Close() error { return b.p.Close() }
