package sched

import (
	"context"
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
	eff  atomic.Pointer[CancelError]
	mu   sync.Mutex // guards done
	done chan struct{}

	// Tree links, for propagation: child scopes and the tasks whose
	// innermost scope this is.
	firstChild *Scope
	prevSib    *Scope
	nextSib    *Scope
	firstTask  *Task
	timer      timer
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

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

// exit unlinks s from the tree and disarms its deadline.
func (s *Scope) exit() {
	s.exited = true
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

func (s *Scope) cancel(cause error) {
	if s.own != nil || s.exited {
		return
	}
	s.own = &CancelError{scope: s, cause: cause}
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
	if s.done != nil {
		close(s.done)
	}
	s.mu.Unlock()
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

// Done returns a channel closed when the scope becomes cancelled. Safe for
// concurrent use.
func (s *Scope) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		if s.eff.Load() != nil {
			return closedChan
		}
		s.done = make(chan struct{})
	}
	return s.done
}

// err returns the effective cancellation, or nil.
func (s *Scope) err() *CancelError { return s.eff.Load() }
