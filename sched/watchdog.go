package sched

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// EnvStall is the environment variable that turns the stall watchdog on
// with the given threshold (a time.ParseDuration string such as "50ms").
const EnvStall = "CORIO_STALL"

// stallWatch notices a task that runs for longer than a threshold without
// trapping: while it runs, no other task on its loop can (a blocking Go
// call, a long computation). It runs on its own goroutine and reads only two
// atomics that the loop sets around each resume.
type stallWatch struct {
	threshold time.Duration
	report    func(task string, running time.Duration)
	start     atomic.Int64         // unix nanos the current resume began; 0 when idle
	task      atomic.Pointer[Task] // the task being resumed
	quit      chan struct{}
	wg        sync.WaitGroup

	mu        sync.Mutex // guards stopped and reporting
	stopped   bool       // no report may start any more
	reporting bool       // report is running
}

func newStallWatch(cfg Config) *stallWatch {
	d := cfg.StallThreshold
	if d == 0 {
		if v, err := time.ParseDuration(os.Getenv(EnvStall)); err == nil {
			d = v
		}
	}
	if d <= 0 {
		return nil
	}
	w := &stallWatch{threshold: d, report: cfg.OnStall, quit: make(chan struct{})}
	if w.report == nil {
		w.report = func(task string, running time.Duration) {
			slog.Warn("corio: task is stalling its loop (a blocking call or a long computation without a trap?)",
				"task", task, "running", running)
		}
	}
	w.wg.Add(1)
	go w.run()
	return w
}

func (w *stallWatch) run() {
	defer w.wg.Done()
	// At least 1ms: a threshold under 2ns would make NewTicker panic (on
	// this goroutine, out of the caller's reach).
	tick := time.NewTicker(max(w.threshold/2, time.Millisecond))
	defer tick.Stop()
	var reported int64
	for {
		select {
		case <-w.quit:
			return
		case <-tick.C:
		}
		s := w.start.Load()
		if s == 0 || s == reported {
			continue
		}
		if running := time.Duration(time.Now().UnixNano() - s); running >= w.threshold {
			reported = s // once per stall
			w.mu.Lock()
			if w.stopped {
				w.mu.Unlock()
				return
			}
			w.reporting = true
			w.mu.Unlock()
			w.report(w.task.Load().Name(), running)
			w.mu.Lock()
			w.reporting = false
			w.mu.Unlock()
		}
	}
}

// stop ends the watchdog: no report starts after it returns. It waits for
// the watchdog's goroutine unless a report is running: a callback that
// blocks must not hold up the end of Run (the goroutine then ends when the
// callback returns).
func (w *stallWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	reporting := w.reporting
	w.mu.Unlock()
	close(w.quit)
	if !reporting {
		w.wg.Wait()
	}
}
