package asyncio_test

// Tests of Run's context, deadlock reports, teardown and
// host-name resolution. Each ran on both backends and failed before its
// fix.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/sched"
	"go.uber.org/goleak"
)

// Task.Deadline includes the deadline of the WithContext context: a task
// is a context.Context that net/http and database/sql read Deadline from,
// and the context's deadline does cancel the task when it passes. The
// earliest deadline wins; a shield keeps it out, as it keeps out the
// cancellation it brings.
func TestDeadlineIncludesRunContext(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			want, _ := ctx.Deadline()
			check := func(where string, task *asyncio.Task, want time.Time) error {
				got, ok := task.Deadline()
				if ok != !want.IsZero() || !got.Equal(want) {
					return fmt.Errorf("%s: Deadline() = %v, %v; want %v, %v", where, got, ok, want, !want.IsZero())
				}
				return nil
			}
			err := asyncio.Run(func(task *asyncio.Task) error {
				if err := check("main", task, want); err != nil {
					return err
				}
				if err := asyncio.WithTimeout(task, 2*time.Hour, func(task *asyncio.Task) error {
					return check("inside a later WithTimeout", task, want)
				}); err != nil {
					return err
				}
				if err := asyncio.Shield(task, func(task *asyncio.Task) error {
					return check("inside a Shield", task, time.Time{})
				}); err != nil {
					return err
				}
				return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
					g.Spawn(func(task *asyncio.Task) error { return check("group child", task, want) })
					return nil
				})
			}, asyncio.WithBackend(b), asyncio.WithContext(ctx))
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// stuckForever waits, shielded from the group's cancellation, for an event
// nobody sets: once its siblings are done, the loop is deadlocked.
func stuckForever(task *asyncio.Task) error {
	var ev asyncio.Event
	return asyncio.Shield(task, func(task *asyncio.Task) error { return ev.Wait(task) })
}

// A deadlock report keeps the errors the task groups had already
// collected: a child's failure (often the cause of the deadlock: the task
// that should have set the event) must not vanish behind ErrDeadlock.
func TestDeadlockKeepsCollectedError(t *testing.T) {
	boom := errors.New("boom: the setter failed")
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			err := asyncio.Run(func(task *asyncio.Task) error {
				return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
					g.Spawn(func(task *asyncio.Task) error { return boom })
					g.Spawn(stuckForever)
					return nil
				})
			}, asyncio.WithBackend(b))
			if !errors.Is(err, asyncio.ErrDeadlock) || !errors.Is(err, boom) {
				t.Fatalf("Run = %v\nwant an error satisfying both ErrDeadlock and the child's error", err)
			}
		})
	}
}

// The same for a child's panic: it must reach the caller of Run.
func TestDeadlockKeepsCollectedPanic(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			pval, err := runCatching(func() error {
				return asyncio.Run(func(task *asyncio.Task) error {
					return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
						g.Spawn(func(task *asyncio.Task) error { panic("setter exploded") })
						g.Spawn(stuckForever)
						return nil
					})
				}, asyncio.WithBackend(b))
			})
			if !carriesPanic(err, pval, "setter exploded") {
				t.Fatalf("Run = %v (panic %v)\nthe child's panic was lost", err, pval)
			}
		})
	}
}

// A panic raised by the deferred code of a task killed at teardown (after
// a deadlock here) reaches the caller of Run, in its error or as a panic,
// instead of vanishing.
func TestTeardownPanicNotSwallowed(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			pval, err := runCatching(func() error {
				return asyncio.Run(func(task *asyncio.Task) error {
					return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
						g.Spawn(func(task *asyncio.Task) error {
							defer func() { panic("cleanup exploded") }()
							var ev asyncio.Event
							return ev.Wait(task)
						})
						return nil
					})
				}, asyncio.WithBackend(b))
			})
			if !errors.Is(err, asyncio.ErrDeadlock) && pval == nil {
				t.Fatalf("Run = %v, want the deadlock", err)
			}
			if !carriesPanic(err, pval, "cleanup exploded") {
				t.Fatalf("Run = %v (panic %v)\nthe killed task's panic was swallowed", err, pval)
			}
		})
	}
}

// The same for the deferred code of a group's body killed at teardown
// while the group has children: RunGroup took the panic for the group's
// own, then went to the join, where the kill struck again and the panic
// was dropped.
func TestTeardownPanicInGroupBodyNotSwallowed(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			pval, err := runCatching(func() error {
				return asyncio.Run(func(task *asyncio.Task) error {
					return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
						defer func() { panic("body cleanup exploded") }()
						g.Spawn(stuckForever)
						var ev asyncio.Event
						return ev.Wait(task)
					})
				}, asyncio.WithBackend(b))
			})
			if !carriesPanic(err, pval, "body cleanup exploded") {
				t.Fatalf("Run = %v (panic %v)\nthe killed body's panic was swallowed", err, pval)
			}
		})
	}
}

func runCatching(fn func() error) (pval any, err error) {
	defer func() { pval = recover() }()
	return nil, fn()
}

// carriesPanic reports whether Run's error or panic holds a task's panic
// with value v.
func carriesPanic(err error, pval any, v any) bool {
	if pe, ok := pval.(*sched.PanicError); ok && pe.Value == v {
		return true
	}
	var pe *sched.PanicError
	return errors.As(err, &pe) && pe.Value == v
}

// silentDNS points net.DefaultResolver, for the test, at a local UDP
// socket that never answers.
func silentDNS(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	old := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		// DialUDP, not a Dialer: a Dialer reads net.DefaultResolver,
		// which the cleanup below writes.
		c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
		if err == nil {
			// The resolver's read heeds only its deadline (seconds
			// away); end it with the lookup, so that no goroutine or
			// socket outlives the test.
			go func() {
				<-ctx.Done()
				c.Close()
			}()
		}
		return c, err
	}}
	t.Cleanup(func() {
		net.DefaultResolver = old
		pc.Close()
	})
}

// A Dial to a host name whose DNS server never answers, inside WithTimeout,
// fails with the timeout's error like a Dial stuck in connect does: it
// satisfies context.DeadlineExceeded and os.ErrDeadlineExceeded
// (WithTimeout's contract), and SkipAfter absorbs it. (The resolver's own
// *net.DNSError came back instead: not a cancellation of the scope, so
// WithTimeout passed it through, SkipAfter returned it as a failure, and a
// group would report a cancelled child's lookup as a failure.)
func TestDialDNSTimeout(t *testing.T) {
	silentDNS(t)
	n := 0
	host := func() string { n++; return fmt.Sprintf("corio-review-%d.example:80", n) }
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			start := time.Now()
			err := asyncio.Run(func(task *asyncio.Task) error {
				err := asyncio.WithTimeout(task, 50*time.Millisecond, func(task *asyncio.Task) error {
					c, err := asyncio.Dial(task, "tcp", host())
					if err == nil {
						c.Close()
					}
					return err
				})
				if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
					return fmt.Errorf("WithTimeout(Dial) = %#v (%v)\nwant an error satisfying context.DeadlineExceeded and os.ErrDeadlineExceeded", err, err)
				}
				timedOut, err := asyncio.SkipAfter(task, 50*time.Millisecond, func(task *asyncio.Task) error {
					c, err := asyncio.Dial(task, "tcp", host())
					if err == nil {
						c.Close()
					}
					return err
				})
				if !timedOut || err != nil {
					return fmt.Errorf("SkipAfter(Dial) = %v, %v; want true, nil", timedOut, err)
				}
				// A child cancelled during its lookup is no group failure.
				return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
					h := g.Spawn(func(task *asyncio.Task) error {
						c, err := asyncio.Dial(task, "tcp", host())
						if err == nil {
							c.Close()
						}
						return err
					})
					if err := task.Sleep(20 * time.Millisecond); err != nil {
						return err
					}
					h.Cancel()
					return nil
				})
			}, asyncio.WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	// The resolver's goroutines (and their sockets) end a little after
	// the lookups they served were cancelled: wait for them, or the next
	// test counts them as its leaks.
	goleak.VerifyNone(t)
}
