//go:build linux

package epoll

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPollerEdgeTriggeredReadiness(t *testing.T) {
	p, err := New(8)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := p.Add(fds[0], In|RDHup, 0xabc<<32|7); err != nil {
		t.Fatal(err)
	}
	evs, err := p.Wait(nil, 0)
	if err != nil || len(evs) != 0 {
		t.Fatalf("idle pipe: %v %v", evs, err)
	}
	unix.Write(fds[1], []byte("x"))
	evs, err = p.Wait(nil, time.Second)
	if err != nil || len(evs) != 1 || evs[0].Data != 0xabc<<32|7 || evs[0].Events&In == 0 {
		t.Fatalf("after write: %+v %v", evs, err)
	}
	// Edge-triggered: no new event until new data arrives.
	if evs, _ = p.Wait(nil, 10*time.Millisecond); len(evs) != 0 {
		t.Fatalf("level-triggered report: %+v", evs)
	}
	unix.Write(fds[1], []byte("y"))
	if evs, _ = p.Wait(nil, time.Second); len(evs) != 1 {
		t.Fatalf("second edge lost: %+v", evs)
	}
	if err := p.Del(fds[0]); err != nil {
		t.Fatal(err)
	}
}

func TestWaitTimeout(t *testing.T) {
	p, err := New(8)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	evs, err := p.Wait(nil, 300*time.Microsecond) // rounds up to 1ms, never spins at 0
	if err != nil || len(evs) != 0 {
		t.Fatal(evs, err)
	}
	if d := time.Since(start); d < 900*time.Microsecond {
		t.Fatalf("sub-millisecond timeout returned after %v", d)
	}
}

func TestWakerCostsNoSyscallWhileAwake(t *testing.T) {
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Awake: Wake must not write the eventfd.
	for range 10 {
		w.Wake()
	}
	var buf [8]byte
	if _, err := unix.Read(w.Fd(), buf[:]); err != unix.EAGAIN {
		t.Fatalf("eventfd written while the owner was awake (read err %v)", err)
	}
	if w.Awake() {
		t.Fatal("Awake reported a notification that never happened")
	}
}

func TestWakerWakesSleepingPoller(t *testing.T) {
	p, err := New(8)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := p.Add(w.Fd(), In, 1); err != nil {
		t.Fatal(err)
	}
	for round := range 50 {
		w.Sleeping()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Wake()
			w.Wake() // a second wake must not write again
		}()
		evs, err := p.Wait(nil, 5*time.Second)
		if err != nil || len(evs) == 0 {
			t.Fatalf("round %d: sleeping poller not woken: %v %v", round, evs, err)
		}
		wg.Wait()
		if !w.Awake() {
			t.Fatalf("round %d: Awake did not report the notification", round)
		}
		w.Drain()
		var buf [8]byte
		if _, err := unix.Read(w.Fd(), buf[:]); err != unix.EAGAIN {
			t.Fatalf("round %d: eventfd not drained", round)
		}
	}
}
