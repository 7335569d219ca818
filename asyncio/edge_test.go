package asyncio_test

// Edge cases of the socket API, each on both backends: each test failed
// before its fix (found in a review of the Conn contract).

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// hugeBuf returns a 4 GiB buffer backed by untouched anonymous memory (no
// RSS until written), unmapped when the test ends.
func hugeBuf(t *testing.T) []byte {
	b, err := syscall.Mmap(-1, 0, 1<<32, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("mmap 4 GiB: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(b) })
	return b
}

// A Read into a buffer of 4 GiB gets the data waiting. (On io_uring the
// SQE's 32-bit length was uint32(len(buf)) == 0: the Read reported io.EOF.)
func TestReadHugeBuffer(t *testing.T) {
	buf := hugeBuf(t)
	conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		if _, err := s.Write(task, []byte("hi")); err != nil {
			return err
		}
		if err := s.Flush(task); err != nil {
			return err
		}
		if err := task.Sleep(5 * time.Millisecond); err != nil {
			return err
		}
		n, err := c.Read(task, buf)
		if err != nil || n != 2 || string(buf[:2]) != "hi" {
			return fmt.Errorf("Read into a 4 GiB buffer: n=%d err=%v, want 2 bytes \"hi\"", n, err)
		}
		return nil
	})
}

// A Write of 4 GiB to a reading peer sends. (On io_uring each send was
// submitted with length 0 and completed with 0, and the Write looped for
// ever; here a deadline stops it.)
func TestWriteHugeBuffer(t *testing.T) {
	big := hugeBuf(t)
	conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		var wrote int
		var werr error
		err := asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			h := g.Spawn(func(task *asyncio.Task) error {
				_, werr = asyncio.SkipAfter(task, 100*time.Millisecond, func(task *asyncio.Task) error {
					var err error
					wrote, err = s.Write(task, big)
					return err
				})
				return nil
			})
			g.Spawn(func(task *asyncio.Task) error {
				buf := make([]byte, 1<<20)
				for !h.Done() {
					if _, err := asyncio.SkipAfter(task, 10*time.Millisecond, func(task *asyncio.Task) error {
						_, err := c.Read(task, buf)
						return err
					}); err != nil {
						return err
					}
				}
				return nil
			})
			return nil
		})
		if err != nil {
			return err
		}
		if werr != nil {
			return werr
		}
		if wrote == 0 {
			return errors.New("a 4 GiB Write sent nothing in 100ms to a reading peer")
		}
		return nil
	})
}

// Dial to a Unix socket whose accept queue is full fails (EAGAIN, as
// net.Dial) or waits; it never returns a Conn that is not connected. (The
// epoll backend took connect's EAGAIN for "in progress"; the unconnected
// socket is writable at once and SO_ERROR is 0.)
func TestDialUnixBacklogFull(t *testing.T) {
	dir := t.TempDir()
	i := 0
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		i++
		path := filepath.Join(dir, fmt.Sprintf("s%d", i))
		ls, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(ls)
		if err := syscall.Bind(ls, &syscall.SockaddrUnix{Name: path}); err != nil {
			return err
		}
		if err := syscall.Listen(ls, 0); err != nil { // full after one connection
			return err
		}
		var conns []*asyncio.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 4 {
			var c *asyncio.Conn
			err := asyncio.WithTimeout(task, 100*time.Millisecond, func(t *asyncio.Task) error {
				var err error
				c, err = asyncio.Dial(t, "unix", path)
				return err
			})
			if err != nil {
				return nil // refused (EAGAIN, as net.Dial) or blocked until the deadline: both fine
			}
			conns = append(conns, c)
			if _, err := syscall.Getpeername(c.Fd()); err != nil {
				_, werr := c.Write(task, []byte("x"))
				return fmt.Errorf("Dial #%d returned a Conn that is not connected: getpeername: %v; Write: %v", len(conns), err, werr)
			}
		}
		return errors.New("no Dial ever failed or blocked with a full accept queue")
	})
}

// WriteTo an IPv6 address from an IPv4 socket returns an error, as
// net.UDPConn does. (It panicked in netip.Addr.As4.)
func TestWriteToFamilyMismatch(t *testing.T) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		a, err := asyncio.ListenPacket(task, "udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer a.Close()
		var perr error
		func() {
			defer func() {
				if r := recover(); r != nil {
					perr = fmt.Errorf("WriteTo panicked: %v", r)
				}
			}()
			_, err = a.WriteTo(task, []byte("x"), &net.UDPAddr{IP: net.ParseIP("::1"), Port: 9})
		}()
		if perr != nil {
			return perr
		}
		if err == nil {
			return errors.New("WriteTo of an IPv6 address on an IPv4 socket succeeded")
		}
		return nil
	})
}

// A zero-length Read on a closed Conn returns net.ErrClosed, as net.Conn's
// does (not (0, nil)).
func TestZeroLengthReadOnClosedConn(t *testing.T) {
	conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		c.Close()
		if _, err := c.Read(task, nil); !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("zero-length Read on closed Conn: %v, want net.ErrClosed", err)
		}
		return nil
	})
}

// A zero-length Write on a closed Conn returns net.ErrClosed, as net.Conn's
// does (not (0, nil)).
func TestZeroLengthWriteOnClosedConn(t *testing.T) {
	conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		c.Close()
		if _, err := c.Write(task, nil); !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("zero-length Write on closed Conn: %v, want net.ErrClosed", err)
		}
		return nil
	})
}

// Dial("udp", ...) is refused. (It made a stream socket and connected a TCP
// stream to the port.)
func TestDialUDPNetworkRejected(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := asyncio.Dial(task, "udp", l.Addr().String())
		if err == nil {
			c.Close()
			return fmt.Errorf("Dial(\"udp\", %s) succeeded with a TCP connection", l.Addr())
		}
		if une := net.UnknownNetworkError(""); !errors.As(err, &une) {
			return fmt.Errorf("Dial(\"udp\"): %v, want a net.UnknownNetworkError", err)
		}
		return nil
	})
}

// Listen("udp", ...) is refused. (It made a TCP listener.)
func TestListenUDPNetworkRejected(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "udp", "127.0.0.1:0")
		if err == nil {
			addr := l.Addr()
			l.Close()
			return fmt.Errorf("Listen(\"udp\") succeeded: a TCP listener on %v (%T)", addr, addr)
		}
		if une := net.UnknownNetworkError(""); !errors.As(err, &une) {
			return fmt.Errorf("Listen(\"udp\"): %v, want a net.UnknownNetworkError", err)
		}
		return nil
	})
}
