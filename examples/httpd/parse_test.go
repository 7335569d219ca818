package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseRequest(t *testing.T) {
	cases := []struct {
		name, in  string
		n, status int
		want      request // method, target, minor, keepAlive, contentLength
	}{
		{name: "get", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", n: 27,
			want: request{method: []byte("GET"), target: []byte("/"), minor: 1, keepAlive: true}},
		{name: "bare LF", in: "GET / HTTP/1.1\nHost: a\n\n", n: 24,
			want: request{method: []byte("GET"), target: []byte("/"), minor: 1, keepAlive: true}},
		{name: "leading CRLF", in: "\r\n\nGET /x?y HTTP/1.1\r\nHost: a\r\n\r\nrest", n: 33,
			want: request{method: []byte("GET"), target: []byte("/x?y"), minor: 1, keepAlive: true}},
		{name: "close", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, Close\r\n\r\n", n: 51,
			want: request{method: []byte("GET"), target: []byte("/"), minor: 1}},
		{name: "1.0", in: "GET / HTTP/1.0\r\n\r\n", n: 18,
			want: request{method: []byte("GET"), target: []byte("/")}},
		{name: "1.0 keep-alive", in: "HEAD / HTTP/1.0\r\nconnection:keep-alive\r\n\r\n", n: 42,
			want: request{method: []byte("HEAD"), target: []byte("/"), keepAlive: true}},
		{name: "body", in: "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello", n: 67,
			want: request{method: []byte("POST"), target: []byte("/p"), minor: 1, keepAlive: true, contentLength: 5}},
		{name: "OWS", in: "GET / HTTP/1.1\r\nHost:   a \t\r\nX-Empty:\r\n\r\n", n: 41,
			want: request{method: []byte("GET"), target: []byte("/"), minor: 1, keepAlive: true}},

		{name: "empty", in: ""},
		{name: "partial line", in: "GET / HTTP/1.1"},
		{name: "partial head", in: "GET / HTTP/1.1\r\nHost: a\r\n"},
		{name: "partial CRLF", in: "GET / HTTP/1.1\r\nHost: a\r\n\r"},

		{name: "no host", in: "GET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "two hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400},
		{name: "lower method ok, bad chars", in: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "double space", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "no version", in: "GET /\r\n\r\n", status: 400},
		{name: "bad version", in: "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", status: 400},
		{name: "http2", in: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400},
		{name: "folding", in: "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", status: 400},
		{name: "no colon", in: "GET / HTTP/1.1\r\nHost\r\n\r\n", status: 400},
		{name: "bare CR", in: "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", status: 400},
		{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", status: 400},
		{name: "control in target", in: "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "bad length", in: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400},
		{name: "length list", in: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\n", status: 400},
		{name: "conflicting lengths", in: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", status: 400},
		{name: "huge length", in: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 400},
		{name: "chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", n: 56,
			want: request{method: []byte("POST"), target: []byte("/"), minor: 1, keepAlive: true, chunked: true}},
		{name: "gzip, chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: CHUNKED\r\n\r\n", n: 81,
			want: request{method: []byte("POST"), target: []byte("/"), minor: 1, keepAlive: true, chunked: true}},
		{name: "expect", in: "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n", n: 68,
			want: request{method: []byte("PUT"), target: []byte("/"), minor: 1, keepAlive: true, contentLength: 3, continue100: true}},
		{name: "not a method", in: "\x16\x03\x01\x00\xa5", status: 400},
		{name: "not a method either", in: "\r\nGE(T / HTTP/1.1", status: 400},
		{name: "space first", in: " GET", status: 400},
		{name: "chunked not last", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status: 400},
		{name: "chunked twice", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "gzip alone", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", status: 400},
		{name: "commas only", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , ,\r\n\r\n", status: 400},
		{name: "empty coding", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", status: 400},
		{name: "chunked and length", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", status: 400},
		{name: "chunked 1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "binary", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", status: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req request
			n, status := parseRequest([]byte(c.in), &req)
			if n != c.n || status != c.status {
				t.Fatalf("parseRequest = %d, %d; want %d, %d", n, status, c.n, c.status)
			}
			if status != 0 || n == 0 {
				return
			}
			if !bytes.Equal(req.method, c.want.method) || !bytes.Equal(req.target, c.want.target) ||
				req.minor != c.want.minor || req.keepAlive != c.want.keepAlive || req.contentLength != c.want.contentLength ||
				req.chunked != c.want.chunked || req.continue100 != c.want.continue100 {
				t.Fatalf("got %s", fmtReq(req))
			}
			// Every strict prefix of a valid head is incomplete, never an error.
			for k := range n {
				if m, st := parseRequest([]byte(c.in[:k]), &req); m != 0 || st != 0 {
					t.Fatalf("prefix %q: %d, %d", c.in[:k], m, st)
				}
			}
		})
	}
}

func fmtReq(r request) string {
	return fmt.Sprintf("{method %q target %q minor %d keepAlive %v contentLength %d chunked %v continue100 %v}",
		r.method, r.target, r.minor, r.keepAlive, r.contentLength, r.chunked, r.continue100)
}

func TestResponses(t *testing.T) {
	date := []byte("Sun, 06 Nov 1994 08:49:37 GMT")
	cases := []struct{ in, want string }{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\nServer: corio\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\nHello, World!"},
		{"HEAD /?q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 200 OK\r\nServer: corio\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n" +
			"Connection: keep-alive\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\n"},
		{"GET /nope HTTP/1.0\r\n\r\n", "HTTP/1.1 404 Not Found\r\nServer: corio\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n" +
			"Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\nNot Found\n"},
		{"DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\nServer: corio\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n" +
			"Allow: GET, HEAD, POST\r\nContent-Length: 0\r\n\r\n"},
		{"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", "HTTP/1.1 100 Continue\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nServer: corio\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\nHello, World!"},
	}
	for _, c := range cases {
		var req request
		if n, st := parseRequest([]byte(c.in), &req); n == 0 || st != 0 {
			t.Fatalf("%q: %d %d", c.in, n, st)
		}
		if got := string(appendResponse(nil, &req, date)); got != c.want {
			t.Errorf("%q:\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	// The absolute form a server must accept (RFC 9112 section 3.2.2); it
	// used to get 404.
	for target, ok := range map[string]bool{
		"http://a/": true, "http://a": true, "http://a?x=1": true, "https://a:8080/?x": true,
		"http://a/nope": false, "http://a/nope?/": false, "//a": false, "nope://": false,
	} {
		var req request
		in := "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n"
		if n, st := parseRequest([]byte(in), &req); n == 0 || st != 0 {
			t.Fatalf("%q: %d %d", in, n, st)
		}
		got := string(appendResponse(nil, &req, date))
		if strings.HasPrefix(got, "HTTP/1.1 200 OK") != ok {
			t.Errorf("GET %s: %q, want 200: %v", target, got[:min(len(got), 30)], ok)
		}
	}
	if got, want := string(appendError(nil, 431, date)), "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: corio\r\n"+
		"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"; got != want {
		t.Errorf("431:\n got %q\nwant %q", got, want)
	}
}

func TestDateCache(t *testing.T) {
	var d dateCache
	now := time.Date(1994, 11, 6, 8, 49, 37, 0, time.FixedZone("X", 3600))
	if got := string(d.at(now)); got != "Sun, 06 Nov 1994 07:49:37 GMT" {
		t.Fatalf("date %q", got)
	}
	if got := string(d.at(now.Add(time.Second))); got != "Sun, 06 Nov 1994 07:49:38 GMT" {
		t.Fatalf("date %q", got)
	}
}

// TestHotPathAllocs: parsing a pipelined batch and building its responses
// (and the Date refresh) allocates nothing once the output buffer is warm.
func TestHotPathAllocs(t *testing.T) {
	in := []byte(strings.Repeat("GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n", 16) +
		"POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
	out := make([]byte, 0, 16<<10)
	var d dateCache
	now := time.Now()
	var req request
	allocs := testing.AllocsPerRun(100, func() {
		now = now.Add(time.Second) // force the Date refresh every run
		date := d.at(now)
		out = out[:0]
		for rest := in; len(rest) > 0; {
			n, st := parseRequest(rest, &req)
			if n == 0 || st != 0 {
				panic("parse failed")
			}
			rest = rest[n:]
			out = appendResponse(out, &req, date)
		}
		out = appendError(out, statusBadRequest, date)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
}

func BenchmarkParseAndRespond(b *testing.B) {
	in := []byte("GET / HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	out := make([]byte, 0, 4096)
	date := []byte("Sun, 06 Nov 1994 08:49:37 GMT")
	var req request
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		parseRequest(in, &req)
		out = appendResponse(out[:0], &req, date)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"\r\nPOST /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		"HEAD / HTTP/1.0\nConnection: keep-alive\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
		"\x00\xff\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var req request
		n, status := parseRequest(in, &req)
		if n < 0 || n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		switch status {
		case 0, statusBadRequest, statusVersionNotSupported:
		default:
			t.Fatalf("status %d", status)
		}
		if status != 0 && n != 0 {
			t.Fatalf("error %d with %d bytes consumed", status, n)
		}
		if n == 0 {
			out := appendError(nil, max(status, statusBadRequest), nil)
			if !bytes.HasSuffix(out, []byte("\r\n\r\n")) {
				t.Fatalf("error response %q", out)
			}
			return
		}
		// A complete head ends with an empty line, holds the method and
		// target it reports, and no strict prefix of it parses.
		head := in[:n]
		if !bytes.HasSuffix(head, []byte("\n\n")) && !bytes.HasSuffix(head, []byte("\n\r\n")) {
			t.Fatalf("head %q does not end with an empty line", head)
		}
		if !isToken(req.method) || len(req.target) == 0 || req.contentLength < 0 || req.contentLength > maxContentLength ||
			(req.minor != 0 && req.minor != 1) {
			t.Fatalf("bad request %s", fmtReq(req))
		}
		if !bytes.Contains(head, req.method) || !bytes.Contains(head, req.target) {
			t.Fatalf("method/target not from input: %s", fmtReq(req))
		}
		var again request
		if m, st := parseRequest(head, &again); m != n || st != 0 {
			t.Fatalf("reparsing the head alone: %d, %d; want %d", m, st, n)
		}
		if m, st := parseRequest(head[:n-1], &again); m != 0 || st != 0 {
			t.Fatalf("the head less one byte: %d, %d; want incomplete", m, st)
		}
		resp := appendResponse(nil, &req, []byte(httpDate))
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 ")) || !bytes.Contains(resp, []byte("\r\n\r\n")) {
			t.Fatalf("response %q", resp)
		}
	})
}

func TestChunkedBody(t *testing.T) {
	cases := []struct {
		name, in string
		n        int // bytes of the body (0: not complete)
		status   int
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\nGET", 15, 0},
		{"two chunks, ext, trailer", "3;a=b\r\nabc\r\nA \t; x\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n", 47, 0},
		// Chunk framing takes CRLF only (RFC 9112 §7.1): a bare LF is
		// a smuggling shape.
		{"bare LF everywhere", "2\nhi\n0\n\n", 0, 400},
		{"bare LF after size", "2\nhi\r\n0\r\n\r\n", 0, 400},
		{"bare LF after data", "2\r\nhi\n0\r\n\r\n", 0, 400},
		{"bare LF in trailer", "0\r\nX: 1\n\r\n", 0, 400},
		{"bare LF ending trailer", "0\r\n\n", 0, 400},
		{"upper hex", "1F\r\n" + strings.Repeat("x", 31) + "\r\n0\r\n\r\n", 42, 0},
		{"incomplete", "5\r\nhel", 0, 0},
		{"no size", "\r\nhello\r\n", 0, 400},
		{"bad size", "x5\r\nhello\r\n", 0, 400},
		{"junk after size", "5 x\r\nhello\r\n", 0, 400},
		{"data too long", "5\r\nhello!\r\n", 0, 400},
		{"huge size", "fffffffffffffffff\r\n", 0, 400},
		{"bare CR", "5\rx\r\n", 0, 400},
		{"control in trailer", "0\r\nX: \x01\r\n\r\n", 0, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Whole, then one byte at a time: the same outcome.
			var b chunkedBody
			n, done, st := b.skip([]byte(c.in))
			if st != c.status || (c.n > 0) != done || (done && n != c.n) {
				t.Fatalf("skip = %d, %v, %d; want %d, %d", n, done, st, c.n, c.status)
			}
			b = chunkedBody{}
			buf := []byte(nil)
			total := 0
			for i := range len(c.in) {
				buf = append(buf, c.in[i])
				m, done, st := b.skip(buf)
				total += m
				buf = buf[m:]
				if st != 0 {
					if st != c.status {
						t.Fatalf("byte by byte: status %d at %d", st, i)
					}
					return
				}
				if done {
					if total != c.n {
						t.Fatalf("byte by byte: done after %d bytes, want %d", total, c.n)
					}
					return
				}
			}
			if c.n != 0 || c.status != 0 {
				t.Fatalf("byte by byte: not done, want %d, %d", c.n, c.status)
			}
		})
	}
}

func FuzzChunkedBody(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "3;a=b\r\nabc\r\n0\r\nX: y\r\n\r\n", "2\nhi\n0\n\n", "ffffffff\r\n"} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		var whole chunkedBody
		n, done, st := whole.skip(in)
		if n < 0 || n > len(in) || (done && st != 0) {
			t.Fatalf("skip = %d, %v, %d of %d bytes", n, done, st, len(in))
		}
		// Fed in pieces, the body ends at the same place (or fails).
		step = max(1, step%64)
		var parts chunkedBody
		var buf []byte
		total := 0
		for i := 0; i < len(in); i += step {
			buf = append(buf, in[i:min(i+step, len(in))]...)
			m, d, s := parts.skip(buf)
			total += m
			buf = buf[m:]
			if s != 0 || d {
				if d != done || (d && total != n) || (s != 0) != (st != 0) {
					t.Fatalf("in pieces of %d: %d, %v, %d; whole: %d, %v, %d", step, total, d, s, n, done, st)
				}
				return
			}
		}
		if done || st != 0 {
			t.Fatalf("in pieces of %d: not done; whole: %d, %v, %d", step, n, done, st)
		}
	})
}
