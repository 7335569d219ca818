package asyncio

import (
	"runtime/debug"

	"github.com/corio-go/corio/sched"
)

// ToThread runs fn on a new goroutine and waits for its result without
// blocking the loop: other tasks keep running. Use it for blocking calls
// (a library doing its own I/O, CPU-heavy work, cgo).
//
// A cancellation already pending when ToThread is called is returned at
// once, and fn does not run. Once fn has started, cancellation cannot
// interrupt it, so ToThread waits for fn to return and then returns fn's
// result; a cancellation that arrived meanwhile shows at the task's next
// blocking call. fn can pass t as its context (the task waits for fn, so
// its scope stays put) and watch t.Done() to return early; a goroutine
// that fn starts and that outlives it must be given a context derived from
// t instead (see Task). A panic in fn is re-raised in the task, with fn's
// stack.
func ToThread[T any](t *Task, fn func() (T, error)) (T, error) {
	var (
		v     T
		err   error
		pval  any
		stack []byte
	)
	// A blocking call reports a pending cancellation, as every other one
	// does; once fn has started it runs to the end (a goroutine cannot be
	// stopped), and a cancellation that arrives meanwhile shows at the
	// next blocking call.
	if err := t.Cancellation(); err != nil {
		return v, err
	}
	t.WaitExternal("ToThread", func(wake func()) {
		go func() {
			defer func() {
				if r := recover(); r != nil {
					pval, stack = r, debug.Stack()
				}
				wake()
			}()
			v, err = fn()
		}()
	}, nil)
	if stack != nil {
		panic(&sched.PanicError{Value: pval, Stack: stack, Task: t.Name() + " (ToThread goroutine)"})
	}
	return v, err
}

// Recv receives from a Go channel without blocking the loop, like
// `v, ok := <-ch`. If t is cancelled first, Recv returns the cancellation
// error; a value that was received at the same moment is returned instead,
// never dropped. No goroutine outlives the call.
func Recv[T any](t *Task, ch <-chan T) (v T, ok bool, err error) {
	if err := t.Cancellation(); err != nil {
		return v, false, err
	}
	select {
	case v, ok = <-ch:
		return v, ok, nil
	default:
	}
	stop := make(chan struct{})
	got := false
	cerr := t.WaitExternal("Recv", func(wake func()) {
		go func() {
			select {
			case v, ok = <-ch:
				got = true
			case <-stop:
			}
			wake()
		}()
	}, func() { close(stop) })
	if got {
		return v, ok, nil
	}
	return v, false, cerr
}
