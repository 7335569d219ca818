package sched

import (
	"testing"
	"time"
)

// An OnStall callback that blocks (it sends on a channel nobody reads yet,
// say, or logs to a stuck pipe) does not hold up the end of Run: Run
// waited for the watchdog goroutine, which waited for the callback.
func TestBlockingOnStallDoesNotHangRun(t *testing.T) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			reported := make(chan struct{}, 1)
			done := make(chan error, 1)
			go func() {
				done <- Run(Config{Backend: name, StallThreshold: 5 * time.Millisecond,
					OnStall: func(string, time.Duration) {
						select {
						case reported <- struct{}{}:
						default:
						}
						<-release
					}}, func(task *Task) error {
					time.Sleep(40 * time.Millisecond) // a stall, reported
					return nil
				})
			}()
			// Let the callback return when the test ends, so that no
			// goroutine outlives it either way.
			defer close(release)
			select {
			case <-reported:
			case <-time.After(5 * time.Second):
				t.Fatal("the watchdog did not report a 40ms stall with a 5ms threshold")
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Run did not return while an OnStall callback was blocked")
			}
		})
	}
}
