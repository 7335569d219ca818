package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/examples/internal/servertest"
)

// listen starts a plain Go TCP server (in test goroutines, not tasks) that
// runs serve for every connection, and returns its address. Everything is
// closed when the test ends.
func listen(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(20 * time.Second))
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); serve(c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// httpServer answers one request line with a short response, then closes;
// it records what it received.
func httpServer(t *testing.T, got *[]string, mu *sync.Mutex) string {
	return listen(t, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		var req strings.Builder
		for {
			line, err := r.ReadString('\n')
			req.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		mu.Lock()
		*got = append(*got, req.String())
		mu.Unlock()
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	})
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func run(t *testing.T, backend string, addrs []string, o options) []result {
	t.Helper()
	var results []result
	done := make(chan error, 1)
	go func() {
		done <- asyncio.Run(func(task *asyncio.Task) error {
			results = fetchAll(task, addrs, o)
			return nil
		}, asyncio.WithBackend(backend))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fetchAll did not return")
	}
	return results
}

func TestFetch(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			var mu sync.Mutex
			var requests []string
			ok := httpServer(t, &requests, &mu)
			big := listen(t, func(c net.Conn) {
				defer c.Close()
				c.Write(bytes.Repeat([]byte("x"), 100000))
			})
			silent := listen(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // reads, never answers
			refused := closedAddr(t)

			o := options{send: unescape(`GET / HTTP/1.0\r\n\r\n`), max: 1000, timeout: time.Second}
			start := time.Now()
			res := run(t, b, []string{ok, big, silent, refused, ok}, o)
			elapsed := time.Since(start)

			want := []struct {
				status string
				n      int
				head   string
			}{{"ok", 43, "HTTP/1.0 200 OK\r\n"}, {"ok", 1000, "xxx"}, {"timeout", 0, ""}, {"error", 0, ""}, {"ok", 43, "HTTP/1.0 200 OK\r\n"}}
			for i, w := range want {
				r := res[i]
				if r.status != w.status || r.n != w.n || !strings.HasPrefix(string(r.head), w.head) {
					t.Errorf("%d %s: %s %d bytes %.20q (%v); want %s %d %q", i, r.addr, r.status, r.n, r.head, r.err, w.status, w.n, w.head)
				}
			}
			if !strings.Contains(res[3].err.Error(), "connection refused") {
				t.Errorf("refused: %v", res[3].err)
			}
			// Concurrent, not one after the other: the whole run takes about
			// one timeout.
			if elapsed > 5*time.Second || res[2].elapsed < time.Second {
				t.Errorf("run took %v, the timeout %v", elapsed, res[2].elapsed)
			}
			mu.Lock()
			if len(requests) != 2 || requests[0] != "GET / HTTP/1.0\r\n\r\n" {
				t.Errorf("server received %q", requests)
			}
			mu.Unlock()

			var out bytes.Buffer
			if failed := report(&out, res); failed != 2 {
				t.Errorf("report counted %d failures, want 2", failed)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 6 || !strings.HasPrefix(lines[0], "ADDRESS") ||
				!strings.Contains(lines[1], `ok`) || !strings.Contains(lines[1], `"HTTP/1.0 200 OK"`) ||
				!strings.Contains(lines[3], "timeout") || !strings.Contains(lines[4], "connection refused") {
				t.Errorf("report:\n%s", out.String())
			}
			t.Logf("report:\n%s", out.String())
		})
	}
}

// TestFailFast: the first failure cancels the fetches still running.
func TestFailFast(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			silent := listen(t, func(c net.Conn) { io.Copy(io.Discard, c) })
			slow := listen(t, func(c net.Conn) {
				defer c.Close()
				time.Sleep(2 * time.Second)
				io.WriteString(c, "too late")
			})
			refused := closedAddr(t)
			o := options{send: []byte("hi\n"), max: 100, timeout: 10 * time.Second, failfast: true}
			start := time.Now()
			res := run(t, b, []string{silent, slow, refused}, o)
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("failfast run took %v: the failure did not cancel the others", d)
			}
			for i, want := range []string{"cancelled", "cancelled", "error"} {
				if res[i].status != want {
					t.Errorf("%d: %s (%v), want %s", i, res[i].status, res[i].err, want)
				}
			}
			var out bytes.Buffer
			if failed := report(&out, res); failed != 3 {
				t.Errorf("failed %d, want 3:\n%s", failed, out.String())
			}
			t.Logf("report:\n%s", out.String())
		})
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`GET / HTTP/1.0\r\n\r\n`: "GET / HTTP/1.0\r\n\r\n",
		`say "hi"\x21`:           `say "hi"!`,
		`bad \q escape`:          `bad \q escape`,
	} {
		if got := string(unescape(in)); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCommand runs the real command on both backends: the report goes to
// standard output, and the exit status is 1 when an address failed.
func TestCommand(t *testing.T) {
	exe := servertest.Build(t)
	var mu sync.Mutex
	var requests []string
	ok := httpServer(t, &requests, &mu)
	refused := closedAddr(t)
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			for _, tc := range []struct {
				addrs []string
				code  int
			}{{[]string{ok, ok}, 0}, {[]string{ok, refused}, 1}} {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				cmd := exec.CommandContext(ctx, exe, append([]string{"-backend", b, "-timeout", "5s"}, tc.addrs...)...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				cancel()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				if code != tc.code || len(lines) != 1+len(tc.addrs) || !strings.Contains(lines[1], `"HTTP/1.0 200 OK"`) ||
					!strings.Contains(stderr.String(), "backend="+b) {
					t.Errorf("%v: exit %d, want %d\n%s%s", tc.addrs, code, tc.code, out, stderr.Bytes())
				}
			}
		})
	}
}
