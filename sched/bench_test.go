package sched

import (
	"iter"
	"runtime"
	"sync"
	"testing"
	"time"
)

// nopTrap is the smallest trap: a NOP operation through the backend.
func nopTrap(t *Task) error {
	_, err := t.Do(t.Op(OpNop, nil))
	return err
}

func TestZeroAllocsPerTrap(t *testing.T) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			var nop, sleep0, sleep float64
			err := Run(Config{Backend: name}, func(task *Task) error {
				nopTrap(task) // warm the in-flight table
				task.Sleep(time.Microsecond)
				nop = testing.AllocsPerRun(1000, func() { nopTrap(task) })
				sleep0 = testing.AllocsPerRun(1000, func() { task.Sleep(0) })
				sleep = testing.AllocsPerRun(100, func() { task.Sleep(time.Microsecond) })
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if nop != 0 || sleep0 != 0 || sleep != 0 {
				t.Fatalf("allocs per trap: nop %v, sleep(0) %v, sleep(1µs) %v; want 0", nop, sleep0, sleep)
			}
		})
	}
}

// benchBackends runs fn as a sub-benchmark on each backend.
func benchBackends(b *testing.B, fn func(b *testing.B, task *Task)) {
	for _, name := range backends(b) {
		b.Run(name, func(b *testing.B) {
			err := Run(Config{Backend: name}, func(task *Task) error {
				fn(b, task)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkTrapNop is one task trapping with NOPs: a full round trip
// through the loop and the backend per op (one enter per op on io_uring).
func BenchmarkTrapNop(b *testing.B) {
	benchBackends(b, func(b *testing.B, task *Task) {
		b.ReportAllocs()
		for b.Loop() {
			nopTrap(task)
		}
		st := task.Loop().Stats()
		b.ReportMetric(float64(st.Enters)/float64(st.Submitted), "enters/op")
	})
}

// BenchmarkTrapNop64 is 64 tasks trapping with NOPs together: one enter
// serves the whole batch.
func BenchmarkTrapNop64(b *testing.B) {
	benchBackends(b, func(b *testing.B, task *Task) {
		b.ReportAllocs()
		const tasks = 64
		per := b.N/tasks + 1
		before := task.Loop().Stats()
		b.ResetTimer()
		RunGroup(task, func(g *Group) error {
			for range tasks {
				g.Spawn(func(t *Task) error {
					for range per {
						nopTrap(t)
					}
					return nil
				})
			}
			return nil
		})
		st := task.Loop().Stats()
		b.ReportMetric(float64(st.Enters-before.Enters)/float64(st.Submitted-before.Submitted), "enters/op")
	})
}

func BenchmarkSleep0(b *testing.B) {
	benchBackends(b, func(b *testing.B, task *Task) {
		b.ReportAllocs()
		for b.Loop() {
			task.Sleep(0)
		}
	})
}

func BenchmarkSpawnJoin(b *testing.B) {
	benchBackends(b, func(b *testing.B, task *Task) {
		b.ReportAllocs()
		for b.Loop() {
			RunGroup(task, func(g *Group) error {
				g.Spawn(func(*Task) error { return nil })
				return nil
			})
		}
	})
}

// Peers measured in the same run.

func BenchmarkPeerGoroutineWaitGroup(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
}

func BenchmarkPeerChanPingPong(b *testing.B) {
	b.ReportAllocs()
	ping, pong := make(chan struct{}), make(chan struct{})
	go func() {
		for range ping {
			pong <- struct{}{}
		}
	}()
	for b.Loop() {
		ping <- struct{}{}
		<-pong
	}
	close(ping)
}

// BenchmarkCoroSwitch is the runtime coroutine switch behind iter.Pull, on
// a thread-locked goroutine as the loop uses it: one resume+yield round trip.
func BenchmarkCoroSwitch(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	next, stop := iter.Pull(func(yield func(struct{}) bool) {
		for yield(struct{}{}) {
		}
	})
	defer stop()
	for b.Loop() {
		next()
	}
}

// BenchmarkLockedHandoff is the alternative the loop does not use: handing
// work to a goroutine from a thread-locked goroutine and waiting for it.
func BenchmarkLockedHandoff(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	ping, pong := make(chan struct{}), make(chan struct{})
	go func() {
		for range ping {
			pong <- struct{}{}
		}
	}()
	for b.Loop() {
		ping <- struct{}{}
		<-pong
	}
	close(ping)
}
