package asyncio

import (
	"errors"

	"github.com/corio-go/corio/sched"
)

// Event is a flag tasks can wait for (trio's Event). Once set it stays set.
type Event struct {
	set bool
	q   sched.WaitQueue
}

// Set sets the event and wakes every waiting task.
func (e *Event) Set() {
	if e.set {
		return
	}
	e.set = true
	e.q.WakeAll()
}

// IsSet reports whether Set was called.
func (e *Event) IsSet() bool { return e.set }

// Wait waits until the event is set. It returns at once if it is set
// already, or the cancellation error if t is cancelled first.
func (e *Event) Wait(t *Task) error {
	if e.set {
		return nil
	}
	return e.q.Wait(t, "Event.Wait")
}

// Lock is a mutual-exclusion lock for tasks. Unlike sync.Mutex it suspends
// only the waiting task, never the loop.
type Lock struct {
	locked bool
	q      sched.WaitQueue
}

// Lock acquires the lock, waiting in FIFO order. It returns the
// cancellation error (without the lock) if t is cancelled while waiting.
func (l *Lock) Lock(t *Task) error {
	if !l.locked {
		if err := t.Cancellation(); err != nil {
			return err
		}
		l.locked = true
		return nil
	}
	// Unlock hands the lock over: it stays locked, now ours.
	return l.q.Wait(t, "Lock.Lock")
}

// TryLock acquires the lock if it is free, without waiting.
func (l *Lock) TryLock() bool {
	if l.locked {
		return false
	}
	l.locked = true
	return true
}

// Unlock releases the lock, handing it to the first waiter if any. Unlocking
// an unlocked Lock panics, like sync.Mutex.
func (l *Lock) Unlock() {
	if !l.locked {
		panic("asyncio: Unlock of unlocked Lock")
	}
	if l.q.WakeOne() == nil {
		l.locked = false
	}
}

// Semaphore limits how many tasks hold a permit at once.
type Semaphore struct {
	n int
	q sched.WaitQueue
}

// NewSemaphore returns a semaphore with n permits.
func NewSemaphore(n int) *Semaphore {
	if n < 0 {
		panic("asyncio: negative semaphore count")
	}
	return &Semaphore{n: n}
}

// Acquire takes a permit, waiting in FIFO order if there is none. It returns
// the cancellation error (without a permit) if t is cancelled while waiting.
func (s *Semaphore) Acquire(t *Task) error {
	if s.n > 0 {
		if err := t.Cancellation(); err != nil {
			return err
		}
		s.n--
		return nil
	}
	// Release hands its permit over directly.
	return s.q.Wait(t, "Semaphore.Acquire")
}

// TryAcquire takes a permit if one is free, without waiting.
func (s *Semaphore) TryAcquire() bool {
	if s.n > 0 {
		s.n--
		return true
	}
	return false
}

// Release returns a permit, handing it to the first waiter if any. It is
// not checked against the initial count: a Release without an Acquire
// adds a permit (golang.org/x/sync/semaphore panics instead).
func (s *Semaphore) Release() {
	if s.q.WakeOne() == nil {
		s.n++
	}
}

// Available returns the number of free permits.
func (s *Semaphore) Available() int { return s.n }

// ErrQueueClosed is returned by Queue.Put after Close, and by Queue.Get once
// a closed queue is drained.
var ErrQueueClosed = errors.New("asyncio: queue closed")

// Queue is a bounded FIFO queue between tasks (curio's Queue). Put waits
// while the queue is full, Get while it is empty.
type Queue[T any] struct {
	buf      []T
	head     int
	n        int
	rsvItems int // items promised to getters that were woken but have not run
	rsvSlots int // free slots promised to woken putters
	closed   bool
	getters  sched.WaitQueue
	putters  sched.WaitQueue
}

// NewQueue returns a queue holding up to capacity items (at least 1).
func NewQueue[T any](capacity int) *Queue[T] {
	if capacity < 1 {
		panic("asyncio: queue capacity must be at least 1")
	}
	return &Queue[T]{buf: make([]T, capacity)}
}

// Put appends v, waiting while the queue is full. It returns ErrQueueClosed
// after Close, or the cancellation error if t is cancelled while waiting (v
// is then not queued).
func (q *Queue[T]) Put(t *Task, v T) error {
	if q.closed {
		return ErrQueueClosed
	}
	if q.n+q.rsvSlots < len(q.buf) {
		if err := t.Cancellation(); err != nil {
			return err
		}
	} else {
		if err := q.putters.Wait(t, "Queue.Put"); err != nil {
			return err
		}
		// Woken putters run in the order they were woken, and a Get woke
		// the earliest ones: if a slot is promised, it is ours.
		if q.rsvSlots > 0 {
			q.rsvSlots--
		}
		if q.closed {
			return ErrQueueClosed
		}
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
	if q.getters.WakeOne() != nil {
		q.rsvItems++
	}
	return nil
}

// Get removes and returns the oldest item, waiting while the queue is empty.
// Once the queue is closed and drained it returns ErrQueueClosed.
func (q *Queue[T]) Get(t *Task) (T, error) {
	var zero T
	for {
		if q.n-q.rsvItems > 0 {
			if err := t.Cancellation(); err != nil {
				return zero, err
			}
			return q.pop(), nil
		}
		if q.closed {
			return zero, ErrQueueClosed
		}
		if err := q.getters.Wait(t, "Queue.Get"); err != nil {
			return zero, err
		}
		// Woken by a Put (an item is promised to us: woken getters run in
		// wake order) or by Close (then loop: drain what is left).
		if q.rsvItems > 0 {
			q.rsvItems--
			return q.pop(), nil
		}
	}
}

func (q *Queue[T]) pop() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if q.putters.WakeOne() != nil {
		q.rsvSlots++
	}
	return v
}

// Close closes the queue: Put fails from now on, and Get drains what is
// left, then fails. Waiting tasks are woken.
func (q *Queue[T]) Close() {
	if q.closed {
		return
	}
	q.closed = true
	q.getters.WakeAll()
	q.putters.WakeAll()
}

// Len returns the number of queued items.
func (q *Queue[T]) Len() int { return q.n }

// Cap returns the queue's capacity.
func (q *Queue[T]) Cap() int { return len(q.buf) }
