package asyncio_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"go.uber.org/goleak"
)

// testBackends returns the backends this machine can run: epoll always,
// io_uring when the kernel (or container) allows it.
func testBackends(t testing.TB) []string {
	names := []string{"epoll"}
	if err := asyncio.Run(func(*asyncio.Task) error { return nil }, asyncio.WithBackend("uring")); err == nil {
		names = append(names, "uring")
	} else if !errors.Is(err, asyncio.ErrBackendUnavailable) {
		t.Fatalf("uring probe: unexpected error %v", err)
	}
	return names
}

// conform runs fn as a root task on every available backend (with opts),
// checking that no fd and no goroutine leaked.
func conform(t *testing.T, fn func(t *testing.T, task *asyncio.Task) error, opts ...asyncio.Option) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			fds := openFDs(t)
			err := asyncio.Run(func(task *asyncio.Task) error {
				if got := asyncio.Backend(task); got != b {
					return fmt.Errorf("backend %s, want %s", got, b)
				}
				return fn(t, task)
			}, append([]asyncio.Option{asyncio.WithBackend(b)}, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			goleak.VerifyNone(t)
			if after := openFDs(t); after != fds {
				t.Fatalf("fd leak: %d open before, %d after", fds, after)
			}
		})
	}
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// echoServer serves an echo on a fresh loopback listener inside g and
// returns its address.
func echoServer(t *asyncio.Task, g *asyncio.TaskGroup) (string, *asyncio.Listener, error) {
	l, err := asyncio.Listen(t, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	g.Spawn(func(t *asyncio.Task) error {
		defer l.Close()
		return asyncio.Group(t, func(cg *asyncio.TaskGroup) error {
			for {
				c, err := l.Accept(t)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return nil
					}
					return err
				}
				cg.Spawn(func(t *asyncio.Task) error {
					defer c.Close()
					buf := make([]byte, 32<<10)
					for {
						n, err := c.Read(t, buf)
						if err == io.EOF {
							return c.CloseWrite()
						}
						if err != nil {
							return err
						}
						if _, err := c.Write(t, buf[:n]); err != nil {
							return err
						}
					}
				})
			}
		})
	})
	return l.Addr().String(), l, nil
}

// tcpPair returns the two ends of a loopback TCP connection, dialled and
// accepted by the task; the listener is already closed.
func tcpPair(task *asyncio.Task) (client, server *asyncio.Conn, err error) {
	l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	client, err = asyncio.Dial(task, "tcp", l.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	server, err = l.Accept(task)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, server, nil
}

func TestEchoOneMiBByteForByte(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		data := make([]byte, 1<<20)
		rand.Read(data)
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			addr, l, err := echoServer(task, g)
			if err != nil {
				return err
			}
			defer l.Close()
			c, err := asyncio.Dial(task, "tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			var got []byte
			err = asyncio.Group(task, func(cg *asyncio.TaskGroup) error {
				cg.Spawn(func(t *asyncio.Task) error {
					if _, err := c.Write(t, data); err != nil {
						return err
					}
					return c.CloseWrite()
				})
				cg.Spawn(func(t *asyncio.Task) error {
					buf := make([]byte, 7000)
					for {
						n, err := c.Read(t, buf)
						got = append(got, buf[:n]...)
						if err == io.EOF {
							return nil
						}
						if err != nil {
							return err
						}
					}
				})
				return nil
			})
			if err != nil {
				return err
			}
			if !bytes.Equal(got, data) {
				return fmt.Errorf("echoed %d bytes, differ from the %d sent", len(got), len(data))
			}
			return nil
		})
	})
}

func TestManyConcurrentConnections(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			addr, l, err := echoServer(task, g)
			if err != nil {
				return err
			}
			defer l.Close()
			return asyncio.Group(task, func(cg *asyncio.TaskGroup) error {
				for i := range 200 {
					cg.Spawn(func(t *asyncio.Task) error {
						c, err := asyncio.Dial(t, "tcp", addr)
						if err != nil {
							return err
						}
						defer c.Close()
						for j := range 5 {
							msg := []byte(fmt.Sprintf("conn %d message %d\n", i, j))
							if _, err := c.Write(t, msg); err != nil {
								return err
							}
							got := make([]byte, len(msg))
							if _, err := io.ReadFull(c.NetConn(t), got); err != nil {
								return err
							}
							if !bytes.Equal(got, msg) {
								return fmt.Errorf("got %q want %q", got, msg)
							}
						}
						return nil
					})
				}
				return nil
			})
		})
	})
}

func TestHalfClose(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			addr, l, err := echoServer(task, g)
			if err != nil {
				return err
			}
			defer l.Close()
			c, err := asyncio.Dial(task, "tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write(task, []byte("last words")); err != nil {
				return err
			}
			if err := c.CloseWrite(); err != nil {
				return err
			}
			// The server still answers after our half-close, then closes.
			got, err := io.ReadAll(c.NetConn(task))
			if err != nil || string(got) != "last words" {
				return fmt.Errorf("read %q, %v", got, err)
			}
			return nil
		})
	})
}

func TestPeerReset(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		c, s, err := tcpPair(task)
		if err != nil {
			return err
		}
		defer c.Close()
		// SO_LINGER 0: close sends RST.
		if err := syscall.SetsockoptLinger(s.Fd(), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1}); err != nil {
			return err
		}
		s.Close()
		_, err = c.Read(task, make([]byte, 10))
		if !errors.Is(err, syscall.ECONNRESET) {
			return fmt.Errorf("read after reset: %v, want ECONNRESET", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "read" {
			return fmt.Errorf("error %v is not a *net.OpError for read", err)
		}
		return nil
	})
}

func TestCloseRacingBlockedRead(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		c, s, err := tcpPair(task)
		if err != nil {
			return err
		}
		defer s.Close()
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			var readErr error
			h := g.Spawn(func(t *asyncio.Task) error {
				_, readErr = c.Read(t, make([]byte, 10))
				return nil
			})
			g.Spawn(func(t *asyncio.Task) error {
				if err := t.Sleep(5 * time.Millisecond); err != nil {
					return err
				}
				return c.Close()
			})
			if err := h.Wait(task); err != nil {
				return err
			}
			if !errors.Is(readErr, net.ErrClosed) {
				return fmt.Errorf("blocked read after Close: %v, want net.ErrClosed", readErr)
			}
			if _, err := c.Read(task, make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("read on closed conn: %v", err)
			}
			if err := c.Close(); !errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("second Close: %v", err)
			}
			return nil
		})
	})
}

func TestCancelBlockedOperations(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		// Accept
		if err := asyncio.WithTimeout(task, 10*time.Millisecond, func(t *asyncio.Task) error {
			_, err := l.Accept(t)
			return err
		}); !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("accept: %v", err)
		}
		c, err := asyncio.Dial(task, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := l.Accept(task)
		if err != nil {
			return err
		}
		defer s.Close()
		// Read
		timedOut, err := asyncio.SkipAfter(task, 10*time.Millisecond, func(t *asyncio.Task) error {
			_, err := c.Read(t, make([]byte, 10))
			return err
		})
		if !timedOut || err != nil {
			return fmt.Errorf("read: timedOut=%v err=%v", timedOut, err)
		}
		// The connection still works after a cancelled read, and nothing
		// was lost.
		if _, err := s.Write(task, []byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c.NetConn(task), buf); err != nil || string(buf) != "ping" {
			return fmt.Errorf("after cancel: %q %v", buf, err)
		}
		// Write: fill the socket buffers until a write blocks.
		big := make([]byte, 8<<20)
		err = asyncio.WithTimeout(task, 50*time.Millisecond, func(t *asyncio.Task) error {
			_, err := c.Write(t, big)
			return err
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("write: %v", err)
		}
		return nil
	})
}

// TestCancelBlockedDial makes connect(2) block for real: once the accept
// queue of a listen(fd, 0) socket is full, the kernel drops further SYNs
// and the client keeps retransmitting.
func TestCancelBlockedDial(t *testing.T) {
	s, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(s)
	if err := syscall.Bind(s, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(s, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(s)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		var conns []*asyncio.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 8 {
			var c *asyncio.Conn
			err := asyncio.WithTimeout(task, 100*time.Millisecond, func(t *asyncio.Task) error {
				var err error
				c, err = asyncio.Dial(t, "tcp", addr)
				return err
			})
			if err == nil {
				conns = append(conns, c)
				continue
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("blocked dial: %v, want DeadlineExceeded", err)
			}
			return nil
		}
		return errors.New("no dial ever blocked: cannot test connect cancellation here")
	})
}

func TestDialErrors(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr := l.Addr().String()
		l.Close()
		_, err = asyncio.Dial(task, "tcp", addr)
		var oe *net.OpError
		if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "dial" {
			return fmt.Errorf("dial closed port: %v", err)
		}
		if _, err := asyncio.Dial(task, "sctp", addr); err == nil {
			return errors.New("unknown network accepted")
		}
		return nil
	})
}

func TestUnixSocketAndLocalhost(t *testing.T) {
	dir := t.TempDir()
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		path := filepath.Join(dir, "s"+asyncio.Backend(task))
		l, err := asyncio.Listen(task, "unix", path)
		if err != nil {
			return err
		}
		c, err := asyncio.Dial(task, "unix", path)
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := l.Accept(task)
		if err != nil {
			return err
		}
		defer s.Close()
		if _, err := c.Write(task, []byte("hi")); err != nil {
			return err
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(s.NetConn(task), buf); err != nil || string(buf) != "hi" {
			return fmt.Errorf("unix: %q %v", buf, err)
		}
		l.Close()
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("socket file left behind: %v", err)
		}
		// Host names resolve through Go's resolver.
		tl, err := asyncio.Listen(task, "tcp4", "localhost:0")
		if err != nil {
			return err
		}
		defer tl.Close()
		_, port, _ := net.SplitHostPort(tl.Addr().String())
		dc, err := asyncio.Dial(task, "tcp", "localhost:"+port)
		if err != nil {
			return err
		}
		return dc.Close()
	})
}

func TestUDP(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		a, err := asyncio.ListenPacket(task, "udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer a.Close()
		b, err := asyncio.ListenPacket(task, "udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer b.Close()
		if _, err := a.WriteTo(task, []byte("datagram"), b.LocalAddr()); err != nil {
			return err
		}
		buf := make([]byte, 100)
		n, from, err := b.ReadFrom(task, buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) != "datagram" || from.String() != a.LocalAddr().String() {
			return fmt.Errorf("got %q from %v, want from %v", buf[:n], from, a.LocalAddr())
		}
		return nil
	})
}

func TestNetConnTLSAndHTTP(t *testing.T) {
	cert := selfSigned(t)
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error {
				c, err := l.Accept(t)
				if err != nil {
					return err
				}
				defer c.Close()
				tc := tls.Server(c.NetConn(t), &tls.Config{Certificates: []tls.Certificate{cert}})
				if err := tc.HandshakeContext(t); err != nil {
					return fmt.Errorf("server handshake: %w", err)
				}
				br := bufio.NewReader(tc)
				req, err := http.ReadRequest(br)
				if err != nil {
					return err
				}
				body, _ := io.ReadAll(req.Body)
				resp := &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1,
					Body: io.NopCloser(strings.NewReader("echo:" + string(body))), ContentLength: int64(5 + len(body))}
				if err := resp.Write(tc); err != nil {
					return err
				}
				return tc.Close()
			})
			c, err := asyncio.Dial(task, "tcp", l.Addr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			pool := x509.NewCertPool()
			pool.AddCert(cert.Leaf)
			tc := tls.Client(c.NetConn(task), &tls.Config{RootCAs: pool, ServerName: "localhost"})
			req, _ := http.NewRequest("POST", "https://localhost/x", strings.NewReader("hello tls"))
			if err := req.Write(tc); err != nil {
				return err
			}
			resp, err := http.ReadResponse(bufio.NewReader(tc), req)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != "echo:hello tls" {
				return fmt.Errorf("body %q err %v", body, err)
			}
			return nil
		})
	})
}

func TestNetConnDeadline(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := asyncio.Dial(task, "tcp", l.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		nc := c.NetConn(task)
		nc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, err = nc.Read(make([]byte, 1))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			return fmt.Errorf("read past deadline: %v", err)
		}
		// The deadline did not cancel the task itself.
		return task.Checkpoint()
	})
}

func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		name := filepath.Join(dir, asyncio.Backend(task))
		data := make([]byte, 300<<10)
		rand.Read(data)
		f, err := asyncio.Open(task, name, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		if n, err := f.Write(task, data); err != nil || n != len(data) {
			return fmt.Errorf("write %d %v", n, err)
		}
		if _, err := f.WriteAt(task, []byte("XYZ"), 10); err != nil {
			return err
		}
		if err := f.Sync(task); err != nil {
			return err
		}
		copy(data[10:], "XYZ")
		got := make([]byte, len(data))
		if n, err := f.ReadAt(task, got, 0); err != nil || n != len(data) || !bytes.Equal(got, data) {
			return fmt.Errorf("readat %d %v equal=%v", n, err, bytes.Equal(got, data))
		}
		if _, err := f.ReadAt(task, make([]byte, 10), int64(len(data))-5); err != io.EOF {
			return fmt.Errorf("readat past end: %v", err)
		}
		onDisk, _ := os.ReadFile(name)
		if !bytes.Equal(onDisk, data) {
			return errors.New("file on disk differs")
		}
		g, err := asyncio.Open(task, name, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		var seq []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := g.Read(task, buf)
			seq = append(seq, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if !bytes.Equal(seq, data) {
			return errors.New("sequential read differs")
		}
		if _, err := asyncio.Open(task, filepath.Join(dir, "missing"), os.O_RDONLY, 0); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("open missing: %v", err)
		}
		// A closed File reports os.ErrClosed, as an *os.File does.
		if err := g.Close(); err != nil {
			return err
		}
		var pe *os.PathError
		if _, err := g.Read(task, buf); !errors.Is(err, os.ErrClosed) || !errors.As(err, &pe) {
			return fmt.Errorf("read after close: %v, want os.ErrClosed", err)
		}
		if err := g.Close(); !errors.Is(err, os.ErrClosed) {
			return fmt.Errorf("second close: %v, want os.ErrClosed", err)
		}
		return nil
	})
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}
