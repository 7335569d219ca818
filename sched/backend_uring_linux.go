//go:build linux && !corio_epoll

package sched

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/corio-go/corio/uring"
	"golang.org/x/sys/unix"
)

// UringCompiledIn reports whether the io_uring backend is part of this build.
const UringCompiledIn = true

// user_data values of the backend's own requests. Operation ids never have
// the top bit set (see opTable).
const (
	udWake   = 1<<63 | 1 // poll on the loop's waker eventfd
	udCancel = 1<<63 | 2 // ASYNC_CANCEL requests: their CQEs carry nothing we need
)

// requiredOps are the opcodes the backend uses; a kernel that lacks one of
// them gets the epoll backend instead.
var requiredOps = []uring.Op{
	uring.OpNop, uring.OpRead, uring.OpWrite, uring.OpRecv, uring.OpSend,
	uring.OpRecvmsg, uring.OpSendmsg, uring.OpAccept, uring.OpConnect,
	uring.OpTimeout, uring.OpAsyncCancel, uring.OpPollAdd, uring.OpFsync,
}

// uringBackend implements Backend with one io_uring: every operation is an
// SQE whose user_data is the operation's in-flight id; Wait submits all
// prepared SQEs and waits for completions in a single io_uring_enter.
type uringBackend struct {
	l     *Loop
	r     *uring.Ring
	cqes  []uring.CQE
	early []*Op // completions reaped while making room in a full SQ

	// pollFirst: recvs on a socket the last recv drained are sent with
	// IORING_RECVSEND_POLL_FIRST (5.19; known present with DEFER_TASKRUN,
	// 6.1). A request/response peer answers only after our reply, so such
	// a recv would otherwise first run tcp_recvmsg once for nothing, then
	// arm the poll anyway.
	pollFirst bool

	// wakeDown: the waker's one-shot poll fired and is to be re-armed by
	// the next Wait. Not from reap: re-arming needs an SQE, and with the SQ
	// full, getting one submits and reaps, which inside reap would
	// overwrite the completions it has not read yet.
	wakeDown bool
}

func newUringBackend(l *Loop, entries uint32) (Backend, error) {
	var r *uring.Ring
	var err error
	for n := entries; ; n /= 4 {
		r, err = uring.New(uring.Config{Entries: n})
		// ENOMEM is the memlock limit (pre-5.12 kernels) or memory cgroup:
		// a smaller ring may still fit.
		if err == nil || !errors.Is(err, unix.ENOMEM) || n <= 8 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	const needFeat = uring.FeatNodrop | uring.FeatExtArg
	if r.Features()&needFeat != needFeat {
		r.Close()
		return nil, fmt.Errorf("io_uring lacks IORING_FEAT_NODROP or IORING_FEAT_EXT_ARG (kernel older than 5.11)")
	}
	for _, op := range requiredOps {
		if !r.Supported(op) {
			r.Close()
			return nil, fmt.Errorf("io_uring lacks opcode %d", op)
		}
	}
	// A registered ring fd saves an fdget/fdput per enter; optional.
	_ = r.RegisterRingFd()
	b := &uringBackend{l: l, r: r, cqes: make([]uring.CQE, 256),
		pollFirst: r.SetupFlags()&uring.SetupDeferTaskrun != 0}
	b.armWake()
	// Submitting the waker's poll tries io_uring_enter itself: a seccomp
	// profile may allow setup and register but refuse enter, and then
	// "auto" must pick epoll now, not fail at the first wait.
	if _, err := r.Submit(); err != nil {
		r.Close()
		return nil, fmt.Errorf("io_uring_enter: %w", err)
	}
	return b, nil
}

func (b *uringBackend) Name() string       { return BackendUring }
func (b *uringBackend) NativeTimers() bool { return true }
func (b *uringBackend) AsyncSends() bool   { return true }
func (b *uringBackend) Close() error       { return b.r.Close() }

// armWake polls the waker's eventfd, so that a wake-up from another
// goroutine ends the loop's io_uring_enter. One-shot: re-armed by the Wait
// after each CQE (the loop drains the eventfd itself).
func (b *uringBackend) armWake() {
	sqe := b.sqe()
	sqe.PrepPollAdd(b.l.waker.Fd(), unix.POLLIN)
	sqe.SetUserData(udWake)
}

// sqe returns a free SQE, flushing the submission queue to the kernel when
// it is full. Completions reaped to make room are kept for the next Wait.
func (b *uringBackend) sqe() *uring.SQE {
	for {
		if s := b.r.GetSQE(); s != nil {
			return s
		}
		e := b.r.Enters()
		b.r.Submit()
		b.countEnters(e)
		b.early = b.reap(b.early)
	}
}

func (b *uringBackend) Start(op *Op) bool {
	fd := op.Sysfd()
	sqe := b.sqe()
	switch op.Code {
	case OpNop:
		sqe.PrepNop()
	case OpRead:
		sqe.PrepRead(fd, op.Buf, fileOffset(op.Off))
	case OpWrite:
		sqe.PrepWrite(fd, op.Buf, fileOffset(op.Off))
	case OpRecv:
		sqe.PrepRecv(fd, op.Buf, op.Flags)
		if b.pollFirst && op.FD.drained {
			sqe.IoPrio |= uring.RecvsendPollFirst
		}
	case OpSend:
		sqe.PrepSend(fd, op.Buf, op.Flags|unix.MSG_NOSIGNAL)
	case OpRecvFrom:
		b.prepMsg(op, unix.SizeofSockaddrAny)
		sqe.PrepRecvmsg(fd, &op.Msg, op.Flags)
	case OpSendTo:
		b.prepMsg(op, op.AddrLen)
		sqe.PrepSendmsg(fd, &op.Msg, op.Flags|unix.MSG_NOSIGNAL)
	case OpAccept:
		op.AddrLen = unix.SizeofSockaddrAny
		sqe.PrepAccept(fd, &op.Addr, &op.AddrLen, unix.SOCK_CLOEXEC)
	case OpConnect:
		sqe.PrepConnect(fd, &op.Addr, op.AddrLen)
	case OpTimeout:
		op.Ts = unix.NsecToTimespec(int64(op.Dur))
		sqe.PrepTimeout(&op.Ts, 0, 0)
	case OpFsync:
		sqe.PrepFsync(fd, 0)
	case OpPollIn:
		sqe.PrepPollAdd(fd, unix.POLLIN)
	case OpPollOut:
		sqe.PrepPollAdd(fd, unix.POLLOUT)
	default:
		sqe.PrepNop()
		op.Res = -int32(unix.EINVAL)
		sqe.SetUserData(udCancel)
		return true
	}
	sqe.SetUserData(op.id)
	return false
}

// fileOffset maps Op.Off to io_uring's: -1 (all ones) means the current
// file position.
func fileOffset(off int64) uint64 {
	if off < 0 {
		return ^uint64(0)
	}
	return uint64(off)
}

// prepMsg points the op's msghdr at its buffer and sockaddr. Everything
// lives in the Op, inside the heap-allocated Task, so it stays put until the
// completion.
func (b *uringBackend) prepMsg(op *Op, namelen uint32) {
	op.Iov = unix.Iovec{}
	if len(op.Buf) > 0 {
		op.Iov.Base = &op.Buf[0]
		op.Iov.SetLen(len(op.Buf))
	}
	op.Msg = unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&op.Addr)),
		Namelen: namelen,
		Iov:     &op.Iov,
	}
	op.Msg.SetIovlen(1)
}

// CloseFD runs before fd's number is closed. SQEs still waiting in the SQ
// name the file by number, and the kernel resolves the number only when it
// consumes the SQE: if the number were closed and reused (a socket() in the
// same loop pass) first, a queued send would go to the new file. Flushing
// the SQ now makes the kernel take its reference to the old file, and
// submits the ASYNC_CANCELs that Close just queued.
func (b *uringBackend) CloseFD(fd *FD) {
	if fd.ops == nil {
		return
	}
	e := b.r.Enters()
	b.r.Submit()
	b.countEnters(e)
}

// countEnters adds to the loop's stats the io_uring_enter calls the ring
// made since its Enters read since: a Submit may make none, a
// SubmitAndWait several.
func (b *uringBackend) countEnters(since uint64) {
	d := b.r.Enters() - since
	b.l.stats.Enters += d
	b.l.stats.Syscalls += d
}

func (b *uringBackend) Cancel(op *Op) {
	sqe := b.sqe()
	sqe.PrepCancel(op.id, 0)
	sqe.SetUserData(udCancel)
}

func (b *uringBackend) Wait(dst []*Op, timeout time.Duration) ([]*Op, error) {
	if b.wakeDown {
		// Before the early completions are taken: arming may reap more.
		b.wakeDown = false
		b.armWake()
	}
	if len(b.early) > 0 {
		dst = append(dst, b.early...)
		clear(b.early)
		b.early = b.early[:0]
		timeout = 0
	}
	if timeout == 0 && b.r.SQReady() == 0 && b.l.ops.live == 0 {
		// Nothing to submit and nothing in flight that could complete:
		// a polling enter would be a wasted syscall. (The waker's poll
		// is not counted: a non-blocking pass needs no wake-up.)
		return dst, nil
	}
	e := b.r.Enters()
	var err error
	if timeout == 0 {
		_, err = b.r.Submit()
	} else {
		_, err = b.r.SubmitAndWait(1, timeout)
	}
	b.countEnters(e)
	if err != nil {
		return dst, fmt.Errorf("io_uring_enter: %w", err)
	}
	return b.reap(dst), nil
}

// reap moves every available completion to dst.
func (b *uringBackend) reap(dst []*Op) []*Op {
	for {
		n := b.r.Reap(b.cqes)
		for i := range n {
			c := &b.cqes[i]
			switch c.UserData {
			case udCancel:
				continue
			case udWake:
				// The poll fired: the eventfd is readable. Read it now: a
				// Wake can land after the loop's own Drain (between its
				// state change and its write), and a readable eventfd
				// would fire the re-armed poll at every Wait: a busy
				// loop, idle as it is.
				b.wakeDown = true
				b.l.waker.Drain()
				b.l.stats.Syscalls++
				continue
			}
			op := b.l.ops.lookup(c.UserData)
			if op == nil || !op.pending {
				continue // stale: never misroute a completion
			}
			op.Res = c.Res
			op.ResFlags = c.Flags
			switch op.Code {
			case OpTimeout:
				if c.Res == -int32(unix.ETIME) {
					op.Res = 0 // the timer fired: a sleep's success
				}
			case OpRecvFrom:
				op.AddrLen = op.Msg.Namelen
			case OpRecv:
				// A short read with nothing left behind (the kernel says
				// so with SOCK_NONEMPTY) drained the socket.
				op.FD.drained = c.Res > 0 && int(c.Res) < len(op.Buf) && c.Flags&uring.CQEFSockNonempty == 0
			}
			dst = append(dst, op)
		}
		if n < len(b.cqes) {
			return dst
		}
	}
}
