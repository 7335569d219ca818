package main

import (
	"bytes"
	"time"
)

// request is the parsed head of one HTTP/1.x request. method and target
// alias the buffer given to parseRequest: they are valid until that buffer
// is reused.
type request struct {
	method        []byte
	target        []byte
	minor         int   // the x of HTTP/1.x: 0 or 1
	keepAlive     bool  // the connection stays open after the response
	contentLength int64 // body bytes that follow the head (read and discarded)
	chunked       bool  // a chunked body follows the head (read and discarded)
	continue100   bool  // "Expect: 100-continue": the client waits for a 100
}

// Status codes the parser and the handler answer with.
const (
	statusOK                  = 200
	statusBadRequest          = 400
	statusNotFound            = 404
	statusMethodNotAllowed    = 405
	statusHeadersTooLarge     = 431
	statusVersionNotSupported = 505
)

// maxContentLength bounds a request body (it is read and thrown away, but a
// number this large is more likely an attack or a bug than an upload).
const maxContentLength = 1 << 40

// parseRequest parses the request head (request line and header fields, up
// to and including the empty line) at the start of buf into req, in place
// and without allocating.
//
// It returns:
//   - n > 0, status 0: a complete head of n bytes; the body, if any
//     (req.contentLength bytes), starts at buf[n];
//   - n == 0, status 0: buf holds only the beginning of a head (read more;
//     the caller decides when the head is too large: 431);
//   - n == 0, status 400 or 505: the head is malformed, or its version is
//     other than HTTP/1.0 and 1.1. The caller answers with status and
//     closes.
//
// Only complete lines are judged (but for the method, which must be a
// token from its first byte on, so that a client speaking something else
// is answered at once), so a prefix of a valid head is always "incomplete",
// never an error: a head may arrive split across any number of reads. Lines
// end in CRLF or, leniently, a bare LF (RFC 9112 §2.2); empty lines before
// the request line are skipped.
//
// Bodies are framed by Content-Length or by the chunked transfer coding
// (RFC 9112 §6.3), which HTTP/1.1 servers must accept: "Transfer-Encoding:
// chunked", possibly after other codings (the body is thrown away, so they
// need no decoding). Chunked not last, chunked together with
// Content-Length, or Transfer-Encoding in HTTP/1.0 get 400: the body's end
// cannot be known, and guessing is how requests are smuggled.
func parseRequest(buf []byte, req *request) (n int, status int) {
	*req = request{}
	i := 0
	for {
		if i < len(buf) && buf[i] == '\n' {
			i++
		} else if i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n' {
			i += 2
		} else {
			break
		}
	}

	// Request line: method SP request-target SP HTTP-version.
	line, i, st := nextLine(buf, i)
	if st == lineIncomplete {
		// Judge the method already: TLS, SSH or random bytes get their 400
		// now rather than an idle timeout.
		method := bytes.TrimSuffix(buf[i:], []byte("\r"))
		if sp := bytes.IndexByte(method, ' '); sp >= 0 {
			method = method[:sp]
			if sp == 0 {
				return 0, statusBadRequest
			}
		}
		if len(method) > 0 && !isToken(method) {
			return 0, statusBadRequest
		}
	}
	if st != lineOK {
		return 0, st.status()
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return 0, statusBadRequest
	}
	req.method = line[:sp]
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 || !isTarget(rest[:sp]) {
		return 0, statusBadRequest
	}
	req.target = rest[:sp]
	switch v := rest[sp+1:]; {
	case string(v) == "HTTP/1.1":
		req.minor = 1
	case string(v) == "HTTP/1.0":
		req.minor = 0
	case len(v) == 8 && string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7]):
		return 0, statusVersionNotSupported
	default:
		return 0, statusBadRequest
	}

	// Header fields, up to the empty line.
	var (
		hosts, lengths    int
		codings, chunked  int  // transfer codings, and how many are chunked
		chunkedLast       bool // the last transfer coding is chunked
		close_, keepAlive bool
	)
	for {
		line, i, st = nextLine(buf, i)
		if st != lineOK {
			return 0, st.status()
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		// No colon, an empty name, or whitespace before the colon (which
		// also rejects obsolete line folding): malformed.
		if colon <= 0 || !isToken(line[:colon]) {
			return 0, statusBadRequest
		}
		name := line[:colon]
		value := trimOWS(line[colon+1:])
		if !isFieldValue(value) {
			return 0, statusBadRequest
		}
		switch {
		case equalFold(name, "content-length"):
			cl, ok := parseLength(value)
			if !ok || (lengths > 0 && cl != req.contentLength) {
				return 0, statusBadRequest
			}
			req.contentLength = cl
			lengths++
		case equalFold(name, "transfer-encoding"):
			n := 0
			for tok := range tokens(value) {
				n++
				chunkedLast = equalFold(tok, "chunked")
				if chunkedLast {
					chunked++
				}
			}
			if n == 0 {
				return 0, statusBadRequest // an empty list
			}
			codings += n
		case equalFold(name, "expect"):
			req.continue100 = equalFold(value, "100-continue")
		case equalFold(name, "connection"):
			c, k := connectionTokens(value)
			close_ = close_ || c
			keepAlive = keepAlive || k
		case equalFold(name, "host"):
			hosts++
		}
	}
	switch {
	case hosts > 1, hosts == 0 && req.minor == 1:
		// RFC 9112 §3.2: exactly one Host in HTTP/1.1.
		return 0, statusBadRequest
	case codings > 0 && (lengths > 0 || req.minor == 0 || chunked != 1 || !chunkedLast):
		// Both framings, Transfer-Encoding in 1.0, or chunked missing,
		// repeated or not last: the body's end is unknown (RFC 9112 §6.1,
		// §6.3).
		return 0, statusBadRequest
	}
	req.chunked = codings > 0
	if req.minor == 1 {
		req.keepAlive = !close_
	} else {
		req.keepAlive = keepAlive && !close_
	}
	return i, 0
}

type lineStatus int

const (
	lineOK lineStatus = iota
	lineIncomplete
	lineBad
)

func (s lineStatus) status() int {
	if s == lineBad {
		return statusBadRequest
	}
	return 0
}

// nextLine returns the line starting at buf[i] without its CRLF (or LF)
// and the index after it. A CR anywhere else in the line is malformed.
func nextLine(buf []byte, i int) (line []byte, next int, st lineStatus) {
	nl := bytes.IndexByte(buf[i:], '\n')
	if nl < 0 {
		return nil, i, lineIncomplete
	}
	line = buf[i : i+nl]
	next = i + nl + 1
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, i, lineBad
	}
	return line, next, lineOK
}

// tchar is RFC 9110's token character set.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// isTarget accepts visible ASCII and bytes >= 0x80 (left for the
// application to reject): no controls, no spaces.
func isTarget(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// isFieldValue accepts VCHAR, obs-text, SP and HTAB; no other controls.
func isFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals lower, ASCII case-insensitively; lower
// must be lower case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value: 1*DIGIT, bounded.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n > maxContentLength {
			return 0, false
		}
	}
	return n, true
}

// tokens yields the elements of a comma-separated list (RFC 9110 §5.6.1),
// without their surrounding whitespace, skipping empty ones.
func tokens(v []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var tok []byte
			if c := bytes.IndexByte(v, ','); c >= 0 {
				tok, v = v[:c], v[c+1:]
			} else {
				tok, v = v, nil
			}
			if tok = trimOWS(tok); len(tok) > 0 && !yield(tok) {
				return
			}
		}
	}
}

// connectionTokens looks for "close" and "keep-alive" in a Connection
// value.
func connectionTokens(v []byte) (closeTok, keepAliveTok bool) {
	for tok := range tokens(v) {
		switch {
		case equalFold(tok, "close"):
			closeTok = true
		case equalFold(tok, "keep-alive"):
			keepAliveTok = true
		}
	}
	return
}

// chunkedBody throws away a chunked request body (RFC 9112 §7.1) as it
// arrives: chunk-size lines (extensions ignored), chunk data, the last
// chunk and the trailer section.
type chunkedBody struct {
	state chunkState
	left  int64 // data bytes left in the current chunk
}

type chunkState int

const (
	chunkSizeLine chunkState = iota
	chunkData
	chunkDataEnd // the CRLF after a chunk's data
	chunkTrailer
)

// skip consumes as much of buf as it can and returns how many bytes that
// was, and whether the body ended there (the state is then reset for the
// next body). It only consumes complete lines: when it returns n <
// len(buf) and not done, buf[n:] begins an unfinished line. Malformed
// framing returns status 400.
func (c *chunkedBody) skip(buf []byte) (n int, done bool, status int) {
	for n < len(buf) {
		switch c.state {
		case chunkData:
			k := min(c.left, int64(len(buf)-n))
			n += int(k)
			if c.left -= k; c.left == 0 {
				c.state = chunkDataEnd
			}
		case chunkDataEnd:
			// CRLF only: RFC 9112 tolerates a bare LF in the head, not in
			// chunk framing, where a front end that reads the framing
			// differently is how requests are smuggled.
			switch {
			case buf[n] != '\r':
				return n, false, statusBadRequest
			case n+1 == len(buf):
				return n, false, 0
			case buf[n+1] != '\n':
				return n, false, statusBadRequest
			default:
				n += 2
			}
			c.state = chunkSizeLine
		case chunkSizeLine, chunkTrailer:
			line, next, st := nextLine(buf, n)
			if st == lineOK && (next-n < 2 || buf[next-2] != '\r') {
				st = lineBad // a bare LF in chunk framing: see chunkDataEnd
			}
			switch {
			case st == lineBad:
				return n, false, statusBadRequest
			case st == lineIncomplete:
				return n, false, 0
			}
			n = next
			if c.state == chunkTrailer {
				if len(line) == 0 {
					*c = chunkedBody{}
					return n, true, 0
				}
				if !isFieldValue(line) {
					return n, false, statusBadRequest
				}
				continue
			}
			size, ok := parseChunkSize(line)
			switch {
			case !ok:
				return n, false, statusBadRequest
			case size == 0:
				c.state = chunkTrailer
			default:
				c.state, c.left = chunkData, size
			}
		}
	}
	return n, false, 0
}

// parseChunkSize parses a chunk-size line: hex digits, then optional
// extensions (";name=value", ignored).
func parseChunkSize(line []byte) (int64, bool) {
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		size = size<<4 | int64(d)
		if size > maxContentLength {
			return 0, false
		}
	}
	if i == 0 {
		return 0, false
	}
	ext := trimOWS(line[i:])
	return size, (len(ext) == 0 || ext[0] == ';') && isFieldValue(ext)
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// Responses. Everything but the Date value is a constant, appended to the
// connection's output buffer: building a response allocates nothing once
// that buffer has grown to its working size.

const (
	helloBody     = "Hello, World!"
	notFoundBody  = "Not Found\n"
	textPlain     = "Content-Type: text/plain; charset=utf-8\r\n"
	serverAndDate = "Server: corio\r\nDate: "
)

// originForm returns the path and query of a request target: the target
// itself, or, for the absolute form a server must accept ("GET
// http://host/path HTTP/1.1", RFC 9112 section 3.2.2), what follows its
// scheme and authority ("/" when nothing does).
func originForm(target []byte) []byte {
	i := bytes.Index(target, []byte("://"))
	if len(target) == 0 || target[0] == '/' || i <= 0 {
		return target
	}
	rest := target[i+3:]
	if len(rest) == 0 || rest[0] == '/' || rest[0] == '?' {
		return target // no authority: not an absolute URI
	}
	if j := bytes.IndexAny(rest, "/?"); j >= 0 {
		if rest[j] == '?' {
			return append([]byte("/"), rest[j:]...) // rare: allocating is fine
		}
		return rest[j:]
	}
	return []byte("/")
}

// appendResponse appends the response to req: "Hello, World!" for GET,
// HEAD or POST of "/" (a query string is ignored; a body is thrown away),
// 404 for other paths, 405 for other methods on "/". A request that
// expects "100 Continue" before it sends its body gets it first.
func appendResponse(dst []byte, req *request, date []byte) []byte {
	path := originForm(req.target)
	if q := bytes.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	head := string(req.method) == "HEAD"
	get := head || string(req.method) == "GET" || string(req.method) == "POST"
	if req.continue100 && req.minor == 1 && (req.contentLength > 0 || req.chunked) {
		dst = append(dst, "HTTP/1.1 100 Continue\r\n\r\n"...)
	}
	switch {
	case string(path) != "/":
		dst = appendHead(dst, "HTTP/1.1 404 Not Found\r\n", date, req)
		dst = append(dst, textPlain+"Content-Length: 10\r\n\r\n"...)
		if !head {
			dst = append(dst, notFoundBody...)
		}
	case !get:
		dst = appendHead(dst, "HTTP/1.1 405 Method Not Allowed\r\n", date, req)
		dst = append(dst, "Allow: GET, HEAD, POST\r\nContent-Length: 0\r\n\r\n"...)
	default:
		dst = appendHead(dst, "HTTP/1.1 200 OK\r\n", date, req)
		dst = append(dst, textPlain+"Content-Length: 13\r\n\r\n"...)
		if !head {
			dst = append(dst, helloBody...)
		}
	}
	return dst
}

// appendHead appends the status line, Server, Date and, when the client
// needs to be told, Connection.
func appendHead(dst []byte, statusLine string, date []byte, req *request) []byte {
	dst = append(dst, statusLine...)
	dst = append(dst, serverAndDate...)
	dst = append(dst, date...)
	dst = append(dst, '\r', '\n')
	switch {
	case !req.keepAlive:
		dst = append(dst, "Connection: close\r\n"...)
	case req.minor == 0:
		dst = append(dst, "Connection: keep-alive\r\n"...)
	}
	return dst
}

// appendError appends the response for a request that could not be parsed
// (status from parseRequest, or 431); the connection is closed after it.
func appendError(dst []byte, status int, date []byte) []byte {
	var line string
	switch status {
	case statusHeadersTooLarge:
		line = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
	case statusVersionNotSupported:
		line = "HTTP/1.1 505 HTTP Version Not Supported\r\n"
	default:
		line = "HTTP/1.1 400 Bad Request\r\n"
	}
	dst = appendHead(dst, line, date, &request{})
	return append(dst, "Content-Length: 0\r\n\r\n"...)
}

// dateCache holds the Date header value, formatted once per second.
type dateCache struct {
	sec  int64
	date [len(httpDate)]byte
}

// httpDate is RFC 9110's IMF-fixdate layout (net/http's TimeFormat).
const httpDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// at returns the Date value for now; the slice is overwritten a second
// later.
func (d *dateCache) at(now time.Time) []byte {
	if s := now.Unix(); s != d.sec {
		d.sec = s
		now.UTC().AppendFormat(d.date[:0], httpDate)
	}
	return d.date[:]
}
