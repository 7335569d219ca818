//go:build linux

package uring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Structures and constants follow include/uapi/linux/io_uring.h as of
// Linux 6.8.

// Params is struct io_uring_params.
type Params struct {
	SQEntries    uint32
	CQEntries    uint32
	Flags        uint32
	SQThreadCPU  uint32
	SQThreadIdle uint32
	Features     uint32
	WQFd         uint32
	resv         [3]uint32
	SQOff        SQRingOffsets
	CQOff        CQRingOffsets
}

// SQRingOffsets is struct io_sqring_offsets.
type SQRingOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, resv1 uint32
	UserAddr                                                        uint64
}

// CQRingOffsets is struct io_cqring_offsets.
type CQRingOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, CQEs, Flags, resv1 uint32
	UserAddr                                                        uint64
}

// getEventsArg is struct io_uring_getevents_arg.
type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32
	ts        uint64
}

// mmap offsets.
const (
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000
)

// Setup flags (IORING_SETUP_*).
const (
	SetupIOPoll       = 1 << 0
	SetupSQPoll       = 1 << 1
	SetupSQAff        = 1 << 2
	SetupCQSize       = 1 << 3
	SetupClamp        = 1 << 4
	SetupAttachWQ     = 1 << 5
	SetupRDisabled    = 1 << 6
	SetupSubmitAll    = 1 << 7
	SetupCoopTaskrun  = 1 << 8
	SetupTaskrunFlag  = 1 << 9
	SetupSQE128       = 1 << 10
	SetupCQE32        = 1 << 11
	SetupSingleIssuer = 1 << 12
	SetupDeferTaskrun = 1 << 13
	SetupNoMmap       = 1 << 14
	SetupRegisteredFd = 1 << 15
	SetupNoSQArray    = 1 << 16
)

// Feature flags (IORING_FEAT_*).
const (
	FeatSingleMmap     = 1 << 0
	FeatNodrop         = 1 << 1
	FeatSubmitStable   = 1 << 2
	FeatRWCurPos       = 1 << 3
	FeatCurPersonality = 1 << 4
	FeatFastPoll       = 1 << 5
	FeatPoll32Bits     = 1 << 6
	FeatSQPollNonfixed = 1 << 7
	FeatExtArg         = 1 << 8
	FeatNativeWorkers  = 1 << 9
	FeatRsrcTags       = 1 << 10
	FeatCQESkip        = 1 << 11
	FeatLinkedFile     = 1 << 12
	FeatRegRegRing     = 1 << 13
)

// io_uring_enter flags.
const (
	enterGetEvents      = 1 << 0
	enterExtArg         = 1 << 3
	enterRegisteredRing = 1 << 4
)

// SQ ring flags.
const (
	sqNeedWakeup = 1 << 0
	sqCQOverflow = 1 << 1
	sqTaskrun    = 1 << 2
)

// Register opcodes.
const (
	registerProbe    = 8
	registerRingFds  = 20
	registerPbufRing = 22
	unregisterPbuf   = 23
)

// Config sets up a Ring.
type Config struct {
	Entries   uint32 // SQ entries; the kernel rounds up to a power of two
	CQEntries uint32 // 0: 4 × Entries
	Flags     uint32 // non-zero: exactly these setup flags, no stepping down
}

// SetupError reports why io_uring_setup failed. It unwraps to the errno:
// ENOSYS (no io_uring in this kernel), EPERM (seccomp, as in Docker's default
// profile, or kernel.io_uring_disabled), ENOMEM (memlock limit on kernels
// before 5.12, or the memory cgroup), EINVAL (flags this kernel lacks).
type SetupError struct {
	Flags uint32
	Errno syscall.Errno
}

func (e *SetupError) Error() string {
	return fmt.Sprintf("io_uring_setup (flags %#x): %v", e.Flags, e.Errno)
}

// Unwrap returns the errno.
func (e *SetupError) Unwrap() error { return e.Errno }

// Ring is an io_uring instance. See the package documentation for the rules
// of ownership.
type Ring struct {
	fd         int
	enterFd    int
	enterFlags uint32
	params     Params
	flags      uint32

	sqRing []byte
	cqRing []byte // aliases sqRing with FeatSingleMmap
	sqeMem []byte

	sqHead  *uint32
	sqTail  *uint32
	sqFlags *uint32
	sqMask  uint32
	sqArray []uint32
	sqes    []SQE
	sqeTail uint32 // next SQE to hand out (local; published on submit)

	cqHead *uint32
	cqTail *uint32
	cqMask uint32
	cqes   []CQE

	probe *Probe

	arg getEventsArg
	ts  unix.Timespec
}

// New sets up a ring. Unless cfg.Flags is set, it tries
// SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN|TASKRUN_FLAG, then no
// flags, stepping down on EINVAL (each with CQSIZE, SUBMIT_ALL and
// NO_SQARRAY where accepted). With SINGLE_ISSUER only the thread that
// called New may submit: lock it with runtime.LockOSThread first.
func New(cfg Config) (*Ring, error) {
	if cfg.Entries == 0 {
		cfg.Entries = 256
	}
	if cfg.CQEntries == 0 {
		cfg.CQEntries = 4 * cfg.Entries
	}
	var tries []uint32
	if cfg.Flags != 0 {
		tries = []uint32{cfg.Flags}
	} else {
		base := uint32(SetupCQSize | SetupSubmitAll)
		for _, f := range []uint32{
			SetupSingleIssuer | SetupDeferTaskrun,
			SetupCoopTaskrun | SetupTaskrunFlag,
			0,
		} {
			tries = append(tries, base|f|SetupNoSQArray, base|f)
		}
		tries = append(tries, 0)
	}
	var err error
	for _, flags := range tries {
		var r *Ring
		r, err = setup(cfg, flags)
		if err == nil {
			return r, nil
		}
		var se *SetupError
		if !errors.As(err, &se) || se.Errno != unix.EINVAL {
			return nil, err
		}
	}
	return nil, err
}

func setup(cfg Config, flags uint32) (*Ring, error) {
	r := &Ring{fd: -1}
	r.params.Flags = flags
	if flags&SetupCQSize != 0 {
		r.params.CQEntries = cfg.CQEntries
	}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(cfg.Entries), uintptr(unsafe.Pointer(&r.params)), 0)
	if e != 0 {
		return nil, &SetupError{Flags: flags, Errno: e}
	}
	r.fd = int(fd)
	r.enterFd = r.fd
	r.flags = flags
	if err := r.mmap(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Ring) mmap() error {
	p := &r.params
	sqSize := p.SQOff.Array + p.SQEntries*4
	if p.Flags&SetupNoSQArray != 0 {
		// No index array (6.6+, which always has FeatSingleMmap): the one
		// mapping is sized by the CQ ring below.
		sqSize = 0
	}
	cqSize := p.CQOff.CQEs + p.CQEntries*uint32(unsafe.Sizeof(CQE{}))
	single := p.Features&FeatSingleMmap != 0
	if single && cqSize > sqSize {
		sqSize = cqSize
	}
	var err error
	r.sqRing, err = unix.Mmap(r.fd, offSQRing, int(sqSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap sq ring", err)
	}
	if single {
		r.cqRing = r.sqRing
	} else {
		r.cqRing, err = unix.Mmap(r.fd, offCQRing, int(cqSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return os.NewSyscallError("mmap cq ring", err)
		}
	}
	r.sqeMem, err = unix.Mmap(r.fd, offSQEs, int(p.SQEntries)*int(unsafe.Sizeof(SQE{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap sqes", err)
	}
	sq := unsafe.Pointer(&r.sqRing[0])
	r.sqHead = (*uint32)(unsafe.Add(sq, p.SQOff.Head))
	r.sqTail = (*uint32)(unsafe.Add(sq, p.SQOff.Tail))
	r.sqFlags = (*uint32)(unsafe.Add(sq, p.SQOff.Flags))
	r.sqMask = *(*uint32)(unsafe.Add(sq, p.SQOff.RingMask))
	if p.Flags&SetupNoSQArray == 0 {
		r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(sq, p.SQOff.Array)), p.SQEntries)
	}
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMem[0])), p.SQEntries)
	cq := unsafe.Pointer(&r.cqRing[0])
	r.cqHead = (*uint32)(unsafe.Add(cq, p.CQOff.Head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.CQOff.Tail))
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.CQOff.RingMask))
	r.cqes = unsafe.Slice((*CQE)(unsafe.Add(cq, p.CQOff.CQEs)), p.CQEntries)
	r.sqeTail = *r.sqTail
	return nil
}

// Close unmaps the rings and closes the ring fd. The kernel cancels what is
// still in flight. Close is idempotent.
func (r *Ring) Close() error {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.cqRing != nil && len(r.sqRing) > 0 && &r.cqRing[0] != &r.sqRing[0] {
		unix.Munmap(r.cqRing)
	}
	r.cqRing = nil
	if r.sqRing != nil {
		unix.Munmap(r.sqRing)
		r.sqRing = nil
	}
	r.sqes, r.cqes, r.sqArray = nil, nil, nil
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// Fd returns the ring's file descriptor.
func (r *Ring) Fd() int { return r.fd }

// Features returns the IORING_FEAT_* flags the kernel reported.
func (r *Ring) Features() uint32 { return r.params.Features }

// SetupFlags returns the setup flags in effect.
func (r *Ring) SetupFlags() uint32 { return r.flags }

// SQEntries returns the submission queue size.
func (r *Ring) SQEntries() uint32 { return r.params.SQEntries }

// CQEntries returns the completion queue size.
func (r *Ring) CQEntries() uint32 { return r.params.CQEntries }

// RegisterRingFd registers the ring fd with itself, so every enter skips the
// fd table lookup (IORING_REGISTER_RING_FDS, 5.18).
func (r *Ring) RegisterRingFd() error {
	upd := struct {
		offset uint32
		resv   uint32
		data   uint64
	}{offset: ^uint32(0), data: uint64(r.fd)}
	n, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerRingFds, uintptr(unsafe.Pointer(&upd)), 1, 0, 0)
	if e != 0 {
		return os.NewSyscallError("io_uring_register(RING_FDS)", e)
	}
	if n != 1 {
		return errors.New("io_uring_register(RING_FDS): not registered")
	}
	r.enterFd = int(upd.offset)
	r.enterFlags |= enterRegisteredRing
	return nil
}

// GetSQE returns the next free SQE, zeroed, or nil when the submission
// queue is full (submit, then try again). The SQE is published to the
// kernel by the next Submit or SubmitAndWait.
func (r *Ring) GetSQE() *SQE {
	// Acquire: the kernel's head store releases the SQE slots it consumed.
	head := atomic.LoadUint32(r.sqHead)
	if r.sqeTail-head >= uint32(len(r.sqes)) {
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	r.sqeTail++
	*sqe = SQE{}
	return sqe
}

// SQReady returns the number of SQEs prepared and not yet consumed by the
// kernel.
func (r *Ring) SQReady() uint32 { return r.sqeTail - atomic.LoadUint32(r.sqHead) }

// flush publishes the prepared SQEs and returns how many the kernel has not
// consumed yet.
func (r *Ring) flush() uint32 {
	tail := *r.sqTail // only this goroutine writes the tail
	if r.sqArray != nil {
		for ; tail != r.sqeTail; tail++ {
			r.sqArray[tail&r.sqMask] = tail & r.sqMask
		}
	}
	// Release: the SQE contents (and array entries) must be visible to the
	// kernel before the tail that hands them over.
	atomic.StoreUint32(r.sqTail, r.sqeTail)
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

// needEnter reports whether a non-waiting enter has anything to do.
func (r *Ring) needsGetEvents() bool {
	// With DEFER_TASKRUN completions are posted only when the submitter
	// enters with GETEVENTS; with TASKRUN_FLAG the kernel says when task
	// work is pending; overflowed CQEs are flushed by GETEVENTS too.
	if r.flags&SetupDeferTaskrun != 0 {
		return true
	}
	return atomic.LoadUint32(r.sqFlags)&(sqTaskrun|sqCQOverflow) != 0
}

// Submit hands the prepared SQEs to the kernel without waiting (and, where
// the ring defers completion work to the submitter, lets the kernel post the
// completions that are ready). It returns the number of SQEs consumed.
func (r *Ring) Submit() (int, error) {
	n := r.flush()
	var flags uint32
	if r.needsGetEvents() {
		flags = enterGetEvents
	}
	if n == 0 && flags == 0 {
		return 0, nil
	}
	for {
		// Raw syscall: this enter never blocks, so the scheduler
		// hand-off of a normal syscall would only add cost.
		ret, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(n), 0,
			uintptr(flags|r.enterFlags), 0, 0)
		switch e {
		case 0:
			return int(ret), nil
		case unix.EINTR:
			n = r.SQReady()
			continue
		case unix.EBUSY, unix.EBADR, unix.EAGAIN:
			// The CQ is full and overflow is pending (EBUSY/EBADR) or the
			// kernel is short of memory (EAGAIN): the caller reaps, then
			// submits again. No completion is lost (FEAT_NODROP).
			return 0, nil
		}
		return 0, os.NewSyscallError("io_uring_enter", e)
	}
}

// SubmitAndWait hands the prepared SQEs to the kernel and waits, in the same
// io_uring_enter, until waitNr completions are ready or timeout passes
// (timeout < 0: no limit). A timeout that expires is not an error. EINTR
// (the profiler's signals) is retried without submitting anything twice.
// EBUSY/EBADR (completion overflow pending) return at once without error:
// the caller reaps and calls again.
func (r *Ring) SubmitAndWait(waitNr uint32, timeout time.Duration) (int, error) {
	n := r.flush()
	flags := uint32(enterGetEvents) | r.enterFlags
	var argp unsafe.Pointer
	argsz := uintptr(0)
	if timeout >= 0 {
		// The timespec and the arg block live in the Ring, on the heap,
		// never on this goroutine's (movable) stack.
		r.ts = unix.NsecToTimespec(int64(timeout))
		r.arg = getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.ts)))}
		argp = unsafe.Pointer(&r.arg)
		argsz = unsafe.Sizeof(r.arg)
		flags |= enterExtArg
	}
	submitted := 0
	for {
		// Normal syscall: this enter may block, and the Go scheduler must
		// be able to hand our P to other goroutines meanwhile.
		ret, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(n), uintptr(waitNr),
			uintptr(flags), uintptr(argp), argsz)
		switch e {
		case 0:
			return submitted + int(ret), nil
		case unix.ETIME:
			return submitted, nil
		case unix.EINTR:
			n = r.SQReady()
			if r.CQReady() > 0 {
				return submitted, nil
			}
			continue
		case unix.EBUSY, unix.EBADR, unix.EAGAIN:
			return submitted, nil
		}
		return submitted, os.NewSyscallError("io_uring_enter", e)
	}
}

// CQReady returns the number of completions ready to reap.
func (r *Ring) CQReady() uint32 {
	// Acquire: pairs with the kernel's release of the CQ tail.
	return atomic.LoadUint32(r.cqTail) - *r.cqHead
}

// Reap copies up to len(dst) ready completions into dst, marks them
// consumed, and returns how many it copied.
func (r *Ring) Reap(dst []CQE) int {
	head := *r.cqHead // only this goroutine writes the head
	// Acquire: the CQEs up to tail are fully written before the kernel
	// releases the tail.
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for ; head != tail && n < len(dst); head++ {
		dst[n] = r.cqes[head&r.cqMask]
		n++
	}
	if n > 0 {
		// Release: we are done reading those CQE slots before the kernel
		// may reuse them.
		atomic.StoreUint32(r.cqHead, head)
	}
	return n
}

// PeekCQE returns the next ready completion without consuming it.
func (r *Ring) PeekCQE() (*CQE, bool) {
	head := *r.cqHead
	if head == atomic.LoadUint32(r.cqTail) {
		return nil, false
	}
	return &r.cqes[head&r.cqMask], true
}

// CQAdvance marks n completions consumed.
func (r *Ring) CQAdvance(n uint32) {
	// Release: see Reap.
	atomic.StoreUint32(r.cqHead, *r.cqHead+n)
}
