package sched

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSyncSliceYields: on the epoll backend a read with data waiting
// completes without a trap; a task doing real work between such reads must
// still let the others run about every syncSlice, not only after
// syncBudget reads (64 × its work: seconds, with a slow parser).
func TestSyncSliceYields(t *testing.T) {
	err := Run(Config{Backend: BackendEpoll}, func(task *Task) error {
		a, b := socketPair(t, task.Loop())
		defer a.Close()
		defer b.Close()
		if _, err := unix.Write(a.Sysfd, make([]byte, 64*16)); err != nil {
			return err
		}
		reads, seen := 0, -1
		err := RunGroup(task, func(g *Group) error {
			g.Spawn(func(task *Task) error {
				buf := make([]byte, 16)
				for range 64 {
					if _, err := recvOnce(task, b, buf); err != nil {
						return err
					}
					reads++
					for start := time.Now(); time.Since(start) < 2*time.Millisecond; {
						// work between reads
					}
				}
				return nil
			})
			g.Spawn(func(task *Task) error {
				seen = reads // first run: how long the reader kept the loop
				return nil
			})
			return nil
		})
		if err != nil {
			return err
		}
		// 2ms of work per read: the slice (1ms, checked every 4th read)
		// ends the run after 4 reads; without it, after 64.
		if seen < 0 || seen >= 4*syncCheck {
			t.Errorf("the other task first ran after %d reads of 2ms each, want fewer than %d", seen, 4*syncCheck)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
