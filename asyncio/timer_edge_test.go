package asyncio_test

// Edge cases of timers, the fake clock and loop teardown; each test failed
// before its fix (found in a review).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/sched"
	"go.uber.org/goleak"
)

// inChild runs the calling test in a child process (so that a hang or a
// leak cannot disturb the rest of the package) and reports whether we are
// that child.
func inChild(t *testing.T, timeout time.Duration) bool {
	t.Helper()
	if os.Getenv("CORIO_TEST_CHILD") == t.Name() {
		time.Sleep(time.Millisecond) // the runtime's own poller fds, before any count
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "CORIO_TEST_CHILD="+t.Name())
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("hung: no result within %v\n%s", timeout, out)
	}
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	return false
}

// A FakeClock without AutoJump: Advance from another goroutine must
// reach a loop that waits for a fake timer.
func TestTimerFakeAdvanceFromGoroutineWakesLoop(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			clk := sched.NewFakeClock(time.Unix(1000, 0))
			clk.AutoJump = false
			ctx, cancel := context.WithCancel(context.Background()) // rescue only
			defer cancel()
			advanced := make(chan struct{})
			defer func() { <-advanced }()
			go func() {
				defer close(advanced)
				time.Sleep(50 * time.Millisecond)
				clk.Advance(2 * time.Hour)
			}()
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				done <- asyncio.Run(func(t *asyncio.Task) error {
					return t.Sleep(time.Hour)
				}, asyncio.WithBackend(b), asyncio.WithClock(clk), asyncio.WithContext(ctx))
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v", err)
				}
			case <-time.After(3 * time.Second):
				cancel()
				<-done
				t.Fatalf("fake Sleep(1h) still asleep %v after Advance(2h) from another goroutine", time.Since(start).Round(time.Millisecond))
			}
		})
	}
}

// AutoJump and a WithTimeout around a socket read that never completes.
func TestTimerFakeTimeoutAroundPendingRead(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			quit, peerDone := make(chan struct{}), make(chan struct{})
			defer func() { ln.Close(); close(quit); <-peerDone }()
			go func() {
				defer close(peerDone)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				select { // rescue: the read completes after 2s of real time
				case <-time.After(2 * time.Second):
					c.Write([]byte("x"))
				case <-quit:
				}
			}()
			clk := sched.NewFakeClock(time.Unix(1000, 0))
			var got error
			start := time.Now()
			err = asyncio.Run(func(t *asyncio.Task) error {
				c, err := asyncio.Dial(t, "tcp", ln.Addr().String())
				if err != nil {
					return err
				}
				defer c.Close()
				got = asyncio.WithTimeout(t, time.Second, func(t *asyncio.Task) error {
					_, err := c.Read(t, make([]byte, 1))
					return err
				})
				return nil
			}, asyncio.WithBackend(b), asyncio.WithClock(clk))
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(got, context.DeadlineExceeded) {
				t.Fatalf("fake-clock WithTimeout(1s) around a read with no data: got %v after %v real time, fake clock now %v (+%v); want a timeout",
					got, time.Since(start).Round(time.Millisecond), clk.Now().UTC(), clk.Now().Sub(time.Unix(1000, 0)))
			}
		})
	}
}

// WithContext: once the context is done, nothing is left that can wake
// the loop; a task blocked for good (shielded) must give ErrDeadlock.
func TestTimerDeadlockAfterContextDone(t *testing.T) {
	if !inChild(t, 5*time.Second) {
		return
	}
	for _, b := range testBackends(t) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var ev asyncio.Event
		err := asyncio.Run(func(t *asyncio.Task) error {
			return asyncio.Shield(t, ev.Wait)
		}, asyncio.WithBackend(b), asyncio.WithContext(ctx))
		if !errors.Is(err, asyncio.ErrDeadlock) {
			t.Fatalf("%s: err = %v", b, err)
		}
	}
}

// Teardown: a task spawned by a killed task's deferred code is killed too
// (its coroutine leaked).
func TestTimerTeardownSpawnLeaksCoroutine(t *testing.T) {
	if !inChild(t, 10*time.Second) {
		return
	}
	for _, b := range testBackends(t) {
		var ev asyncio.Event
		err := asyncio.Run(func(t *asyncio.Task) error {
			return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
				g.Spawn(func(t *asyncio.Task) error {
					defer g.Spawn(func(t *asyncio.Task) error { return nil })
					return ev.Wait(t)
				})
				return nil
			})
		}, asyncio.WithBackend(b))
		if !errors.Is(err, asyncio.ErrDeadlock) {
			t.Fatalf("%s: err = %v", b, err)
		}
		if err := goleak.Find(); err != nil {
			t.Fatalf("%s: goroutine left after Run returned: %v", b, err)
		}
	}
}

// Teardown through a group inside a cancel scope.
func TestTimerTeardownKillThroughGroupInScope(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			var ev asyncio.Event
			var seen any
			err := asyncio.Run(func(t *asyncio.Task) (err error) {
				defer func() {
					r := recover()
					seen = r
					panic(r)
				}()
				return asyncio.Shield(t, func(t *asyncio.Task) error {
					return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
						g.Spawn(ev.Wait)
						return nil
					})
				})
			}, asyncio.WithBackend(b))
			if !errors.Is(err, asyncio.ErrDeadlock) {
				t.Fatalf("err = %v", err)
			}
			if s := fmt.Sprint(seen); strings.Contains(s, "not the task's innermost") {
				t.Fatalf("the kill unwinding main was replaced by a panic: %v", s)
			}
		})
	}
}

// The stall watchdog with a very small threshold does not panic (the
// ticker's interval was zero).
func TestTimerStallWatchdogTinyThreshold(t *testing.T) {
	if !inChild(t, 10*time.Second) {
		return
	}
	err := asyncio.Run(func(t *asyncio.Task) error { return nil },
		asyncio.WithBackend("epoll"), asyncio.WithStallWatchdog(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
}

// runtime.Goexit in a killed task's deferred code during teardown does not
// cut teardown short (fds, the watchdog and coroutines leaked).
func TestTimerTeardownGoexitInKilledTask(t *testing.T) {
	if !inChild(t, 10*time.Second) {
		return
	}
	for _, b := range testBackends(t) {
		fds := openFDs(t)
		var ev asyncio.Event
		err := asyncio.Run(func(t *asyncio.Task) error {
			return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
				g.Spawn(ev.Wait)
				g.Spawn(func(t *asyncio.Task) error {
					defer func() {
						if t.Cancellation() == nil {
							runtime.Goexit() // e.g. t.FailNow in a deferred check
						}
					}()
					return ev.Wait(t)
				})
				g.Spawn(ev.Wait)
				return nil
			})
		}, asyncio.WithBackend(b), asyncio.WithStallWatchdog(time.Hour))
		t.Logf("%s: Run = %v", b, err)
		time.Sleep(20 * time.Millisecond)
		if after := openFDs(t); after != fds {
			t.Errorf("%s: fd leak: %d open before, %d after", b, fds, after)
		}
		if err := goleak.Find(); err != nil {
			t.Errorf("%s: goroutines left after Run returned: %v", b, err)
		}
	}
}
