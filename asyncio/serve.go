package asyncio

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Serve accepts connections on l until t is cancelled or l is closed, and
// runs handle for each in a new task of a task group, closing the
// connection when handle returns (trio's serve_listeners). A connection's
// failure is handle's business: Serve keeps serving. Accept errors that a
// busy server can recover from (out of file descriptors or memory) are
// retried with a growing pause of up to a second, and logged through
// log/slog's default logger, as net/http does. Closing l stops the
// accepting and lets the connections being served finish: a graceful
// shutdown. Serve returns, after every connection task has finished, the
// cancellation error when t was cancelled, nil when l was closed, or the
// accept error it could not recover from. A panic in handle is not
// recovered: like any task's, it cancels the others (every connection is
// closed and its task joined) and reaches Serve's caller.
func Serve(t *Task, l *Listener, handle func(t *Task, c *Conn)) error {
	err := Group(t, func(g *TaskGroup) error {
		var pause time.Duration
		for {
			c, err := l.Accept(t)
			if err != nil {
				if errors.Is(err, net.ErrClosed) && !IsCancellation(err) {
					// The listener was closed: stop accepting, and let
					// the connections being served finish (returning
					// the error would cancel them, as a failure).
					return nil
				}
				if !temporaryAcceptError(err) {
					return err
				}
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				// Said out loud, as net/http does: an operator must
				// see that the descriptor limit was hit.
				slog.Warn("asyncio: accept error; retrying", "addr", l.Addr().String(), "err", err.Error(), "pause", pause)
				if err := t.Sleep(pause); err != nil {
					return err
				}
				continue
			}
			pause = 0
			g.Spawn(func(t *Task) error {
				defer c.Close()
				handle(t, c)
				return nil
			})
		}
	})
	return err
}

func temporaryAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
