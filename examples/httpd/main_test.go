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
	"os/exec"
	"regexp"
	"strings"
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
			// A body is read and discarded; the connection stays usable.
			resp, err := client.Post("http://"+addr+"/", "text/plain", strings.NewReader(strings.Repeat("x", 100000)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Fatalf("POST /: %d %v", resp.StatusCode, resp.Header)
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
				if i%50 == 49 {
					fmt.Fprintf(&reqs, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", i, strings.Repeat("b", i))
					want.WriteString("HTTP/1.1 405 Method Not Allowed\r\nServer: corio\r\nDate: D\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\n\r\n")
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
				"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world" +
				"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
			for i := 0; i < len(reqs); i += 7 {
				if _, err := io.WriteString(c, reqs[i:min(i+7, len(reqs))]); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Millisecond)
			}
			want := hello200 +
				"HTTP/1.1 405 Method Not Allowed\r\nServer: corio\r\nDate: D\r\nAllow: GET, HEAD\r\nContent-Length: 0\r\n\r\n" +
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
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", errResp("501 Not Implemented")},
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

// TestCurl checks the server against curl, a client nobody here wrote.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	addr := startServer(t, "auto", time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Two URLs in one run: curl reuses the connection.
	cmd := exec.CommandContext(ctx, curl, "-sS", "-i", "-v", "--max-time", "10", "http://"+addr+"/", "http://"+addr+"/?again")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, stderr.Bytes())
	}
	if got := strings.Count(string(out), "Hello, World!"); got != 2 || !strings.HasPrefix(string(out), "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("curl output:\n%s", out)
	}
	if !strings.Contains(strings.ToLower(stderr.String()), "re-using") && !strings.Contains(strings.ToLower(stderr.String()), "reusing") {
		t.Logf("curl did not say it reused the connection:\n%s", stderr.Bytes())
	}
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// TestWrk loads the server with wrk for a second per backend: every
// response must be a 2xx and no socket may fail.
func TestWrk(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk not installed")
	}
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b, time.Minute)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, wrk, "-t1", "-c8", "-d1s", "http://"+addr+"/").CombinedOutput()
			if err != nil {
				t.Fatalf("wrk: %v\n%s", err, out)
			}
			s := string(out)
			m := wrkRate.FindStringSubmatch(s)
			if m == nil || strings.Contains(s, "Non-2xx") || strings.Contains(s, "Socket errors") {
				t.Fatalf("wrk reported errors:\n%s", s)
			}
			t.Logf("wrk -t1 -c8 -d1s (%s, under the test's build flags): %s requests/s", b, m[1])
		})
	}
}
