package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/examples/internal/servertest"
)

func startServer(t *testing.T, backend string, idle time.Duration) string {
	t.Helper()
	s := &server{idle: idle}
	return servertest.Start(t, backend, s.serve)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

const hello200 = "HTTP/1.1 200 OK\r\nServer: corio\r\nDate: D\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\nHello, World!"

var dateRE = regexp.MustCompile(`Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n`)

// normDate replaces every well-formed Date value with "D".
func normDate(b []byte) string { return dateRE.ReplaceAllString(string(b), "Date: D\r\n") }

// readAll reads until EOF (the server closed), bounded by the deadline.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read until close: %v (got %q)", err, b)
	}
	return normDate(b)
}

func TestNetHTTPClientKeepAlive(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, time.Minute)
			tr := &http.Transport{MaxIdleConnsPerHost: 4}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			reused := 0
			trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
				if i.Reused {
					reused++
				}
			}}
			for i := range 50 {
				path := "/"
				if i%10 == 9 {
					path = "/missing"
				}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+addr+path, nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case path == "/" && (resp.StatusCode != 200 || string(body) != "Hello, World!"):
					t.Fatalf("GET /: %d %q", resp.StatusCode, body)
				case path != "/" && resp.StatusCode != 404:
					t.Fatalf("GET %s: %d", path, resp.StatusCode)
				}
				if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
					t.Fatalf("Date %q: %v", resp.Header.Get("Date"), err)
				}
			}
			if reused != 49 {
				t.Fatalf("%d of 49 requests reused the connection", reused)
			}
			// Bodies are read and thrown away; the connection stays usable.
			// A reader of unknown length is sent chunked; with Expect, the
			// client waits for "100 Continue" (well under its 5 s).
			tr.ExpectContinueTimeout = 5 * time.Second
			for _, body := range []func() io.Reader{
				func() io.Reader { return strings.NewReader(strings.Repeat("x", 100000)) },
				func() io.Reader {
					return io.MultiReader(strings.NewReader("chunked "), strings.NewReader(strings.Repeat("y", 100000)))
				},
			} {
				for _, expect := range []bool{false, true} {
					req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", "http://"+addr+"/", body())
					if expect {
						req.Header.Set("Expect", "100-continue")
					}
					start, before := time.Now(), reused
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || string(got) != "Hello, World!" || reused != before+1 {
						t.Fatalf("POST / (chunked %v, expect %v): %d %q, reused %v", req.ContentLength < 0, expect, resp.StatusCode, got, reused > before)
					}
					if d := time.Since(start); d > 4*time.Second {
						t.Fatalf("POST / with Expect took %v: no 100 Continue?", d)
					}
				}
			}
			req, _ := http.NewRequest("DELETE", "http://"+addr+"/", nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST" {
				t.Fatalf("DELETE /: %d %v", resp.StatusCode, resp.Header)
			}
			resp, err = client.Head("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ContentLength != 13 {
				t.Fatalf("HEAD /: %d, length %d", resp.StatusCode, resp.ContentLength)
			}
		})
	}
}

func TestPipelined(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, time.Minute)
			c := dial(t, addr)
			const n = 500 // about 33 KB of requests: several reads on the server
			var reqs, want bytes.Buffer
			for i := range n {
				switch i % 50 {
				case 48:
					fmt.Fprintf(&reqs, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n1\r\n!\r\n0\r\n\r\n", i, strings.Repeat("c", i))
					want.WriteString(hello200)
					continue
				case 49:
					fmt.Fprintf(&reqs, "DELETE / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", i, strings.Repeat("b", i))
					want.WriteString("HTTP/1.1 405 Method Not Allowed\r\nServer: corio\r\nDate: D\r\nAllow: GET, HEAD, POST\r\nContent-Length: 0\r\n\r\n")
					continue
				}
				reqs.WriteString("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: pipeline\r\n\r\n")
				want.WriteString(hello200)
			}
			reqs.WriteString("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			want.WriteString(strings.Replace(hello200, "Date: D\r\n", "Date: D\r\nConnection: close\r\n", 1))
			if _, err := c.Write(reqs.Bytes()); err != nil {
				t.Fatal(err)
			}
			got := readAll(t, c) // the last request closes the connection
			if got != want.String() {
				t.Fatalf("got %d bytes, want %d\n got: %.300q\nwant: %.300q", len(got), want.Len(), got, want.String())
			}
		})
	}
}

// TestSplitAcrossReads sends requests in small pieces, with pauses so that
// the server sees them in separate reads.
func TestSplitAcrossReads(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, time.Minute)
			c := dial(t, addr)
			reqs := "GET / HTTP/1.1\r\nHost: x\r\n\r\n" +
				"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world" +
				"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n" +
				"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
			for i := 0; i < len(reqs); i += 7 {
				if _, err := io.WriteString(c, reqs[i:min(i+7, len(reqs))]); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Millisecond)
			}
			want := hello200 +
				"HTTP/1.1 405 Method Not Allowed\r\nServer: corio\r\nDate: D\r\nAllow: GET, HEAD, POST\r\nContent-Length: 0\r\n\r\n" +
				hello200 +
				strings.Replace(strings.TrimSuffix(hello200, "Hello, World!"), "Date: D\r\n", "Date: D\r\nConnection: close\r\n", 1)
			if got := readAll(t, c); got != want {
				t.Fatalf("\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestHTTP10(t *testing.T) {
	addr := startServer(t, "auto", time.Minute)
	// Without keep-alive: one response, then the server closes.
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	if got, want := readAll(t, c), strings.Replace(hello200, "Date: D\r\n", "Date: D\r\nConnection: close\r\n", 1); got != want {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
	// With keep-alive: the connection is kept until a request without it.
	c = dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n")
	want := strings.Replace(hello200, "Date: D\r\n", "Date: D\r\nConnection: keep-alive\r\n", 1) +
		strings.Replace(hello200, "Date: D\r\n", "Date: D\r\nConnection: close\r\n", 1)
	if got := readAll(t, c); got != want {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
}

func TestBadRequests(t *testing.T) {
	errResp := func(line string) string {
		return "HTTP/1.1 " + line + "\r\nServer: corio\r\nDate: D\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	}
	cases := []struct{ name, in, want string }{
		{"garbage", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", errResp("400 Bad Request")},
		{"no host", "GET / HTTP/1.1\r\n\r\n", errResp("400 Bad Request")},
		{"after a good one", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nBad Header\r\n\r\n", hello200 + errResp("400 Bad Request")},
		{"chunked and length", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", errResp("400 Bad Request")},
		{"bad chunk", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n", hello200 + errResp("400 Bad Request")},
		{"chunk line too large", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;" + strings.Repeat("e", maxHead), hello200 + errResp("400 Bad Request")},
		{"tls", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", errResp("400 Bad Request")},
		{"http/2", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", errResp("505 HTTP Version Not Supported")},
		{"too large", "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c", 20000) + "\r\n\r\n", errResp("431 Request Header Fields Too Large")},
		{"request line too large", "GET /" + strings.Repeat("a", maxHead), errResp("431 Request Header Fields Too Large")},
	}
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, time.Minute)
			for _, tc := range cases {
				c := dial(t, addr)
				if _, err := io.WriteString(c, tc.in); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if got := readAll(t, c); got != tc.want {
					t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
				}
			}
			// The server is still fine.
			c := dial(t, addr)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if got := readAll(t, c); !strings.HasSuffix(got, "Hello, World!") {
				t.Fatalf("after bad requests: %q", got)
			}
		})
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, 500*time.Millisecond)
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			r := bufio.NewReader(c)
			// Activity keeps it open...
			for range 3 {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(100 * time.Millisecond)
			}
			// ...and silence closes it.
			start := time.Now()
			if n, err := r.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("idle read: %d, %v; want EOF", n, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("closed after %v", d)
			}
		})
	}
}

// TestSlowHeadClosed: a request head trickled in a byte at a time, each
// well within -idle of the last, is still cut off -idle after it began
// (slowloris); a head that arrives whole is answered.
func TestSlowHeadClosed(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, 500*time.Millisecond)
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			start := time.Now()
			closed := make(chan error, 1)
			go func() {
				_, err := r.ReadByte()
				closed <- err
			}()
			io.WriteString(c, "GET / HTTP/1.1\r\n")
			for i := 0; ; i++ {
				select {
				case err := <-closed:
					if err == nil {
						t.Fatal("the server answered an unfinished head")
					}
					if d := time.Since(start); d > 3*time.Second {
						t.Fatalf("slow head cut off after %v, want about 500ms", d)
					}
					return
				case <-time.After(100 * time.Millisecond):
				}
				if time.Since(start) > 5*time.Second {
					t.Fatalf("a head trickled for %v is still being read (-idle 500ms)", time.Since(start))
				}
				const line = "X-Slow: y\r\n"
				c.Write([]byte{line[i%len(line)]})
			}
		})
	}
}

// TestCurl checks the server against curl, a client nobody here wrote:
// keep-alive, HTTP/1.0, HEAD, and POST bodies of both framings followed by
// a GET on the same connection (a desync would show there), with and
// without "Expect: 100-continue".
func TestCurl(t *testing.T) {
	curl := servertest.Tool(t, "curl")
	body := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(body, bytes.Repeat([]byte("0123456789abcdef"), 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, time.Minute)
			url := "http://" + addr + "/"
			for _, tc := range []struct {
				name   string
				args   []string
				hellos int      // "Hello, World!" bodies in the output
				want   []string // in the output (-i: heads and bodies)
				log    []string // in curl's -v log
			}{
				{"keep-alive", []string{url, url + "?again"}, 2, []string{"HTTP/1.1 200 OK\r\n"}, []string{"Re-using existing connection"}},
				{"HTTP/1.0", []string{"--http1.0", url}, 1, []string{"Connection: close\r\n"}, nil},
				{"HEAD", []string{"-I", url}, 0, []string{"HTTP/1.1 200 OK\r\n", "Content-Length: 13\r\n"}, nil},
				{"404", []string{url + "nope"}, 0, []string{"HTTP/1.1 404 Not Found\r\n"}, nil},
				{"POST, then GET", []string{"--data-binary", "@" + body, url, "--next", url}, 2, nil, []string{"Re-using existing connection"}},
				{"chunked POST, then GET", []string{"-H", "Transfer-Encoding: chunked", "--data-binary", "@" + body, url, "--next", url}, 2,
					nil, []string{"Transfer-Encoding: chunked", "Re-using existing connection"}},
				{"POST with Expect, then GET", []string{"-H", "Expect: 100-continue", "--expect100-timeout", "10", "--data-binary", "@" + body, url, "--next", url}, 2,
					[]string{"HTTP/1.1 100 Continue\r\n"}, []string{"Re-using existing connection"}},
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				args := append([]string{"-sS", "-i", "-v", "--max-time", "10"}, tc.args...)
				cmd := exec.CommandContext(ctx, curl, args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				start := time.Now()
				out, err := cmd.Output()
				cancel()
				if err != nil {
					t.Fatalf("%s: curl: %v\n%s", tc.name, err, stderr.Bytes())
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%s: took %v", tc.name, d)
				}
				if got := strings.Count(string(out), "Hello, World!"); got != tc.hellos {
					t.Errorf("%s: %d hellos, want %d:\n%s", tc.name, got, tc.hellos, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(string(out), w) {
						t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out)
					}
				}
				for _, w := range tc.log {
					if !strings.Contains(stderr.String(), w) {
						t.Errorf("%s: curl's log lacks %q:\n%s", tc.name, w, stderr.Bytes())
					}
				}
			}
		})
	}
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// pipelineLua makes wrk send 16 pipelined requests at a time.
const pipelineLua = `
init = function(args)
   local r = {}
   for i = 1, 16 do r[i] = wrk.format(nil, "/") end
   req = table.concat(r)
end
request = function() return req end
`

// postLua makes wrk POST a 1000-byte body.
const postLua = `
wrk.method = "POST"
wrk.body = string.rep("x", 1000)
`

// TestWrk loads the server with wrk for a second per run and backend:
// every response must be a 2xx and no socket may fail.
func TestWrk(t *testing.T) {
	wrk := servertest.Tool(t, "wrk")
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	dir := t.TempDir()
	script := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pipeline, post := script("pipeline.lua", pipelineLua), script("post.lua", postLua)
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, time.Minute)
			for _, args := range [][]string{
				{"-c64"},
				{"-c256"},
				{"-c16", "-s", pipeline},
				{"-c16", "-s", post},
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				args = append([]string{"-t1", "-d1s"}, args...)
				out, err := exec.CommandContext(ctx, wrk, append(args, "http://"+addr+"/")...).CombinedOutput()
				cancel()
				if err != nil {
					t.Fatalf("wrk %v: %v\n%s", args, err, out)
				}
				s := string(out)
				m := wrkRate.FindStringSubmatch(s)
				if m == nil || strings.Contains(s, "Non-2xx") || strings.Contains(s, "Socket errors") {
					t.Fatalf("wrk %v reported errors:\n%s", args, s)
				}
				t.Logf("wrk %v (%s, under the test's build flags): %s requests/s", args[2:], b, m[1])
			}
		})
	}
}

// TestServerAllocs measures the whole server, loop and traps included, not
// just the parser: keep-alive round trips over a real connection allocate
// nothing in the process (the client side here allocates nothing either).
func TestServerAllocs(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, time.Minute)
			c := dial(t, addr)
			req := []byte("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: allocs\r\n\r\n")
			resp := make([]byte, len(hello200)-len("D")+len(httpDate))
			roundTrip := func() {
				if _, err := c.Write(req); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					t.Fatal(err)
				}
			}
			for range 100 {
				roundTrip() // warm up: buffers grown, pools filled
			}
			if allocs := testing.AllocsPerRun(2000, roundTrip); allocs > 0.05 {
				t.Fatalf("%.3f allocations per request (server and client together)", allocs)
			} else {
				t.Logf("%.4f allocations per request", allocs)
			}
			if normDate(resp) != hello200 {
				t.Fatalf("response %q", resp)
			}
		})
	}
}

// BenchmarkServer is a keep-alive round trip over loopback, loop included:
// go test -bench Server -benchmem ./examples/httpd
func BenchmarkServer(b *testing.B) {
	for _, backend := range servertest.Backends(b) {
		b.Run(backend, func(b *testing.B) {
			s := &server{idle: time.Minute}
			addr := servertest.Start(b, backend, s.serve)
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n")
			resp := make([]byte, len(hello200)-len("D")+len(httpDate))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCommandSIGINT runs the real command, leaves a keep-alive connection
// open, and checks that Ctrl-C stops it with exit status 0.
func TestCommandSIGINT(t *testing.T) {
	servertest.Command(t, []string{"-v"}, func(t *testing.T, p *servertest.Process) {
		c := dial(t, p.Addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
}

// TestCommandSIGTERM: a service manager's stop (systemd, docker stop) ends
// the server as Ctrl-C does, with exit status 0.
func TestCommandSIGTERM(t *testing.T) {
	servertest.CommandStopped(t, nil, syscall.SIGTERM, func(t *testing.T, p *servertest.Process) {})
}
