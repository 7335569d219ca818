package asyncio_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// Serve runs a handler task per connection; closing the listener (or
// cancelling the task) stops it after every handler has returned.
func ExampleServe() {
	asyncio.Run(func(t *asyncio.Task) error {
		l, err := asyncio.Listen(t, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error {
				return asyncio.Serve(t, l, func(t *asyncio.Task, c *asyncio.Conn) {
					// One line in, the same line upper-cased out.
					line, err := bufio.NewReader(c.NetConn(t)).ReadString('\n')
					if err == nil {
						c.Write(t, []byte(strings.ToUpper(line)))
					}
				})
			})
			c, err := asyncio.Dial(t, "tcp", l.Addr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			c.Write(t, []byte("hello\n"))
			reply, err := bufio.NewReader(c.NetConn(t)).ReadString('\n')
			fmt.Printf("%q %v\n", reply, err)
			return l.Close() // Serve returns nil; the group ends
		})
	})
	// Output: "HELLO\n" <nil>
}

// Write returns once its bytes are on their way (on io_uring, possibly
// before the kernel has them); Flush waits until the kernel has every byte
// written so far, and reports a send that failed after its Write returned.
func ExampleConn_Flush() {
	asyncio.Run(func(t *asyncio.Task) error {
		l, err := asyncio.Listen(t, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := asyncio.Dial(t, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := l.Accept(t)
		if err != nil {
			return err
		}
		defer s.Close()
		for _, part := range []string{"several ", "small ", "writes\n"} {
			if _, err := c.Write(t, []byte(part)); err != nil {
				return err
			}
		}
		fmt.Println("flush:", c.Flush(t))
		line, err := bufio.NewReader(s.NetConn(t)).ReadString('\n')
		fmt.Printf("%q %v\n", line, err)
		return nil
	})
	// Output:
	// flush: <nil>
	// "several small writes\n" <nil>
}

// NetConn adapts a Conn to net.Conn for one task, deadlines included, so
// code written for net.Conn (bufio, crypto/tls, net/http's parsers) runs
// inside tasks.
func ExampleConn_NetConn() {
	asyncio.Run(func(t *asyncio.Task) error {
		l, err := asyncio.Listen(t, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := asyncio.Dial(t, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := l.Accept(t)
		if err != nil {
			return err
		}
		defer s.Close()
		nc := s.NetConn(t)
		nc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err = nc.Read(make([]byte, 1))
		var ne net.Error
		fmt.Println("timeout:", errors.As(err, &ne) && ne.Timeout())
		return nil
	})
	// Output: timeout: true
}

func ExampleListenPacket() {
	asyncio.Run(func(t *asyncio.Task) error {
		a, err := asyncio.ListenPacket(t, "udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer a.Close()
		b, err := asyncio.ListenPacket(t, "udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer b.Close()
		if _, err := b.WriteTo(t, []byte("ping"), a.LocalAddr()); err != nil {
			return err
		}
		buf := make([]byte, 64)
		n, from, err := a.ReadFrom(t, buf)
		fmt.Println(string(buf[:n]), from.String() == b.LocalAddr().String(), err)
		return nil
	})
	// Output: ping true <nil>
}

// Checkpoint lets the other ready tasks run, and reports a cancellation
// that is pending: a long computation calls it now and then.
func ExampleTask_Checkpoint() {
	asyncio.Run(func(t *asyncio.Task) error {
		timedOut, _ := asyncio.SkipAfter(t, 20*time.Millisecond, func(t *asyncio.Task) error {
			for {
				// ... a slice of work ...
				if err := t.Checkpoint(); err != nil {
					return err
				}
			}
		})
		fmt.Println("stopped by the deadline:", timedOut)
		return nil
	})
	// Output: stopped by the deadline: true
}
