package sched

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// CancelError is the error a task receives at a trap when a cancel scope it
// is in has been cancelled. It satisfies errors.Is(err, context.Canceled) or,
// when a deadline fired, errors.Is(err, context.DeadlineExceeded). It
// remembers which scope was cancelled, so that scope (and no other) can
// recognise and absorb it with Scope.Caught.
type CancelError struct {
	scope *Scope
	cause error
	byRun bool // the Run context was done (its context.Cause applies)
}

func (e *CancelError) Error() string { return e.cause.Error() }

// Unwrap returns context.Canceled or context.DeadlineExceeded.
func (e *CancelError) Unwrap() error { return e.cause }

// Scope is a cancel scope (trio's model). A task enters scopes in a strictly
// nested way; cancelling a scope cancels every task inside it and inside its
// unshielded descendants, at their next trap. A shielded scope keeps the
// cancellation of outer scopes out.
type Scope struct {
	loop     *Loop
	parent   *Scope
	shield   bool
	exited   bool
	own      *CancelError // set when this scope itself was cancelled
	deadline time.Time    // this scope's own deadline (zero: none)
	effDL    time.Time    // earliest deadline up to the nearest shield

	// eff is the cancellation in effect here: own, or inherited from an
	// unshielded ancestor. Atomic because a Task's context methods may be
	// called from other goroutines (ToThread bodies, net/http clients).
	eff atomic.Pointer[CancelError]

	// ctx is the scope as a context.Context (see context), made at first
	// use, and sc what cancels it. Guarded by mu, as they are made on
	// whatever goroutine first asks.
	mu  sync.Mutex
	ctx context.Context
	sc  *scopeCtx

	// Tree links, for propagation: child scopes and the tasks whose
	// innermost scope this is.
	firstChild *Scope
	prevSib    *Scope
	nextSib    *Scope
	firstTask  *Task
	timer      timer
}

// init links s under parent. Called on the loop thread.
func (s *Scope) init(l *Loop, parent *Scope, deadline time.Time, shield bool) {
	s.loop = l
	s.parent = parent
	s.shield = shield
	s.deadline = deadline
	s.effDL = deadline
	s.timer.index = -1
	s.timer.scope = s
	if parent != nil {
		if !shield {
			if pdl := parent.effDL; !pdl.IsZero() && (deadline.IsZero() || pdl.Before(deadline)) {
				s.effDL = pdl
			}
			if ce := parent.eff.Load(); ce != nil {
				s.eff.Store(ce)
			}
		}
		s.nextSib = parent.firstChild
		if s.nextSib != nil {
			s.nextSib.prevSib = s
		}
		parent.firstChild = s
	}
	if !deadline.IsZero() {
		if !deadline.After(l.clock.Now()) {
			s.cancel(context.DeadlineExceeded)
		} else {
			s.timer.when = deadline
			l.timers.push(&s.timer)
		}
	}
}

// exit unlinks s from the tree and disarms its deadline. Its context is
// cancelled, as a context.WithTimeout's is by the deferred cancel of the
// function that made it: a context derived from the task inside the scope
// does not outlive it.
func (s *Scope) exit() {
	s.mu.Lock()
	s.exited = true // under mu: context reads it on whatever goroutine asks
	sc := s.sc
	s.mu.Unlock()
	if sc != nil {
		sc.cancel(context.Canceled, false)
	}
	if s.timer.index >= 0 {
		s.loop.timers.remove(&s.timer)
	}
	if p := s.parent; p != nil {
		if s.prevSib != nil {
			s.prevSib.nextSib = s.nextSib
		} else {
			p.firstChild = s.nextSib
		}
		if s.nextSib != nil {
			s.nextSib.prevSib = s.prevSib
		}
		s.prevSib, s.nextSib = nil, nil
	}
}

// Cancel cancels the scope: every task inside it gets a CancelError
// satisfying context.Canceled at its next trap, and operations in flight are
// cancelled. Cancel must be called on the loop's thread (from a task);
// cancelling an exited or already cancelled scope does nothing.
func (s *Scope) Cancel() { s.cancel(context.Canceled) }

func (s *Scope) cancel(cause error) { s.cancelOwn(cause, false) }

// cancelByRun cancels the root scope because the Run context is done.
func (s *Scope) cancelByRun(cause error) { s.cancelOwn(cause, true) }

// cancelOwn cancels s itself with cause, once, unless it has exited.
func (s *Scope) cancelOwn(cause error, byRun bool) {
	if s.own != nil || s.exited {
		return
	}
	s.own = &CancelError{scope: s, cause: cause, byRun: byRun}
	s.propagate(s.own)
}

// propagate makes ce the effective cancellation of s and its unshielded
// subtree, interrupting every task waiting there.
func (s *Scope) propagate(ce *CancelError) {
	if s.eff.Load() != nil {
		return // already cancelled, and so is its subtree
	}
	s.eff.Store(ce)
	s.mu.Lock()
	sc := s.sc
	s.mu.Unlock()
	if sc != nil {
		sc.cancelWith(ce)
	}
	for t := s.firstTask; t != nil; t = t.scopeNext {
		t.interrupt()
	}
	for c := s.firstChild; c != nil; c = c.nextSib {
		if !c.shield {
			c.propagate(ce)
		}
	}
}

// Cancelled reports whether the scope itself was cancelled (by Cancel or by
// its deadline).
func (s *Scope) Cancelled() bool { return s.own != nil }

// Caught reports whether err is this scope's own cancellation, which the
// code that opened the scope should absorb: the scope's *CancelError,
// possibly wrapped, or a multi-error (Unwrap() []error) made of nothing
// else. A multi-error that also holds another error is not caught: that
// error must reach the caller, not vanish with the cancellation.
//
// A library given the task as its context reports the cancellation as
// ctx.Err(), a bare context.Canceled or context.DeadlineExceeded
// (crypto/tls's HandshakeContext, net/http's client): while this scope's
// own cancellation is the one in effect in it, that sentinel, possibly
// wrapped, is its cancellation too.
func (s *Scope) Caught(err error) bool {
	if s.own == nil {
		return false
	}
	return onlyCancelOf(err, s)
}

// onlyCancelOf reports whether err is s's cancellation and, through any
// multi-errors, nothing else.
func onlyCancelOf(err error, s *Scope) bool {
	for err != nil {
		if err == s.own.cause && s.eff.Load() == s.own {
			return true // the task's context error for s's cancellation
		}
		switch e := err.(type) {
		case *CancelError:
			return e.scope == s
		case interface{ Unwrap() []error }:
			errs := e.Unwrap()
			for _, x := range errs {
				if !onlyCancelOf(x, s) {
					return false
				}
			}
			return len(errs) > 0
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		default:
			return false
		}
	}
	return false
}

// Deadline returns the scope's own deadline, if it has one.
func (s *Scope) Deadline() (time.Time, bool) { return s.deadline, !s.deadline.IsZero() }

// Done returns a channel closed when the scope becomes cancelled (or has
// exited). Safe for concurrent use.
func (s *Scope) Done() <-chan struct{} { return s.context().Done() }

// context returns the scope as a context.Context, made at first use.
//
// A *Task is a context.Context, but one whose cancellation changes as the
// task enters and leaves scopes, while context's contract wants a Done
// channel, once closed, to go with a non-nil Err for ever: the context
// package's goroutine that waits on a parent's Done and then reads its Err
// panicked ("missing cancel error") when the task had meanwhile left the
// cancelled scope. So each scope has a context of its own, a *cancelCtx
// made by the context package (context.WithCancel of a scopeCtx), which
// Task.Done and Task.Value hand out: a context derived from the task, even
// through context.WithValue, finds it through Value and becomes its child,
// cancelled by the context package itself, with no goroutine. The scope
// cancels it through scopeCtx with its own error (DeadlineExceeded for a
// deadline, under a FakeClock too) when it is cancelled (propagate reaches
// every scope of the subtree, up to a shield), and with Canceled when it
// ends, as a context.WithTimeout is by the deferred cancel of the function
// that made it.
func (s *Scope) context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx != nil {
		return s.ctx
	}
	s.sc = &scopeCtx{values: s.loop.vals, run: s.loop.ctx, deadline: s.effDL, done: make(chan struct{})}
	// Cancelled through s.sc's AfterFunc, with s.sc's error; its own
	// cancel only releases it afterwards.
	s.ctx, s.sc.release = context.WithCancel(s.sc)
	switch ce := s.eff.Load(); {
	case ce != nil:
		s.sc.cancelWith(ce)
	case s.exited:
		s.sc.cancel(context.Canceled, false)
	}
	return s.ctx
}

// contextIfMade returns the scope's context if it was made, else nil.
func (s *Scope) contextIfMade() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}

// err returns the effective cancellation, or nil.
func (s *Scope) err() *CancelError { return s.eff.Load() }

// scopeCtx is the parent of a scope's context: it has the scope's deadline
// and the values of the Run context, and its cancellation, with the error
// the scope gives, reaches the context made from it through AfterFunc (the
// context package registers the child there, and the callback cancels it
// synchronously).
type scopeCtx struct {
	values   context.Context // the Run context's values, without its cancellation
	run      context.Context // the Run context
	deadline time.Time
	done     chan struct{}
	mu       sync.Mutex // guards err, byRun and fns
	err      error
	byRun    bool // cancelled because the Run context is done: Value (and so context.Cause) sees it
	fns      []*afterFunc
	release  context.CancelFunc // the scope context's own cancel
}

type afterFunc struct {
	f       func()
	stopped bool
}

func (c *scopeCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }
func (c *scopeCtx) Done() <-chan struct{}       { return c.done }
func (c *scopeCtx) Value(key any) any {
	c.mu.Lock()
	byRun := c.byRun
	c.mu.Unlock()
	if byRun {
		return c.run.Value(key)
	}
	return c.values.Value(key)
}

func (c *scopeCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc runs f when c is cancelled (at once if it is), on the
// cancelling goroutine; the returned function stops that.
func (c *scopeCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.fns = append(c.fns, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.stopped {
			return false
		}
		a.stopped = true
		if i := slices.Index(c.fns, a); i >= 0 {
			c.fns = slices.Delete(c.fns, i, i+1)
		}
		return true
	}
}

// cancelWith makes c done with ce's error, once.
func (c *scopeCtx) cancelWith(ce *CancelError) { c.cancel(ce.cause, ce.byRun) }

// cancel makes c done with err, once.
func (c *scopeCtx) cancel(err error, byRun bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.byRun = byRun
	close(c.done)
	fns := c.fns
	c.fns = nil
	for _, a := range fns {
		a.stopped = true
	}
	release := c.release
	c.mu.Unlock()
	for _, a := range fns {
		a.f()
	}
	if release != nil {
		release()
	}
}
