package asyncio_test

// Edge cases of cancellation and task groups, each on both backends; each
// test failed before its fix (found in a review of the structured-
// concurrency core).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/sched"
)

// A task whose only blocking calls are ToThread sees its cancellation at
// the next one, so a cancelled group can join it. (ToThread did not check
// for a pending cancellation: such a child ran to its end.)
func TestToThreadSeesPendingCancellation(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		iters := 0
		var childErr error
		err := asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			h := g.Spawn(func(t *asyncio.Task) error {
				for i := 0; i < 40; i++ {
					if _, err := asyncio.ToThread(t, func() (int, error) {
						time.Sleep(2 * time.Millisecond)
						return 0, nil
					}); err != nil {
						childErr = err
						return err
					}
					iters++
				}
				return nil
			})
			if err := task.Sleep(5 * time.Millisecond); err != nil {
				return err
			}
			h.Cancel()
			return nil
		})
		if err != nil {
			return err
		}
		// The cancellation arrived after ~2 iterations; at most the
		// iteration in progress may finish, the next ToThread must report it.
		if iters > 6 || childErr == nil {
			return fmt.Errorf("cancelled child kept going: %d ToThread calls completed, child error %v", iters, childErr)
		}
		return nil
	})
}

// ToThread in an already-cancelled scope does not start fn. (It did, and
// returned nil.)
func TestToThreadInCancelledScope(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		ran := false
		err := asyncio.CancelScope(task, func(t *asyncio.Task, s *sched.Scope) error {
			s.Cancel()
			_, err := asyncio.ToThread(t, func() (int, error) { ran = true; return 0, nil })
			if err == nil {
				return errors.New("ToThread in a cancelled scope returned nil")
			}
			return err
		})
		if err != nil || ran {
			return fmt.Errorf("CancelScope = %v, fn ran = %v", err, ran)
		}
		return nil
	})
}

// A scope absorbs a group's MultiError only when every error in it is the
// scope's own cancellation: a real child failure next to one reaches the
// caller. (It was lost.)
func TestCancelScopeKeepsChildFailure(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		boom := errors.New("cleanup failed")
		err := asyncio.CancelScope(task, func(t *asyncio.Task, s *sched.Scope) error {
			return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
				spawnFailingOnCancel(g, boom)
				if err := t.Sleep(time.Millisecond); err != nil {
					return err
				}
				s.Cancel()
				return nil
			})
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("CancelScope returned %v; the child's %q was lost", err, boom)
		}
		return nil
	})
}

// Same with a deadline: SkipAfter returns the failure. (It reported (true,
// nil) and dropped it.)
func TestSkipAfterKeepsChildFailure(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		boom := errors.New("cleanup failed")
		timedOut, err := asyncio.SkipAfter(task, 5*time.Millisecond, func(t *asyncio.Task) error {
			return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
				spawnFailingOnCancel(g, boom)
				return nil
			})
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("SkipAfter = (%v, %v); the child's %q was lost", timedOut, err, boom)
		}
		return nil
	})
}

// And through Handle.Cancel: a child cancelled by its handle that runs a
// nested group whose other member failed for real reports the failure.
// (It was taken for a clean cancellation.)
func TestHandleCancelKeepsNestedFailure(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		boom := errors.New("nested cleanup failed")
		err := asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			h := g.Spawn(func(t *asyncio.Task) error {
				return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
					spawnFailingOnCancel(g, boom)
					return nil
				})
			})
			if err := task.Sleep(time.Millisecond); err != nil {
				return err
			}
			h.Cancel()
			return nil
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("Group = %v; %q was lost", err, boom)
		}
		return nil
	})
}

// spawnFailingOnCancel spawns two children on g that sleep for an hour:
// cancelled, one returns its cancellation, the other fails with boom (a
// real failure while being cancelled, say in its cleanup).
func spawnFailingOnCancel(g *asyncio.TaskGroup, boom error) {
	g.Spawn(func(t *asyncio.Task) error { return t.Sleep(time.Hour) })
	g.Spawn(func(t *asyncio.Task) error {
		if err := t.Sleep(time.Hour); err != nil {
			return boom
		}
		return nil
	})
}

type sliceErr []string

func (e sliceErr) Error() string { return strings.Join(e, "; ") }

// Two children failing with errors of the same uncomparable type (a slice
// error type, like many multi-error helpers) give a MultiError. (Group's
// duplicate check compared them with ==, which panicked on the loop, out of
// every task's reach.)
func TestGroupUncomparableErrors(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			var p any
			var err error
			func() {
				defer func() { p = recover() }()
				err = asyncio.Run(func(task *asyncio.Task) error {
					return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
						g.Spawn(func(t *asyncio.Task) error { return sliceErr{"a"} })
						g.Spawn(func(t *asyncio.Task) error { return sliceErr{"b"} })
						return nil
					})
				}, asyncio.WithBackend(b))
			}()
			if p != nil {
				t.Fatalf("Run panicked: %v", p)
			}
			var se sliceErr
			if !errors.As(err, &se) {
				t.Fatalf("Run = %v", err)
			}
		})
	}
}

var _ = context.Canceled

// A WithContext context that reaches its deadline cancels the main task
// with context.DeadlineExceeded, the context's own reason (it was always
// context.Canceled).
func TestWithContextDeadline(t *testing.T) {
	for _, b := range []string{"uring", "epoll"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := asyncio.Run(func(t *asyncio.Task) error {
			return t.Sleep(time.Minute)
		}, asyncio.WithContext(ctx), asyncio.WithBackend(b))
		cancel()
		if errors.Is(err, asyncio.ErrBackendUnavailable) {
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) || !asyncio.IsCancellation(err) {
			t.Errorf("%s: Run after the context's deadline: %v, want a cancellation satisfying context.DeadlineExceeded", b, err)
		}
	}
}
