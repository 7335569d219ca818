package main

import (
	"math"
	"strconv"
	"time"
)

// entry is one value. expires is zero for keys without a TTL.
type entry struct {
	val     []byte
	expires time.Time
}

// store is the key space. One loop runs every connection, so the map needs
// no lock: commands run one at a time, each to completion.
//
// Expiry uses the loop's clock (t.Now, passed in as now): a key is dead
// from its deadline on, whether or not it has been removed yet. Dead keys
// are removed when touched, and by sweep, which the server runs every
// 100 ms.
type store struct {
	m        map[string]*entry
	withTTL  int // keys that have a deadline (sweep skips its work when 0)
	sweepMax int
}

func newStore() *store { return &store{m: make(map[string]*entry), sweepMax: 200} }

// get returns the live entry for key, removing it if it has expired.
func (s *store) get(key []byte, now time.Time) *entry {
	e := s.m[string(key)]
	if e != nil && !e.expires.IsZero() && !now.Before(e.expires) {
		s.del(key)
		return nil
	}
	return e
}

// set stores a copy of val, reusing the old value's memory when it fits.
func (s *store) set(key, val []byte, expires time.Time, keepTTL bool, now time.Time) {
	e := s.get(key, now)
	if e == nil {
		e = &entry{}
		s.m[string(key)] = e
	}
	if cap(e.val) >= len(val) && cap(e.val) <= 2*len(val)+64 {
		e.val = append(e.val[:0], val...)
	} else {
		e.val = append([]byte(nil), val...)
	}
	if keepTTL {
		return
	}
	if e.expires.IsZero() != expires.IsZero() {
		if expires.IsZero() {
			s.withTTL--
		} else {
			s.withTTL++
		}
	}
	e.expires = expires
}

func (s *store) del(key []byte) bool {
	e := s.m[string(key)]
	if e == nil {
		return false
	}
	if !e.expires.IsZero() {
		s.withTTL--
	}
	delete(s.m, string(key))
	return true
}

// sweep looks at up to sweepMax keys with a TTL, from wherever Go's map
// iteration starts (a random place), and removes the expired ones. Keys
// without a TTL are skipped without counting, but the walk also stops
// after 20 times that many keys, so one sweep stays short whatever the
// map's size.
func (s *store) sweep(now time.Time) (removed int) {
	if s.withTTL == 0 {
		return 0
	}
	seen, walked := 0, 0
	for k, e := range s.m {
		if walked++; walked > 20*s.sweepMax {
			break
		}
		if e.expires.IsZero() {
			continue
		}
		if !now.Before(e.expires) {
			delete(s.m, k)
			s.withTTL--
			removed++
		}
		if seen++; seen >= s.sweepMax {
			break
		}
	}
	return removed
}

// Command execution.

// exec runs one command (args[0] is its name) and appends its reply to
// out. quit is true for QUIT: the connection closes after the reply.
func (s *store) exec(out []byte, args [][]byte, now time.Time) (_ []byte, quit bool) {
	var up [16]byte
	name := args[0]
	if len(name) > len(up) {
		return unknown(out, args), false
	}
	for i, c := range name {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	argc := len(args)
	arity := func(ok bool) bool {
		if !ok {
			out = wrongArity(out, args[0])
		}
		return ok
	}
	switch string(up[:len(name)]) {
	case "GET":
		if arity(argc == 2) {
			if e := s.get(args[1], now); e != nil {
				out = appendBulk(out, e.val)
			} else {
				out = appendNull(out)
			}
		}
	case "SET":
		if arity(argc >= 3) {
			out = s.execSet(out, args, now)
		}
	case "PING":
		switch argc {
		case 1:
			out = appendSimple(out, "PONG")
		case 2:
			out = appendBulk(out, args[1])
		default:
			out = wrongArity(out, args[0])
		}
	case "ECHO":
		if arity(argc == 2) {
			out = appendBulk(out, args[1])
		}
	case "DEL", "UNLINK":
		if arity(argc >= 2) {
			n := 0
			for _, k := range args[1:] {
				if s.get(k, now) != nil && s.del(k) {
					n++
				}
			}
			out = appendInt(out, int64(n))
		}
	case "EXISTS":
		if arity(argc >= 2) {
			n := 0
			for _, k := range args[1:] {
				if s.get(k, now) != nil {
					n++
				}
			}
			out = appendInt(out, int64(n))
		}
	case "INCR", "DECR":
		if arity(argc == 2) {
			delta := int64(1)
			if up[0] == 'D' {
				delta = -1
			}
			out = s.incr(out, args[1], delta, now)
		}
	case "INCRBY", "DECRBY":
		if arity(argc == 3) {
			delta, ok := parseInt(args[2])
			switch {
			case !ok:
				out = appendError(out, "ERR value is not an integer or out of range")
			case up[0] == 'D' && delta == math.MinInt64:
				out = appendError(out, "ERR decrement would overflow")
			default:
				if up[0] == 'D' {
					delta = -delta
				}
				out = s.incr(out, args[1], delta, now)
			}
		}
	case "MGET":
		if arity(argc >= 2) {
			out = appendArray(out, argc-1)
			for _, k := range args[1:] {
				if e := s.get(k, now); e != nil {
					out = appendBulk(out, e.val)
				} else {
					out = appendNull(out)
				}
			}
		}
	case "MSET":
		if arity(argc >= 3 && argc%2 == 1) {
			for i := 1; i < argc; i += 2 {
				s.set(args[i], args[i+1], time.Time{}, false, now)
			}
			out = appendSimple(out, "OK")
		}
	case "TTL", "PTTL":
		if arity(argc == 2) {
			e := s.get(args[1], now)
			switch {
			case e == nil:
				out = appendInt(out, -2)
			case e.expires.IsZero():
				out = appendInt(out, -1)
			case up[0] == 'P':
				out = appendInt(out, ceilDiv(e.expires.Sub(now), time.Millisecond))
			default:
				out = appendInt(out, ceilDiv(e.expires.Sub(now), time.Second))
			}
		}
	case "DBSIZE":
		if arity(argc == 1) {
			out = appendInt(out, int64(len(s.m)))
		}
	case "FLUSHALL", "FLUSHDB":
		clear(s.m)
		s.withTTL = 0
		out = appendSimple(out, "OK")
	case "SELECT":
		if arity(argc == 2) {
			if string(args[1]) == "0" {
				out = appendSimple(out, "OK")
			} else {
				out = appendError(out, "ERR DB index is out of range")
			}
		}
	case "QUIT":
		return appendSimple(out, "OK"), true
	case "COMMAND":
		// redis-cli asks for command docs at start-up; it does without.
		out = appendArray(out, 0)
	case "CONFIG":
		out = s.config(out, args)
	default:
		out = unknown(out, args)
	}
	return out, false
}

// execSet runs SET key value [NX|XX] [GET] [EX seconds|PX
// milliseconds|KEEPTTL]. With GET the reply is the old value (nil when
// there was none) instead of OK, whether the value was set or not.
func (s *store) execSet(out []byte, args [][]byte, now time.Time) []byte {
	var (
		nx, xx, keepTTL, get bool
		expires              time.Time
		ttlGiven             bool
	)
	for i := 3; i < len(args); i++ {
		opt := args[i]
		switch {
		case equalFold(opt, "NX") && !xx:
			nx = true
		case equalFold(opt, "XX") && !nx:
			xx = true
		case equalFold(opt, "GET"):
			get = true
		case equalFold(opt, "KEEPTTL") && !ttlGiven:
			keepTTL = true
		case (equalFold(opt, "EX") || equalFold(opt, "PX")) && !ttlGiven && !keepTTL && i+1 < len(args):
			i++
			n, ok := parseInt(args[i])
			unit := time.Second
			if opt[0] == 'P' || opt[0] == 'p' {
				unit = time.Millisecond
			}
			if !ok {
				return appendError(out, "ERR value is not an integer or out of range")
			}
			if n <= 0 || n > int64(math.MaxInt64/unit) {
				return appendError(out, "ERR invalid expire time in 'set' command")
			}
			expires = now.Add(time.Duration(n) * unit)
			ttlGiven = true
		default:
			return appendError(out, "ERR syntax error")
		}
	}
	old := s.get(args[1], now)
	reply := appendSimple(out, "OK")
	switch {
	case get && old != nil:
		reply = appendBulk(out, old.val) // before set reuses old.val's memory
	case get || (nx && old != nil) || (xx && old == nil):
		reply = appendNull(out)
	}
	if (nx && old != nil) || (xx && old == nil) {
		return reply
	}
	s.set(args[1], args[2], expires, keepTTL, now)
	return reply
}

// incr adds delta to the integer stored at key (0 when missing), keeping
// its TTL.
func (s *store) incr(out []byte, key []byte, delta int64, now time.Time) []byte {
	var cur int64
	e := s.get(key, now)
	if e != nil {
		var ok bool
		if cur, ok = parseInt(e.val); !ok {
			return appendError(out, "ERR value is not an integer or out of range")
		}
	}
	if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
		return appendError(out, "ERR increment or decrement would overflow")
	}
	cur += delta
	var num [20]byte
	s.set(key, strconv.AppendInt(num[:0], cur, 10), time.Time{}, true, now)
	return appendInt(out, cur)
}

// config answers CONFIG GET for the two parameters redis-benchmark asks
// about at start-up ("save" and "appendonly": this server persists
// nothing); any other parameter matches nothing.
func (s *store) config(out []byte, args [][]byte) []byte {
	if len(args) < 2 || !equalFold(args[1], "GET") {
		return appendError(out, "ERR only CONFIG GET is supported")
	}
	if len(args) < 3 {
		return wrongArity(out, []byte("config|get"))
	}
	n := 0
	for _, p := range args[2:] {
		if equalFold(p, "SAVE") || equalFold(p, "APPENDONLY") {
			n++
		}
	}
	out = appendArray(out, 2*n)
	for _, p := range args[2:] {
		switch {
		case equalFold(p, "SAVE"):
			out = appendBulkString(out, "save")
			out = appendBulkString(out, "")
		case equalFold(p, "APPENDONLY"):
			out = appendBulkString(out, "appendonly")
			out = appendBulkString(out, "no")
		}
	}
	return out
}

func wrongArity(out, name []byte) []byte {
	out = append(out, "-ERR wrong number of arguments for '"...)
	out = appendQuoted(out, name, true)
	return append(out, "' command\r\n"...)
}

// unknown replies like redis: -ERR unknown command 'foo', with args
// beginning with: 'a' 'b'
func unknown(out []byte, args [][]byte) []byte {
	out = append(out, "-ERR unknown command '"...)
	out = appendQuoted(out, args[0], false)
	out = append(out, "', with args beginning with: "...)
	for _, a := range args[1:] {
		if len(out) > 4096 {
			break
		}
		out = append(out, '\'')
		out = appendQuoted(out, a, false)
		out = append(out, "' "...)
	}
	return append(out, '\r', '\n')
}

// appendQuoted appends b for an error line: at most 128 bytes, control
// characters (CR and LF above all) as '?', lower-cased if lower.
func appendQuoted(out, b []byte, lower bool) []byte {
	for i, c := range b {
		if i == 128 {
			return append(out, "..."...)
		}
		switch {
		case c < ' ' || c == 0x7f:
			c = '?'
		case lower && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return out
}

// equalFold reports whether b equals upper, ASCII case-insensitively;
// upper must be upper case.
func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// ceilDiv is d/unit rounded up, without the overflow of (d+unit-1)/unit for
// a d near its maximum (a far-future expiry: Sub saturates there).
func ceilDiv(d, unit time.Duration) int64 {
	n := d / unit
	if d%unit > 0 {
		n++
	}
	return int64(n)
}
