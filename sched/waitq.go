package sched

// WaitQueue is a FIFO of waiting tasks, the building block of the sync
// primitives. Its zero value is an empty queue. It must be used by tasks of
// a single loop.
type WaitQueue struct {
	head *Task
	tail *Task
	n    int
}

// Wait parks t at the back of the queue until WakeOne or WakeAll wakes it
// (then Wait returns nil) or t's scope is cancelled (then t leaves the queue
// and Wait returns the cancellation error). A wake-up that happened before a
// cancellation wins: the cancellation is reported at the next trap.
func (q *WaitQueue) Wait(t *Task, reason string) error {
	if ce := t.cancelled(); ce != nil {
		return ce
	}
	t.wq = q
	t.wqNext = nil
	t.wqPrev = q.tail
	if q.tail != nil {
		q.tail.wqNext = t
	} else {
		q.head = t
	}
	q.tail = t
	q.n++
	t.suspend(waitQueue, reason)
	return t.takeWakeErr()
}

func (q *WaitQueue) remove(t *Task) {
	if t.wqPrev != nil {
		t.wqPrev.wqNext = t.wqNext
	} else {
		q.head = t.wqNext
	}
	if t.wqNext != nil {
		t.wqNext.wqPrev = t.wqPrev
	} else {
		q.tail = t.wqPrev
	}
	t.wqPrev, t.wqNext, t.wq = nil, nil, nil
	q.n--
}

// WakeOne makes the longest-waiting task ready and returns it, or nil if the
// queue is empty.
func (q *WaitQueue) WakeOne() *Task {
	t := q.head
	if t == nil {
		return nil
	}
	q.remove(t)
	t.wakeErr = nil
	t.loop.ready(t)
	return t
}

// WakeAll makes every waiting task ready, in FIFO order.
func (q *WaitQueue) WakeAll() {
	for q.head != nil {
		q.WakeOne()
	}
}

// Len returns the number of waiting tasks.
func (q *WaitQueue) Len() int { return q.n }
