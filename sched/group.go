package sched

import (
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
)

// ErrGroupClosed is the error of a Handle returned by Spawn on a group whose
// body has returned and whose children have all finished.
var ErrGroupClosed = errors.New("corio: spawn on a task group that has already finished")

// Group is a task group (giambio's pool, trio's nursery): RunGroup returns
// only when every child has finished. The first child error cancels the
// siblings and the group's body; a child's panic is re-raised in the task
// that ran the group, with the child's stack.
type Group struct {
	loop     *Loop
	owner    *Task
	scope    Scope
	live     int
	errs     []error
	panicErr *PanicError
	waiting  bool
	closed   bool

	// The loop's open groups, whose collected errors a deadlock report
	// keeps.
	openPrev, openNext *Group
}

// Handle refers to a spawned task. Its zero value is not usable.
type Handle struct {
	task    *Task
	done    bool
	err     error
	joiners WaitQueue
}

// MultiError is returned by a group when more than one child failed. Its
// message is the first error's, followed by how many more there are;
// Unwrap gives all of them, so errors.Is and
// errors.As look through every child's error.
type MultiError struct {
	Errs []error
}

func (e *MultiError) Error() string {
	var b strings.Builder
	b.WriteString(e.Errs[0].Error())
	fmt.Fprintf(&b, " (and %d more errors)", len(e.Errs)-1)
	return b.String()
}

// Unwrap returns every error of the group, first one first.
func (e *MultiError) Unwrap() []error { return e.Errs }

// RunGroup runs body in t inside a new task group and returns after body
// and every child spawned on the group have finished. It returns nil, the
// single error, or a *MultiError. Errors that are only the group's own
// cancellation (after Cancel, or caused by a sibling's failure) are not
// reported.
func RunGroup(t *Task, body func(g *Group) error) error {
	l := t.loop
	g := &Group{loop: l, owner: t}
	t.enterScope(&g.scope, zeroTime, false)
	l.linkGroup(g)
	defer func() {
		l.unlinkGroup(g)
		// Killed (the loop tearing down) in the body or the join: leave
		// the group's scope too, or the caller's own ExitScope would
		// panic ("not the innermost") in place of the kill.
		if t.scope.Load() == &g.scope {
			t.ExitScope(&g.scope)
		}
	}()
	killed := false
	var killedPanic *PanicError
	func() {
		defer func() {
			if r := recover(); r != nil {
				if r == errKilled {
					killed = true
					return
				}
				pe, ok := r.(*PanicError)
				if !ok {
					pe = &PanicError{Value: r, Stack: debug.Stack(), Task: t.Name()}
				}
				if l.stopped {
					// Killed, and the body's deferred code panicked in
					// place of the kill: there is no join to come, so
					// the panic goes on up, for teardown to report.
					killedPanic = pe
					return
				}
				g.addPanic(pe)
			}
		}()
		if err := body(g); err != nil {
			g.addErr(err)
		}
	}()
	if killedPanic != nil {
		panic(killedPanic)
	}
	if killed {
		panic(errKilled)
	}
	for g.live > 0 {
		g.waiting = true
		t.suspend(waitJoin, "task group join")
	}
	g.closed = true
	t.ExitScope(&g.scope)
	if g.panicErr != nil {
		panic(g.panicErr)
	}
	switch len(g.errs) {
	case 0:
		return nil
	case 1:
		return g.errs[0]
	}
	return &MultiError{Errs: g.errs}
}

func (l *Loop) linkGroup(g *Group) {
	g.openNext = l.groups
	if l.groups != nil {
		l.groups.openPrev = g
	}
	l.groups = g
}

func (l *Loop) unlinkGroup(g *Group) {
	if g.openPrev != nil {
		g.openPrev.openNext = g.openNext
	} else if l.groups == g {
		l.groups = g.openNext
	}
	if g.openNext != nil {
		g.openNext.openPrev = g.openPrev
	}
	g.openPrev, g.openNext = nil, nil
}

func (g *Group) addErr(err error) {
	if g.scope.Caught(err) {
		return
	}
	// The same error from several children is kept once. Only errors of
	// a comparable type can be compared: == on two errors of one
	// uncomparable type (a slice-based multi-error, say) panics, and here
	// it would panic on the loop, out of every task's reach.
	if reflect.TypeOf(err).Comparable() {
		for _, e := range g.errs {
			if e == err {
				return
			}
		}
	}
	g.errs = append(g.errs, err)
	g.scope.Cancel()
}

func (g *Group) addPanic(pe *PanicError) {
	if g.panicErr == nil {
		g.panicErr = pe
	}
	g.scope.Cancel()
}

// Spawn starts fn as a new child task of the group and returns its handle.
// It may be called from any task on the group's loop (the children can
// spawn siblings). Spawning on a finished group returns a handle whose Wait
// reports ErrGroupClosed.
func (g *Group) Spawn(fn func(t *Task) error) *Handle {
	return g.SpawnNamed("", fn)
}

// SpawnNamed is Spawn with a task name for dumps and deadlock reports.
func (g *Group) SpawnNamed(name string, fn func(t *Task) error) *Handle {
	if g.closed {
		return &Handle{done: true, err: ErrGroupClosed}
	}
	t := g.loop.newTask(name, fn, &g.scope)
	t.group = g
	g.live++
	return &t.handle
}

// Cancel cancels the group: its body and all its children get a
// cancellation error at their next trap. The group then returns normally
// (nil) unless some task failed with another error.
func (g *Group) Cancel() { g.scope.Cancel() }

// Scope returns the group's cancel scope.
func (g *Group) Scope() *Scope { return &g.scope }

// childDone is called by the loop when a child of g has finished.
func (g *Group) childDone(t *Task) {
	g.live--
	if t.panicErr != nil {
		g.addPanic(t.panicErr)
	} else if err := t.handle.err; err != nil && !t.own.Caught(err) {
		g.addErr(err)
	}
	if g.live == 0 && g.waiting {
		g.waiting = false
		g.loop.ready(g.owner)
	}
}

// Wait waits until the spawned task has finished and returns its error (a
// *PanicError if it panicked). If t is cancelled while waiting, Wait returns
// the cancellation error; the spawned task keeps running.
func (h *Handle) Wait(t *Task) error {
	for !h.done {
		if err := h.joiners.Wait(t, "handle wait"); err != nil {
			return err
		}
	}
	return h.err
}

// Done reports whether the spawned task has finished.
func (h *Handle) Done() bool { return h.done }

// Cancel cancels the spawned task only (its own scope). Its error then
// satisfies context.Canceled and is not reported as a group failure.
func (h *Handle) Cancel() {
	if !h.done && h.task != nil {
		h.task.own.Cancel()
	}
}

// Task returns the spawned task (nil for a handle of a failed spawn).
func (h *Handle) Task() *Task { return h.task }
