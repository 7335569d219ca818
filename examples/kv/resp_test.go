package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func fmtArgs(args [][]byte) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		in   string
		args string // fmtArgs of the result, "" when incomplete or failed
		n    int
		err  string
	}{
		{"*1\r\n$4\r\nPING\r\n", `["PING"]`, 14, ""},
		{"*2\r\n$3\r\nGET\r\n$0\r\n\r\nrest", `["GET" ""]`, 19, ""},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\nb\x00\r\n", `["SET" "k" "a\r\nb\x00"]`, 31, ""},
		{"*0\r\n", `[]`, 4, ""},
		{"*-1\r\n", `[]`, 5, ""},
		{"PING\r\n", `["PING"]`, 6, ""},
		{"PING\n", `["PING"]`, 5, ""},
		{"  set  k\tv  \r\n", `["set" "k" "v"]`, 14, ""},
		{"\r\n", `[]`, 2, ""},
		{`set k "a b\n\x41\"" 'it\'s'` + "\r\n", `["set" "k" "a b\nA\"" "it's"]`, 29, ""},
		{`echo ""` + "\n", `["echo" ""]`, 8, ""},

		{"", "", 0, ""},
		{"*", "", 0, ""},
		{"*2", "", 0, ""},
		{"*2\r", "", 0, ""},
		{"*2\r\n$3\r\nGET\r\n", "", 0, ""},
		{"*2\r\n$3\r\nGET\r\n$1\r\nk", "", 0, ""},
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r", "", 0, ""},
		{"PING", "", 0, ""},

		{"*x\r\n", "", 0, "invalid multibulk length"},
		{"*01\r\n", "", 0, "invalid multibulk length"},
		{"*2\rx", "", 0, "invalid multibulk length"},
		{"*" + strings.Repeat("1", 40), "", 0, "invalid multibulk length"},
		{"*9999999\r\n", "", 0, "invalid multibulk length"},
		{"*1\r\n:1\r\n", "", 0, "expected '$', got ':'"},
		{"*1\r\n$-1\r\n", "", 0, "invalid bulk length"},
		{"*1\r\n$999999999\r\n", "", 0, "invalid bulk length"},
		{"*1\r\n$1\r\nab\r\n", "", 0, "bulk string not followed by CRLF"},
		{`set k "abc` + "\r\n", "", 0, "unbalanced quotes in request"},
		{`set k "abc"d` + "\r\n", "", 0, "unbalanced quotes in request"},
		{strings.Repeat("a", maxInline+1), "", 0, "too big inline request"},
	}
	for _, c := range cases {
		args, n, err := parseCommand([]byte(c.in), nil)
		got := ""
		if n > 0 {
			got = fmtArgs(args)
		}
		var perr protocolError
		switch {
		case c.err == "" && err != nil, c.err != "" && (!errors.As(err, &perr) || string(perr) != c.err):
			t.Errorf("%.40q: error %v, want %q", c.in, err, c.err)
		case n != c.n || got != c.args:
			t.Errorf("%.40q: %d %s, want %d %s", c.in, n, got, c.n, c.args)
		}
		if n > 0 && c.in[0] == '*' {
			for k := range n { // every prefix of a valid command is incomplete
				if _, m, err := parseCommand([]byte(c.in[:k]), nil); m != 0 || err != nil {
					t.Errorf("%q prefix %d: %d %v", c.in, k, m, err)
				}
			}
		}
	}
}

func TestParseInt(t *testing.T) {
	good := map[string]int64{"0": 0, "7": 7, "-7": -7, "9223372036854775807": math.MaxInt64, "-9223372036854775808": math.MinInt64}
	for s, want := range good {
		if n, ok := parseInt([]byte(s)); !ok || n != want {
			t.Errorf("parseInt(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-", "+1", "01", "-0", " 1", "1 ", "9223372036854775808", "-9223372036854775809", "1e3", "99999999999999999999"} {
		if n, ok := parseInt([]byte(s)); ok {
			t.Errorf("parseInt(%q) = %d, want failure", s, n)
		}
	}
}

// run executes inline commands against a store at the given time and
// returns the replies.
func run(s *store, now time.Time, lines ...string) string {
	var out []byte
	for _, l := range lines {
		args, n, err := parseCommand([]byte(l+"\r\n"), nil)
		if err != nil || n == 0 {
			panic(l)
		}
		out, _ = s.exec(out, args, now)
	}
	return string(out)
}

func TestCommands(t *testing.T) {
	s := newStore()
	now := time.Now()
	check := func(want string, lines ...string) {
		t.Helper()
		if got := run(s, now, lines...); got != want {
			t.Errorf("%q:\n got %q\nwant %q", lines, got, want)
		}
	}
	check("+PONG\r\n$2\r\nhi\r\n$3\r\na b\r\n", "PING", "ping hi", `echo "a b"`)
	check("+OK\r\n$1\r\nv\r\n$-1\r\n", "SET k v", "GET k", "GET nope")
	check("$-1\r\n+OK\r\n$-1\r\n+OK\r\n$2\r\nv3\r\n", "SET k v2 NX", "SET n v NX", "SET x v XX", "set k v3 xx", "get k")
	check(":1\r\n:2\r\n:-1\r\n:9\r\n-ERR value is not an integer or out of range\r\n", "INCR c", "incr c", "DECRBY c 3", "INCRBY c 10", "INCR k")
	check("+OK\r\n:9223372036854775807\r\n-ERR increment or decrement would overflow\r\n",
		"SET big 9223372036854775806", "INCR big", "INCR big")
	check("+OK\r\n*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n$2\r\nv3\r\n", "MSET a 1 b 2", "MGET a zz b k")
	check(":3\r\n:2\r\n:0\r\n", "EXISTS a b a", "DEL a b zz", "EXISTS a")
	check("-ERR wrong number of arguments for 'get' command\r\n-ERR wrong number of arguments for 'mset' command\r\n",
		"GET", "MSET a")
	check("-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n", "FOO a b")
	check("$2\r\nv3\r\n$2\r\nv4\r\n$-1\r\n$-1\r\n$-1\r\n$2\r\nv4\r\n$1\r\nw\r\n",
		"SET k v4 GET", "SET k v5 NX GET", "SET g1 v XX GET", "GET g1", "SET g2 w GET", "SET k v6 XX GET", "get g2")
	check("-ERR syntax error\r\n-ERR invalid expire time in 'set' command\r\n-ERR value is not an integer or out of range\r\n-ERR syntax error\r\n",
		"SET k v NX XX", "SET k v EX 0", "SET k v PX x", "SET k v EX 1 PX 1")
	check("*0\r\n*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n*0\r\n",
		"COMMAND DOCS", "CONFIG GET save appendonly", "CONFIG GET maxmemory")

	// Expiry on the clock passed in.
	check("+OK\r\n+OK\r\n:10\r\n:1500\r\n:-1\r\n:-2\r\n", "SET e v EX 10", "SET p v PX 1500", "TTL e", "PTTL p", "TTL k", "TTL zz")
	// The farthest expiries: TTL stays positive (rounding up overflowed).
	check("+OK\r\n:9223372036\r\n+OK\r\n:9223372037\r\n:9223372036854\r\n:1\r\n", "SET far v EX 9223372036", "TTL far",
		"SET far v PX 9223372036854", "TTL far", "PTTL far", "DEL far")
	if got := run(s, now.Add(1499*time.Millisecond), "GET p"); got != "$1\r\nv\r\n" {
		t.Fatalf("before expiry: %q", got)
	}
	if got := run(s, now.Add(1500*time.Millisecond), "GET p", "EXISTS p"); got != "$-1\r\n:0\r\n" {
		t.Fatalf("after expiry: %q", got)
	}
	// INCR keeps a TTL; SET without options drops it; KEEPTTL keeps it.
	check("+OK\r\n:2\r\n:10\r\n+OK\r\n:10\r\n+OK\r\n:-1\r\n", "SET i 1 EX 10", "INCR i", "TTL i", "SET i 5 KEEPTTL", "TTL i", "SET i 6", "TTL i")
	// The sweep removes what nobody touches.
	check("+OK\r\n+OK\r\n", "SET s1 v PX 10", "SET s2 v PX 10")
	before := len(s.m)
	if n := s.sweep(now.Add(time.Minute)); n != 3 || len(s.m) != before-n || s.withTTL != 0 {
		t.Fatalf("sweep removed %d (map %d -> %d), withTTL %d", n, before, len(s.m), s.withTTL)
	}
	check("+OK\r\n:0\r\n", "FLUSHALL", "DBSIZE")
}

// TestHotPathAllocs: parsing pipelined GET/SET/PING commands and running
// them allocates nothing once buffers have grown and the keys exist.
func TestHotPathAllocs(t *testing.T) {
	var in []byte
	for i := range 16 {
		in = fmt.Appendf(in, "*3\r\n$3\r\nSET\r\n$6\r\nkey:%02d\r\n$3\r\nxyz\r\n*2\r\n$3\r\nGET\r\n$6\r\nkey:%02d\r\n", i, i)
	}
	in = append(in, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n*3\r\n$4\r\nMGET\r\n$6\r\nkey:01\r\n$6\r\nkey:02\r\n"...)
	s := newStore()
	out := make([]byte, 0, 16<<10)
	args := make([][]byte, 0, 8)
	now := time.Now()
	batch := func() {
		out = out[:0]
		for rest := in; len(rest) > 0; {
			var n int
			var err error
			args, n, err = parseCommand(rest, args)
			if err != nil || n == 0 {
				panic("parse failed")
			}
			rest = rest[n:]
			out, _ = s.exec(out, args, now)
		}
	}
	batch()
	if allocs := testing.AllocsPerRun(100, batch); allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
}

func BenchmarkGetSet(b *testing.B) {
	in := []byte("*3\r\n$3\r\nSET\r\n$8\r\nkey:0001\r\n$3\r\nxyz\r\n*2\r\n$3\r\nGET\r\n$8\r\nkey:0001\r\n")
	s := newStore()
	out := make([]byte, 0, 4096)
	var args [][]byte
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		out = out[:0]
		for rest := in; len(rest) > 0; {
			var n int
			args, n, _ = parseCommand(rest, args)
			rest = rest[n:]
			out, _ = s.exec(out, args, now)
		}
	}
}

// TestParseResumeLinear: a command trickled in a few bytes per read is
// checked once, not from its start after every read (quadratic: a client
// sending a million arguments slowly held the loop, and every connection
// on it, for seconds per read).
func TestParseResumeLinear(t *testing.T) {
	const n = 20000
	cmd := []byte(fmt.Sprintf("*%d\r\n", n) + strings.Repeat("$1\r\na\r\n", n))
	var p progress
	var args [][]byte
	reads := 0
	for k := 7; ; k = min(k+7, len(cmd)) {
		reads++
		var m int
		var err error
		args, m, err = parseResume(cmd[:k], args, &p)
		if err != nil {
			t.Fatal(err)
		}
		if m != 0 {
			if m != len(cmd) || k != len(cmd) || len(args) != n || string(args[n-1]) != "a" {
				t.Fatalf("after %d bytes: %d consumed, %d arguments", k, m, len(args))
			}
			break
		}
	}
	// Each element checked once while it arrived, and once more when the
	// command was complete; a parser starting over would check about
	// reads*n/2.
	if p.scanned > 2*n+reads {
		t.Errorf("%d reads checked %d elements for a %d-element command: it starts over", reads, p.scanned, n)
	}
}

func FuzzParseRESP(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"*2\r\n$3\r\nGET\r\n$1\r\nk",
		"PING\r\nPING\r\n",
		`set k "a\x41\n" 'b\'c'` + "\r\n",
		"*-1\r\n*0\r\n",
		"*1\r\n$-1\r\n",
		"*9223372036854775807\r\n",
		"*1\r\n$1\r\nab\r\n",
		"\"unterminated\r\n",
	} {
		f.Add([]byte(s))
	}
	s := newStore()
	now := time.Now()
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		args, n, err := parseCommand(in, nil)
		if n < 0 || n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		if err != nil {
			var perr protocolError
			if !errors.As(err, &perr) || n != 0 {
				t.Fatalf("error %v with %d consumed", err, n)
			}
			return
		}
		if n == 0 {
			if len(orig) > 0 && orig[0] == '*' && !bytes.Equal(in, orig) {
				t.Fatalf("an incomplete multibulk modified its input")
			}
			return
		}
		if !bytes.Equal(in[n:], orig[n:]) {
			t.Fatalf("bytes after the command were modified")
		}
		total := 0
		for _, a := range args {
			total += len(a)
		}
		if total > n {
			t.Fatalf("%d argument bytes from a %d-byte command", total, n)
		}
		// The same bytes parse the same way again (multibulk is not
		// rewritten, so reparse it as is).
		if orig[0] == '*' {
			again, m, err := parseCommand(orig[:n], nil)
			if m != n || err != nil || fmtArgs(again) != fmtArgs(args) {
				t.Fatalf("reparse: %d %v %s; want %d %s", m, err, fmtArgs(again), n, fmtArgs(args))
			}
			if _, m, err := parseCommand(orig[:n-1], nil); m != 0 || err != nil {
				t.Fatalf("the command less one byte: %d %v; want incomplete", m, err)
			}
			// Arriving in pieces, it parses the same way, resumed.
			var p progress
			for k := 1; k < n; k += 1 + k/3 {
				if _, m, err := parseResume(orig[:k], nil, &p); m != 0 || err != nil {
					t.Fatalf("resumed, first %d bytes: %d %v; want incomplete", k, m, err)
				}
			}
			resumed, m, err := parseResume(orig[:n], nil, &p)
			if m != n || err != nil || fmtArgs(resumed) != fmtArgs(args) || p.left != 0 {
				t.Fatalf("resumed: %d %v %s (left %d); want %d %s", m, err, fmtArgs(resumed), p.left, n, fmtArgs(args))
			}
		}
		// Whatever the command, running it must not panic and must reply
		// with one well-formed reply type.
		if len(args) > 0 {
			out, _ := s.exec(nil, args, now)
			if len(out) < 3 || !bytes.HasSuffix(out, []byte("\r\n")) || !bytes.ContainsRune([]byte("+-:$*"), rune(out[0])) {
				t.Fatalf("reply %q", out)
			}
			if len(s.m) > 10000 {
				clear(s.m)
				s.withTTL = 0
			}
		}
	})
}
