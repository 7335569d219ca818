//go:build linux

package uring

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Op is an io_uring opcode (enum io_uring_op).
type Op uint8

// Opcodes, in the kernel's order.
const (
	OpNop Op = iota
	OpReadv
	OpWritev
	OpFsync
	OpReadFixed
	OpWriteFixed
	OpPollAdd
	OpPollRemove
	OpSyncFileRange
	OpSendmsg
	OpRecvmsg
	OpTimeout
	OpTimeoutRemove
	OpAccept
	OpAsyncCancel
	OpLinkTimeout
	OpConnect
	OpFallocate
	OpOpenat
	OpClose
	OpFilesUpdate
	OpStatx
	OpRead
	OpWrite
	OpFadvise
	OpMadvise
	OpSend
	OpRecv
	OpOpenat2
	OpEpollCtl
	OpSplice
	OpProvideBuffers
	OpRemoveBuffers
	OpTee
	OpShutdown
	OpRenameat
	OpUnlinkat
	OpMkdirat
	OpSymlinkat
	OpLinkat
	OpMsgRing
)

// SQE flags (IOSQE_*).
const (
	SQEFixedFile      = 1 << 0
	SQEIODrain        = 1 << 1
	SQEIOLink         = 1 << 2
	SQEIOHardlink     = 1 << 3
	SQEAsync          = 1 << 4
	SQEBufferSelect   = 1 << 5
	SQECQESkipSuccess = 1 << 6
)

// CQE flags (IORING_CQE_F_*).
const (
	CQEFBuffer       = 1 << 0
	CQEFMore         = 1 << 1
	CQEFSockNonempty = 1 << 2
	CQEFNotif        = 1 << 3
	CQEBufferShift   = 16
)

// Operation-specific flags.
const (
	TimeoutAbs          = 1 << 0 // IORING_TIMEOUT_ABS
	TimeoutETimeSuccess = 1 << 5 // IORING_TIMEOUT_ETIME_SUCCESS
	TimeoutMultishot    = 1 << 6 // IORING_TIMEOUT_MULTISHOT
	PollAddMulti        = 1 << 0 // IORING_POLL_ADD_MULTI (in Len)
	AsyncCancelAll      = 1 << 0 // IORING_ASYNC_CANCEL_ALL
	AsyncCancelFd       = 1 << 1 // IORING_ASYNC_CANCEL_FD
	AsyncCancelAny      = 1 << 2 // IORING_ASYNC_CANCEL_ANY
	FsyncDatasync       = 1 << 0 // IORING_FSYNC_DATASYNC
	RecvsendPollFirst   = 1 << 0 // IORING_RECVSEND_POLL_FIRST (in IoPrio)
	RecvMultishot       = 1 << 1 // IORING_RECV_MULTISHOT (in IoPrio)
	AcceptMultishot     = 1 << 0 // IORING_ACCEPT_MULTISHOT (in IoPrio)
)

// SQE is struct io_uring_sqe (64 bytes).
type SQE struct {
	Opcode      uint8
	Flags       uint8
	IoPrio      uint16
	Fd          int32
	Off         uint64 // off / addr2
	Addr        uint64 // addr / splice_off_in
	Len         uint32
	OpFlags     uint32 // rw_flags, msg_flags, timeout_flags, accept_flags, cancel_flags, poll32_events…
	UserData    uint64
	BufIndex    uint16 // buf_index / buf_group
	Personality uint16
	SpliceFdIn  int32 // splice_fd_in / file_index / addr_len
	Addr3       uint64
	_           uint64
}

// CQE is struct io_uring_cqe.
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// SetUserData sets the opaque value the completion carries back. Call it
// after the Prep method, which resets the whole SQE.
func (s *SQE) SetUserData(u uint64) { s.UserData = u }

// SetFlags replaces the IOSQE_* flags, including SQEBufferSelect set by
// PrepRecvMultishot; AddFlags keeps them. Call it after the Prep method.
func (s *SQE) SetFlags(f uint8) { s.Flags = f }

// AddFlags adds IOSQE_* flags (SQEIOLink, SQEAsync…) to those the Prep
// method set. Call it after the Prep method.
func (s *SQE) AddFlags(f uint8) { s.Flags |= f }

// bufAddr is the address of buf's first byte, as the kernel wants it. The
// caller keeps buf itself reachable (see the package documentation).
func bufAddr(b []byte) uint64 {
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// ptrAddr is the address p points to (0 for nil).
func ptrAddr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// rw resets the SQE to the common layout of io_uring_prep_rw: every field
// not named here is zero, whatever the SQE held before.
func (s *SQE) rw(op Op, fd int, addr uint64, n uint32, off uint64) {
	*s = SQE{Opcode: uint8(op), Fd: int32(fd), Addr: addr, Len: n, Off: off}
}

// The Prep methods below each reset the whole SQE, then fill in one
// request. Memory they take (buffers, iovecs, msghdrs, sockaddrs, paths,
// statx buffers) must stay reachable, and off any goroutine stack, until
// the request's completion has been reaped; timespecs until the SQE has
// been submitted (the kernel copies them then). Passing a field of a
// heap-allocated struct, or a slice from make, satisfies both.

// MaxRW is the most bytes one read, write, recv or send moves (the kernel's
// MAX_RW_COUNT); the Prep methods taking a buffer ask for at most that much,
// so a larger buffer gives a short count, as read(2) does, rather than a
// 32-bit length that wrapped (a 4 GiB buffer would be asked for 0 bytes).
const MaxRW = 1<<31 - 4096

// bufLen is the SQE length for buf.
func bufLen(buf []byte) uint32 { return uint32(min(len(buf), MaxRW)) }

// PrepNop prepares a no-op: it completes with res 0.
func (s *SQE) PrepNop() { s.rw(OpNop, 0, 0, 0, 0) }

// PrepRead reads into buf from fd at off (^uint64(0): the file position,
// FEAT_RW_CUR_POS). The completion's res is the byte count or -errno.
func (s *SQE) PrepRead(fd int, buf []byte, off uint64) {
	s.rw(OpRead, fd, bufAddr(buf), bufLen(buf), off)
}

// PrepWrite writes buf to fd at off (^uint64(0): the file position).
func (s *SQE) PrepWrite(fd int, buf []byte, off uint64) {
	s.rw(OpWrite, fd, bufAddr(buf), bufLen(buf), off)
}

// PrepReadv reads into the buffers iovs describe, at off. Both iovs and the
// buffers must stay alive until the completion.
func (s *SQE) PrepReadv(fd int, iovs []unix.Iovec, off uint64) {
	s.rw(OpReadv, fd, ptrAddr(unsafe.SliceData(iovs)), uint32(len(iovs)), off)
}

// PrepWritev writes the buffers iovs describe, at off.
func (s *SQE) PrepWritev(fd int, iovs []unix.Iovec, off uint64) {
	s.rw(OpWritev, fd, ptrAddr(unsafe.SliceData(iovs)), uint32(len(iovs)), off)
}

// PrepRecv receives into buf (flags: MSG_*).
func (s *SQE) PrepRecv(fd int, buf []byte, flags int) {
	s.rw(OpRecv, fd, bufAddr(buf), bufLen(buf), 0)
	s.OpFlags = uint32(flags)
}

// PrepSend sends buf (flags: MSG_*; add MSG_NOSIGNAL to get EPIPE instead
// of SIGPIPE).
func (s *SQE) PrepSend(fd int, buf []byte, flags int) {
	s.rw(OpSend, fd, bufAddr(buf), bufLen(buf), 0)
	s.OpFlags = uint32(flags)
}

// PrepRecvmsg receives a message described by msg, which, with the iovecs,
// buffers, name and control buffer it points to, must stay alive until the
// completion.
func (s *SQE) PrepRecvmsg(fd int, msg *unix.Msghdr, flags int) {
	s.rw(OpRecvmsg, fd, ptrAddr(msg), 1, 0)
	s.OpFlags = uint32(flags)
}

// PrepSendmsg sends the message described by msg (see PrepRecvmsg).
func (s *SQE) PrepSendmsg(fd int, msg *unix.Msghdr, flags int) {
	s.rw(OpSendmsg, fd, ptrAddr(msg), 1, 0)
	s.OpFlags = uint32(flags)
}

// PrepAccept accepts a connection; res is the new fd. The peer address
// goes to addr, its length to addrlen, which must hold the size of addr on
// entry (both may be nil). flags are accept4 flags (SOCK_CLOEXEC…).
func (s *SQE) PrepAccept(fd int, addr *unix.RawSockaddrAny, addrlen *uint32, flags int) {
	s.rw(OpAccept, fd, ptrAddr(addr), 0, ptrAddr(addrlen))
	s.OpFlags = uint32(flags)
}

// PrepMultishotAccept is PrepAccept posting one completion per connection,
// with CQEFMore set while the request stays armed (5.19). A completion
// without CQEFMore ends it. Pass nil addr and addrlen: the kernel would
// overwrite them for every connection.
func (s *SQE) PrepMultishotAccept(fd int, addr *unix.RawSockaddrAny, addrlen *uint32, flags int) {
	s.PrepAccept(fd, addr, addrlen, flags)
	s.IoPrio = AcceptMultishot
}

// PrepConnect connects fd to the first addrlen bytes of addr.
func (s *SQE) PrepConnect(fd int, addr *unix.RawSockaddrAny, addrlen uint32) {
	s.rw(OpConnect, fd, ptrAddr(addr), 0, uint64(addrlen))
}

// PrepClose closes fd.
func (s *SQE) PrepClose(fd int) { s.rw(OpClose, fd, 0, 0, 0) }

// PrepShutdown shuts down a socket (how: unix.SHUT_*).
func (s *SQE) PrepShutdown(fd int, how int) { s.rw(OpShutdown, fd, 0, uint32(how), 0) }

// PrepTimeout completes after ts with res -ETIME (0 with
// TimeoutETimeSuccess), or with res 0 once count other completions have
// been posted, when count > 0. flags: TimeoutAbs, TimeoutMultishot…
func (s *SQE) PrepTimeout(ts *unix.Timespec, count uint32, flags uint32) {
	s.rw(OpTimeout, -1, ptrAddr(ts), 1, uint64(count))
	s.OpFlags = flags
}

// PrepTimeoutRemove removes the timeout whose user_data is userData: it
// completes with res 0, and the timeout with -ECANCELED; or with -ENOENT
// when no such timeout is armed, or -EALREADY when it is already firing.
func (s *SQE) PrepTimeoutRemove(userData uint64, flags uint32) {
	s.rw(OpTimeoutRemove, -1, userData, 0, 0)
	s.OpFlags = flags
}

// PrepLinkTimeout bounds the previous request, which must carry SQEIOLink,
// by ts: if ts passes first the request is cancelled (res -ECANCELED, or
// -EINTR when it was running) and the link timeout completes with -ETIME.
func (s *SQE) PrepLinkTimeout(ts *unix.Timespec, flags uint32) {
	s.rw(OpLinkTimeout, -1, ptrAddr(ts), 1, 0)
	s.OpFlags = flags
}

// PrepCancel cancels the request whose user_data is userData (flags:
// AsyncCancelAll for every match). res is 0 when it was cancelled, -ENOENT
// when it had already completed (or never existed), -EALREADY when it was
// running and was signalled. Either CQE may arrive first.
func (s *SQE) PrepCancel(userData uint64, flags uint32) {
	s.rw(OpAsyncCancel, -1, userData, 0, 0)
	s.OpFlags = flags
}

// PrepCancelFd cancels a request on fd, or all of them with AsyncCancelAll
// (AsyncCancelFd is added; 5.19).
func (s *SQE) PrepCancelFd(fd int, flags uint32) {
	s.rw(OpAsyncCancel, fd, 0, 0, 0)
	s.OpFlags = flags | AsyncCancelFd
}

// PrepPollAdd waits until fd reports one of events (unix.POLLIN…); res is
// the events that fired.
func (s *SQE) PrepPollAdd(fd int, events uint32) {
	s.rw(OpPollAdd, fd, 0, 0, 0)
	s.OpFlags = events // poll32_events: little-endian layout, as on amd64/arm64
}

// PrepPollRemove removes the poll request whose user_data is userData.
func (s *SQE) PrepPollRemove(userData uint64) { s.rw(OpPollRemove, -1, userData, 0, 0) }

// PrepOpenat opens path, a NUL-terminated byte string, relative to dirfd
// (unix.AT_FDCWD…); res is the new fd. The kernel adds O_LARGEFILE.
func (s *SQE) PrepOpenat(dirfd int, path *byte, flags int, mode uint32) {
	s.rw(OpOpenat, dirfd, ptrAddr(path), mode, 0)
	s.OpFlags = uint32(flags)
}

// PrepFsync syncs fd (flags: FsyncDatasync).
func (s *SQE) PrepFsync(fd int, flags uint32) {
	s.rw(OpFsync, fd, 0, 0, 0)
	s.OpFlags = flags
}

// PrepStatx is statx(2) of path (NUL-terminated) relative to dirfd, into st.
func (s *SQE) PrepStatx(dirfd int, path *byte, flags int, mask uint32, st *unix.Statx_t) {
	s.rw(OpStatx, dirfd, ptrAddr(path), mask, ptrAddr(st))
	s.OpFlags = uint32(flags)
}

// PrepMsgRing posts a completion with res and userData on the ring whose
// fd is fd (IORING_MSG_DATA, 5.18), waking a loop that waits on it. This
// request's own completion reports whether the post succeeded.
func (s *SQE) PrepMsgRing(fd int, res uint32, userData uint64, flags uint32) {
	s.rw(OpMsgRing, fd, 0, res, userData) // addr 0: IORING_MSG_DATA
	s.OpFlags = flags
}

// PrepRecvMultishot receives repeatedly into buffers the kernel picks from
// the provided-buffer group bufGroup (see BufRing), posting one completion
// per receive with CQEFBuffer and the buffer id (CQE.BufferID), and
// CQEFMore while the request stays armed (6.0). It ends, without
// CQEFMore, on an error, on EOF (res 0), or with -ENOBUFS when the group
// ran out of buffers: recycle, then prepare it again.
func (s *SQE) PrepRecvMultishot(fd int, bufGroup uint16, flags int) {
	s.rw(OpRecv, fd, 0, 0, 0)
	s.OpFlags = uint32(flags)
	s.IoPrio = RecvMultishot
	s.Flags = SQEBufferSelect
	s.BufIndex = bufGroup
}

// Probe is the kernel's list of supported opcodes.
type Probe struct {
	LastOp Op
	ops    [256]bool
}

// Supported reports whether the kernel implements op.
func (p *Probe) Supported(op Op) bool { return p.ops[op] }

// Probe asks the kernel which opcodes it supports (IORING_REGISTER_PROBE,
// 5.6).
func (r *Ring) Probe() (*Probe, error) {
	const nops = 256
	buf := make([]byte, 16+8*nops)
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe, uintptr(unsafe.Pointer(&buf[0])), nops, 0, 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_register(PROBE)", e)
	}
	p := &Probe{LastOp: Op(buf[0])}
	n := int(buf[1])
	for i := 0; i < n; i++ {
		ent := buf[16+8*i:]
		if ent[2]&1 != 0 { // IO_URING_OP_SUPPORTED in the flags field
			p.ops[ent[0]] = true
		}
	}
	return p, nil
}

// Supported reports whether the kernel implements op (probed once).
func (r *Ring) Supported(op Op) bool {
	if r.probe == nil {
		p, err := r.Probe()
		if err != nil {
			return false
		}
		r.probe = p
	}
	return r.probe.Supported(op)
}
