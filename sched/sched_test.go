package sched

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backends lists the backends to run each test on: every one that can be
// set up here. The epoll backend always can on Linux.
func backends(t testing.TB) []string {
	names := []string{BackendEpoll}
	if UringCompiledIn {
		err := Run(Config{Backend: BackendUring}, func(*Task) error { return nil })
		if err == nil {
			names = append(names, BackendUring)
		} else {
			t.Logf("io_uring unavailable here, testing epoll only: %v", err)
		}
	}
	return names
}

// eachBackend runs fn as the root task once per available backend.
func eachBackend(t *testing.T, fn func(t *testing.T, task *Task) error) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			err := Run(Config{Backend: name}, func(task *Task) error {
				if got := task.Loop().BackendName(); got != name {
					return fmt.Errorf("backend = %q, want %q", got, name)
				}
				return fn(t, task)
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func fakeRun(t *testing.T, fn func(task *Task) error) error {
	t.Helper()
	clk := NewFakeClock(time.Unix(1000, 0))
	return Run(Config{Backend: BackendEpoll, Clock: clk}, fn)
}

func TestRunReturnsMainError(t *testing.T) {
	want := errors.New("boom")
	if err := Run(Config{}, func(*Task) error { return want }); err != want {
		t.Fatalf("Run = %v, want %v", err, want)
	}
	// A second Run in the same process works.
	if err := Run(Config{}, func(*Task) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownBackend(t *testing.T) {
	err := Run(Config{Backend: "kqueue"}, func(*Task) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunQueueFIFOAndFairness(t *testing.T) {
	eachBackend(t, func(t *testing.T, task *Task) error {
		var order []string
		err := RunGroup(task, func(g *Group) error {
			for i := range 3 {
				g.Spawn(func(t *Task) error {
					for round := range 3 {
						order = append(order, fmt.Sprintf("%d.%d", i, round))
						if err := t.Checkpoint(); err != nil {
							return err
						}
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		want := "0.0 1.0 2.0 0.1 1.1 2.1 0.2 1.2 2.2"
		if got := strings.Join(order, " "); got != want {
			return fmt.Errorf("order = %s, want %s", got, want)
		}
		return nil
	})
}

func TestThousandsOfTasks(t *testing.T) {
	eachBackend(t, func(t *testing.T, task *Task) error {
		const n = 5000
		sum := 0
		err := RunGroup(task, func(g *Group) error {
			for i := range n {
				g.Spawn(func(t *Task) error {
					if err := t.Sleep(time.Millisecond); err != nil {
						return err
					}
					sum += i
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if want := n * (n - 1) / 2; sum != want {
			return fmt.Errorf("sum = %d, want %d", sum, want)
		}
		return nil
	})
}

func TestNestedGroupsJoinEveryChild(t *testing.T) {
	eachBackend(t, func(t *testing.T, task *Task) error {
		finished := 0
		err := RunGroup(task, func(g *Group) error {
			for range 3 {
				g.Spawn(func(t *Task) error {
					return RunGroup(t, func(g2 *Group) error {
						for j := range 3 {
							g2.Spawn(func(t *Task) error {
								if err := t.Sleep(time.Duration(j+1) * time.Millisecond); err != nil {
									return err
								}
								finished++
								return nil
							})
						}
						return nil
					})
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if finished != 9 {
			return fmt.Errorf("finished = %d, want 9 (group returned before its children)", finished)
		}
		return nil
	})
}

func TestFirstErrorCancelsSiblings(t *testing.T) {
	eachBackend(t, func(t *testing.T, task *Task) error {
		boom := errors.New("boom")
		var siblingErr error
		start := time.Now()
		err := RunGroup(task, func(g *Group) error {
			g.Spawn(func(t *Task) error {
				siblingErr = t.Sleep(time.Hour)
				return siblingErr
			})
			g.Spawn(func(t *Task) error {
				if err := t.Sleep(time.Millisecond); err != nil {
					return err
				}
				return boom
			})
			return nil
		})
		if err != boom {
			return fmt.Errorf("group err = %v, want boom", err)
		}
		if !errors.Is(siblingErr, context.Canceled) {
			return fmt.Errorf("sibling got %v, want context.Canceled", siblingErr)
		}
		if d := time.Since(start); d > 30*time.Second {
			return fmt.Errorf("group took %v: sibling not cancelled", d)
		}
		return nil
	})
}

func TestAllErrorsAvailable(t *testing.T) {
	e1, e2 := errors.New("one"), errors.New("two")
	err := fakeRun(t, func(task *Task) error {
		return RunGroup(task, func(g *Group) error {
			g.Spawn(func(t *Task) error { return e1 })
			// Shielded, so the first failure cannot stop it failing too.
			g.Spawn(func(t *Task) error {
				s := t.EnterScope(zeroTime, true)
				defer t.ExitScope(s)
				t.Sleep(time.Second)
				return e2
			})
			return nil
		})
	})
	var me *MultiError
	if !errors.As(err, &me) || !errors.Is(err, e1) || !errors.Is(err, e2) {
		t.Fatalf("err = %v, want both errors", err)
	}
	if !strings.HasPrefix(err.Error(), "one") {
		t.Fatalf("message %q should start with the first error", err)
	}
}

func TestPanicPropagatesWithChildStack(t *testing.T) {
	var got any
	func() {
		defer func() { got = recover() }()
		Run(Config{}, func(task *Task) error {
			return RunGroup(task, func(g *Group) error {
				g.Spawn(func(t *Task) error { return t.Sleep(time.Hour) })
				g.Spawn(func(t *Task) error { panicInChild(); return nil })
				return nil
			})
		})
	}()
	pe, ok := got.(*PanicError)
	if !ok {
		t.Fatalf("recovered %v (%T), want *PanicError", got, got)
	}
	if pe.Value != "child exploded" || !strings.Contains(string(pe.Stack), "panicInChild") {
		t.Fatalf("panic = %v; stack lacks the child's frame:\n%s", pe.Value, pe.Stack)
	}
	if !strings.Contains(pe.Error(), "panicInChild") {
		t.Fatal("message lacks the child's stack")
	}
}

func panicInChild() { panic("child exploded") }

func TestNestedTimeoutsReportWhichFired(t *testing.T) {
	for _, inner := range []bool{true, false} {
		err := fakeRun(t, func(task *Task) error {
			outerD, innerD := time.Second, 10*time.Second
			if inner {
				innerD = 100 * time.Millisecond
			}
			outer := task.EnterScope(task.Now().Add(outerD), false)
			in := task.EnterScope(task.Now().Add(innerD), false)
			err := task.Sleep(time.Hour)
			task.ExitScope(in)
			innerCaught := in.Caught(err)
			task.ExitScope(outer)
			outerCaught := outer.Caught(err)
			if !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("err = %v, want DeadlineExceeded", err)
			}
			if innerCaught != inner || outerCaught == inner {
				return fmt.Errorf("inner fired=%v: inner caught %v, outer caught %v", inner, innerCaught, outerCaught)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestShieldKeepsOuterCancellationOut(t *testing.T) {
	err := fakeRun(t, func(task *Task) error {
		outer := task.EnterScope(task.Now().Add(time.Second), false)
		sh := task.EnterScope(zeroTime, true)
		if err := task.Sleep(5 * time.Second); err != nil {
			return fmt.Errorf("shielded sleep: %v", err)
		}
		task.ExitScope(sh)
		err := task.Sleep(time.Millisecond)
		task.ExitScope(outer)
		if !outer.Caught(err) {
			return fmt.Errorf("after the shield: %v, want the outer deadline", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeadlockReported(t *testing.T) {
	var q WaitQueue
	err := Run(Config{}, func(task *Task) error {
		task.SetName("stuck-main")
		return RunGroup(task, func(g *Group) error {
			g.SpawnNamed("stuck-child", func(t *Task) error { return q.Wait(t, "never-set event") })
			return nil
		})
	})
	if !errors.Is(err, ErrDeadlock) {
		t.Fatalf("err = %v, want ErrDeadlock", err)
	}
	for _, want := range []string{"stuck-main", "task group join", "stuck-child", "never-set event"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("deadlock report lacks %q:\n%v", want, err)
		}
	}
}

func TestHandleCancelAndWait(t *testing.T) {
	err := fakeRun(t, func(task *Task) error {
		return RunGroup(task, func(g *Group) error {
			h := g.Spawn(func(t *Task) error { return t.Sleep(time.Hour) })
			ok := g.Spawn(func(t *Task) error { return t.Sleep(time.Second) })
			if err := task.Sleep(time.Millisecond); err != nil {
				return err
			}
			h.Cancel()
			if err := h.Wait(task); !errors.Is(err, context.Canceled) {
				return fmt.Errorf("cancelled handle: %v", err)
			}
			// The sibling was not affected.
			return ok.Wait(task)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGroupCancelReturnsNil(t *testing.T) {
	err := fakeRun(t, func(task *Task) error {
		return RunGroup(task, func(g *Group) error {
			g.Spawn(func(t *Task) error { return t.Sleep(time.Hour) })
			g.Cancel()
			return nil
		})
	})
	if err != nil {
		t.Fatalf("cancelled group returned %v, want nil", err)
	}
}

func TestSpawnOnClosedGroup(t *testing.T) {
	err := fakeRun(t, func(task *Task) error {
		var saved *Group
		if err := RunGroup(task, func(g *Group) error { saved = g; return nil }); err != nil {
			return err
		}
		if err := saved.Spawn(func(*Task) error { return nil }).Wait(task); !errors.Is(err, ErrGroupClosed) {
			return fmt.Errorf("err = %v, want ErrGroupClosed", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTaskIsContext(t *testing.T) {
	err := fakeRun(t, func(task *Task) error {
		var ctx context.Context = task
		if ctx.Err() != nil {
			return fmt.Errorf("fresh task Err = %v", ctx.Err())
		}
		s := task.EnterScope(task.Now().Add(time.Minute), false)
		dl, ok := ctx.Deadline()
		if !ok || !dl.Equal(task.Now().Add(time.Minute)) {
			return fmt.Errorf("Deadline = %v %v", dl, ok)
		}
		done := ctx.Done()
		s.Cancel()
		select {
		case <-done:
		default:
			return errors.New("Done not closed after cancel")
		}
		if ctx.Err() != context.Canceled {
			return fmt.Errorf("Err = %v", ctx.Err())
		}
		task.ExitScope(s)
		if ctx.Err() != nil {
			return fmt.Errorf("after leaving the cancelled scope Err = %v", ctx.Err())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestContextCancelsRoot(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err := Run(Config{Context: ctx}, func(task *Task) error { return task.Sleep(time.Minute) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestExternalWake(t *testing.T) {
	eachBackend(t, func(t *testing.T, task *Task) error {
		got := 0
		err := task.WaitExternal("goroutine", func(wake func()) {
			go func() {
				time.Sleep(5 * time.Millisecond)
				got = 42
				wake()
			}()
		}, nil)
		if err != nil || got != 42 {
			return fmt.Errorf("err %v got %d", err, got)
		}
		return nil
	})
}

// TestWakeRacingTeardown: the wake function is the last thing its
// goroutine does, and the loop finishes (closing its eventfd) as soon as
// it sees the post. The waker must not be written after it is closed; the
// race detector and the fd count catch it if it is.
func TestWakeRacingTeardown(t *testing.T) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			before := countFDs(t)
			for i := 0; i < 200; i++ {
				var wg sync.WaitGroup
				wg.Add(1)
				err := Run(Config{Backend: name}, func(task *Task) error {
					// A sibling keeps the loop awake (yielding), so the
					// loop sees the post without waiting for the eventfd.
					return RunGroup(task, func(g *Group) error {
						var done atomic.Bool
						g.Spawn(func(task *Task) error {
							for !done.Load() {
								if err := task.Checkpoint(); err != nil {
									return err
								}
							}
							return nil
						})
						return task.WaitExternal("goroutine", func(wake func()) {
							go func() {
								defer wg.Done()
								done.Store(true)
								wake()
							}()
						}, nil)
					})
				})
				wg.Wait()
				if err != nil {
					t.Fatal(err)
				}
			}
			if after := countFDs(t); after != before {
				t.Fatalf("fds: %d before, %d after", before, after)
			}
		})
	}
}

func TestCoroutinesStayOnLoopThread(t *testing.T) {
	eachBackend(t, func(t *testing.T, task *Task) error {
		want := gettid()
		return RunGroup(task, func(g *Group) error {
			for range 50 {
				g.Spawn(func(t *Task) error {
					for range 5 {
						if tid := gettid(); tid != want {
							return fmt.Errorf("task on thread %d, loop on %d", tid, want)
						}
						runtime.GC() // moves stacks, tempts the scheduler
						if err := t.Sleep(time.Microsecond); err != nil {
							return err
						}
					}
					return nil
				})
			}
			return nil
		})
	})
}

func TestGoexitInTaskIsAnError(t *testing.T) {
	err := Run(Config{}, func(task *Task) error {
		runtime.Goexit()
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "Goexit") {
		t.Fatalf("err = %v", err)
	}
}

func TestBackendEnvOverride(t *testing.T) {
	t.Setenv(EnvBackend, BackendEpoll)
	err := Run(Config{}, func(task *Task) error {
		if n := task.Loop().BackendName(); n != BackendEpoll {
			return fmt.Errorf("backend %s", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func gettid() int { return os.Getpid()*0 + gettidSys() }
