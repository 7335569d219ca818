package main

import (
	"bytes"
	"strconv"
)

// Limits on what one command may be.
const (
	maxArgs     = 1 << 20  // elements of a multibulk (redis: 1M)
	maxBulk     = 32 << 20 // bytes of one argument (redis: 512 MiB)
	maxQuery    = 64 << 20 // bytes of one whole command, as buffered
	maxInline   = 64 << 10 // bytes of an inline command line
	maxNumLine  = 32       // digits (and sign) of a length line
	firstBuffer = 16 << 10 // a connection's first input buffer
)

// protocolError is a request that cannot be parsed; the connection that
// sent it gets "-ERR Protocol error: ..." and is closed.
type protocolError string

func (e protocolError) Error() string { return "Protocol error: " + string(e) }

// parseCommand parses the command at the start of buf, in RESP2 (a
// multibulk array of bulk strings, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", as
// clients send) or inline ("GET k\r\n", as typed into nc or telnet).
//
// It returns the arguments, appended to args[:0] and aliasing buf, and the
// number of bytes the command took:
//   - n > 0: a complete command (no arguments for an empty line or "*0");
//   - n == 0, nil error: buf holds only the beginning of a command;
//   - a protocolError: malformed input (n == 0).
//
// Inline commands are split on spaces and tabs; "double quoted" arguments
// take the escapes \n \r \t \b \a \\ \" \xHH, 'single quoted' ones take \',
// as redis does. Unescaping rewrites buf in place, only ever within the
// complete line it returns as consumed. Nothing is allocated once args has
// grown to the largest command's size.
func parseCommand(buf []byte, args [][]byte) ([][]byte, int, error) {
	return parseResume(buf, args, nil)
}

// progress is where parsing a multibulk command stopped when the input
// ended inside it. A connection keeps one, so that a command arriving in
// many reads is checked once, piece by piece, instead of from its start
// after every read: a client trickling a command of a million arguments
// would otherwise cost the server quadratic time, on the loop every
// connection shares.
type progress struct {
	left    int64 // elements of the command still to check; 0: none begun
	next    int   // where the next element starts, from the command's start
	scanned int   // elements checked in all (for tests)
}

// parseResume is parseCommand for successive views of one connection's
// input, all starting at the same command: with p non-nil, the elements an
// earlier call checked are not checked again, and the arguments are sliced
// in one pass once the command is complete.
func parseResume(buf []byte, args [][]byte, p *progress) ([][]byte, int, error) {
	args = args[:0]
	if len(buf) == 0 {
		return args, 0, nil
	}
	if buf[0] != '*' {
		return parseInline(buf, args)
	}
	count, i, err := parseLength(buf, 0, "invalid multibulk length")
	if err != nil || i == 0 {
		return args, 0, err
	}
	if count > maxArgs {
		return args, 0, protocolError("invalid multibulk length")
	}
	if p != nil && p.left > 0 {
		// Continue where the last call stopped, without keeping
		// arguments; once the command is complete, slice them below.
		next, left, err := scanBulks(buf, p.next, p.left, nil, p)
		if err != nil || left > 0 {
			p.next, p.left = next, left
			return args, 0, err
		}
	}
	args, next, left, err := keepBulks(buf, i, count, args, p)
	if err != nil || left > 0 {
		if p != nil {
			p.next, p.left = next, left
		}
		return args[:0], 0, err
	}
	if p != nil {
		p.left = 0
	}
	return args, next, nil
}

// keepBulks is scanBulks keeping the arguments, appended to args.
func keepBulks(buf []byte, i int, count int64, args [][]byte, p *progress) ([][]byte, int, int64, error) {
	next, left, err := scanBulks(buf, i, count, &args, p)
	return args, next, left, err
}

// scanBulks checks the count bulk strings ("$3\r\nGET\r\n") at buf[i:] and
// returns the index after the last complete one and how many are left (0:
// all there); with args non-nil, it appends each one to *args. An error
// (with left 0) means malformed input.
func scanBulks(buf []byte, i int, count int64, args *[][]byte, p *progress) (next int, left int64, err error) {
	for ; count > 0; count-- {
		if i >= len(buf) {
			return i, count, nil
		}
		if buf[i] != '$' {
			return i, 0, protocolError("expected '$', got '" + printable(buf[i]) + "'")
		}
		size, data, err := parseLength(buf, i, "invalid bulk length")
		if err != nil {
			return i, 0, err
		}
		if data == 0 {
			return i, count, nil
		}
		if size < 0 || size > maxBulk {
			return i, 0, protocolError("invalid bulk length")
		}
		end := data + int(size)
		if end+2 > len(buf) {
			return i, count, nil
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return i, 0, protocolError("bulk string not followed by CRLF")
		}
		if args != nil {
			*args = append(*args, buf[data:end:end])
		}
		if p != nil {
			p.scanned++
		}
		i = end + 2
	}
	return i, 0, nil
}

// parseLength parses the "*<n>\r\n" or "$<n>\r\n" line at buf[i] and
// returns n and the index after the line; next == 0 (nil error) when the
// line is not complete yet.
func parseLength(buf []byte, i int, what string) (n int64, next int, err error) {
	j := i + 1
	limit := min(len(buf), j+maxNumLine+1)
	cr := bytes.IndexByte(buf[j:limit], '\r')
	if cr < 0 {
		if limit-j > maxNumLine {
			return 0, 0, protocolError(what)
		}
		return 0, 0, nil
	}
	line := buf[j : j+cr]
	if j+cr+1 >= len(buf) {
		return 0, 0, nil
	}
	if buf[j+cr+1] != '\n' {
		return 0, 0, protocolError(what)
	}
	n, ok := parseInt(line)
	if !ok {
		return 0, 0, protocolError(what)
	}
	return n, j + cr + 2, nil
}

// parseInt parses a decimal int64 the way redis does: optional '-', digits,
// no leading zeros, no '+', no spaces.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<63)/10 || n*10 > 1<<63-d {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		if n == 0 {
			return 0, false // "-0"
		}
		return -int64(n-1) - 1, true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

func parseInline(buf []byte, args [][]byte) ([][]byte, int, error) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > maxInline {
			return args, 0, protocolError("too big inline request")
		}
		return args, 0, nil
	}
	if nl > maxInline {
		return args, 0, protocolError("too big inline request")
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	for i := 0; ; {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nl + 1, nil
		}
		var arg []byte
		var err error
		switch line[i] {
		case '"', '\'':
			arg, i, err = unquote(line, i)
			if err != nil {
				return args, 0, err
			}
		default:
			j := i
			for j < len(line) && !isSpace(line[j]) {
				j++
			}
			arg, i = line[i:j:j], j
		}
		args = append(args, arg)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' }

// unquote unescapes the quoted argument starting at line[i] in place and
// returns it and the index after the closing quote, which must be followed
// by a space or the end of the line.
func unquote(line []byte, i int) ([]byte, int, error) {
	quote := line[i]
	start := i + 1
	w := start
	for r := start; r < len(line); r++ {
		c := line[r]
		switch {
		case c == quote:
			if r+1 < len(line) && !isSpace(line[r+1]) {
				return nil, 0, protocolError("unbalanced quotes in request")
			}
			return line[start:w:w], r + 1, nil
		case c == '\\' && r+1 < len(line) && quote == '\'':
			if line[r+1] == '\'' {
				r++
				c = '\''
			}
		case c == '\\' && r+1 < len(line):
			r++
			switch line[r] {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'a':
				c = '\a'
			case 'x':
				if r+2 < len(line) && isHex(line[r+1]) && isHex(line[r+2]) {
					c = unhex(line[r+1])<<4 | unhex(line[r+2])
					r += 2
				} else {
					c = 'x'
				}
			default:
				c = line[r]
			}
		}
		line[w] = c
		w++
	}
	return nil, 0, protocolError("unbalanced quotes in request")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func printable(c byte) string {
	if c < ' ' || c > '~' {
		return "\\x" + strconv.FormatUint(uint64(c), 16)
	}
	return string(c)
}

// Replies. Each appends to the connection's output buffer.

func appendSimple(out []byte, s string) []byte {
	out = append(out, '+')
	out = append(out, s...)
	return append(out, '\r', '\n')
}

// appendError appends "-<msg>\r\n"; CR and LF in msg become spaces so that
// the reply stays one line.
func appendError(out []byte, msg string) []byte {
	out = append(out, '-')
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		out = append(out, c)
	}
	return append(out, '\r', '\n')
}

func appendInt(out []byte, n int64) []byte {
	out = append(out, ':')
	out = strconv.AppendInt(out, n, 10)
	return append(out, '\r', '\n')
}

func appendBulk(out, b []byte) []byte {
	out = append(out, '$')
	out = strconv.AppendInt(out, int64(len(b)), 10)
	out = append(out, '\r', '\n')
	out = append(out, b...)
	return append(out, '\r', '\n')
}

func appendBulkString(out []byte, s string) []byte {
	out = append(out, '$')
	out = strconv.AppendInt(out, int64(len(s)), 10)
	out = append(out, '\r', '\n')
	out = append(out, s...)
	return append(out, '\r', '\n')
}

func appendNull(out []byte) []byte { return append(out, "$-1\r\n"...) }

func appendArray(out []byte, n int) []byte {
	out = append(out, '*')
	out = strconv.AppendInt(out, int64(n), 10)
	return append(out, '\r', '\n')
}
