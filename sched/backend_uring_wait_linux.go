//go:build linux && !corio_epoll

package sched

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawWaitMax bounds the part of a loop's wait that the Go scheduler does
// not see.
//
// A blocking wait made as a normal syscall costs more than the wait: if it
// lasts longer than one sysmon tick (20 µs and up), sysmon retakes the P and
// hands it to a spinning M, which finds nothing to do and sleeps again, and
// every retake keeps sysmon at its shortest tick; the exit then takes the P
// back. Measured on the echo bench at 1000 connections: sysmon's nanosleeps
// and the futex wake-ups were 5% of the server's CPU, and it made three
// times the context switches of the C server. Under load a loop's waits are
// short, so the io_uring backend begins them as raw enters bounded by
// rawWaitMax: the P stays with the loop and sysmon backs off. Only a wait
// that outlasts the bound continues as a normal syscall, which lets the
// scheduler run other goroutines: with GOMAXPROCS=1 they run up to this much
// later than they would otherwise. (The same start on the epoll backend, a
// raw ppoll on the epoll fd between two epoll_waits, measured no better.)
const rawWaitMax = 500 * time.Microsecond

// rawWaitOK reports whether the loop may hold its P through a raw wait.
// Not while a task waits for a goroutine (WaitExternal: ToThread, Recv):
// that goroutine may need this very P to finish.
func (l *Loop) rawWaitOK() bool { return l.workers == 0 }

// rawWaitBound is the raw part of a wait of timeout (< 0: no limit).
func rawWaitBound(timeout time.Duration) time.Duration {
	if timeout >= 0 && timeout < rawWaitMax {
		return timeout
	}
	return rawWaitMax
}

// io_uring_enter flags and struct io_uring_getevents_arg, for the one enter
// the binding does not offer: a bounded wait without the scheduler hand-off.
const (
	enterGetEvents = 1 << 0
	enterExtArg    = 1 << 3
)

type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32
	ts        uint64
}

// submitAndWait submits the queued SQEs and waits until a completion is
// ready or timeout (< 0: none) passes, starting with a raw wait (see
// rawWaitMax).
func (b *uringBackend) submitAndWait(timeout time.Duration) error {
	if !b.l.rawWaitOK() {
		_, err := b.r.SubmitAndWait(1, timeout)
		return err
	}
	// A raw, non-blocking enter submits (and, with DEFER_TASKRUN, runs the
	// completion work that is ready); under load there is usually a
	// completion by then and no wait at all.
	if _, err := b.r.Submit(); err != nil {
		return err
	}
	if b.r.CQReady() > 0 {
		return nil
	}
	d := rawWaitBound(timeout)
	b.l.stats.Enters++
	b.l.stats.Syscalls++
	// The arg block and timespec live in the backend, on the heap; the
	// kernel copies them during the call.
	b.ts = unix.NsecToTimespec(int64(d))
	b.arg = getEventsArg{ts: uint64(uintptr(unsafe.Pointer(&b.ts)))}
	_, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(b.r.Fd()), 0, 1,
		enterGetEvents|enterExtArg, uintptr(unsafe.Pointer(&b.arg)), unsafe.Sizeof(b.arg))
	switch e {
	case 0, unix.ETIME:
	case unix.EINTR:
		// A signal: perhaps the runtime's preemption request (a stop the
		// world for the GC). Back to the loop, whose next call honours
		// it; the loop simply waits again.
		return nil
	case unix.EBUSY, unix.EAGAIN:
		// CQ overflow pending (before 5.19) or short of memory: the loop
		// reaps, and the next enter flushes the overflow list.
		return nil
	default:
		return os.NewSyscallError("io_uring_enter", e)
	}
	if b.r.CQReady() > 0 || d == timeout {
		return nil
	}
	if timeout > 0 {
		timeout -= d
	}
	b.l.stats.Enters++
	b.l.stats.Syscalls++
	_, err := b.r.SubmitAndWait(1, timeout)
	return err
}
