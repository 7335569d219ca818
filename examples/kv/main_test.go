package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/examples/internal/servertest"
)

func startServer(t *testing.T, backend string) string {
	t.Helper()
	s := &server{db: newStore()}
	return servertest.Start(t, backend, s.serve)
}

// client speaks RESP by hand.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// encode turns commands into RESP multibulk arrays.
func encode(cmds ...[]string) []byte {
	var b bytes.Buffer
	for _, args := range cmds {
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	return b.Bytes()
}

func (c *client) send(p []byte) {
	c.t.Helper()
	if _, err := c.c.Write(p); err != nil {
		c.t.Fatal(err)
	}
}

// reply reads one reply and renders it: +OK, -ERR..., :1, "v" (bulk), nil,
// [a b] (array).
func (c *client) reply() string {
	c.t.Helper()
	s, err := readReply(c.r)
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	return s
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") || len(line) < 3 {
		return "", fmt.Errorf("bad reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-', ':':
		return line[:len(line)-2], nil
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "nil", nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return strconv.Quote(string(b[:n])), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil {
			return "", err
		}
		parts := make([]string, n)
		for i := range parts {
			if parts[i], err = readReply(r); err != nil {
				return "", err
			}
		}
		return "[" + strings.Join(parts, " ") + "]", nil
	}
	return "", fmt.Errorf("bad reply type %q", line)
}

// do sends commands in one write (pipelined) and returns their replies.
func (c *client) do(cmds ...[]string) []string {
	c.t.Helper()
	c.send(encode(cmds...))
	out := make([]string, len(cmds))
	for i := range out {
		out[i] = c.reply()
	}
	return out
}

func cmd(s string) []string { return strings.Fields(s) }

func TestPipelinedCommands(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			c := dial(t, startServer(t, b))
			got := c.do(cmd("SET a 1"), cmd("GET a"), cmd("INCR a"), cmd("INCRBY a 40"), cmd("GET a"),
				cmd("MSET x 10 y 20"), cmd("MGET x nope y a"), []string{"SET", "bin", "a\r\nb\x00c"}, cmd("GET bin"),
				cmd("EXISTS a x nope"), cmd("DEL x y nope"), cmd("SET a 2 NX"), cmd("SET z 3 XX"),
				cmd("PING"), []string{"ECHO", "hello world"}, cmd("NOSUCH arg"), cmd("GET"), cmd("INCR bin"))
			want := []string{"+OK", `"1"`, ":2", ":42", `"42"`,
				"+OK", `["10" nil "20" "42"]`, "+OK", `"a\r\nb\x00c"`,
				":2", ":2", "nil", "nil",
				"+PONG", `"hello world"`, "-ERR unknown command 'NOSUCH', with args beginning with: 'arg' ",
				"-ERR wrong number of arguments for 'get' command", "-ERR value is not an integer or out of range"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("\n got %q\nwant %q", got, want)
			}

			// Many commands in one write: several reads and writes on the server.
			var cmds [][]string
			for i := range 3000 {
				cmds = append(cmds, []string{"SET", fmt.Sprintf("key:%d", i), strings.Repeat("v", i%100)})
			}
			for i := range 3000 {
				cmds = append(cmds, []string{"GET", fmt.Sprintf("key:%d", i)})
			}
			got = c.do(cmds...)
			for i := range 3000 {
				if got[i] != "+OK" || got[3000+i] != strconv.Quote(strings.Repeat("v", i%100)) {
					t.Fatalf("command %d: %q / %q", i, got[i], got[3000+i])
				}
			}

			// Inline commands, as typed into nc; and a large value.
			c.send([]byte("PING\r\nset k \"two words\"\r\nGET k\nDBSIZE\r\n"))
			for _, w := range []string{"+PONG", "+OK", `"two words"`, ":3003"} {
				if r := c.reply(); r != w {
					t.Fatalf("inline: %q, want %q", r, w)
				}
			}
			big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
			if got := c.do([]string{"SET", "big", big}, cmd("GET big")); got[0] != "+OK" || got[1] != strconv.Quote(big) {
				t.Fatalf("big value: %.50q", got)
			}
			c.send([]byte("QUIT\r\n"))
			if r := c.reply(); r != "+OK" {
				t.Fatalf("QUIT: %q", r)
			}
			if _, err := c.r.ReadByte(); err != io.EOF {
				t.Fatalf("after QUIT: %v, want EOF", err)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			c := dial(t, startServer(t, b))
			start := time.Now()
			if got := c.do(cmd("SET k v PX 150"), cmd("GET k"), cmd("SET untouched v PX 50"), cmd("SET forever v")); got[0] != "+OK" || got[1] != `"v"` {
				t.Fatalf("%q", got)
			}
			// The test goroutine may sleep; the server's tasks never do.
			for c.do(cmd("GET k"))[0] != "nil" {
				if time.Since(start) > 5*time.Second {
					t.Fatal("key did not expire")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if d := time.Since(start); d < 150*time.Millisecond {
				t.Fatalf("expired after %v, before its 150 ms", d)
			}
			// The sweep task removes keys nobody asks for: DBSIZE drops to 1.
			for c.do(cmd("DBSIZE"))[0] != ":1" {
				if time.Since(start) > 5*time.Second {
					t.Fatalf("untouched key not swept: %q", c.do(cmd("DBSIZE")))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestProtocolError: a malformed request closes that connection only.
func TestProtocolError(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b)
			good := dial(t, addr)
			if r := good.do(cmd("SET shared 1")); r[0] != "+OK" {
				t.Fatal(r)
			}
			for _, bad := range []string{"*1\r\n$x\r\n", "*2\r\n$3\r\nGET\r\n:1\r\n", "set k \"open\r\n", "*1\r\n$1\r\nab\r\n"} {
				c := dial(t, addr)
				c.send([]byte("PING\r\n" + bad))
				if r := c.reply(); r != "+PONG" {
					t.Fatalf("%q: first reply %q", bad, r)
				}
				if r := c.reply(); !strings.HasPrefix(r, "-ERR Protocol error: ") {
					t.Fatalf("%q: reply %q", bad, r)
				}
				if _, err := c.r.ReadByte(); err != io.EOF {
					t.Fatalf("%q: connection not closed: %v", bad, err)
				}
			}
			if r := good.do(cmd("INCR shared")); r[0] != ":2" {
				t.Fatalf("other connection after protocol errors: %q", r)
			}
		})
	}
}

// TestRedisCLI drives the server with redis-cli, one command per run as
// a user types them, then a script on its standard input.
func TestRedisCLI(t *testing.T) {
	cli := servertest.Tool(t, "redis-cli")
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(startServer(t, b))
			redis := func(stdin string, args ...string) string {
				t.Helper()
				out, err := servertest.Output(stdin, cli, append([]string{"-h", host, "-p", port}, args...)...)
				if err != nil {
					t.Fatalf("%q: %v", args, err)
				}
				return strings.TrimRight(string(out), "\n") // errors end with an empty line
			}
			for _, tc := range []struct{ cmd, want string }{
				{"PING", "PONG"},
				{"ECHO hello", "hello"},
				{"SET greeting hello", "OK"},
				{"GET greeting", "hello"},
				{"SET greeting hi GET", "hello"},
				{"SET greeting x NX", ""},
				{"SET nobody x XX", ""},
				{"SET short v PX 200", "OK"},
				{"SET long v EX 100", "OK"},
				{"TTL long", "100"},
				{"EXISTS greeting short long nobody", "3"},
				{"INCR n", "1"},
				{"INCR n", "2"},
				{"INCR greeting", "ERR value is not an integer or out of range"},
				{"MSET a 1 b 2", "OK"},
				{"MGET a b nobody", "1\n2"}, // and a nil: an empty line
				{"DEL a b nobody", "2"},
				{"FOO bar", "ERR unknown command 'FOO', with args beginning with: 'bar' "},
				{"GET", "ERR wrong number of arguments for 'get' command"},
				{"SET k v EX 0", "ERR invalid expire time in 'set' command"},
			} {
				if got := redis("", strings.Fields(tc.cmd)...); got != tc.want {
					t.Errorf("%s: got %q, want %q", tc.cmd, got, tc.want)
				}
			}
			time.Sleep(300 * time.Millisecond)
			if got := redis("", "EXISTS", "short", "long"); got != "1" {
				t.Errorf("after 300 ms, EXISTS short long = %q, want 1 (short expired)", got)
			}
			got := redis("SET greeting hello\nGET greeting\nINCR n\nMGET greeting n nope\nPING\n")
			if want := "OK\nhello\n3\nhello\n3\n\nPONG"; got != want {
				t.Fatalf("script: %q, want %q", got, want)
			}
		})
	}
}

// TestRedisBenchmark runs redis-benchmark's tests of the commands served,
// plain, pipelined and with 100 clients: every one must finish, with no
// error reply.
func TestRedisBenchmark(t *testing.T) {
	rb := servertest.Tool(t, "redis-benchmark")
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(startServer(t, b))
			for _, args := range [][]string{{"-c", "8"}, {"-c", "4", "-P", "16"}, {"-c", "100"}} {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				out, err := exec.CommandContext(ctx, rb, append([]string{"-h", host, "-p", port, "-q", "-n", "2000",
					"-t", "set,get,ping,incr,mset"}, args...)...).CombinedOutput()
				cancel()
				if err != nil {
					t.Fatalf("redis-benchmark %v: %v\n%s", args, err, out)
				}
				var rates []string
				for _, l := range strings.Split(string(out), "\n") {
					if i := strings.LastIndexByte(l, '\r'); i >= 0 {
						l = l[i+1:]
					}
					if strings.Contains(l, "requests per second") {
						rates = append(rates, strings.TrimSpace(l))
					}
				}
				if len(rates) != 6 || strings.Contains(string(out), "ERR") || strings.Contains(string(out), "rror") {
					t.Fatalf("redis-benchmark %v:\n%s", args, out)
				}
				t.Logf("%s %v: %s", b, args, strings.Join(rates, "; "))
			}
		})
	}
}

// TestNetcat types inline commands into nc, as a user would.
func TestNetcat(t *testing.T) {
	nc := servertest.Tool(t, "nc")
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(startServer(t, b))
			// QUIT closes the connection, which ends nc.
			out, err := servertest.Output("PING\nset k \"two words\"\nGET k\nnosuch\n\nQUIT\nPING\n", nc, host, port)
			if err != nil {
				t.Fatalf("%v (%q)", err, out)
			}
			want := "+PONG\r\n+OK\r\n$9\r\ntwo words\r\n-ERR unknown command 'nosuch', with args beginning with: \r\n+OK\r\n"
			if string(out) != want {
				t.Fatalf("nc got %q, want %q", out, want)
			}
		})
	}
}

// TestCommandSIGINT runs the real command and checks that Ctrl-C stops it
// with exit status 0, with a client connected.
func TestCommandSIGINT(t *testing.T) {
	servertest.Command(t, nil, func(t *testing.T, p *servertest.Process) {
		if r := dial(t, p.Addr).do(cmd("PING")); r[0] != "+PONG" {
			t.Fatal(r)
		}
	})
}

// TestCommandSIGTERM: a service manager's stop (systemd, docker stop) ends
// the server as Ctrl-C does, with exit status 0.
func TestCommandSIGTERM(t *testing.T) {
	servertest.CommandStopped(t, nil, syscall.SIGTERM, func(t *testing.T, p *servertest.Process) {})
}
