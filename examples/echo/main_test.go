package main

import (
	"bufio"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/examples/internal/servertest"
	"golang.org/x/sys/unix"
)

func startServer(t *testing.T, backend string) string {
	t.Helper()
	return servertest.Start(t, backend, serve)
}

// talk checks the welcome line and a few echoes, a 100 KB one among them,
// over a Go client.
func talk(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	welcome, err := r.ReadString('\n')
	if err != nil || welcome != "Welcome to the corio echo server!\n" {
		t.Fatalf("welcome %q %v", welcome, err)
	}
	for _, msg := range []string{"hello\n", "corio echoes\n", strings.Repeat("x", 100000) + "\n"} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo: got %d bytes (%v), want %d", len(got), err, len(msg))
		}
	}
}

func TestEchoWithGoClient(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) { talk(t, startServer(t, b)) })
	}
}

// TestManyClients: 50 clients at once, each echoing its own lines.
func TestManyClients(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b)
			errs := make(chan error, 50)
			for i := range 50 {
				go func() {
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(20 * time.Second))
					r := bufio.NewReader(c)
					if _, err := r.ReadString('\n'); err != nil {
						errs <- err
						return
					}
					for j := range 20 {
						msg := strings.Repeat(string(rune('a'+i%26)), j*10) + "\n"
						io.WriteString(c, msg)
						if got, err := r.ReadString('\n'); err != nil || got != msg {
							errs <- io.ErrUnexpectedEOF
							return
						}
					}
					errs <- nil
				}()
			}
			for range 50 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestEchoWithNetcat drives the server with nc, a client nobody here wrote.
func TestEchoWithNetcat(t *testing.T) {
	nc := servertest.Tool(t, "nc")
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(startServer(t, b))
			// -N: shut the socket down at the end of stdin (OpenBSD nc);
			// the server then sees EOF and closes, which ends nc.
			out, err := servertest.Output("ping from nc\nsecond line\n", nc, "-N", host, port)
			if err != nil {
				t.Skipf("nc -N could not run here (not OpenBSD netcat?): %v", err)
			}
			if want := "Welcome to the corio echo server!\nping from nc\nsecond line\n"; string(out) != want {
				t.Fatalf("nc got %q, want %q", out, want)
			}
		})
	}
}

// TestCommandSIGINT runs the real command: it logs connects and
// disconnects, and Ctrl-C stops it with exit status 0, even with a client
// still connected.
func TestCommandSIGINT(t *testing.T) {
	servertest.Command(t, nil, func(t *testing.T, p *servertest.Process) {
		talk(t, p.Addr)
		p.WaitLog("client disconnected")
		idle, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { idle.Close() })
		p.WaitLog("client connected peer=" + idle.LocalAddr().String())
	})
}

// TestCommandOutOfFiles limits the command to 32 open files and connects
// more clients than that: accept fails with EMFILE meanwhile, and the
// server must pause and go on, not exit.
func TestCommandOutOfFiles(t *testing.T) {
	servertest.Command(t, nil, func(t *testing.T, p *servertest.Process) {
		lim := unix.Rlimit{Cur: 32, Max: 32}
		if err := unix.Prlimit(p.Pid(), unix.RLIMIT_NOFILE, &lim, nil); err != nil {
			t.Skipf("prlimit: %v", err)
		}
		var conns []net.Conn
		for range 50 {
			c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		time.Sleep(300 * time.Millisecond)
		if n := strings.Count(p.Log(), "client connected"); n >= len(conns) {
			t.Fatalf("%d of %d clients served: the limit did not apply", n, len(conns))
		}
		for _, c := range conns {
			c.Close()
		}
		talk(t, p.Addr) // served again once files are free
	})
}

// TestCommandSIGTERM: a service manager's stop (systemd, docker stop) ends
// the server as Ctrl-C does, with exit status 0.
func TestCommandSIGTERM(t *testing.T) {
	servertest.CommandStopped(t, nil, syscall.SIGTERM, func(t *testing.T, p *servertest.Process) {})
}
