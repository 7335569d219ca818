package asyncio_test

// Edge cases of the backends and their selection, each on both backends
// where it applies; each test failed before its fix (found in a review of
// the epoll path and the waker).

import (
	"fmt"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/sched"
)

// A timer more than 2^32 ms away: epoll_wait's int timeout must not be
// truncated (it becomes 2ms here, so the idle loop wakes ~every 2ms).
func TestHugeTimerTimeout(t *testing.T) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		return asyncio.CancelScope(task, func(task *asyncio.Task, s *sched.Scope) error {
			return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
				g.Spawn(func(t *asyncio.Task) error {
					return t.Sleep((1<<32)*time.Millisecond + 2*time.Millisecond)
				})
				if err := task.Sleep(time.Millisecond); err != nil { // let the sleeper arm
					return err
				}
				before := task.Loop().Stats().Iterations
				// Wait off-loop: no timer of ours is nearer than the sleeper's.
				if _, err := asyncio.ToThread(task, func() (int, error) { time.Sleep(200 * time.Millisecond); return 0, nil }); err != nil {
					return err
				}
				it := task.Loop().Stats().Iterations - before
				s.Cancel()
				if it > 10 {
					return fmt.Errorf("%d loop iterations in 200ms of idling: the only timer is %v away, and epoll_wait got its ms count truncated to a C int (2ms, then 0, then negative = forever)", it, (1<<32)*time.Millisecond+2*time.Millisecond)
				}
				return nil
			})
		})
	})
}

// After a burst of wake-ups from other goroutines, an idle loop must sleep,
// not spin.
func TestWakerIdleAfterPostBurst(t *testing.T) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		deadline := time.Now().Add(2 * time.Second)
		for round := 0; time.Now().Before(deadline); round++ {
			err := asyncio.Group(task, func(g *asyncio.TaskGroup) error {
				for range 64 {
					g.Spawn(func(t *asyncio.Task) error {
						for range 20 {
							if _, err := asyncio.ToThread(t, func() (int, error) { return 0, nil }); err != nil {
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
			before := task.Loop().Stats().Iterations
			if err := task.Sleep(50 * time.Millisecond); err != nil {
				return err
			}
			if it := task.Loop().Stats().Iterations - before; it > 20 {
				return fmt.Errorf("round %d: %d loop iterations during a 50ms sleep of an otherwise idle loop (busy spin)", round, it)
			}
		}
		return nil
	})
}
