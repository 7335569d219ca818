package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/examples/internal/servertest"
)

// member is a test client: a goroutine reads its lines into a channel.
type member struct {
	t     *testing.T
	name  string
	conn  net.Conn
	lines chan string
}

func connect(t *testing.T, addr, name string) *member {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	m := &member{t: t, name: name, conn: c, lines: make(chan string, 100000)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(m.lines)
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			m.lines <- strings.TrimSuffix(line, "\n")
		}
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
	m.expect("Welcome to the corio chat! Your name?")
	m.send(name)
	return m
}

func (m *member) send(line string) {
	m.t.Helper()
	if _, err := fmt.Fprintf(m.conn, "%s\n", line); err != nil {
		m.t.Fatalf("%s: send: %v", m.name, err)
	}
}

// expect waits for the next line and checks it.
func (m *member) expect(want string) {
	m.t.Helper()
	select {
	case got, ok := <-m.lines:
		if !ok {
			m.t.Fatalf("%s: connection closed, want %q", m.name, want)
		}
		if got != want {
			m.t.Fatalf("%s: got %q, want %q", m.name, got, want)
		}
	case <-time.After(10 * time.Second):
		m.t.Fatalf("%s: nothing received, want %q", m.name, want)
	}
}

// quiet checks that nothing arrives for a moment.
func (m *member) quiet() {
	m.t.Helper()
	select {
	case got := <-m.lines:
		m.t.Fatalf("%s: unexpected %q", m.name, got)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestChat(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := servertest.Start(t, b, newRoom(64).serve)
			alice := connect(t, addr, "alice")
			alice.expect("* here: nobody else yet")
			bob := connect(t, addr, "bob")
			bob.expect("* here: alice")
			alice.expect("* bob joined (2 here)")
			carol := connect(t, addr, "  carol \r") // trimmed
			carol.expect("* here: alice bob")
			alice.expect("* carol joined (3 here)")
			bob.expect("* carol joined (3 here)")

			alice.send("hello")
			bob.expect("alice: hello")
			carol.expect("alice: hello")
			carol.send("hi alice \x1b[2J") // an escape sequence is defused
			alice.expect("carol: hi alice ?[2J")
			bob.expect("carol: hi alice ?[2J")
			alice.quiet() // nobody hears an echo of their own words

			bob.send("/quit")
			alice.expect("* bob left")
			carol.expect("* bob left")
			if _, ok := <-bob.lines; ok {
				t.Fatal("bob still connected after /quit")
			}
			carol.conn.Close()
			alice.expect("* carol left")

			// A long name is cut to 32 bytes at a character boundary:
			// 31 bytes, then "é" (2 bytes) would straddle the limit.
			long := strings.Repeat("d", 31) + "éé"
			dave := connect(t, addr, long)
			dave.expect("* here: alice")
			alice.expect("* " + strings.Repeat("d", 31) + " joined (2 here)")
		})
	}
}

// TestSlowClientDropped: a client that never reads fills its socket
// buffers, then its queue, and is disconnected; the others keep chatting.
func TestSlowClientDropped(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := servertest.Start(t, b, newRoom(16).serve)
			alice := connect(t, addr, "alice")
			alice.expect("* here: nobody else yet")
			bob := connect(t, addr, "bob")
			bob.expect("* here: alice")
			alice.expect("* bob joined (2 here)")

			// sloth has a small receive buffer and never reads.
			d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
			}}
			sloth, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer sloth.Close()
			sloth.Write([]byte("sloth\n"))
			alice.expect("* sloth joined (3 here)")
			bob.expect("* sloth joined (3 here)")

			// alice talks until bob hears that sloth was dropped; bob
			// reads everything meanwhile.
			msg := strings.Repeat("z", 1000)
			dropped := make(chan int, 1)
			go func() {
				n := 0
				for line := range bob.lines {
					switch {
					case line == "alice: "+msg:
						n++
					case line == "* sloth was disconnected (too slow)":
						dropped <- n
						return
					default:
						t.Errorf("bob got %.50q", line)
					}
				}
				close(dropped)
			}()
			sent := 0
			deadline := time.Now().Add(30 * time.Second)
		talk:
			for {
				select {
				case n, ok := <-dropped:
					if !ok {
						t.Fatal("bob's connection closed")
					}
					t.Logf("sloth dropped after %d messages sent, %d received by bob", sent, n)
					break talk
				default:
				}
				if sent >= 100000 || time.Now().After(deadline) {
					t.Fatalf("sloth not dropped after %d messages", sent)
				}
				alice.send(msg)
				sent++
			}

			// The room goes on without sloth, and bob gets the rest.
			alice.send("still here?")
			for {
				select {
				case line := <-bob.lines:
					if line == "alice: "+msg {
						continue
					}
					if line != "alice: still here?" {
						t.Fatalf("bob got %.50q", line)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("bob stopped receiving")
				}
				break
			}
			bob.send("yes")
			alice.expect("* sloth was disconnected (too slow)")
			alice.expect("bob: yes")
			// sloth's connection was closed: reading drains what the kernel
			// held, then ends.
			sloth.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64<<10)
			for {
				if _, err := sloth.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("sloth's connection was not closed")
					}
					break
				}
			}
		})
	}
}

// TestNetcat puts two nc clients in the room: what one says, the other
// hears.
func TestNetcat(t *testing.T) {
	nc := servertest.Tool(t, "nc")
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := servertest.Start(t, b, newRoom(64).serve)
			host, port, _ := net.SplitHostPort(addr)
			alice := connect(t, addr, "alice") // a Go client, to know when bob is in
			alice.expect("* here: nobody else yet")

			// listener stays until its standard input ends; -N then
			// shuts its socket down, the server sees it leave and closes.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			listener := exec.CommandContext(ctx, nc, "-N", host, port)
			stdin, err := listener.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			listener.Stdout = &out
			if err := listener.Start(); err != nil {
				t.Fatal(err)
			}
			io.WriteString(stdin, "carol\n")
			alice.expect("* carol joined (2 here)")

			got, err := servertest.Output("bob\nhello from nc\n/quit\n", nc, host, port)
			if err != nil {
				t.Fatal(err)
			}
			if want := "Welcome to the corio chat! Your name?\n* here: alice carol\n"; string(got) != want {
				t.Fatalf("bob got %q, want %q", got, want)
			}
			alice.expect("* bob joined (3 here)")
			alice.expect("bob: hello from nc")
			alice.expect("* bob left")
			stdin.Close()
			alice.expect("* carol left")
			if err := listener.Wait(); err != nil {
				t.Fatalf("nc: %v", err)
			}
			want := "Welcome to the corio chat! Your name?\n* here: alice\n* bob joined (3 here)\nbob: hello from nc\n* bob left\n"
			if out.String() != want {
				t.Fatalf("carol got %q, want %q", out.String(), want)
			}
		})
	}
}

// TestCommandSIGINT runs the real command and checks that Ctrl-C stops it
// with exit status 0, with a member in the room.
func TestCommandSIGINT(t *testing.T) {
	servertest.Command(t, nil, func(t *testing.T, p *servertest.Process) {
		connect(t, p.Addr, "alice").expect("* here: nobody else yet")
		p.WaitLog("joined name=alice")
	})
}

// TestCommandSIGTERM: a service manager's stop (systemd, docker stop) ends
// the server as Ctrl-C does, with exit status 0.
func TestCommandSIGTERM(t *testing.T) {
	servertest.CommandStopped(t, nil, syscall.SIGTERM, func(t *testing.T, p *servertest.Process) {})
}
