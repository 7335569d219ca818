package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// Contexts derived from a task (context.WithCancel(t), through a
// context.WithValue as tracing code does, context.AfterFunc(t, f), as
// crypto/tls and net/http do) follow the scope they were made in: they are
// cancelled with it, with its error, by the context package itself and
// with no goroutine of their own. (They used to start a goroutine that
// waited on the task's Done channel and then read the task's Err: once the
// task had left the cancelled scope, Err was nil and that goroutine
// panicked with "context: internal error: missing cancel error", taking
// the process down.) A shield keeps the outer cancellation out of the
// contexts made inside it, and once the scope is left the task's context
// is live again.
func TestDerivedContextsFollowScopes(t *testing.T) {
	type key struct{}
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		var direct, wrapped context.Context
		var stops []context.CancelFunc
		defer func() {
			for _, stop := range stops {
				stop()
			}
		}()
		afterRan := make(chan struct{})
		err := asyncio.WithTimeout(task, 5*time.Millisecond, func(t *asyncio.Task) error {
			g := runtime.NumGoroutine()
			for range 100 {
				ctx, stop := context.WithCancel(context.WithValue(t, key{}, 1))
				stops = append(stops, stop)
				wrapped = ctx
			}
			ctx, stop := context.WithCancel(t)
			stops = append(stops, stop)
			direct = ctx
			context.AfterFunc(t, func() { close(afterRan) })
			if n := runtime.NumGoroutine() - g; n > 10 {
				return fmt.Errorf("101 derived contexts started %d goroutines", n)
			}
			if wrapped.Value(key{}) != 1 {
				return errors.New("a derived context lost its value")
			}
			if err := asyncio.Shield(t, func(t *asyncio.Task) error {
				shielded, stop := context.WithCancel(t)
				stops = append(stops, stop)
				if err := t.Sleep(20 * time.Millisecond); err != nil { // the outer deadline fires meanwhile
					return err
				}
				if err := shielded.Err(); err != nil {
					return fmt.Errorf("context made inside a Shield: Err() = %v after the outer deadline, want nil", err)
				}
				return nil
			}); err != nil {
				return err
			}
			for name, ctx := range map[string]context.Context{"direct": direct, "wrapped": wrapped} {
				if err := ctx.Err(); err != context.DeadlineExceeded {
					return fmt.Errorf("%s derived context: Err() = %v, want context.DeadlineExceeded", name, err)
				}
			}
			if err := asyncio.Shield(t, func(t *asyncio.Task) error {
				_, _, err := asyncio.Recv(t, afterRan) // f runs on a goroutine of its own
				return err
			}); err != nil {
				return err
			}
			return t.Checkpoint()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("WithTimeout = %v, want its timeout", err)
		}
		if err := task.Err(); err != nil {
			return fmt.Errorf("after the timed-out scope the task's Err() = %v", err)
		}
		if err := direct.Err(); err != context.DeadlineExceeded {
			return fmt.Errorf("after the scope, the derived context's Err() = %v, want it to stay context.DeadlineExceeded", err)
		}
		ctx, stop := context.WithCancel(task)
		defer stop()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("a context derived after the scope: Err() = %v, want nil", err)
		}
		return nil
	})
}

// A context derived from a task inside a scope ends with the scope, as
// one made with context.WithTimeout ends with its deferred cancel.
func TestDerivedContextEndsWithScope(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		var inner context.Context
		var stop context.CancelFunc
		defer func() { stop() }()
		err := asyncio.WithTimeout(task, time.Hour, func(t *asyncio.Task) error {
			inner, stop = context.WithCancel(t) // not stopped before the scope ends
			if err := inner.Err(); err != nil {
				return fmt.Errorf("inside the scope: %v", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := inner.Err(); err != context.Canceled {
			return fmt.Errorf("after the scope: Err() = %v, want context.Canceled", err)
		}
		return nil
	})
}
