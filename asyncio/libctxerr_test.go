package asyncio_test

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/sched"
)

// A library that takes the task as its context returns ctx.Err() (a bare
// context.Canceled or context.DeadlineExceeded) when the scope it runs in
// is cancelled: crypto/tls's HandshakeContext always does (its AfterFunc
// fires first), net/http's client does too (in ToThread). That error is
// the scope's cancellation, and the scope that fired must absorb it as it
// absorbs a *CancelError.
func stalledHandshake(task *asyncio.Task, cfg *tls.Config) (hs func(t *asyncio.Task) error, closeAll func(), err error) {
	c, s, err := tcpPair(task)
	if err != nil {
		return nil, nil, err
	}
	// The client never sends a ClientHello. The net.Conn is bound to the
	// task that runs the handshake.
	return func(t *asyncio.Task) error { return tls.Server(s.NetConn(t), cfg).HandshakeContext(t) },
		func() { c.Close(); s.Close() }, nil
}

// conformStalled runs fn on every backend with hs, a TLS server handshake
// whose client never sends its ClientHello.
func conformStalled(t *testing.T, fn func(task *asyncio.Task, hs func(t *asyncio.Task) error) error) {
	cfg, _ := tlsTestConfig(t)
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		hs, closeAll, err := stalledHandshake(task, cfg)
		if err != nil {
			return err
		}
		defer closeAll()
		return fn(task, hs)
	})
}

func TestSkipAfterAbsorbsHandshakeTimeout(t *testing.T) {
	conformStalled(t, func(task *asyncio.Task, hs func(t *asyncio.Task) error) error {
		timedOut, err := asyncio.SkipAfter(task, 30*time.Millisecond, hs)
		if !timedOut || err != nil {
			return fmt.Errorf("SkipAfter around a handshake that timed out: timedOut=%v err=%v (%T), want true, nil", timedOut, err, err)
		}
		return task.Checkpoint()
	})
}

func TestCancelScopeAbsorbsHandshakeCancel(t *testing.T) {
	conformStalled(t, func(task *asyncio.Task, hs func(t *asyncio.Task) error) error {
		err := asyncio.CancelScope(task, func(t *asyncio.Task, s *sched.Scope) error {
			return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
				g.Spawn(func(t *asyncio.Task) error {
					if err := t.Sleep(20 * time.Millisecond); err != nil {
						return err
					}
					s.Cancel()
					return nil
				})
				return hs(t)
			})
		})
		if err != nil {
			return fmt.Errorf("CancelScope cancelled during a handshake: %v (%T), want nil", err, err)
		}
		return task.Checkpoint()
	})
}

// Handle.Cancel: "Its error then satisfies context.Canceled and is not
// reported as a group failure". A connection task cancelled this way while
// in a TLS handshake must not fail (and so cancel) the whole group.
func TestHandleCancelDuringHandshakeIsNoGroupFailure(t *testing.T) {
	conformStalled(t, func(task *asyncio.Task, hs func(t *asyncio.Task) error) error {
		siblingDone := false
		err := asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			h := g.Spawn(hs)
			g.Spawn(func(t *asyncio.Task) error {
				if err := t.Sleep(100 * time.Millisecond); err != nil {
					return err
				}
				siblingDone = true
				return nil
			})
			if err := task.Sleep(20 * time.Millisecond); err != nil {
				return err
			}
			h.Cancel()
			return nil
		})
		if err != nil || !siblingDone {
			return fmt.Errorf("group with one child cancelled by its handle mid-handshake: %v (%T), sibling finished: %v; want nil, true", err, err, siblingDone)
		}
		return nil
	})
}
