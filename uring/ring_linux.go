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
// Linux 6.12 (the build machine's linux-libc-dev ships the 6.1 header; the
// names added later, FeatRegRegRing (6.3), SetupNoSQArray (6.6),
// FeatRecvsendBundle (6.10) and FeatMinTimeout with the wait argument's
// min_wait_usec (6.12), were checked against the kernel sources). Every value is fixed ABI: the kernel
// only ever adds names, so a newer kernel accepts all of them.

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
	FeatRecvsendBundle = 1 << 14
	FeatMinTimeout     = 1 << 15 // min_wait_usec in the wait argument (6.12)
)

// io_uring_enter flags.
const (
	enterGetEvents      = 1 << 0
	enterExtArg         = 1 << 3
	enterRegisteredRing = 1 << 4
)

// SQ ring flags.
const (
	sqCQOverflow = 1 << 1
	sqTaskrun    = 1 << 2
)

// Register opcodes (IORING_REGISTER_*).
const (
	registerProbe     = 8
	registerRingFds   = 20
	unregisterRingFds = 21
	registerPbufRing  = 22
	unregisterPbuf    = 23
)

// Config sets up a Ring.
type Config struct {
	// Entries is the submission queue size; the kernel rounds it up to a
	// power of two. 0 means 256.
	Entries uint32
	// CQEntries is the completion queue size (IORING_SETUP_CQSIZE). 0
	// means 4 × Entries; the kernel requires at least Entries.
	CQEntries uint32
	// Flags, when non-zero, are exactly the setup flags to use, with no
	// stepping down (add SetupCQSize for CQEntries to apply).
	Flags uint32
}

// SetupError reports why io_uring_setup failed. It unwraps to the errno, so
// errors.Is(err, unix.EPERM) (or os.ErrPermission), errors.Is(err,
// unix.ENOSYS) (or errors.ErrUnsupported) and errors.Is(err, unix.ENOMEM)
// let a caller decide to fall back to another backend:
//
//   - ENOSYS: the kernel has no io_uring (older than 5.1, or built without it);
//   - EPERM: refused by a seccomp profile (Docker's default one) or by the
//     kernel.io_uring_disabled sysctl (6.6+);
//   - ENOMEM: the locked-memory limit (RLIMIT_MEMLOCK, kernels before 5.12)
//     or the memory cgroup; a smaller ring may fit;
//   - EINVAL: setup flags or sizes this kernel does not know.
type SetupError struct {
	Flags uint32
	Errno syscall.Errno
}

func (e *SetupError) Error() string {
	hint := ""
	switch e.Errno {
	case unix.ENOSYS:
		hint = ": kernel without io_uring"
	case unix.EPERM, unix.EACCES:
		hint = ": io_uring refused (seccomp profile or kernel.io_uring_disabled)"
	case unix.ENOMEM:
		hint = ": locked-memory limit (RLIMIT_MEMLOCK) or memory cgroup"
	case unix.EINVAL:
		hint = ": flags or sizes unknown to this kernel"
	}
	return fmt.Sprintf("io_uring_setup (flags %#x): %v%s", e.Flags, e.Errno, hint)
}

// Unwrap returns the errno.
func (e *SetupError) Unwrap() error { return e.Errno }

// ErrCQEDropped is returned by SubmitAndWait when the kernel reports
// (EBADR) that it had to drop completions: the completion queue overflowed
// and even the overflow list could not grow (an allocation failure; with
// IORING_FEAT_NODROP nothing else drops a completion). The requests whose
// completions were lost will never report; the caller cannot recover them
// and should fail loudly. The kernel reports this once. It unwraps to
// unix.EBADR.
var ErrCQEDropped error = &os.SyscallError{Syscall: "io_uring_enter: completions dropped", Err: unix.EBADR}

// ErrNoExtArg is returned by SubmitAndWait when a timed wait is asked of a
// kernel without IORING_FEAT_EXT_ARG (before 5.11).
var ErrNoExtArg = errors.New("uring: timed wait needs IORING_FEAT_EXT_ARG (Linux 5.11)")

// ErrNoMinTimeout is returned by SubmitAndWaitMin when the kernel lacks
// IORING_FEAT_MIN_TIMEOUT (Linux 6.12).
var ErrNoMinTimeout = errors.New("uring: batch wait needs IORING_FEAT_MIN_TIMEOUT (Linux 6.12)")

// Ring is an io_uring instance. See the package documentation for the rules
// of ownership.
type Ring struct {
	fd         int
	enterFd    int
	enterFlags uint32
	regTid     int // thread that registered the ring fd (per-thread table)
	params     Params
	flags      uint32

	sqRing []byte
	cqRing []byte // aliases sqRing with FeatSingleMmap
	sqeMem []byte

	sqHead     *uint32
	sqTail     *uint32
	sqFlags    *uint32
	sqMask     uint32
	sqArray    []uint32
	sqes       []SQE
	sqeTail    uint32 // next SQE to hand out (local; published on submit)
	sqHeadSeen uint32 // the kernel's SQ head when last loaded
	splitMiss  uint8  // combined waits left before the next optimistic submit (SubmitAndWait)
	enters     uint64 // io_uring_enter calls made (Enters)

	cqHead     *uint32
	cqTail     *uint32
	cqOverflow *uint32
	cqMask     uint32
	cqes       []CQE

	probe    *Probe
	bufRings []*BufRing // unmapped by Close

	arg getEventsArg
	ts  unix.Timespec
}

// flagSteps are the setup flags New tries, best first; each is tried with
// NO_SQARRAY (6.6) first. CQSIZE (5.5), CLAMP (5.6: sizes beyond the
// kernel's maximum are clamped rather than refused) and SUBMIT_ALL (5.18)
// go with all of them; a last try with no flags at all serves kernels older
// than 5.5.
var flagSteps = [...]uint32{
	SetupSingleIssuer | SetupDeferTaskrun, // 6.1: completions run only when we enter
	SetupCoopTaskrun | SetupTaskrunFlag,   // 5.19: no IPI per completion
	0,
}

// setupTries returns the setup flags New tries, in order.
func setupTries(cfg Config) []uint32 {
	if cfg.Flags != 0 {
		return []uint32{cfg.Flags}
	}
	const base = SetupCQSize | SetupClamp | SetupSubmitAll
	tries := make([]uint32, 0, 2*len(flagSteps)+1)
	for _, f := range flagSteps {
		tries = append(tries, base|f|SetupNoSQArray, base|f)
	}
	return append(tries, 0)
}

// supportedFlags are the setup flags this binding honours. The others need
// what it does not do: a polling SQ thread to wake (SQPOLL), 128-byte SQEs
// or 32-byte CQEs (SQE128, CQE32), completions reaped by polling (IOPOLL),
// caller-provided ring memory (NO_MMAP, REGISTERED_FD_ONLY), a disabled
// ring to enable (R_DISABLED) or fields Config lacks (ATTACH_WQ, SQ_AFF).
const supportedFlags = SetupCQSize | SetupClamp | SetupSubmitAll | SetupCoopTaskrun |
	SetupTaskrunFlag | SetupSingleIssuer | SetupDeferTaskrun | SetupNoSQArray

// sysSetup is io_uring_setup(2); tests replace it to play an older kernel.
var sysSetup = func(entries uint32, p *Params) (int, syscall.Errno) {
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	return int(fd), e
}

// New sets up a ring. Unless cfg.Flags is set, it tries
// SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN|TASKRUN_FLAG, then no
// flags, stepping down whenever the kernel answers EINVAL (each with
// CQSIZE, CLAMP, SUBMIT_ALL and NO_SQARRAY where accepted). Any other error is
// returned at once as a *SetupError (see there for what each errno means).
//
// With SINGLE_ISSUER only the thread that called New may submit: lock it
// with runtime.LockOSThread first, and keep it locked while the ring lives.
// Flags the binding does not honour (SQPOLL, IOPOLL, SQE128, CQE32, NO_MMAP,
// R_DISABLED, ATTACH_WQ, SQ_AFF, REGISTERED_FD_ONLY) are refused with an
// error wrapping errors.ErrUnsupported.
func New(cfg Config) (*Ring, error) {
	if bad := cfg.Flags &^ supportedFlags; bad != 0 {
		return nil, fmt.Errorf("uring: setup flags %#x are not supported by this binding: %w", bad, errors.ErrUnsupported)
	}
	if cfg.Entries == 0 {
		cfg.Entries = 256
	}
	if cfg.CQEntries == 0 {
		cfg.CQEntries = 4 * cfg.Entries
	}
	var err error
	for _, flags := range setupTries(cfg) {
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
	fd, e := sysSetup(cfg.Entries, &r.params)
	if e != 0 {
		return nil, &SetupError{Flags: flags, Errno: e}
	}
	r.fd = fd
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
	// FEAT_SINGLE_MMAP (5.4): the SQ and CQ rings share one mapping, sized
	// for the larger; older kernels need a second mmap at offCQRing.
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
	r.cqOverflow = (*uint32)(unsafe.Add(cq, p.CQOff.Overflow))
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.CQOff.RingMask))
	r.cqes = unsafe.Slice((*CQE)(unsafe.Add(cq, p.CQOff.CQEs)), p.CQEntries)
	r.sqeTail = *r.sqTail
	r.sqHeadSeen = *r.sqHead
	return nil
}

// Close unregisters the ring fd (see RegisterRingFd), unmaps the rings and
// any provided-buffer rings still registered, and closes the ring fd.
// Close is idempotent.
//
// The kernel cancels what is still in flight, but Close does not wait for
// that: memory of requests still in flight may be written by the kernel
// after Close returns. To reuse it safely, cancel the requests and reap
// their completions before Close.
func (r *Ring) Close() error {
	if r.enterFlags&enterRegisteredRing != 0 {
		// The registration holds a reference to the ring file in the
		// registering thread's table: without unregistering, closing the
		// fd would not free the ring until that thread exits. The table is
		// per thread, so only that thread can unregister; on another one
		// the same slot could name a different ring.
		if unix.Gettid() == r.regTid {
			upd := rsrcUpdate{offset: uint32(r.enterFd)}
			unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), unregisterRingFds, uintptr(unsafe.Pointer(&upd)), 1, 0, 0)
		}
		r.enterFlags &^= enterRegisteredRing
		r.enterFd = r.fd
	}
	for _, br := range r.bufRings {
		br.unmap()
	}
	r.bufRings = nil
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
	r.sqHead, r.sqTail, r.sqFlags, r.cqHead, r.cqTail, r.cqOverflow = nil, nil, nil, nil, nil, nil
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd, r.enterFd = -1, -1
	return err
}

// Fd returns the ring's file descriptor (-1 after Close).
func (r *Ring) Fd() int { return r.fd }

// Features returns the IORING_FEAT_* flags the kernel reported.
func (r *Ring) Features() uint32 { return r.params.Features }

// SetupFlags returns the setup flags in effect.
func (r *Ring) SetupFlags() uint32 { return r.flags }

// SQEntries returns the submission queue size.
func (r *Ring) SQEntries() uint32 { return r.params.SQEntries }

// CQEntries returns the completion queue size.
func (r *Ring) CQEntries() uint32 { return r.params.CQEntries }

// rsrcUpdate is struct io_uring_rsrc_update.
type rsrcUpdate struct {
	offset uint32
	resv   uint32
	data   uint64
}

// RegisterRingFd registers the ring fd with the kernel's per-thread table
// of rings (IORING_REGISTER_RING_FDS, 5.18), so every enter skips the fd
// table lookup. The table belongs to the calling thread: the goroutine must
// stay locked to it (runtime.LockOSThread) for every later Submit,
// SubmitAndWait and Close, or the enters fail with EBADF.
func (r *Ring) RegisterRingFd() error {
	if r.enterFlags&enterRegisteredRing != 0 {
		return nil
	}
	// offset ^0: let the kernel pick a free slot and report it.
	upd := rsrcUpdate{offset: ^uint32(0), data: uint64(r.fd)}
	n, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerRingFds, uintptr(unsafe.Pointer(&upd)), 1, 0, 0)
	if e != 0 {
		return os.NewSyscallError("io_uring_register(RING_FDS)", e)
	}
	if n != 1 {
		return errors.New("io_uring_register(RING_FDS): not registered")
	}
	r.enterFd = int(upd.offset)
	r.enterFlags |= enterRegisteredRing
	r.regTid = unix.Gettid()
	return nil
}

// RingFdRegistered reports whether enters use the registered ring fd.
func (r *Ring) RingFdRegistered() bool { return r.enterFlags&enterRegisteredRing != 0 }

// GetSQE returns the next free SQE, or nil when the submission queue is
// full (submit, then try again). The SQE holds whatever an earlier request
// left there: call one Prep method first (each resets the whole SQE), then
// SetUserData and SetFlags/AddFlags. The SQE is published to the kernel by
// the next Submit or SubmitAndWait.
func (r *Ring) GetSQE() *SQE {
	if r.sqeTail-r.sqHeadSeen > r.sqMask { // full as far as we know (sqMask is entries-1)
		// Acquire: the kernel stores the head (with release) once it has
		// copied the SQEs before it; only then may we overwrite those
		// slots. Reloaded only when the cached head says full: the head
		// only grows, so a stale one errs on the safe side.
		r.sqHeadSeen = atomic.LoadUint32(r.sqHead)
		if r.sqeTail-r.sqHeadSeen > r.sqMask {
			return nil
		}
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	r.sqeTail++
	return sqe
}

// SQReady returns the number of SQEs prepared and not yet consumed by the
// kernel.
func (r *Ring) SQReady() uint32 {
	// Acquire: pairs with the kernel's release of the head (see GetSQE).
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

// flush publishes the prepared SQEs and returns how many the kernel has not
// consumed yet.
func (r *Ring) flush() uint32 {
	tail := *r.sqTail // only this goroutine writes the tail: a plain load
	if r.sqArray != nil {
		for ; tail != r.sqeTail; tail++ {
			r.sqArray[tail&r.sqMask] = tail & r.sqMask
		}
	}
	// Release: the SQE contents (and array entries) must be visible to the
	// kernel before the tail that hands them over. Without SQPOLL (which
	// New refuses) the kernel reads them only inside our own
	// io_uring_enter, which orders them anyway; the store costs one locked
	// instruction per batch, not per SQE.
	atomic.StoreUint32(r.sqTail, r.sqeTail)
	return r.SQReady()
}

// needsGetEvents reports whether a non-waiting enter must ask for events.
func (r *Ring) needsGetEvents() bool {
	// With DEFER_TASKRUN completions are posted only when the submitter
	// enters with GETEVENTS; with TASKRUN_FLAG the kernel sets
	// IORING_SQ_TASKRUN when task work is pending; IORING_SQ_CQ_OVERFLOW
	// says completions wait on the overflow list (FEAT_NODROP), and only a
	// GETEVENTS enter moves them into the CQ.
	if r.flags&SetupDeferTaskrun != 0 {
		return true
	}
	// Relaxed would do (the flags are hints, re-read on every call); an
	// atomic load keeps the race detector's view of shared memory honest.
	return atomic.LoadUint32(r.sqFlags)&(sqTaskrun|sqCQOverflow) != 0
}

// Submit hands the prepared SQEs to the kernel without waiting (and, where
// the ring defers completion work to the submitter or completions wait on
// the overflow list, lets the kernel post them). It returns the number of
// SQEs consumed. EINTR is retried. When the kernel refuses new work because
// the CQ is full (EBUSY, kernels before 5.19) or it is short of memory
// (EAGAIN), Submit returns what was consumed and a nil error: the SQEs stay
// queued, and the caller reaps, then submits again.
func (r *Ring) Submit() (int, error) {
	n := r.flush()
	var flags uint32
	if r.needsGetEvents() {
		flags = enterGetEvents
	}
	if n == 0 && flags == 0 {
		return 0, nil
	}
	return r.enterNoWait(n, flags)
}

// Enters returns how many io_uring_enter calls the ring has made: Submit
// and SubmitAndWait make zero, one or several (a signal's retry, an
// optimistic submit followed by a wait), so callers that count syscalls
// read this instead of counting their own calls.
func (r *Ring) Enters() uint64 { return r.enters }

// enterNoWait is an io_uring_enter that never blocks (min_complete 0).
func (r *Ring) enterNoWait(n, flags uint32) (int, error) {
	for {
		// Raw syscall: this enter never blocks, so the scheduler
		// hand-off of a normal syscall would only add cost.
		r.enters++
		ret, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(n), 0,
			uintptr(flags|r.enterFlags), 0, 0)
		switch e {
		case 0:
			return int(ret), nil
		case unix.EINTR:
			// Nothing was consumed (the kernel reports an error only when
			// it submitted nothing); retry with what is still queued.
			n = r.SQReady()
			continue
		case unix.EBUSY, unix.EAGAIN:
			return 0, nil
		case unix.EBADR:
			return 0, ErrCQEDropped
		}
		return 0, os.NewSyscallError("io_uring_enter", e)
	}
}

// SplitSubmit is the batch size from which SubmitAndWait always submits
// with a non-blocking enter of its own before it waits. A blocking enter is
// a normal Go syscall: the scheduler marks the P as in a syscall
// (entersyscall/exitsyscall cost tens of nanoseconds), and when the enter
// lasts longer than the runtime monitor's tick (20µs or more, about what a
// few hundred small requests take to submit) the monitor hands the P to
// another thread: a hand-off and context switches that cost more than the
// enter itself. A non-blocking enter is a raw syscall and keeps the P; a
// batch often posts the completions being waited for while it is submitted
// (requests that complete inline, such as a recv with data already queued,
// and the completions the DEFER_TASKRUN work run then posts), so no second
// enter is needed.
const SplitSubmit = 32

// splitBackoff is how many waits after a failed optimistic submit (one
// that needed a second, blocking enter) go back to one combined enter.
// While the waits keep blocking, at most one in splitBackoff+1 pays for an
// extra non-blocking enter, before it sleeps anyway.
const splitBackoff = 8

// SubmitAndWait hands the prepared SQEs to the kernel and waits, in the same
// io_uring_enter, until at least waitNr completions are ready to reap or
// timeout passes (timeout < 0: no limit; timeout 0: do not wait, like
// Submit). The timeout uses IORING_ENTER_EXT_ARG (5.11; ErrNoExtArg before),
// so no timeout SQE is spent. It returns the number of SQEs consumed; an
// expired timeout is not an error. waitNr is capped at the CQ's size.
//
// The wait may end with fewer than waitNr completions ready (but at least
// one): a fired timeout SQE ends every wait in the kernel, and so does a
// signal once completions are ready; as liburing does, SubmitAndWait then
// returns, and a caller that needs more reaps and waits again. A signal
// (the Go runtime's preemption, the profiler) that interrupts a wait with
// nothing ready is retried without submitting anything twice, with what is
// left of the timeout. When the CQ is full and the kernel cannot flush its
// overflow list (EBUSY, kernels before 5.19), or it is short of memory
// (EAGAIN), it returns at once without error: the caller reaps and calls
// again. When the kernel reports dropped completions (EBADR) it returns
// ErrCQEDropped.
//
// SubmitAndWait is optimistic: a batch of at least SplitSubmit SQEs, a wait
// that completions already in the ring satisfy, and any submission while
// recent ones posted their completions at once go first through a
// non-blocking enter (see SplitSubmit); a blocking enter follows only if
// that did not post enough completions. Otherwise one enter submits and
// waits.
func (r *Ring) SubmitAndWait(waitNr uint32, timeout time.Duration) (int, error) {
	return r.SubmitAndWaitMin(waitNr, 0, timeout)
}

// batchTimeout is the overall timeout SubmitAndWaitMin gives the kernel when
// the caller asked for none: with no overall timeout, the kernel ends the
// wait when minWait expires even if nothing completed. When it expires the
// wait just returns, like an expired timeout.
const batchTimeout = time.Hour

// SubmitAndWaitMin is SubmitAndWait with a batch wait (IORING_FEAT_MIN_TIMEOUT,
// 6.12; ErrNoMinTimeout before): it waits until waitNr completions are
// ready, or, once minWait has passed, until at least one is, or until
// timeout passes. A caller that expects many completions can so ask for a
// batch without delaying a lone completion by more than minWait. A minWait
// of 0, or one not shorter than timeout, is SubmitAndWait.
func (r *Ring) SubmitAndWaitMin(waitNr uint32, minWait, timeout time.Duration) (int, error) {
	// The kernel caps a wait at the CQ's size (and returns once the CQ is
	// full): asking for more would never be satisfied.
	waitNr = min(waitNr, r.params.CQEntries)
	if (timeout > 0 && minWait >= timeout) || waitNr <= 1 {
		minWait = 0
	}
	if timeout != 0 && waitNr > 0 {
		// Before the SQ tail is published: an error submits nothing.
		if minWait > 0 && r.params.Features&FeatMinTimeout == 0 {
			return 0, ErrNoMinTimeout
		}
		if timeout > 0 && r.params.Features&FeatExtArg == 0 {
			return 0, ErrNoExtArg
		}
	}
	n := r.flush()
	if timeout == 0 || waitNr == 0 {
		return r.enterNoWait(n, enterGetEvents)
	}
	submitted := 0
	if n >= SplitSubmit || r.CQReady() >= waitNr || (n > 0 && r.splitMiss == 0) {
		k, err := r.enterNoWait(n, enterGetEvents)
		if err != nil || uint32(k) != n {
			return k, err
		}
		if r.CQReady() >= waitNr {
			r.splitMiss = 0 // completions come at once: stay optimistic
			return k, nil
		}
		// The completions are not there yet: wait for them below, and
		// submit the next few small batches with the wait.
		r.splitMiss = splitBackoff
		submitted, n = k, 0
	} else if r.splitMiss > 0 {
		r.splitMiss--
	}
	flags := uint32(enterGetEvents) | r.enterFlags
	var argp unsafe.Pointer
	argsz := uintptr(0)
	var start, deadline time.Time
	if timeout > 0 || minWait > 0 {
		start = time.Now()
		if timeout > 0 {
			deadline = start.Add(timeout)
		}
		kt := timeout
		if kt < 0 {
			kt = batchTimeout
		}
		// The timespec and the arg block live in the Ring, on the heap,
		// never on this goroutine's (movable) stack; the kernel copies
		// them during the enter.
		r.ts = unix.NsecToTimespec(int64(kt))
		r.arg = getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&r.ts))), minWait: usec(minWait)}
		argp = unsafe.Pointer(&r.arg)
		argsz = unsafe.Sizeof(r.arg)
		flags |= enterExtArg
	}
	for {
		// Normal syscall: this enter may block, and the Go scheduler must
		// be able to hand our P to other goroutines meanwhile.
		r.enters++
		ret, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(n), uintptr(waitNr),
			uintptr(flags), uintptr(argp), argsz)
		switch e {
		case 0:
			submitted += int(ret)
			if r.CQReady() > 0 || (n > 0 && uint32(ret) != n) {
				// The wait is over: waitNr completions are ready, or
				// fewer because the kernel ended the wait early (a fired
				// timeout SQE ends every wait; so does minWait, and a
				// signal when completions are ready, and the return
				// value does not say which); or the kernel stopped
				// submitting early (and then skipped the wait). Like
				// liburing, return with what is ready.
				return submitted, nil
			}
			// Nothing is ready: the kernel submitted and then waited,
			// and a submit count hides the wait's outcome (EINTR and
			// ETIME are dropped), or a pure wait returned success with
			// nothing (seen once under heavy load on 6.18,
			// DEFER_TASKRUN). Wait again, submitting nothing, with what
			// is left of the timeout.
			n = 0
		case unix.ETIME:
			if timeout < 0 && r.CQReady() == 0 {
				// batchTimeout (or the minimum wait on a kernel that
				// ends it early) expired with nothing ready: the caller
				// asked to wait for ever.
				n = 0
				break
			}
			return submitted, nil
		case unix.EINTR:
			// Nothing was submitted by this call; whatever is still
			// queued goes with the retry.
			n = r.SQReady()
			if ready := r.CQReady(); ready >= waitNr || (minWait > 0 && ready > 0) {
				return submitted, nil
			}
		case unix.EBUSY, unix.EAGAIN:
			return submitted, nil
		case unix.EBADR:
			return submitted, ErrCQEDropped
		default:
			return submitted, os.NewSyscallError("io_uring_enter", e)
		}
		if minWait > 0 {
			// The kernel measures minWait from each enter: the retry
			// gets what is left of it, and once it has passed, one
			// completion is enough.
			if rest := minWait - time.Since(start); rest > 0 {
				r.arg.minWait = usec(rest)
			} else {
				r.arg.minWait, minWait, waitNr = 0, 0, 1
			}
		}
		if timeout > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				if n == 0 {
					return submitted, nil
				}
				k, err := r.enterNoWait(n, enterGetEvents)
				return submitted + k, err
			}
			r.ts = unix.NsecToTimespec(int64(left))
			if time.Duration(r.arg.minWait)*time.Microsecond >= left {
				// The kernel would sleep out minWait past the deadline
				// (it arms the overall timer only when minWait ends).
				r.arg.minWait = 0
			}
		}
	}
}

// usec converts d to whole microseconds for min_wait_usec, rounding up.
func usec(d time.Duration) uint32 {
	return uint32(min((d+time.Microsecond-1)/time.Microsecond, 1<<31))
}

// CQReady returns the number of completions ready to reap. Completions on
// the kernel's overflow list are not counted until an enter with GETEVENTS
// (Submit, SubmitAndWait) moves them into the ring.
func (r *Ring) CQReady() uint32 {
	// Acquire: pairs with the kernel's release of the CQ tail. The head is
	// ours: a plain load.
	return atomic.LoadUint32(r.cqTail) - *r.cqHead
}

// CQOverflowPending reports whether completions wait on the kernel's
// overflow list (IORING_SQ_CQ_OVERFLOW) because the CQ was full. They are
// not lost (IORING_FEAT_NODROP): reap, then Submit or SubmitAndWait to have
// them moved into the ring.
func (r *Ring) CQOverflowPending() bool {
	// A hint re-read on every call: the atomic load keeps the race
	// detector's view of shared memory honest; no ordering is needed.
	return atomic.LoadUint32(r.sqFlags)&sqCQOverflow != 0
}

// Reap copies up to len(dst) ready completions into dst, marks them
// consumed, and returns how many it copied.
func (r *Ring) Reap(dst []CQE) int {
	head := *r.cqHead // only this goroutine writes the head: a plain load
	// Acquire: the CQEs up to tail are fully written before the kernel
	// releases the tail.
	tail := atomic.LoadUint32(r.cqTail)
	n := min(int(tail-head), len(dst))
	for i := range dst[:n] {
		dst[i] = r.cqes[head&r.cqMask]
		head++
	}
	if n > 0 {
		// Release: our reads of those CQE slots must be done before the
		// kernel sees the head move and reuses them.
		atomic.StoreUint32(r.cqHead, head)
	}
	return n
}

// PeekCQE returns the next ready completion without consuming it. The CQE
// is the ring's own slot: read it before CQAdvance.
func (r *Ring) PeekCQE() (*CQE, bool) {
	head := *r.cqHead // ours: a plain load
	// Acquire: the CQE at head is fully written before the kernel
	// releases a tail beyond it.
	if head == atomic.LoadUint32(r.cqTail) {
		return nil, false
	}
	return &r.cqes[head&r.cqMask], true
}

// PeekCQEs returns every ready completion without consuming or copying
// them, as at most two slices of the ring itself: the second is non-empty
// only when the ready run wraps around the end of the ring. The slices are
// valid until CQAdvance(uint32(len(first)+len(second))) (or less) hands
// the slots back to the kernel.
func (r *Ring) PeekCQEs() (first, second []CQE) {
	head := *r.cqHead // ours: a plain load
	// Acquire: the CQEs up to tail are fully written before the kernel
	// releases the tail.
	n := atomic.LoadUint32(r.cqTail) - head
	if n == 0 {
		return nil, nil
	}
	i := head & r.cqMask
	if end := i + n; end <= uint32(len(r.cqes)) {
		return r.cqes[i:end], nil
	}
	return r.cqes[i:], r.cqes[:i+n-uint32(len(r.cqes))]
}

// CQAdvance marks n completions consumed, handing their slots back to the
// kernel.
func (r *Ring) CQAdvance(n uint32) {
	// Release: our reads of the n slots must be done before the kernel
	// sees the head move and reuses them.
	atomic.StoreUint32(r.cqHead, *r.cqHead+n)
}
