package asyncio_test

// Conn addresses compared with package net's (the oracle).

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/corio-go/corio/asyncio"
)

func eachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// An accepted Unix connection's RemoteAddr is the peer's bound name, as
// net's is; corio always reported an empty name.
func TestUnixAcceptRemoteAddr(t *testing.T) {
	eachBackend(t, func(tt *testing.T, backend string) {
		dir := tt.TempDir()
		srv, cli := filepath.Join(dir, "srv"), filepath.Join(dir, "cli")
		err := asyncio.Run(func(t *asyncio.Task) error {
			l, err := asyncio.Listen(t, "unix", srv)
			if err != nil {
				return err
			}
			defer l.Close()
			// connect(2) on a Unix socket with room in the backlog does
			// not block: a plain net dial is fine here.
			nc, err := net.DialUnix("unix", &net.UnixAddr{Name: cli, Net: "unix"}, &net.UnixAddr{Name: srv, Net: "unix"})
			if err != nil {
				return err
			}
			defer nc.Close()
			s, err := l.Accept(t)
			if err != nil {
				return err
			}
			defer s.Close()
			ra, ok := s.RemoteAddr().(*net.UnixAddr)
			if !ok || ra.Name != cli || ra.Net != "unix" {
				tt.Errorf("accepted RemoteAddr = %#v, want &net.UnixAddr{Name: %q, Net: \"unix\"}", s.RemoteAddr(), cli)
			}
			// An unnamed peer next, accepted by the same task (whose
			// operation record still holds the first peer's name): net
			// reports "@".
			nc2, err := net.Dial("unix", srv)
			if err != nil {
				return err
			}
			defer nc2.Close()
			s2, err := l.Accept(t)
			if err != nil {
				return err
			}
			defer s2.Close()
			if ra, ok := s2.RemoteAddr().(*net.UnixAddr); !ok || ra.Name != "@" || ra.Net != "unix" {
				tt.Errorf("unnamed peer: accepted RemoteAddr = %#v, want &net.UnixAddr{Name: \"@\", Net: \"unix\"} as net reports", s2.RemoteAddr())
			}
			return nil
		}, asyncio.WithBackend(backend))
		if err != nil {
			tt.Fatal(err)
		}
	})
}

// net.Dial to a wildcard address ("0.0.0.0:port", "[::]:port", which mean
// this host) reports the peer the kernel connected to (getpeername):
// 127.0.0.1. corio reported the wildcard.
func TestDialWildcardRemoteAddr(t *testing.T) {
	eachBackend(t, func(tt *testing.T, backend string) {
		err := asyncio.Run(func(t *asyncio.Task) error {
			l, err := asyncio.Listen(t, "tcp4", "127.0.0.1:0")
			if err != nil {
				return err
			}
			defer l.Close()
			port := l.Addr().(*net.TCPAddr).Port
			c, err := asyncio.Dial(t, "tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
			if err != nil {
				return err
			}
			defer c.Close()
			ra, ok := c.RemoteAddr().(*net.TCPAddr)
			if !ok || !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port != port {
				tt.Errorf("RemoteAddr after dialing 0.0.0.0:%d = %v, want 127.0.0.1:%d as net reports", port, c.RemoteAddr(), port)
			}
			return nil
		}, asyncio.WithBackend(backend))
		if err != nil {
			tt.Fatal(err)
		}
	})
}
