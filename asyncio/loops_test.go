package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/sched"
	"go.uber.org/goleak"
)

// Two loops listen on the same address (port 0: the second gets the
// first's port), the kernel spreads connections between them, every
// connection is served by the loop that accepted it, and cancelling the
// context ends both loops with no fd or goroutine left behind.
func TestRunLoopsSharePort(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			fds := openFDs(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addrs := make(chan string, 2)
			done := make(chan error, 1)
			go func() {
				done <- asyncio.RunLoops(2, func(task *asyncio.Task) error {
					l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
					if err != nil {
						return err
					}
					defer l.Close()
					addrs <- l.Addr().String()
					return asyncio.Serve(task, l, func(task *asyncio.Task, c *asyncio.Conn) {
						defer c.Close()
						// The loop that serves it, then an echo of one line.
						buf := make([]byte, 64)
						n, err := c.Read(task, buf)
						if err != nil {
							return
						}
						c.Write(task, fmt.Appendf(nil, "%d %s", asyncio.LoopIndex(task), buf[:n]))
					})
				}, asyncio.WithBackend(b), asyncio.WithContext(ctx))
			}()
			a0, a1 := <-addrs, <-addrs
			if a0 != a1 {
				t.Fatalf("the loops listen on %s and %s: want one address", a0, a1)
			}
			served := map[string]int{}
			for i := range 64 {
				c, err := net.Dial("tcp", a0)
				if err != nil {
					t.Fatal(err)
				}
				msg := fmt.Sprintf("hello %d", i)
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(c)
				c.Close()
				if err != nil {
					t.Fatal(err)
				}
				var loop, rest string
				if _, err := fmt.Sscanf(string(got), "%s %s", &loop, &rest); err != nil || string(got) != loop+" "+msg {
					t.Fatalf("connection %d got %q", i, got)
				}
				served[loop]++
			}
			if served["0"] == 0 || served["1"] == 0 || len(served) != 2 {
				t.Errorf("connections served per loop: %v; want both loops used", served)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("RunLoops after cancel = %v, want context.Canceled", err)
			}
			goleak.VerifyNone(t)
			if now := openFDs(t); now != fds {
				t.Errorf("open fds: %d before, %d after", fds, now)
			}
		})
	}
}

// The first loop to fail cancels the others, and RunLoops returns its
// error once all have ended; each loop knows its index.
func TestRunLoopsFailureCancelsOthers(t *testing.T) {
	boom := errors.New("boom")
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			var mu sync.Mutex
			var seen []int
			var cancelled int
			err := asyncio.RunLoops(3, func(task *asyncio.Task) error {
				i := asyncio.LoopIndex(task)
				mu.Lock()
				seen = append(seen, i)
				mu.Unlock()
				if i == 1 {
					task.Sleep(10 * time.Millisecond)
					return boom
				}
				err := task.Sleep(time.Hour)
				if asyncio.IsCancellation(err) {
					mu.Lock()
					cancelled++
					mu.Unlock()
				}
				return err
			}, asyncio.WithBackend(b))
			if err != boom {
				t.Errorf("RunLoops = %v, want exactly the failing loop's error", err)
			}
			slices.Sort(seen)
			if !slices.Equal(seen, []int{0, 1, 2}) || cancelled != 2 {
				t.Errorf("loop indexes %v (want 0 1 2), %d loops cancelled (want 2)", seen, cancelled)
			}
		})
	}
}

// Several failures: an error that unwraps to each.
func TestRunLoopsSeveralFailures(t *testing.T) {
	e0, e1 := errors.New("loop 0 failed"), errors.New("loop 1 failed")
	err := asyncio.RunLoops(2, func(task *asyncio.Task) error {
		// Shielded, so that both fail on their own.
		return asyncio.Shield(task, func(task *asyncio.Task) error {
			task.Sleep(5 * time.Millisecond)
			return []error{e0, e1}[asyncio.LoopIndex(task)]
		})
	})
	if !errors.Is(err, e0) || !errors.Is(err, e1) {
		t.Errorf("RunLoops = %v, want both loops' errors", err)
	}
}

// A loop's panic is re-raised by RunLoops, with the task's stack, after
// the other loops were cancelled and ended.
func TestRunLoopsPanic(t *testing.T) {
	var otherEnded bool
	var pval any
	func() {
		defer func() { pval = recover() }()
		asyncio.RunLoops(2, func(task *asyncio.Task) error {
			if asyncio.LoopIndex(task) == 0 {
				task.Sleep(5 * time.Millisecond)
				panic("loop 0 exploded")
			}
			err := task.Sleep(time.Hour)
			otherEnded = true
			return err
		})
	}()
	pe, ok := pval.(*sched.PanicError)
	if !ok || pe.Value != "loop 0 exploded" || len(pe.Stack) == 0 {
		t.Fatalf("recovered %#v, want the loop's *sched.PanicError", pval)
	}
	if !otherEnded {
		t.Error("RunLoops panicked before the other loop ended")
	}
}

// A loop that deadlocks reports it (and so fails, cancelling the others)
// even though the others could still cancel it.
func TestRunLoopsDeadlock(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		done <- asyncio.RunLoops(2, func(task *asyncio.Task) error {
			if asyncio.LoopIndex(task) == 0 {
				var ev asyncio.Event
				return ev.Wait(task)
			}
			return task.Sleep(time.Hour)
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, asyncio.ErrDeadlock) {
			t.Errorf("RunLoops = %v, want ErrDeadlock", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a deadlocked loop hung RunLoops")
	}
}

// Under Run, LoopIndex is 0 and Listen does not set SO_REUSEPORT: a second
// listener on the same address fails as with net.
func TestListenOutsideRunLoopsIsExclusive(t *testing.T) {
	err := asyncio.Run(func(task *asyncio.Task) error {
		if i := asyncio.LoopIndex(task); i != 0 {
			return fmt.Errorf("LoopIndex = %d under Run", i)
		}
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		l2, err := asyncio.Listen(task, "tcp", l.Addr().String())
		if err == nil {
			l2.Close()
			return errors.New("a second listener on the same address succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
