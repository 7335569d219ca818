package sched

import (
	"strings"
	"testing"
	"time"
)

type recordingHooks struct {
	NopHooks
	spawned, scheduled, finished, waits, completions int
	names                                            []string
}

func (h *recordingHooks) TaskSpawned(t *Task)   { h.spawned++ }
func (h *recordingHooks) TaskScheduled(t *Task) { h.scheduled++ }
func (h *recordingHooks) TaskFinished(t *Task, err error) {
	h.finished++
	h.names = append(h.names, t.Name())
}
func (h *recordingHooks) BeforeWait(time.Duration) { h.waits++ }
func (h *recordingHooks) AfterWait(n int)          { h.completions += n }

func TestHooksAndDump(t *testing.T) {
	h := &recordingHooks{}
	var dump string
	err := Run(Config{Hooks: h}, func(task *Task) error {
		return RunGroup(task, func(g *Group) error {
			g.SpawnNamed("sleeper", func(t *Task) error { return t.Sleep(5 * time.Millisecond) })
			g.SpawnNamed("dumper", func(t *Task) error {
				var b strings.Builder
				t.Loop().Dump(&b)
				dump = b.String()
				return nil
			})
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.spawned != 3 || h.finished != 3 {
		t.Fatalf("spawned %d finished %d, want 3 and 3", h.spawned, h.finished)
	}
	if h.scheduled < 4 || h.waits < 1 {
		t.Fatalf("scheduled %d waits %d", h.scheduled, h.waits)
	}
	if h.names[len(h.names)-1] != "main" {
		t.Fatalf("main should finish last: %v", h.names)
	}
	for _, want := range []string{"main [waiting] waiting on task group join", "sleeper [", "dumper [running]"} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump lacks %q:\n%s", want, dump)
		}
	}
}

func TestStatsCountWork(t *testing.T) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			err := Run(Config{Backend: name}, func(task *Task) error {
				before := task.Loop().Stats()
				for range 10 {
					if err := task.Sleep(time.Millisecond); err != nil {
						return err
					}
				}
				st := task.Loop().Stats()
				if st.Iterations-before.Iterations < 10 || st.Enters-before.Enters < 10 || st.Syscalls < st.Enters {
					t.Errorf("stats after 10 sleeps: %+v (before %+v)", st, before)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDumpStacksInDebugMode(t *testing.T) {
	var dump string
	err := Run(Config{Debug: true}, func(task *Task) error {
		return RunGroup(task, func(g *Group) error {
			g.SpawnNamed("parked", func(t *Task) error { return parkHere(t) })
			if err := task.Checkpoint(); err != nil {
				return err
			}
			var b strings.Builder
			task.Loop().Dump(&b)
			dump = b.String()
			g.Cancel()
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dump, "parked:") || !strings.Contains(dump, "parkHere") {
		t.Fatalf("dump lacks the parked task's stack:\n%s", dump)
	}
}

func parkHere(t *Task) error { return t.Sleep(time.Hour) }

func TestStallWatchdogNamesTheStallingTask(t *testing.T) {
	reports := make(chan string, 4)
	err := Run(Config{StallThreshold: 10 * time.Millisecond, OnStall: func(task string, running time.Duration) {
		select {
		case reports <- task:
		default:
		}
	}}, func(task *Task) error {
		return RunGroup(task, func(g *Group) error {
			g.SpawnNamed("well-behaved", func(t *Task) error { return t.Sleep(time.Millisecond) })
			g.SpawnNamed("blocker", func(t *Task) error {
				time.Sleep(60 * time.Millisecond) // a blocking call inside a task: the bug
				return nil
			})
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-reports:
		if name != "blocker" {
			t.Fatalf("watchdog blamed %q", name)
		}
	default:
		t.Fatal("the watchdog did not report a 60ms stall with a 10ms threshold")
	}
}
