package asyncio_test

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// crypto/tls's HandshakeContext(ctx) closes its underlying net.Conn from
// its own goroutine (context.AfterFunc(ctx, conn.Close)) when ctx is
// cancelled, and a net.Conn's Close may be called from any goroutine to
// unblock a Read. NetConn's Close ran FD.Close on that goroutine, off the
// loop's thread: a data race on the loop's state (go test -race reports it
// with tls.HandshakeContext inside WithTimeout), an io_uring cancellation
// queued by another thread on a SINGLE_ISSUER ring, and the task blocked in
// Read was not woken (it waited here for its guard timeout).
func TestNetConnCloseFromAnotherGoroutineUnblocksRead(t *testing.T) {
	conformPair(t, func(_ *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		nc := c.NetConn(task)
		closed := make(chan error, 1)
		tm := time.AfterFunc(10*time.Millisecond, func() { closed <- nc.Close() })
		defer tm.Stop()
		var rerr error
		start := time.Now()
		timedOut, err := asyncio.SkipAfter(task, 300*time.Millisecond, func(t *asyncio.Task) error {
			_, rerr = nc.Read(make([]byte, 1))
			return nil
		})
		if err != nil {
			return err
		}
		if waited := time.Since(start); timedOut || waited > 150*time.Millisecond {
			return fmt.Errorf("Read not unblocked by a Close from another goroutine 10ms later (waited %v)", waited)
		}
		if !errors.Is(rerr, net.ErrClosed) {
			return fmt.Errorf("Read after Close: %v, want net.ErrClosed", rerr)
		}
		// The Close itself reported no error.
		if _, _, err := asyncio.Recv(task, closed); err != nil {
			return err
		}
		return nil
	})
}
