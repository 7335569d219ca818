package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// a scope's context took the Run context's values by delegating
// Value to it, and so handed out the Run context's own *cancelCtx to
// context.Cause (which looks it up through Value). Once the Run context
// was done with a cause (signal.NotifyContext gives one), a timeout inside
// a Shield (the usual graceful-shutdown cleanup) had context.Cause(t) ==
// that cause instead of DeadlineExceeded, and so did every context derived
// in it: net/http's client, which returns context.Cause, failed a request
// that timed out with "shutting down", not context.DeadlineExceeded. A
// cancellation that does come from the Run context keeps its cause.
func TestShieldedTimeoutCause(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	shutdown := errors.New("shutting down")
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(shutdown)
			err := asyncio.Run(func(task *asyncio.Task) error {
				if err := task.Sleep(5 * time.Second); !errors.Is(err, context.Canceled) {
					return fmt.Errorf("the Run context is done: Sleep = %v, want the main task cancelled", err)
				}
				if got := context.Cause(task); got != shutdown {
					return fmt.Errorf("context.Cause(main task) = %v, want the Run context's cause", got)
				}
				return asyncio.Shield(task, func(task *asyncio.Task) error {
					var herr, cause error
					werr := asyncio.WithTimeout(task, 30*time.Millisecond, func(t *asyncio.Task) error {
						req, err := http.NewRequestWithContext(t, "GET", srv.URL, nil)
						if err != nil {
							return err
						}
						_, herr = asyncio.ToThread(t, func() (*http.Response, error) { return client.Do(req) })
						cause = context.Cause(t)
						return t.Checkpoint()
					})
					if !errors.Is(werr, context.DeadlineExceeded) {
						return fmt.Errorf("WithTimeout = %v, want its timeout", werr)
					}
					if !errors.Is(cause, context.DeadlineExceeded) {
						return fmt.Errorf("context.Cause(t) in a timed-out scope inside a Shield = %v, want context.DeadlineExceeded", cause)
					}
					if !errors.Is(herr, context.DeadlineExceeded) {
						return fmt.Errorf("http request timed out by WithTimeout inside a Shield: %v, want context.DeadlineExceeded", herr)
					}
					return nil
				})
			}, asyncio.WithBackend(b), asyncio.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Review 4 (needs -race): Scope.Done is documented safe for concurrent use,
// but Scope.context read s.exited (under s.mu) while Scope.exit wrote it on
// the loop's thread before taking s.mu: a data race between a goroutine
// waiting on a scope's Done and the task leaving the scope.
func TestScopeDoneRaceWithExit(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		for range 10 {
			s := task.EnterScope(time.Time{}, false)
			done := make(chan struct{})
			go func() {
				defer close(done)
				<-s.Done() // closed when the scope ends
			}()
			if err := task.Sleep(time.Millisecond); err != nil {
				return err
			}
			task.ExitScope(s)
			if _, _, err := asyncio.Recv(task, done); err != nil {
				return err
			}
		}
		return nil
	})
}
