package sched

import (
	"sync"
	"time"
)

// Clock tells the loop what time it is. The real clock is the default; tests
// use a *FakeClock.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// FakeClock is a Clock for tests. Time moves only when Advance is called
// or, when AutoJump is set, when the loop has nothing to do but wait for a
// timer: then it jumps straight to that timer (trio's autojump clock), so
// timer tests run instantly and deterministically.
//
// With operations in flight, AutoJump first lets autoJumpGrace (10ms) of
// real time pass, in case one completes. Advance may be called from any
// goroutine: the loops using the clock wake up and fire what is due.
type FakeClock struct {
	mu       sync.Mutex
	now      time.Time
	loops    map[*Loop]struct{} // the loops using the clock, for Advance
	AutoJump bool
}

// autoJumpGrace is how long AutoJump waits for operations in flight before
// it jumps to the next timer.
const autoJumpGrace = 10 * time.Millisecond

// NewFakeClock returns a FakeClock set to start, with AutoJump on.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, AutoJump: true}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the fake time forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	loops := make([]*Loop, 0, len(c.loops))
	for l := range c.loops {
		loops = append(loops, l)
	}
	c.mu.Unlock()
	for _, l := range loops {
		l.post(nil)
	}
}

// attach adds l to (on) or removes it from the loops Advance wakes.
func (c *FakeClock) attach(l *Loop, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !on {
		delete(c.loops, l)
		return
	}
	if c.loops == nil {
		c.loops = make(map[*Loop]struct{})
	}
	c.loops[l] = struct{}{}
}

func (c *FakeClock) jumpTo(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

// timer is an entry of the loop's timer heap. It is embedded in the Scope
// (deadlines) or the Task (sleeps without kernel timers) it serves, so
// arming one allocates nothing.
type timer struct {
	when  time.Time
	index int // position in the heap, -1 when not armed
	scope *Scope
	task  *Task
	send  *FD // a closed FD's write-behind linger (see closeLinger)
}

// timerHeap is a min-heap of armed timers ordered by when.
type timerHeap []*timer

func (h *timerHeap) push(t *timer) {
	t.index = len(*h)
	*h = append(*h, t)
	h.up(t.index)
}

func (h *timerHeap) remove(t *timer) {
	i := t.index
	if i < 0 {
		return
	}
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	t.index = -1
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
}

func (h timerHeap) peek() *timer {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].when.Before(h[p].when) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) bool {
	start := i
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].when.Before(h[l].when) {
			m = r
		}
		if !h[m].when.Before(h[i].when) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}
