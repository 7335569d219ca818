package asyncio

import (
	"context"
	"errors"
	"time"

	"github.com/corio-go/corio/sched"
)

// Task is a coroutine run by corio's loop; the first argument of every
// blocking call. It implements context.Context.
type Task = sched.Task

// TaskGroup is a task group: Group returns only after every task spawned on
// it has finished.
type TaskGroup = sched.Group

// Handle refers to a task spawned on a TaskGroup.
type Handle = sched.Handle

// Option configures Run.
type Option func(*sched.Config)

// WithBackend chooses the I/O backend: "auto" (the default: io_uring when
// the kernel allows it, else epoll), "uring" or "epoll". It overrides the
// CORIO_BACKEND environment variable. Forcing "uring" where io_uring is
// refused makes Run fail with an error wrapping ErrBackendUnavailable.
func WithBackend(name string) Option {
	return func(c *sched.Config) { c.Backend = name }
}

// WithSyncWrites makes every Conn.Write wait until the kernel has taken
// its bytes, as on the epoll backend, instead of returning once they are
// queued in the loop's send buffer (io_uring's default; see Conn.Write).
// A failed send is then reported by the Write that made it, at the cost of
// one more loop turn per write.
func WithSyncWrites() Option {
	return func(c *sched.Config) { c.NoWriteBehind = true }
}

// WithContext makes Run cancel the main task when ctx is done (for example
// on SIGINT, with signal.NotifyContext), with ctx's reason
// (context.DeadlineExceeded once its deadline passes, context.Canceled
// otherwise), and makes ctx's values visible through Task.Value and its
// deadline through Task.Deadline (outside a Shield). While ctx
// can still be done, Run does not report a deadlock: ctx may yet wake the
// loop.
func WithContext(ctx context.Context) Option {
	return func(c *sched.Config) { c.Context = ctx }
}

// WithClock replaces the real clock, for tests (see sched.FakeClock).
func WithClock(clock sched.Clock) Option {
	return func(c *sched.Config) { c.Clock = clock }
}

// WithHooks installs scheduling hooks, for tests and tracing.
func WithHooks(h sched.Hooks) Option {
	return func(c *sched.Config) { c.Hooks = h }
}

// WithStallWatchdog reports, through log/slog, any task that runs for
// longer than threshold without reaching a blocking call: while it runs, the
// other tasks of its loop cannot (a blocking Go call such as time.Sleep or a
// channel receive inside a task, or a long computation; use ToThread or Recv
// instead). The CORIO_STALL environment variable ("50ms") does the same
// without code changes.
func WithStallWatchdog(threshold time.Duration) Option {
	return func(c *sched.Config) { c.StallThreshold = threshold }
}

// ErrBackendUnavailable is wrapped by Run's error when the backend that was
// asked for cannot be set up here.
var ErrBackendUnavailable = sched.ErrBackendUnavailable

// ErrDeadlock is wrapped by Run's error when every task is blocked and
// nothing can wake any of them; the message lists each task and what it
// waits on. The same error also wraps the errors and panics the task
// groups had collected before the deadlock (errors.Is and errors.As find
// them). A context given with WithContext counts as something that can
// wake them, until it is done.
var ErrDeadlock = sched.ErrDeadlock

// Run runs main as the root task of a new loop on its own OS thread and
// returns main's error after main and every task it started have finished.
// Run installs nothing global: several Runs may follow each other, or run at
// the same time on different goroutines, each with its own loop. A panic in
// a task is re-raised by Run with the task's stack.
func Run(main func(t *Task) error, opts ...Option) error {
	var cfg sched.Config
	for _, o := range opts {
		o(&cfg)
	}
	return sched.Run(cfg, main)
}

// Backend returns the I/O backend the task's loop runs: "uring" or "epoll".
func Backend(t *Task) string { return t.Loop().BackendName() }

// Group runs body inside a new task group and returns after body and every
// child spawned on the group have finished (giambio's pool, trio's nursery).
// The first error (from body or a child) cancels the rest of the group and
// is returned; when several tasks failed, the returned error unwraps to all
// of them (errors.Is and errors.As see each). A child's panic is re-raised
// in t with the child's stack.
func Group(t *Task, body func(g *TaskGroup) error) error {
	return sched.RunGroup(t, body)
}

// Future is the result of a task started with Go.
type Future[T any] struct {
	h   *Handle
	val T
}

// Go spawns fn on g and returns a Future for its result.
func Go[T any](g *TaskGroup, fn func(t *Task) (T, error)) *Future[T] {
	f := new(Future[T])
	f.h = g.Spawn(func(t *Task) error {
		v, err := fn(t)
		f.val = v
		return err
	})
	return f
}

// Wait waits for the task to finish and returns its result. If the waiting
// task is cancelled first, Wait returns the cancellation error.
func (f *Future[T]) Wait(t *Task) (T, error) {
	if err := f.h.Wait(t); err != nil {
		var zero T
		if f.h.Done() {
			return f.val, err
		}
		return zero, err
	}
	return f.val, nil
}

// Handle returns the future's task handle (to Cancel it).
func (f *Future[T]) Handle() *Handle { return f.h }

// WithTimeout runs fn with a deadline d from now. When the deadline fires,
// every trap in fn fails with a cancellation error, and WithTimeout returns
// an error satisfying errors.Is(err, context.DeadlineExceeded). A
// cancellation coming from an outer scope passes through unchanged, so the
// scope that fired is always the one that reports it.
func WithTimeout(t *Task, d time.Duration, fn func(t *Task) error) error {
	return WithDeadline(t, t.Now().Add(d), fn)
}

// WithDeadline is WithTimeout with an absolute deadline.
func WithDeadline(t *Task, deadline time.Time, fn func(t *Task) error) error {
	s := t.EnterScope(deadline, false)
	err := runIn(t, s, fn)
	if s.Caught(err) {
		return &TimeoutError{}
	}
	return err
}

// TimeoutError is returned by WithTimeout when its own deadline fired. It
// satisfies errors.Is with context.DeadlineExceeded and
// os.ErrDeadlineExceeded.
type TimeoutError struct{}

func (*TimeoutError) Error() string { return "corio: timeout: context deadline exceeded" }

// Is makes the error match both deadline sentinels.
func (*TimeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == errDeadline
}

// Timeout reports true, like net's timeout errors.
func (*TimeoutError) Timeout() bool { return true }

// Temporary reports true, like context.DeadlineExceeded's: with Timeout,
// it makes TimeoutError a net.Error.
func (*TimeoutError) Temporary() bool { return true }

// SkipAfter runs fn with a deadline d from now and, if that deadline fired,
// absorbs the cancellation: timedOut is true and err nil (giambio's
// skip_after, trio's move_on_after). Other errors are returned as they are.
func SkipAfter(t *Task, d time.Duration, fn func(t *Task) error) (timedOut bool, err error) {
	s := t.EnterScope(t.Now().Add(d), false)
	err = runIn(t, s, fn)
	if s.Caught(err) {
		return true, nil
	}
	return false, err
}

// Shield runs fn protected from the cancellation of outer scopes (cleanup
// that must finish, such as a goodbye message). Deadlines set inside fn
// still apply.
func Shield(t *Task, fn func(t *Task) error) error {
	s := t.EnterScope(time.Time{}, true)
	return runIn(t, s, fn)
}

// Scope is a cancel scope, as CancelScope hands it to its fn: Cancel
// cancels every task inside it.
type Scope = sched.Scope

// CancelScope runs fn in a new cancel scope and hands the scope to fn, so
// that fn (or a task it passes the scope to) can Cancel it. Cancelling the
// scope is absorbed: CancelScope then returns nil unless fn failed
// otherwise.
func CancelScope(t *Task, fn func(t *Task, s *Scope) error) error {
	s := t.EnterScope(time.Time{}, false)
	err := runIn(t, s, func(t *Task) error { return fn(t, s) })
	if s.Caught(err) {
		return nil
	}
	return err
}

// runIn runs fn and leaves s even if fn panics.
func runIn(t *Task, s *sched.Scope, fn func(t *Task) error) error {
	defer t.ExitScope(s)
	return fn(t)
}

// IsCancellation reports whether err is a cancellation (context.Canceled or
// context.DeadlineExceeded).
func IsCancellation(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
