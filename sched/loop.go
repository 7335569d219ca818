package sched

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	epoll "github.com/corio-go/corio/fallback_epoll"
	"golang.org/x/sys/unix"
)

var zeroTime time.Time

// Config configures a loop. The zero value is ready: automatic backend
// choice, the real clock, no hooks.
type Config struct {
	// Backend is "auto", "uring" or "epoll"; "" means the CORIO_BACKEND
	// environment variable, or "auto" when it is unset.
	Backend string
	// Clock overrides the real clock (tests use a *FakeClock).
	Clock Clock
	// Hooks receives scheduling events.
	Hooks Hooks
	// Context supplies values to Task.Value; when it is cancelled, the
	// root task's scope is cancelled. While it can still be done, the loop
	// does not report a deadlock (the context may yet wake it), unless
	// ContextKeepsDeadlocks is set.
	Context context.Context
	// ContextKeepsDeadlocks: a deadlock is reported even while Context can
	// still be done. For a context that only carries a cancellation by the
	// program itself (asyncio.RunLoops cancels the other loops when one
	// fails), not one that the program waits on.
	ContextKeepsDeadlocks bool
	// Entries sizes the io_uring submission queue (default 256).
	Entries uint32
	// StallThreshold turns on the stall watchdog: a task that runs this
	// long without trapping (and so keeps every other task of its loop
	// waiting) is reported to OnStall, or logged with log/slog. Zero means
	// the CORIO_STALL environment variable, if set; otherwise off. The
	// watchdog costs three atomic stores and a clock read per task resume.
	StallThreshold time.Duration
	// OnStall receives the watchdog's reports (on another goroutine). Run
	// does not wait for a call still running when it ends.
	OnStall func(task string, running time.Duration)
	// NoWriteBehind makes Task.Send wait for each send's completion, on
	// every backend, instead of buffering (see Send).
	NoWriteBehind bool
	// Debug records each task's goroutine id when it starts (about 1µs per
	// spawn), so Dump can print every task's stack. The CORIO_DEBUG=1
	// environment variable turns it on too.
	Debug bool
}

// Hooks receives the loop's scheduling events, for tests and tracing. Every
// method is called on the loop's thread; embed NopHooks to implement only
// some.
type Hooks interface {
	// TaskSpawned: t was created (it is ready, not yet run).
	TaskSpawned(t *Task)
	// TaskScheduled: t is about to be resumed.
	TaskScheduled(t *Task)
	// TaskFinished: t's function returned err (or panicked; err is then
	// the *PanicError).
	TaskFinished(t *Task, err error)
	// BeforeWait: the loop is about to wait in the backend for at most
	// timeout (-1: no limit; 0: a non-blocking pass).
	BeforeWait(timeout time.Duration)
	// AfterWait: the wait returned with completions completions.
	AfterWait(completions int)
}

// NopHooks implements Hooks with methods that do nothing.
type NopHooks struct{}

func (NopHooks) TaskSpawned(*Task)         {}
func (NopHooks) TaskScheduled(*Task)       {}
func (NopHooks) TaskFinished(*Task, error) {}
func (NopHooks) BeforeWait(time.Duration)  {}
func (NopHooks) AfterWait(completions int) {}

// Stats counts the loop's work. Read it from a task on the loop (or after
// Run returned); "syscalls per operation" is Syscalls/Submitted.
type Stats struct {
	Iterations  uint64 // loop iterations
	Enters      uint64 // waits in the kernel (io_uring_enter, epoll_wait) and submits
	Syscalls    uint64 // every syscall the backend made, Enters included
	Submitted   uint64 // operations started (Do calls that reached the backend)
	Completions uint64 // completions reaped (asynchronous operations)
	Resumes     uint64 // task resumptions
	Spawned     uint64 // tasks created
}

// Loop runs tasks on one OS thread with one backend instance.
type Loop struct {
	backend Backend
	clock   Clock
	fake    *FakeClock
	hooks   Hooks
	ctx     context.Context
	stats   Stats

	ops     opTable
	runq    taskRing
	timers  timerHeap
	comps   []*Op
	current *Task
	root    *Task

	vals context.Context // ctx without its cancellation: its values only
	tid  atomic.Int64    // the loop's OS thread; 0 once the loop has ended

	waker             *epoll.Waker
	postMu            sync.Mutex
	posted            []*Task
	spare             []*Task
	nposted           atomic.Int32
	external          int      // goroutines that may post a task
	cancelRoot        bool     // posted by the context watcher; guarded by postMu
	ctxWatch          bool     // the context watcher counts in external (until its context is done)
	ctxKeepsDeadlocks bool     // Config.ContextKeepsDeadlocks
	wakerGone         bool     // the waker is closed; guarded by postMu
	postedFns         []func() // PostFunc's; guarded by postMu
	fnsClosed         bool     // release ran the last of them; guarded by postMu

	nextID  uint64
	groups  *Group // open task groups
	all     *Task  // live tasks
	ntasks  int
	goexit  *Task
	stopped bool

	killPanics []error // panics of tasks killed at teardown

	writeBehind bool     // Send buffers (the backend completes sends asynchronously)
	sendsLive   int      // write-behind sends in flight
	sendBufs    sendPool // free write-behind buffers
	lingerUntil time.Time
	debug       bool
	stall       *stallWatch

	fallbackReason error
}

// Run creates a loop on a new OS-thread-locked goroutine, runs main as its
// root task, and returns main's error once main (and therefore every task
// group it opened) has finished. It returns an error without running main
// when the backend cannot be set up.
func Run(cfg Config, main func(t *Task) error) error {
	type result struct {
		err   error
		panic any
	}
	res := make(chan result, 1)
	go func() {
		// The loop owns this thread for its whole life: io_uring with
		// SINGLE_ISSUER refuses submissions from other threads, and task
		// coroutines must be created and resumed on the thread they were
		// created on.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var l *Loop
		done := false
		defer func() {
			if done {
				return
			}
			// Either a panic (the root task's, re-raised by run, or the
			// loop's own) or runtime.Goexit in a task (t.FailNow in a test,
			// say) that iter.Pull re-raised in this goroutine. Hand it to
			// the caller of Run instead of crashing or hanging it.
			r := recover()
			if l != nil {
				l.teardown()
			}
			if r != nil {
				res <- result{panic: r}
				return
			}
			name := "a task"
			if l != nil && l.goexit != nil {
				name = l.goexit.Name()
			}
			err := fmt.Errorf("corio: %s called runtime.Goexit", name)
			if l != nil {
				err = l.withKillPanics(err)
			}
			res <- result{err: err}
		}()
		var err error
		l, err = newLoop(cfg)
		if err == nil {
			err = l.withKillPanics(l.run(main))
		}
		done = true
		res <- result{err: err}
	}()
	r := <-res
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

func newLoop(cfg Config) (*Loop, error) {
	l := &Loop{clock: cfg.Clock, hooks: cfg.Hooks, ctx: cfg.Context,
		ctxKeepsDeadlocks: cfg.ContextKeepsDeadlocks,
		debug:             cfg.Debug || os.Getenv("CORIO_DEBUG") == "1"}
	if l.clock == nil {
		l.clock = realClock{}
	}
	l.fake, _ = l.clock.(*FakeClock)
	l.tid.Store(int64(unix.Gettid())) // newLoop runs on the loop's locked thread
	if l.ctx == nil {
		l.ctx = context.Background()
	}
	// The values of the Run context without its cancellation: a scope's
	// context (and Task.Value) must not hand out the Run context's
	// *cancelCtx (context.Cause looks it up through Value) unless the
	// scope was cancelled by that context.
	l.vals = context.WithoutCancel(l.ctx)
	w, err := epoll.NewWaker()
	if err != nil {
		return nil, err
	}
	l.waker = w
	if cfg.Entries == 0 {
		cfg.Entries = 256
	}
	l.backend, err = newBackend(cfg.Backend, l, cfg.Entries)
	if err != nil {
		w.Close()
		return nil, err
	}
	l.writeBehind = l.backend.AsyncSends() && !cfg.NoWriteBehind
	l.stall = newStallWatch(cfg)
	return l, nil
}

// BackendName returns the name of the loop's backend: "uring" or "epoll".
func (l *Loop) BackendName() string { return l.backend.Name() }

// FallbackReason returns why the automatic choice did not pick io_uring, or
// nil.
func (l *Loop) FallbackReason() error { return l.fallbackReason }

// Stats returns the loop's counters.
func (l *Loop) Stats() Stats { return l.stats }

// NonblockingFDs reports whether descriptors used with this loop's
// operations must be in non-blocking mode (epoll) or blocking mode
// (io_uring, which would otherwise return EAGAIN to user space instead of
// waiting).
func (l *Loop) NonblockingFDs() bool { return l.backend.Name() == BackendEpoll }

func (l *Loop) newTask(name string, fn func(*Task) error, parent *Scope) *Task {
	l.nextID++
	t := &Task{loop: l, id: l.nextID, fn: fn, budget: syncBudget}
	if name != "" {
		t.name.Store(&name)
	}
	t.handle.task = t
	t.timer.index = -1
	t.own.init(l, parent, zeroTime, false)
	t.own.linkTask(t)
	t.scope.Store(&t.own)
	t.start()
	t.allNext = l.all
	if l.all != nil {
		l.all.allPrev = t
	}
	l.all = t
	l.ntasks++
	l.stats.Spawned++
	if l.hooks != nil {
		l.hooks.TaskSpawned(t)
	}
	l.ready(t)
	return t
}

// ready queues t to run.
func (l *Loop) ready(t *Task) {
	t.state = stateReady
	t.wait = waitNone
	l.runq.push(t)
}

// post makes t ready from any goroutine; with t nil, it only makes the
// loop run an iteration (a FakeClock that moved: the loop's wait was
// computed from the old time).
func (l *Loop) post(t *Task) {
	l.postMu.Lock()
	// Wake runs under postMu, like teardown's Close: once the loop has seen
	// the post it may finish and close the eventfd, and a Wake after that
	// would write to a closed (or, worse, reused) descriptor.
	if !l.wakerGone {
		if t != nil {
			l.posted = append(l.posted, t)
		}
		l.nposted.Add(1)
		l.waker.Wake()
	}
	l.postMu.Unlock()
}

// OnLoopThread reports whether the caller runs on the loop's thread (in
// one of its tasks), false once the loop has ended (its thread then runs
// other goroutines). Safe for concurrent use.
func (l *Loop) OnLoopThread() bool { return int64(unix.Gettid()) == l.tid.Load() }

// PostFunc makes the loop run fn on its thread, between two tasks, at its
// next iteration. Safe for concurrent use. It reports false, and fn does
// not run, if the loop has ended.
func (l *Loop) PostFunc(fn func()) bool {
	l.postMu.Lock()
	defer l.postMu.Unlock()
	if l.wakerGone || l.fnsClosed {
		return false
	}
	l.postedFns = append(l.postedFns, fn)
	l.nposted.Add(1)
	l.waker.Wake()
	return true
}

// takeFns takes the functions PostFunc queued (postMu held); with last,
// finding none closes PostFunc.
func (l *Loop) takeFns(last bool) []func() {
	fns := l.postedFns
	l.postedFns = nil
	if last && len(fns) == 0 {
		l.fnsClosed = true
	}
	return fns
}

func runFns(fns []func()) {
	for _, fn := range fns {
		fn()
	}
}

func (l *Loop) drainPosted() {
	if l.nposted.Load() == 0 {
		return
	}
	l.postMu.Lock()
	p := l.posted
	l.posted = l.spare[:0]
	fns := l.takeFns(false)
	l.nposted.Store(0)
	cancelRoot := l.cancelRoot
	l.cancelRoot = false
	l.postMu.Unlock()
	runFns(fns)
	if cancelRoot {
		// The context is done: it can wake the loop no more, so it no
		// longer holds off deadlock reports (its goroutine has returned).
		l.forgetContext()
	}
	if cancelRoot && l.root != nil {
		// The context's own reason: context.DeadlineExceeded for a
		// deadline, so that errors.Is on Run's error tells them apart.
		l.root.own.cancelByRun(l.ctx.Err())
	}
	for _, t := range p {
		l.ready(t)
	}
	clear(p)
	l.spare = p[:0]
}

func (l *Loop) resume(t *Task) {
	l.current = t
	t.state = stateRunning
	l.stats.Resumes++
	if l.hooks != nil {
		l.hooks.TaskScheduled(t)
	}
	if w := l.stall; w != nil {
		w.task.Store(t)
		w.start.Store(time.Now().UnixNano())
		defer w.start.Store(0)
	}
	_, alive := t.next()
	l.current = nil
	if !alive {
		l.finish(t)
	}
}

func (l *Loop) finish(t *Task) {
	t.state = stateDone
	// Unbalanced scopes (a panic between EnterScope and ExitScope): close
	// them so the tree stays consistent.
	for s := t.scope.Load(); s != &t.own; s = t.scope.Load() {
		t.ExitScope(s)
	}
	t.own.unlinkTask(t)
	t.own.exit()
	// A finished task's context is done.
	t.own.propagate(&CancelError{scope: &t.own, cause: context.Canceled})
	h := &t.handle
	h.done = true
	h.joiners.WakeAll()
	if t.group != nil {
		t.group.childDone(t)
	}
	if t.allPrev != nil {
		t.allPrev.allNext = t.allNext
	} else {
		l.all = t.allNext
	}
	if t.allNext != nil {
		t.allNext.allPrev = t.allPrev
	}
	t.allPrev, t.allNext = nil, nil
	l.ntasks--
	if l.hooks != nil {
		l.hooks.TaskFinished(t, h.err)
	}
	t.fn = nil
}

// run is the loop: run every ready task until it traps; submit and wait in
// one backend call; reap completions; repeat.
func (l *Loop) run(main func(*Task) error) error {
	defer l.teardown()
	if l.fake != nil {
		l.fake.attach(l, true) // until release
	}
	if l.ctx.Done() != nil {
		stop := l.watchContext()
		defer stop()
	}
	l.root = l.newTask("main", main, nil)
	if dl, ok := l.ctx.Deadline(); ok {
		// The context cancels the root scope when its deadline passes
		// (watchContext): that is the root scope's deadline for
		// Task.Deadline, inherited by every scope below it up to a shield.
		// The watcher fires it; the scope arms no timer of its own.
		l.root.own.effDL = dl
	}
	for {
		l.stats.Iterations++
		l.drainPosted()
		l.fireTimers()
		for n := l.runq.len(); n > 0; n-- {
			l.resume(l.runq.pop())
		}
		timeout := time.Duration(-1)
		var jumpAt time.Time // AutoJump's target, once the grace has passed
		if l.root.state == stateDone {
			if l.sendsLive == 0 {
				break
			}
			// Write-behind bytes are still on their way to the kernel:
			// give them lingerTimeout (a peer that does not read would
			// otherwise hold Run forever).
			now := time.Now() // real time: a FakeClock may stand still
			if l.lingerUntil.IsZero() {
				l.lingerUntil = now.Add(lingerTimeout)
			}
			if !now.Before(l.lingerUntil) {
				break
			}
			timeout = l.lingerUntil.Sub(now)
		}
		if l.runq.len() > 0 {
			timeout = 0
		} else if tm := l.timers.peek(); tm != nil {
			if d := max(tm.when.Sub(l.clock.Now()), 0); timeout < 0 || d < timeout {
				timeout = d
			}
			if l.fake != nil && l.external == 0 && l.fake.AutoJump {
				if l.ops.live == 0 {
					l.fake.jumpTo(tm.when)
					timeout = 0
				} else {
					// Operations in flight may still complete: give them
					// autoJumpGrace of real time, then jump if nothing
					// happened (trio's autojump clock jumps when every
					// task is blocked, on I/O too). Waiting the fake
					// duration in real time would never move the clock.
					jumpAt = tm.when
					timeout = min(timeout, autoJumpGrace)
				}
			}
		} else if l.ops.live == 0 && l.external == 0 && l.nposted.Load() == 0 {
			return l.deadlock()
		}
		if timeout != 0 {
			l.waker.Sleeping()
			if l.nposted.Load() != 0 {
				timeout = 0
			}
		}
		if l.hooks != nil {
			l.hooks.BeforeWait(timeout)
		}
		var err error
		l.comps, err = l.backend.Wait(l.comps[:0], timeout)
		if timeout != 0 && l.waker.Awake() {
			l.waker.Drain()
			l.stats.Syscalls++
		}
		if err != nil {
			return err
		}
		if !jumpAt.IsZero() && len(l.comps) == 0 && l.nposted.Load() == 0 {
			l.fake.jumpTo(jumpAt)
		}
		if l.hooks != nil {
			l.hooks.AfterWait(len(l.comps))
		}
		l.stats.Completions += uint64(len(l.comps))
		for i, op := range l.comps {
			l.comps[i] = nil
			op.pending = false
			l.ops.remove(op)
			if op.FD != nil {
				op.FD.unlink(op)
			}
			if op.task == nil {
				l.sendDone(op)
				continue
			}
			l.ready(op.task)
		}
	}
	if pe := l.root.panicErr; pe != nil {
		panic(pe)
	}
	return l.root.handle.err
}

func (l *Loop) fireTimers() {
	tm := l.timers.peek()
	if tm == nil {
		return
	}
	now := l.clock.Now()
	for ; tm != nil && !tm.when.After(now); tm = l.timers.peek() {
		l.timers.remove(tm)
		switch {
		case tm.scope != nil:
			tm.scope.cancel(context.DeadlineExceeded)
		case tm.send != nil:
			l.lingerExpired(tm.send)
		default:
			l.ready(tm.task)
		}
	}
}

// watchContext cancels the root task's scope when the Run context is done.
// While it runs, the loop never reports a deadlock: the context can still
// wake it.
func (l *Loop) watchContext() (stop func()) {
	quit := make(chan struct{})
	if !l.ctxKeepsDeadlocks {
		l.external++
		l.ctxWatch = true
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-l.ctx.Done():
			l.postMu.Lock()
			l.cancelRoot = true
			l.nposted.Add(1)
			l.waker.Wake() // under postMu: see post
			l.postMu.Unlock()
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
		l.forgetContext()
	}
}

// forgetContext stops counting the context watcher among what can wake the
// loop (once: when its context is done, or when Run ends).
func (l *Loop) forgetContext() {
	if l.ctxWatch {
		l.ctxWatch = false
		l.external--
	}
}

// ErrDeadlock is wrapped by the error Run returns when every task is
// blocked and nothing can ever wake one.
var ErrDeadlock = errors.New("corio: deadlock: every task is blocked and nothing can wake one")

// deadlock returns the deadlock report. It keeps the errors and panics
// the open task groups had already collected (often the cause: the task
// that was to wake the others failed), so that errors.Is and errors.As
// see them next to ErrDeadlock.
func (l *Loop) deadlock() error {
	var b strings.Builder
	b.WriteString(ErrDeadlock.Error())
	b.WriteString(":")
	for _, line := range l.taskLines() {
		b.WriteString("\n\t")
		b.WriteString(line)
	}
	var errs []error
	for g := l.groups; g != nil; g = g.openNext {
		if g.panicErr != nil {
			errs = append(errs, g.panicErr)
		}
		for _, err := range g.errs {
			// An outer scope's cancellation, passed on by a child, is
			// no failure of its own.
			var ce *CancelError
			if !errors.As(err, &ce) || !onlyCancelOf(err, ce.scope) {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nerrors collected before the deadlock:")
		for _, err := range errs {
			b.WriteString("\n\t")
			b.WriteString(err.Error())
		}
	}
	return &deadlockError{msg: b.String(), errs: errs}
}

type deadlockError struct {
	msg  string
	errs []error // collected by the open task groups
}

func (e *deadlockError) Error() string { return e.msg }

// Unwrap returns ErrDeadlock and the errors the open groups had collected.
func (e *deadlockError) Unwrap() []error { return append([]error{ErrDeadlock}, e.errs...) }

// withKillPanics adds to Run's error the panics of the tasks teardown
// killed (their deferred code panicked while they unwound): a panic must
// not vanish.
func (l *Loop) withKillPanics(err error) error {
	if len(l.killPanics) == 0 {
		return err
	}
	return errors.Join(append([]error{err}, l.killPanics...)...)
}

func (l *Loop) taskLines() []string {
	var lines []string
	for t := l.all; t != nil; t = t.allNext {
		line := fmt.Sprintf("%s [%s]", t.Name(), stateNames[t.state])
		if t.state == stateWaiting {
			line += " waiting on " + t.waitReason
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return lines
}

// Dump writes every live task with its state and what it waits on (curio's
// ps) and, when the loop runs with Debug, each task's stack (curio's where).
// Call it from a task on the loop.
func (l *Loop) Dump(w io.Writer) {
	var stacks map[uint64]string
	if l.debug {
		stacks = goroutineStacks()
	}
	for _, line := range l.taskLines() {
		fmt.Fprintln(w, line)
	}
	if stacks == nil {
		return
	}
	for t := l.all; t != nil; t = t.allNext {
		if st, ok := stacks[t.goid]; ok {
			fmt.Fprintf(w, "\n%s:\n%s\n", t.Name(), st)
		}
	}
}

// teardown kills the tasks still alive (after a deadlock or a Goexit),
// then releases the backend.
func (l *Loop) teardown() {
	if l.stopped {
		return
	}
	l.stopped = true
	// Released even if a killed task's deferred code calls runtime.Goexit
	// (iter.Pull's stop re-raises it here).
	defer l.release()
	l.killAll()
}

// killAll stops the coroutine of every task still alive. It takes tasks
// from the head of the list until none is left: a killed task's deferred
// code may spawn more (new tasks go to the head), and those are killed
// too. A Goexit from a killed task does not cut it short.
func (l *Loop) killAll() {
	for l.all != nil {
		t := l.all
		l.all = t.allNext
		if l.all != nil {
			l.all.allPrev = nil
		}
		t.allNext = nil
		if t.stop == nil {
			continue
		}
		normal := false
		func() {
			defer func() {
				if !normal {
					l.killAll() // the rest, before the Goexit goes on
				}
			}()
			t.stop()
			normal = true
		}()
		if t.panicErr != nil {
			l.killPanics = append(l.killPanics, t.panicErr)
		}
	}
}

// release stops the watchdog, closes the backend and the descriptors left
// to it, and the waker.
func (l *Loop) release() {
	if l.fake != nil {
		l.fake.attach(l, false)
	}
	if l.stall != nil {
		l.stall.stop()
	}
	// Functions posted too late for the last iteration (a NetConn closed
	// from another goroutine, say) run now, while the backend is still
	// there, and those posted while they run; PostFunc refuses new ones
	// only once they are all done, so that what a refused caller does
	// instead (NetConn's detached close) comes after them.
	for {
		l.postMu.Lock()
		fns := l.takeFns(true)
		l.postMu.Unlock()
		if len(fns) == 0 {
			break
		}
		runFns(fns)
	}
	l.tid.Store(0)
	l.backend.Close()
	// Descriptors closed while write-behind bytes were still queued
	// (FD.Close left them open for sendDone) are closed now.
	for _, s := range l.ops.slots {
		// An op without a task is a write-behind send: its FD has a sendQueue.
		if op := s.op; op != nil && op.task == nil && op.FD.sq.closing {
			op.FD.sq.closing = false
			closeFd(op.FD.Sysfd)
		}
	}
	// A goroutine started by a task that was killed above (a ToThread
	// body, say) may still post; postMu and wakerGone make that a no-op.
	l.postMu.Lock()
	l.wakerGone = true
	l.waker.Close()
	l.postMu.Unlock()
}

// taskRing is the run queue: a growable ring buffer of tasks. Its length
// is a power of two, so an index wraps with a mask, not a division.
type taskRing struct {
	buf  []*Task
	head int
	n    int
}

func (q *taskRing) len() int { return q.n }

func (q *taskRing) push(t *Task) {
	if q.n == len(q.buf) {
		nb := make([]*Task, max(16, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
		}
		q.buf = nb
		q.head = 0
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = t
	q.n++
}

func (q *taskRing) pop() *Task {
	t := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return t
}

// curGoid returns the calling goroutine's id, parsed from its stack header
// ("goroutine 42 [running]:"). Used only in debug mode.
func curGoid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// goroutineStacks returns every goroutine's stack by id. Task coroutines are
// goroutines to the runtime, so their parked stacks are among them.
func goroutineStacks() map[uint64]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	m := make(map[uint64]string)
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.HasPrefix(g, []byte("goroutine ")) {
			continue
		}
		var id uint64
		for _, c := range g[len("goroutine "):] {
			if c < '0' || c > '9' {
				break
			}
			id = id*10 + uint64(c-'0')
		}
		m[id] = string(g)
	}
	return m
}
