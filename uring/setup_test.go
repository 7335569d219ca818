//go:build linux

package uring

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeKernel replaces io_uring_setup for one test: refuse decides, from
// the flags, the errno to fail with (0: ask the real kernel), and features
// masks the features the kernel reports. It returns the flags of every
// call.
func fakeKernel(t *testing.T, refuse func(flags uint32) syscall.Errno, features uint32) *[]uint32 {
	t.Helper()
	real := sysSetup
	t.Cleanup(func() { sysSetup = real })
	var calls []uint32
	sysSetup = func(entries uint32, p *Params) (int, syscall.Errno) {
		calls = append(calls, p.Flags)
		if e := refuse(p.Flags); e != 0 {
			return -1, e
		}
		fd, e := real(entries, p)
		p.Features &= features
		return fd, e
	}
	return &calls
}

// refuseBits plays a kernel that answers EINVAL to any of bits.
func refuseBits(bits uint32) func(uint32) syscall.Errno {
	return func(flags uint32) syscall.Errno {
		if flags&bits != 0 {
			return unix.EINVAL
		}
		return 0
	}
}

func TestSetupSteppingOrder(t *testing.T) {
	const base = SetupCQSize | SetupClamp | SetupSubmitAll
	tests := []struct {
		name      string
		refuse    uint32
		wantFlags uint32
		wantCalls int
	}{
		{"6.6+", 0, base | SetupSingleIssuer | SetupDeferTaskrun | SetupNoSQArray, 1},
		{"6.1", SetupNoSQArray, base | SetupSingleIssuer | SetupDeferTaskrun, 2},
		{"5.19", SetupNoSQArray | SetupSingleIssuer | SetupDeferTaskrun, base | SetupCoopTaskrun | SetupTaskrunFlag, 4},
		{"5.18", SetupNoSQArray | SetupSingleIssuer | SetupDeferTaskrun | SetupCoopTaskrun | SetupTaskrunFlag, base, 6},
		{"5.4", SetupNoSQArray | SetupSingleIssuer | SetupDeferTaskrun | SetupCoopTaskrun | SetupTaskrunFlag | SetupSubmitAll | SetupClamp | SetupCQSize, 0, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := fakeKernel(t, refuseBits(tt.refuse), ^uint32(0))
			r := newTestRing(t, Config{Entries: 8})
			if r.SetupFlags() != tt.wantFlags || len(*calls) != tt.wantCalls {
				t.Fatalf("flags %#x after %d tries %#x, want %#x after %d", r.SetupFlags(), len(*calls), *calls, tt.wantFlags, tt.wantCalls)
			}
			for i, f := range *calls {
				if f != setupTries(Config{})[i] {
					t.Fatalf("try %d used flags %#x, want %#x", i, f, setupTries(Config{})[i])
				}
			}
			// The ring works with whatever flags it got.
			sqe := r.GetSQE()
			sqe.PrepNop()
			sqe.SetUserData(1)
			if c := waitCQE(t, r); c.UserData != 1 || c.Res != 0 {
				t.Fatalf("nop %+v", c)
			}
		})
	}
}

func TestSetupTriesTable(t *testing.T) {
	const base = SetupCQSize | SetupClamp | SetupSubmitAll
	want := []uint32{
		base | SetupSingleIssuer | SetupDeferTaskrun | SetupNoSQArray,
		base | SetupSingleIssuer | SetupDeferTaskrun,
		base | SetupCoopTaskrun | SetupTaskrunFlag | SetupNoSQArray,
		base | SetupCoopTaskrun | SetupTaskrunFlag,
		base | SetupNoSQArray,
		base,
		0,
	}
	got := setupTries(Config{})
	if len(got) != len(want) {
		t.Fatalf("tries %#x, want %#x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("tries %#x, want %#x", got, want)
		}
	}
	if got := setupTries(Config{Flags: SetupCQSize}); len(got) != 1 || got[0] != SetupCQSize {
		t.Fatalf("explicit flags: tries %#x", got)
	}
}

// TestSetupRefusals checks that a refusal stops the stepping at once and
// can be told apart with errors.Is, so a caller can fall back.
func TestSetupRefusals(t *testing.T) {
	tests := []struct {
		errno syscall.Errno
		also  error // a portable sentinel the errno also matches, if any
	}{
		{unix.ENOSYS, errors.ErrUnsupported},
		{unix.EPERM, os.ErrPermission},
		{unix.ENOMEM, nil},
	}
	for _, tt := range tests {
		t.Run(tt.errno.Error(), func(t *testing.T) {
			calls := fakeKernel(t, func(uint32) syscall.Errno { return tt.errno }, ^uint32(0))
			r, err := New(Config{Entries: 8})
			if r != nil || err == nil {
				t.Fatal("New succeeded")
			}
			var se *SetupError
			if !errors.Is(err, tt.errno) || !errors.As(err, &se) || se.Errno != tt.errno {
				t.Fatalf("err = %v (%T), want a *SetupError wrapping %v", err, err, tt.errno)
			}
			if tt.also != nil && !errors.Is(err, tt.also) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.also)
			}
			if len(*calls) != 1 {
				t.Fatalf("%d setup calls, want 1: only EINVAL steps down", len(*calls))
			}
			t.Log(err)
		})
	}
}

func TestSetupErrors(t *testing.T) {
	// DEFER_TASKRUN without SINGLE_ISSUER: always EINVAL, and no stepping
	// down with explicit flags.
	_, err := New(Config{Entries: 4, Flags: SetupDeferTaskrun})
	if refused(err) {
		t.Skipf("io_uring refused: %v", err)
	}
	var se *SetupError
	if !errors.Is(err, unix.EINVAL) || !errors.As(err, &se) || se.Flags != SetupDeferTaskrun {
		t.Fatalf("err = %v, want a *SetupError wrapping EINVAL", err)
	}
}

// TestNewRefusesUnsupportedFlags: flags the binding would not honour are
// refused before the kernel sees them. Accepted, SQPOLL rings never had
// their sleeping SQ thread woken (SQEs stayed queued), and SQE128/CQE32
// rings were indexed with 64- and 16-byte strides, so the kernel ran
// stale SQE slots.
func TestNewRefusesUnsupportedFlags(t *testing.T) {
	for _, f := range []uint32{SetupSQPoll, SetupSQPoll | SetupSQAff, SetupIOPoll, SetupSQE128,
		SetupCQE32 | SetupCQSize, SetupNoMmap, SetupRDisabled, SetupAttachWQ, 1 << 30} {
		r, err := New(Config{Entries: 4, Flags: f})
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("New with flags %#x: err %v, want one wrapping errors.ErrUnsupported", f, err)
		}
	}
}

func TestCQSize(t *testing.T) {
	r := newTestRing(t, Config{Entries: 16})
	if r.SQEntries() != 16 || r.CQEntries() != 4*16 {
		t.Fatalf("default: sq %d cq %d, want 16 and 64", r.SQEntries(), r.CQEntries())
	}
	r2 := newTestRing(t, Config{Entries: 16, CQEntries: 32})
	if r2.CQEntries() != 32 {
		t.Fatalf("cq %d, want 32", r2.CQEntries())
	}
	// The no-flags step cannot ask for a CQ size: the kernel's default
	// is 2×.
	fakeKernel(t, refuseBits(SetupCQSize), ^uint32(0))
	r3 := newTestRing(t, Config{Entries: 16})
	if r3.SetupFlags() != 0 || r3.CQEntries() != 2*16 {
		t.Fatalf("flags %#x cq %d, want 0 and 32", r3.SetupFlags(), r3.CQEntries())
	}
}

// TestClamp asks for more entries than the kernel allows: CLAMP gets the
// largest ring instead of EINVAL (which would also have cost the better
// setup flags).
func TestClamp(t *testing.T) {
	r := newTestRing(t, Config{Entries: 1 << 20})
	if r.SetupFlags()&SetupClamp == 0 || r.SQEntries() == 0 || r.SQEntries() >= 1<<20 {
		t.Fatalf("flags %#x sq %d cq %d", r.SetupFlags(), r.SQEntries(), r.CQEntries())
	}
	t.Logf("sq %d cq %d", r.SQEntries(), r.CQEntries())
}

func TestSingleMmap(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	if r.Features()&FeatSingleMmap == 0 {
		t.Skip("kernel lacks FEAT_SINGLE_MMAP")
	}
	if &r.cqRing[0] != &r.sqRing[0] {
		t.Fatal("FEAT_SINGLE_MMAP offered but the CQ ring has its own mapping")
	}
}

// TestTwoMmaps plays a kernel without FEAT_SINGLE_MMAP (before 5.4): the CQ
// ring gets its own mapping, and the ring still works.
func TestTwoMmaps(t *testing.T) {
	// NO_SQARRAY came (6.6) long after single mmap (5.4): refuse it too.
	fakeKernel(t, refuseBits(SetupNoSQArray), ^uint32(FeatSingleMmap))
	r := newTestRing(t, Config{Entries: 8})
	if r.Features()&FeatSingleMmap != 0 || &r.cqRing[0] == &r.sqRing[0] {
		t.Fatal("one mapping without FEAT_SINGLE_MMAP")
	}
	for i := range 20 { // wraps both rings
		sqe := r.GetSQE()
		sqe.PrepNop()
		sqe.SetUserData(uint64(i))
		if c := waitCQE(t, r); c.UserData != uint64(i) {
			t.Fatalf("nop %d: %+v", i, c)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// fdOpen reports whether fd is open.
func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func TestCloseIdempotent(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	if _, err := r.RegisterBufRing(4, 1); err != nil {
		t.Skipf("no provided-buffer rings: %v", err)
	}
	regErr := r.RegisterRingFd()
	fd := r.Fd()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if fdOpen(fd) {
		t.Fatal("ring fd still open after Close")
	}
	if r.Fd() != -1 || r.sqRing != nil || r.cqRing != nil || r.sqeMem != nil || r.bufRings != nil {
		t.Fatal("Close left mappings behind")
	}
	if regErr == nil && r.RingFdRegistered() {
		t.Fatal("ring fd still registered after Close")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestCloseFreesRegisteredRing checks that Close unregisters the ring fd:
// the registration holds the ring file open, so without it the ring (and
// its locked memory) would live as long as the thread.
func TestCloseFreesRegisteredRing(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	if err := r.RegisterRingFd(); err != nil {
		t.Skipf("kernel lacks registered ring fds: %v", err)
	}
	slot := r.enterFd
	r.Close()
	// The slot is free again: the next registration on this thread gets
	// it back.
	r2 := newTestRing(t, Config{Entries: 8})
	if err := r2.RegisterRingFd(); err != nil {
		t.Fatal(err)
	}
	if r2.enterFd != slot {
		t.Fatalf("slot %d still taken (new ring got %d): Close did not unregister", slot, r2.enterFd)
	}
}

// TestNoExtArg plays a kernel without IORING_FEAT_EXT_ARG (before 5.11):
// timed waits say so instead of passing an argument the kernel would take
// for a signal mask; untimed and zero waits still work.
func TestNoExtArg(t *testing.T) {
	fakeKernel(t, func(uint32) syscall.Errno { return 0 }, ^uint32(FeatExtArg))
	r := newTestRing(t, Config{Entries: 8})
	r.GetSQE().PrepNop()
	if n, err := r.SubmitAndWait(1, 10*time.Millisecond); n != 0 || !errors.Is(err, ErrNoExtArg) {
		t.Fatalf("timed wait: n=%d err=%v, want ErrNoExtArg and nothing submitted", n, err)
	}
	if n, err := r.Submit(); n != 1 || err != nil {
		t.Fatalf("submit after ErrNoExtArg: n=%d err=%v", n, err)
	}
	r.CQAdvance(r.CQReady())
	sqe := r.GetSQE()
	sqe.PrepNop()
	sqe.SetUserData(1)
	if n, err := r.SubmitAndWait(1, -1); n != 1 || err != nil || r.CQReady() != 1 {
		t.Fatalf("untimed wait: n=%d err=%v ready=%d", n, err, r.CQReady())
	}
	if _, err := r.SubmitAndWait(1, 0); err != nil {
		t.Fatalf("zero wait: %v", err)
	}
}
