package sched

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Backend is the contract between a Loop and its I/O mechanism. The io_uring
// backend submits each operation as an SQE and reports its CQE; the epoll
// backend tries each operation as a non-blocking syscall and, on EAGAIN,
// waits for readiness and retries. Both give every OpCode the same results,
// but for OpTimeout, which only backends with NativeTimers implement (on
// the others the loop keeps sleeps in its own timer heap).
//
// All methods are called on the loop's thread only.
type Backend interface {
	// Name is "uring" or "epoll".
	Name() string

	// Start begins op (registered in the loop's in-flight table, op.id
	// set). If the operation finished at once, Start sets op.Res and returns
	// true, and no completion will be reported for it. Otherwise the
	// backend owns op until Wait reports its completion.
	Start(op *Op) bool

	// Cancel asks that a started, uncompleted op be cancelled. Its
	// completion is still reported by Wait: with Res = -ECANCELED when the
	// cancellation won, with the real result when the operation finished
	// first.
	Cancel(op *Op)

	// Wait flushes pending submissions and waits until at least one
	// completion is available, the waker fires, or timeout passes
	// (timeout < 0: no limit; 0: do not block). It appends completed ops to
	// dst. Stale completions are dropped.
	Wait(dst []*Op, timeout time.Duration) ([]*Op, error)

	// AsyncSends reports whether a send completes only through Wait (a
	// completion backend), which makes write-behind sends worthwhile (see
	// Task.Send). A backend that tries sends inline returns false.
	AsyncSends() bool

	// NativeTimers reports whether OpTimeout runs as a kernel timer. When
	// false the loop keeps sleeps in its own timer heap.
	NativeTimers() bool

	// CloseFD is told that fd is being closed, after Cancel was called for
	// each of its in-flight operations.
	CloseFD(fd *FD)

	// Close releases the backend's kernel resources.
	Close() error
}

// Backend names accepted by WithBackend and CORIO_BACKEND.
const (
	BackendAuto  = "auto"
	BackendUring = "uring"
	BackendEpoll = "epoll"
)

// EnvBackend is the environment variable that overrides the default backend
// choice ("auto", "uring" or "epoll"). A Run option overrides it in turn.
const EnvBackend = "CORIO_BACKEND"

// ErrBackendUnavailable is returned (wrapped, with the reason) when a
// backend that was asked for explicitly cannot be set up.
var ErrBackendUnavailable = errors.New("corio: backend unavailable")

// newBackend sets up the backend named by choice on the calling thread.
// Choice "" means: CORIO_BACKEND if set, otherwise "auto".
func newBackend(choice string, l *Loop, entries uint32) (Backend, error) {
	if choice == "" {
		choice = os.Getenv(EnvBackend)
	}
	switch choice {
	case "", BackendAuto:
		b, err := newUringBackend(l, entries)
		if err == nil {
			return b, nil
		}
		l.fallbackReason = err
		return newEpollBackend(l)
	case BackendUring:
		b, err := newUringBackend(l, entries)
		if err != nil {
			return nil, fmt.Errorf("%w: uring: %w", ErrBackendUnavailable, err)
		}
		return b, nil
	case BackendEpoll:
		b, err := newEpollBackend(l)
		if err != nil {
			return nil, fmt.Errorf("%w: epoll: %w", ErrBackendUnavailable, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("corio: unknown backend %q (want auto, uring or epoll)", choice)
}
