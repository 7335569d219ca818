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

// SetUserData sets the opaque value the completion carries back.
func (s *SQE) SetUserData(u uint64) { s.UserData = u }

// SetFlags sets the IOSQE_* flags.
func (s *SQE) SetFlags(f uint8) { s.Flags = f }

func bufAddr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

func (s *SQE) rw(op Op, fd int, addr uint64, n uint32, off uint64) {
	s.Opcode = uint8(op)
	s.Fd = int32(fd)
	s.Addr = addr
	s.Len = n
	s.Off = off
}

// PrepNop prepares a no-op.
func (s *SQE) PrepNop() { s.Opcode = uint8(OpNop) }

// PrepRead reads into buf from fd at off (^uint64(0): the file position).
func (s *SQE) PrepRead(fd int, buf []byte, off uint64) {
	s.rw(OpRead, fd, bufAddr(buf), uint32(len(buf)), off)
}

// PrepWrite writes buf to fd at off (^uint64(0): the file position).
func (s *SQE) PrepWrite(fd int, buf []byte, off uint64) {
	s.rw(OpWrite, fd, bufAddr(buf), uint32(len(buf)), off)
}

// PrepReadv reads into iovs at off.
func (s *SQE) PrepReadv(fd int, iovs []unix.Iovec, off uint64) {
	s.rw(OpReadv, fd, uint64(uintptr(unsafe.Pointer(unsafe.SliceData(iovs)))), uint32(len(iovs)), off)
}

// PrepWritev writes iovs at off.
func (s *SQE) PrepWritev(fd int, iovs []unix.Iovec, off uint64) {
	s.rw(OpWritev, fd, uint64(uintptr(unsafe.Pointer(unsafe.SliceData(iovs)))), uint32(len(iovs)), off)
}

// PrepRecv receives into buf.
func (s *SQE) PrepRecv(fd int, buf []byte, flags int) {
	s.rw(OpRecv, fd, bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = uint32(flags)
}

// PrepSend sends buf.
func (s *SQE) PrepSend(fd int, buf []byte, flags int) {
	s.rw(OpSend, fd, bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = uint32(flags)
}

// PrepRecvmsg receives a message described by msg.
func (s *SQE) PrepRecvmsg(fd int, msg *unix.Msghdr, flags int) {
	s.rw(OpRecvmsg, fd, uint64(uintptr(unsafe.Pointer(msg))), 1, 0)
	s.OpFlags = uint32(flags)
}

// PrepSendmsg sends the message described by msg.
func (s *SQE) PrepSendmsg(fd int, msg *unix.Msghdr, flags int) {
	s.rw(OpSendmsg, fd, uint64(uintptr(unsafe.Pointer(msg))), 1, 0)
	s.OpFlags = uint32(flags)
}

// PrepAccept accepts a connection; the peer address goes to addr/addrlen
// (both may be nil). flags are accept4 flags (SOCK_CLOEXEC…).
func (s *SQE) PrepAccept(fd int, addr *unix.RawSockaddrAny, addrlen *uint32, flags int) {
	s.rw(OpAccept, fd, uint64(uintptr(unsafe.Pointer(addr))), 0, uint64(uintptr(unsafe.Pointer(addrlen))))
	s.OpFlags = uint32(flags)
}

// PrepMultishotAccept is PrepAccept posting one completion per connection
// (CQEFMore set while it stays armed; 5.19).
func (s *SQE) PrepMultishotAccept(fd int, addr *unix.RawSockaddrAny, addrlen *uint32, flags int) {
	s.PrepAccept(fd, addr, addrlen, flags)
	s.IoPrio |= AcceptMultishot
}

// PrepConnect connects fd to addr.
func (s *SQE) PrepConnect(fd int, addr *unix.RawSockaddrAny, addrlen uint32) {
	s.rw(OpConnect, fd, uint64(uintptr(unsafe.Pointer(addr))), 0, uint64(addrlen))
}

// PrepClose closes fd.
func (s *SQE) PrepClose(fd int) { s.rw(OpClose, fd, 0, 0, 0) }

// PrepShutdown shuts down a socket (unix.SHUT_*).
func (s *SQE) PrepShutdown(fd int, how int) { s.rw(OpShutdown, fd, 0, uint32(how), 0) }

// PrepTimeout completes after ts (res -ETIME), or after count other
// completions (res 0) when count > 0.
func (s *SQE) PrepTimeout(ts *unix.Timespec, count uint32, flags uint32) {
	s.rw(OpTimeout, -1, uint64(uintptr(unsafe.Pointer(ts))), 1, uint64(count))
	s.OpFlags = flags
}

// PrepTimeoutRemove removes the timeout whose user_data is userData.
func (s *SQE) PrepTimeoutRemove(userData uint64, flags uint32) {
	s.rw(OpTimeoutRemove, -1, userData, 0, 0)
	s.OpFlags = flags
}

// PrepLinkTimeout bounds the previous, IOSQE_IO_LINK-ed request by ts.
func (s *SQE) PrepLinkTimeout(ts *unix.Timespec, flags uint32) {
	s.rw(OpLinkTimeout, -1, uint64(uintptr(unsafe.Pointer(ts))), 1, 0)
	s.OpFlags = flags
}

// PrepCancel cancels the request whose user_data is userData.
func (s *SQE) PrepCancel(userData uint64, flags int) {
	s.rw(OpAsyncCancel, -1, userData, 0, 0)
	s.OpFlags = uint32(flags)
}

// PrepCancelFd cancels requests on fd (AsyncCancelFd is added; add
// AsyncCancelAll to cancel all of them).
func (s *SQE) PrepCancelFd(fd int, flags uint32) {
	s.rw(OpAsyncCancel, fd, 0, 0, 0)
	s.OpFlags = flags | AsyncCancelFd
}

// PrepPollAdd waits for poll events on fd.
func (s *SQE) PrepPollAdd(fd int, events uint32) {
	s.rw(OpPollAdd, fd, 0, 0, 0)
	s.OpFlags = events
}

// PrepPollRemove removes the poll request whose user_data is userData.
func (s *SQE) PrepPollRemove(userData uint64) { s.rw(OpPollRemove, -1, userData, 0, 0) }

// PrepOpenat opens path (a NUL-terminated byte string) relative to dirfd.
func (s *SQE) PrepOpenat(dirfd int, path *byte, flags int, mode uint32) {
	s.rw(OpOpenat, dirfd, uint64(uintptr(unsafe.Pointer(path))), mode, 0)
	s.OpFlags = uint32(flags)
}

// PrepFsync syncs fd (flags: IORING_FSYNC_DATASYNC = 1).
func (s *SQE) PrepFsync(fd int, flags uint32) {
	s.rw(OpFsync, fd, 0, 0, 0)
	s.OpFlags = flags
}

// PrepStatx is statx(2) of path relative to dirfd into st.
func (s *SQE) PrepStatx(dirfd int, path *byte, flags int, mask uint32, st *unix.Statx_t) {
	s.rw(OpStatx, dirfd, uint64(uintptr(unsafe.Pointer(path))), mask, uint64(uintptr(unsafe.Pointer(st))))
	s.OpFlags = uint32(flags)
}

// PrepMsgRing posts a completion (res, userData) on the ring whose fd is fd.
func (s *SQE) PrepMsgRing(fd int, res uint32, userData uint64, flags uint32) {
	s.rw(OpMsgRing, fd, 0, res, userData)
	s.OpFlags = flags
}

// PrepRecvMultishot receives repeatedly into buffers picked from the
// provided-buffer group bufGroup, one completion per receive.
func (s *SQE) PrepRecvMultishot(fd int, bufGroup uint16, flags int) {
	s.rw(OpRecv, fd, 0, 0, 0)
	s.OpFlags = uint32(flags)
	s.IoPrio |= RecvMultishot
	s.Flags |= SQEBufferSelect
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
