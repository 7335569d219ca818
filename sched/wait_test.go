package sched

import (
	"runtime"
	"testing"
	"time"
)

// TestIdleLoopLetsGoroutinesRun: with one P, a loop waiting for a timer
// must not starve the program's other goroutines, nor the garbage
// collector's stop-the-world. (A wait made as a raw syscall, which keeps the
// P, would: this pins that it does not, whatever the backend's wait path.)
func TestIdleLoopLetsGoroutinesRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	eachBackend(t, func(t *testing.T, task *Task) error {
		done := make(chan time.Duration, 1)
		start := time.Now()
		go func() {
			for range 20 {
				runtime.GC()
				time.Sleep(time.Millisecond)
			}
			done <- time.Since(start)
		}()
		if err := task.Sleep(time.Second); err != nil {
			return err
		}
		select {
		case d := <-done:
			// 20 × 1 ms of sleeps plus 20 collections: far less than
			// the loop's one-second wait.
			t.Logf("goroutine done in %v", d)
			if d > time.Second/2 {
				t.Errorf("goroutine took %v while the loop waited", d)
			}
		default:
			t.Error("goroutine starved while the loop waited for 1s")
		}
		return nil
	})
}
