package sched

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"
)

type taskState uint8

const (
	stateReady taskState = iota
	stateRunning
	stateWaiting
	stateDone
)

var stateNames = [...]string{"ready", "running", "waiting", "done"}

type waitKind uint8

const (
	waitNone     waitKind = iota
	waitOp                // an operation in the backend
	waitQueue             // a WaitQueue (sync primitives, Handle.Wait)
	waitTimer             // a sleep in the loop's timer heap
	waitJoin              // a task group joining its children
	waitExternal          // another goroutine (ToThread, Recv)
)

// syncBudget is how many operations a task may complete synchronously in a
// row (the epoll backend's successful first attempts) before it is made to
// yield, so that a task on a fast socket cannot starve the others; and
// syncSlice how long such a run may last, checked every syncCheck
// operations, so that a task doing real work between them (parsing what
// it read, say) cannot hold the loop for 64 times that work either.
const (
	syncBudget = 64
	syncSlice  = time.Millisecond
	syncCheck  = 4
)

// errKilled unwinds a task whose loop is tearing down abnormally.
var errKilled = errors.New("corio: task killed: its loop is shutting down")

// Task is a coroutine run by a Loop. It is the first argument of every
// blocking call, and it implements context.Context: Done and Err report the
// cancellation of the task's innermost cancel scope, Deadline its nearest
// deadline (that of the context given to Run included), and Value the
// values of the context given to Run. The context methods are safe for
// concurrent use; everything else must be called from the task itself.
//
// Because a task's context follows its innermost scope, another goroutine
// may use the task itself as a context only while the task waits for that
// goroutine (ToThread, Recv, WaitExternal): once the task has moved to
// another scope, a Done channel the goroutine got earlier may be closed
// while Err, which reads the current scope, is nil (context.WithCancel(t)
// on such a goroutine then panics with "missing cancel error"). A
// goroutine that outlives the wait, or runs beside the task, must be given
// a context derived on the task, ctx, cancel := context.WithCancel(t),
// which keeps the scope it was made in.
//
// A task must not make blocking Go calls (channel operations, mutexes,
// time.Sleep, blocking syscalls, os or net I/O): they stall every task on
// its loop. Use the task's own operations, or ToThread and Recv in package
// asyncio.
type Task struct {
	// The fields a trap touches come first, followed by the hot half of
	// op: with a thousand tasks resumed in turn, each trap's cost is mostly
	// cache misses, and this keeps them to the first three lines of the
	// Task.
	loop       *Loop
	next       func() (struct{}, bool)
	yield      func(struct{}) bool
	scope      atomic.Pointer[Scope] // innermost
	state      taskState
	wait       waitKind
	budget     int32
	waitReason string
	op         Op

	id        uint64
	name      atomic.Pointer[string] // read by the stall watchdog's goroutine
	fn        func(*Task) error
	stop      func()
	wakeErr   error
	own       Scope // the task's own scope (Handle.Cancel)
	scopePrev *Task // siblings in the innermost scope's task list
	scopeNext *Task

	timer     timer
	wq        *WaitQueue
	wqPrev    *Task
	wqNext    *Task
	extCancel func()

	sliceStart time.Time // the first of the current run of synchronous completions

	group    *Group
	handle   Handle
	panicErr *PanicError
	allPrev  *Task
	allNext  *Task
	goid     uint64 // debug mode only
}

// PanicError is a task's panic, with the task's stack captured where it
// panicked. A task group re-panics with it in the parent task.
type PanicError struct {
	Value any
	Stack []byte
	Task  string
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic in %s: %v\n\n%s", e.Task, e.Value, e.Stack)
}

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ID returns the task's id, unique within its loop.
func (t *Task) ID() uint64 { return t.id }

// Name returns the task's name ("task N" unless set).
func (t *Task) Name() string {
	if p := t.name.Load(); p != nil && *p != "" {
		return *p
	}
	return fmt.Sprintf("task %d", t.id)
}

// SetName names the task, for dumps and deadlock reports.
func (t *Task) SetName(name string) { t.name.Store(&name) }

// Loop returns the loop running the task.
func (t *Task) Loop() *Loop { return t.loop }

// Now returns the loop clock's current time.
func (t *Task) Now() time.Time { return t.loop.clock.Now() }

// Scope returns the task's innermost cancel scope.
func (t *Task) Scope() *Scope { return t.scope.Load() }

// start creates the task's coroutine. The loop's goroutine is locked to its
// thread before any task exists: a coroutine inherits the thread lock of the
// goroutine that created it, and switching between coroutines whose lock
// states differ is a fatal error in the runtime (see Go issue 65889).
func (t *Task) start() {
	t.next, t.stop = iter.Pull(func(yield func(struct{}) bool) {
		t.yield = yield
		t.body()
	})
}

// body runs the task function, capturing a panic together with the task's
// own stack: once a panic leaves the coroutine, that stack is gone.
func (t *Task) body() {
	if t.loop.debug {
		t.goid = curGoid()
	}
	normal := false
	defer func() {
		if normal {
			return
		}
		r := recover()
		switch {
		case r == nil:
			// runtime.Goexit: it cannot be stopped, and iter.Pull will
			// re-raise it in the loop goroutine, where Run turns it into an
			// error.
			t.loop.goexit = t
		case r == errKilled:
			t.err(errKilled)
		default:
			if pe, ok := r.(*PanicError); ok && pe.Stack != nil {
				// A group re-panicking a child's panic: keep the child's
				// stack, it is the one that says where it went wrong.
				t.panicErr = pe
			} else {
				t.panicErr = &PanicError{Value: r, Stack: debug.Stack(), Task: t.Name()}
			}
			t.handle.err = t.panicErr
		}
	}()
	t.err(t.fn(t))
	normal = true
}

func (t *Task) err(err error) { t.handle.err = err }

// suspend parks the task until something makes it ready again.
func (t *Task) suspend(kind waitKind, reason string) {
	t.state = stateWaiting
	t.wait = kind
	t.waitReason = reason
	t.budget = syncBudget
	if !t.yield(struct{}{}) {
		panic(errKilled)
	}
}

// cancelled returns the effective cancellation of the task's innermost
// scope, or nil.
func (t *Task) cancelled() *CancelError { return t.scope.Load().err() }

// Cancellation returns the task's pending cancellation (a *CancelError that
// the cancelled scope recognises), or nil. It does not yield; Checkpoint
// does.
func (t *Task) Cancellation() error {
	if ce := t.cancelled(); ce != nil {
		return ce
	}
	return nil
}

// takeWakeErr returns and clears the error a waker left for the task.
func (t *Task) takeWakeErr() error {
	err := t.wakeErr
	t.wakeErr = nil
	return err
}

// interrupt delivers the effective cancellation to a waiting task.
func (t *Task) interrupt() {
	ce := t.cancelled()
	if ce == nil || t.state != stateWaiting {
		return // a running or ready task sees it at its next trap
	}
	l := t.loop
	switch t.wait {
	case waitOp:
		op := &t.op
		if op.pending && !op.cancelled {
			op.cancelled = true
			op.cancelErr = ce
			l.backend.Cancel(op)
		}
	case waitQueue:
		t.wq.remove(t)
		t.wakeErr = ce
		l.ready(t)
	case waitTimer:
		l.timers.remove(&t.timer)
		t.wakeErr = ce
		l.ready(t)
	case waitExternal:
		if c := t.extCancel; c != nil {
			t.extCancel = nil
			c()
		}
	}
}

// Op returns the task's operation record, reset for a new operation of the
// given code on fd (nil for operations without one). Fill in the request
// fields, then call Do.
func (t *Task) Op(code OpCode, fd *FD) *Op {
	op := &t.op
	op.reset(code, fd)
	return op
}

// Do traps into the loop with the task's operation record (from Op) and
// returns its result: Res >= 0, or -errno. The error is non-nil only when
// the operation did not run or was cancelled before it completed: then it is
// the scope's CancelError, or net.ErrClosed when its FD was closed. If a
// cancellation arrives too late (the operation completed anyway), the result
// is returned and the cancellation is reported at the next trap; a resource
// the operation produced (an accepted fd) is closed instead of leaked, and
// the cancellation error is returned.
func (t *Task) Do(op *Op) (int32, error) {
	if ce := t.cancelled(); ce != nil {
		return 0, ce
	}
	fd := op.FD
	if fd != nil && fd.closed {
		return 0, errFDClosed
	}
	op.task = t
	if t.loop.start(op) {
		t.budget--
		if t.budget <= 0 || t.sliceOver() {
			t.budget = syncBudget
			t.yieldNow()
		}
		return op.Res, nil
	}
	t.suspend(waitOp, op.Code.String())
	if op.cancelled {
		switch {
		case op.Res == -int32(syscall.ECANCELED), op.Res == -int32(syscall.EINTR):
			return op.Res, op.cancelErr
		case op.Code == OpAccept && op.Res >= 0:
			closeFd(int(op.Res))
			op.Res = -int32(syscall.ECANCELED)
			return op.Res, op.cancelErr
		}
	}
	return op.Res, nil
}

// sliceOver reports whether the task's run of synchronous completions has
// lasted syncSlice. It reads the clock at the run's first completion and at
// every syncCheck-th after it, never on the asynchronous path.
func (t *Task) sliceOver() bool {
	switch n := syncBudget - t.budget; {
	case n == 1:
		t.sliceStart = time.Now()
	case n%syncCheck == 0:
		return time.Since(t.sliceStart) >= syncSlice
	}
	return false
}

// start hands op (its task already set: nil for the loop's own sends) to
// the backend. It returns true when the operation finished at once (op.Res
// holds the result); otherwise op is in flight, registered in the in-flight
// table and on its FD, until its completion is reaped.
func (l *Loop) start(op *Op) bool {
	l.stats.Submitted++
	l.ops.add(op)
	if l.backend.Start(op) {
		l.ops.remove(op)
		return true
	}
	op.pending = true
	if op.FD != nil {
		op.FD.link(op)
	}
	return false
}

// yieldNow puts the task at the back of the run queue and lets the others
// run.
func (t *Task) yieldNow() {
	t.loop.ready(t)
	t.state = stateReady
	if !t.yield(struct{}{}) {
		panic(errKilled)
	}
}

// Checkpoint yields to the other ready tasks and then reports a pending
// cancellation, if any.
func (t *Task) Checkpoint() error {
	t.yieldNow()
	if ce := t.cancelled(); ce != nil {
		return ce
	}
	return nil
}

// Sleep suspends the task for d. It returns nil when the time is up, or the
// cancellation error if the task's scope is cancelled first (a deadline that
// fires during the sleep gives an error satisfying
// context.DeadlineExceeded). Sleep(0) is a Checkpoint.
func (t *Task) Sleep(d time.Duration) error {
	if d <= 0 {
		return t.Checkpoint()
	}
	if ce := t.cancelled(); ce != nil {
		return ce
	}
	l := t.loop
	if l.fake == nil && l.backend.NativeTimers() {
		op := t.Op(OpTimeout, nil)
		op.Dur = d
		res, err := t.Do(op)
		if err != nil {
			return err
		}
		if res < 0 {
			return syscall.Errno(-res)
		}
		return nil
	}
	t.timer.when = l.clock.Now().Add(d)
	t.timer.task = t
	l.timers.push(&t.timer)
	t.suspend(waitTimer, "sleep")
	return t.takeWakeErr()
}

// EnterScope opens a cancel scope nested in the task's innermost one, with
// an optional deadline (zero: none) and shield. Scopes must be exited in
// reverse order of entry, with ExitScope, by the same task.
func (t *Task) EnterScope(deadline time.Time, shield bool) *Scope {
	s := new(Scope)
	t.enterScope(s, deadline, shield)
	return s
}

func (t *Task) enterScope(s *Scope, deadline time.Time, shield bool) {
	cur := t.scope.Load()
	s.init(t.loop, cur, deadline, shield)
	cur.unlinkTask(t)
	s.linkTask(t)
	t.scope.Store(s)
}

// ExitScope closes s, which must be the task's innermost scope.
func (t *Task) ExitScope(s *Scope) {
	if t.scope.Load() != s {
		panic("corio: ExitScope of a scope that is not the task's innermost")
	}
	s.unlinkTask(t)
	s.exit()
	s.parent.linkTask(t)
	t.scope.Store(s.parent)
}

func (s *Scope) linkTask(t *Task) {
	t.scopePrev = nil
	t.scopeNext = s.firstTask
	if s.firstTask != nil {
		s.firstTask.scopePrev = t
	}
	s.firstTask = t
}

func (s *Scope) unlinkTask(t *Task) {
	if t.scopePrev != nil {
		t.scopePrev.scopeNext = t.scopeNext
	} else {
		s.firstTask = t.scopeNext
	}
	if t.scopeNext != nil {
		t.scopeNext.scopePrev = t.scopePrev
	}
	t.scopePrev, t.scopeNext = nil, nil
}

// WaitExternal suspends the task until another goroutine calls the wake
// function handed to start. Use it to wait for work done off the loop. If
// the task is cancelled meanwhile, cancel (if not nil) is called once, on
// the loop's thread, and the task keeps waiting for wake: nothing started
// on another goroutine is abandoned. WaitExternal returns the task's
// effective cancellation if cancel was called, else nil.
func (t *Task) WaitExternal(reason string, start func(wake func()), cancel func()) error {
	l := t.loop
	l.external++
	t.extCancel = cancel
	start(func() { l.post(t) })
	if ce := t.cancelled(); ce != nil && t.extCancel != nil {
		t.extCancel = nil
		cancel()
	}
	t.suspend(waitExternal, reason)
	l.external--
	if t.extCancel == nil && cancel != nil {
		return t.Cancellation()
	}
	t.extCancel = nil
	return nil
}

// context.Context

// Deadline returns the nearest deadline of the task's scopes and of the
// context given to Run (up to the nearest shield).
func (t *Task) Deadline() (time.Time, bool) {
	dl := t.scope.Load().effDL
	return dl, !dl.IsZero()
}

// Done returns a channel closed when the task's innermost scope is
// cancelled, or has ended (the task left it, or finished). A context derived
// from the task (context.WithCancel(t) and the like) is a child of that
// scope's context: cancelled with the scope, with its error, and when the
// scope ends, as one made with context.WithTimeout is by its deferred
// cancel.
func (t *Task) Done() <-chan struct{} { return t.scope.Load().Done() }

// Err returns context.Canceled or context.DeadlineExceeded once the task's
// innermost scope is cancelled (or its context, which Done returns, is
// done), else nil.
func (t *Task) Err() error {
	s := t.scope.Load()
	if ce := s.err(); ce != nil {
		return ce.cause
	}
	if ctx := s.contextIfMade(); ctx != nil {
		return ctx.Err()
	}
	return nil
}

// Value returns the value for key from the context given to Run (through
// the innermost scope's context, once made: see Done).
func (t *Task) Value(key any) any {
	s := t.scope.Load()
	if ctx := s.contextIfMade(); ctx != nil {
		return ctx.Value(key)
	}
	if ce := s.err(); ce != nil && ce.byRun {
		return t.loop.ctx.Value(key)
	}
	return t.loop.vals.Value(key)
}

// String describes the task.
func (t *Task) String() string { return t.Name() }

var _ context.Context = (*Task)(nil)
