package sched

import (
	"time"

	"golang.org/x/sys/unix"
)

// OpCode names an operation a task can trap with.
type OpCode uint8

// Operation codes. Each backend implements every one of them (OpTimeout:
// every backend with NativeTimers) with the same result convention: Op.Res >= 0 on success (a byte count, a new fd, or 0),
// -errno on failure.
const (
	OpNop      OpCode = iota // completes at once; a pure trap
	OpRead                   // read(FD, Buf) at Off (Off < 0: current position)
	OpWrite                  // write(FD, Buf) at Off (Off < 0: current position)
	OpRecv                   // recv(FD, Buf, Flags)
	OpSend                   // send(FD, Buf, Flags|MSG_NOSIGNAL)
	OpRecvFrom               // recvmsg(FD) into Buf, peer address into Addr/AddrLen
	OpSendTo                 // sendmsg(FD) of Buf to Addr/AddrLen
	OpAccept                 // accept4(FD) → Res is the new fd; peer in Addr/AddrLen
	OpConnect                // connect(FD, Addr/AddrLen)
	OpTimeout                // completes after Dur (kernel timer); Res 0
	OpFsync                  // fsync(FD)
	OpPollIn                 // wait until FD is readable
	OpPollOut                // wait until FD is writable
	numOps
)

var opNames = [numOps]string{"nop", "read", "write", "recv", "send", "recvfrom",
	"sendto", "accept", "connect", "timeout", "fsync", "poll-in", "poll-out"}

func (c OpCode) String() string {
	if c < numOps {
		return opNames[c]
	}
	return "op?"
}

// Op is an operation record: what a task asks its loop to do, and the result.
// Every task embeds exactly one, so a trap allocates nothing; the record lives
// in the heap-allocated Task, which keeps Buf, the sockaddr and the kernel
// structures below reachable and unmoved until the completion is reaped.
type Op struct {
	// Hot fields first (see Task): what every trap and completion touches
	// fits in two cache lines; the kernel scratch comes last.
	Code      OpCode
	pending   bool   // started and not yet completed
	cancelled bool   // Cancel was requested of the backend
	phase     uint8  // epoll backend: where a connect is (phaseStart...)
	Res       int32  // >= 0 result, or -errno
	ResFlags  uint32 // backend-specific completion flags
	AddrLen   uint32
	FD        *FD
	Buf       []byte
	task      *Task
	id        uint64 // in-flight table key: slot index | generation<<32
	fdPrev    *Op    // FD's list of in-flight ops (for Close)
	fdNext    *Op
	Flags     int
	Off       int64
	cancelErr error // why a cancel was requested; nil if none
	pdNext    *Op   // epoll backend: readiness queue link
	Dur       time.Duration
	Addr      unix.RawSockaddrAny // in for connect/sendto, out for accept/recvfrom

	// Kernel-facing scratch the backends point the kernel at.
	Msg unix.Msghdr
	Iov unix.Iovec
	Ts  unix.Timespec
}

// Op.phase values: the epoll backend's connect runs connect(2), then, if it
// is in progress, reads SO_ERROR once the socket is writable.
const (
	phaseStart      = iota // connect(2) not yet called
	phaseConnecting        // in progress: the outcome is in SO_ERROR
	phaseFinal             // connect(2)'s EAGAIN is the result, not a wait
)

// reset clears the request fields for a new operation, keeping the
// bookkeeping and the kernel scratch (which the backends overwrite).
func (op *Op) reset(code OpCode, fd *FD) {
	op.Code = code
	op.FD = fd
	op.Buf = nil
	op.Off = 0
	op.Flags = 0
	op.Dur = 0
	op.AddrLen = 0
	op.Res = 0
	op.ResFlags = 0
	op.cancelErr = nil
	op.cancelled = false
	op.phase = phaseStart
}

// Sysfd returns the operation's file descriptor, or -1.
func (op *Op) Sysfd() int {
	if op.FD == nil {
		return -1
	}
	return op.FD.Sysfd
}

// Task returns the task that owns op.
func (op *Op) Task() *Task { return op.task }

// opTable maps in-flight operation ids to records. An id is the slot index
// in the low 32 bits and the slot's generation in the high 32 bits, so a
// completion that arrives for a slot that has since been reused (a stale
// id) is recognised and dropped, never misrouted. Ids never have the top bit
// set: backends use such values for their own internal requests.
type opTable struct {
	slots []opSlot
	free  []uint32
	live  int
}

type opSlot struct {
	op  *Op
	gen uint32
}

func (t *opTable) add(op *Op) uint64 {
	var idx uint32
	if n := len(t.free); n > 0 {
		idx = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		idx = uint32(len(t.slots))
		t.slots = append(t.slots, opSlot{})
	}
	s := &t.slots[idx]
	s.gen = (s.gen + 1) & 0x7fffffff
	s.op = op
	t.live++
	op.id = uint64(idx) | uint64(s.gen)<<32
	return op.id
}

// lookup returns the record for id, or nil when id is stale or unknown.
func (t *opTable) lookup(id uint64) *Op {
	idx := uint32(id)
	if int(idx) >= len(t.slots) {
		return nil
	}
	s := &t.slots[idx]
	if s.op == nil || s.gen != uint32(id>>32) {
		return nil
	}
	return s.op
}

func (t *opTable) remove(op *Op) {
	idx := uint32(op.id)
	s := &t.slots[idx]
	if s.op != op {
		return
	}
	s.op = nil
	t.free = append(t.free, idx)
	t.live--
	op.id = 0
}
