package asyncio_test

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/corio-go/corio/asyncio"
)

// A net.Conn keeps its addresses after Close (net's conn.LocalAddr returns
// fd.laddr), and the *net.OpError of an operation on a closed conn carries
// Source. A Dial'ed or accepted TCP Conn looked its local address up lazily,
// so once closed LocalAddr returned nil (a log line calling
// c.LocalAddr().String() after Close panics) and errors lost Source.
func TestLocalAddrSurvivesClose(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		c, s, err := tcpPair(task)
		if err != nil {
			return err
		}
		defer s.Close()
		c.Close()
		s.Close()
		for name, conn := range map[string]*asyncio.Conn{"dialled": c, "accepted": s} {
			nc := conn.NetConn(task)
			if a := nc.LocalAddr(); a == nil {
				return fmt.Errorf("%s conn: LocalAddr() is nil after Close (net keeps it)", name)
			}
			_, err := nc.Read(make([]byte, 1))
			var oe *net.OpError
			if !errors.As(err, &oe) || !errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("%s conn: read after close: %v", name, err)
			}
			if oe.Op != "read" || oe.Net != "tcp" || oe.Source == nil || oe.Addr == nil {
				return fmt.Errorf("%s conn: read after close: OpError %+v, want Op read, Net tcp, Source and Addr set", name, oe)
			}
		}
		return nil
	})
}
