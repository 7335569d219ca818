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
	for ; count > 0; count-- {
		if i >= len(buf) {
			return args, 0, nil
		}
		if buf[i] != '$' {
			return args, 0, protocolError("expected '$', got '" + printable(buf[i]) + "'")
		}
		size, next, err := parseLength(buf, i, "invalid bulk length")
		if err != nil || next == 0 {
			return args, 0, err
		}
		if size < 0 || size > maxBulk {
			return args, 0, protocolError("invalid bulk length")
		}
		end := next + int(size)
		if end+2 > len(buf) {
			return args, 0, nil
		}
		if buf[end] != '\r' || buf[end+1] != '\n' {
			return args, 0, protocolError("bulk string not followed by CRLF")
		}
		args = append(args, buf[next:end:end])
		i = end + 2
	}
	return args, i, nil
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
