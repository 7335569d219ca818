// Command httpd is a minimal HTTP/1.1 server on corio that answers
// "Hello, World!" to GET / (and HEAD and POST), written for speed: keep-alive, pipelining, one
// reusable input and output buffer per connection, requests parsed in
// place, and no allocation per request.
//
//	go run ./examples/httpd -addr localhost:8080
//	curl -i http://localhost:8080/
//	wrk -t1 -c64 -d5s http://localhost:8080/
//
// Flags: -addr host:port (default localhost:8080), -backend
// auto|uring|epoll, -idle (close connections idle that long, or whose
// request head takes that long to arrive; 0: never),
// -loops N (serve on N loops, one OS thread and ring each, sharing the
// port with SO_REUSEPORT: asyncio.RunLoops; default 1), -v (log every
// connection). Ctrl-C (or SIGTERM) cancels the server task; open connections are closed
// and the program exits cleanly.
//
// What it speaks: HTTP/1.0 and 1.1 request heads up to 8 KiB (larger: 431
// and close); bodies framed by Content-Length or chunked, read and thrown
// away (after "100 Continue" when the client asks for it); "Connection:
// close" and HTTP/1.0 keep-alive; several requests in one read
// (pipelining) answered with one write; a head split across reads.
// Malformed requests get 400 and the connection is closed. GET, HEAD and
// POST of / (or of http://host/, the absolute form) get "Hello, World!",
// other paths 404, other methods on / 405.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// maxHead is the size of a connection's input buffer, hence the largest
// request head accepted.
const maxHead = 8 << 10

// flushAt is the size of pending output at which pipelined responses are
// written before the rest of the input is parsed.
const flushAt = 64 << 10

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address host:port")
	backend := flag.String("backend", "auto", "I/O backend: auto, uring or epoll")
	idle := flag.Duration("idle", 60*time.Second, "close connections idle this long, or whose request head takes this long (0: never)")
	loops := flag.Int("loops", 1, "loops (threads with a ring each) sharing the port; 0: GOMAXPROCS")
	verbose := flag.Bool("v", false, "log every connection")
	flag.Parse()
	if *verbose {
		slog.SetLogLoggerLevel(slog.LevelDebug)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := func(t *asyncio.Task) error {
		s := &server{idle: *idle} // one per loop: nothing shared, no lock
		return s.serve(t, *addr, nil)
	}
	opts := []asyncio.Option{asyncio.WithBackend(*backend), asyncio.WithContext(ctx)}
	var err error
	if *loops == 1 {
		// Run, not RunLoops(1): no SO_REUSEPORT, so that a second
		// server on the same port fails instead of sharing it.
		err = asyncio.Run(run, opts...)
	} else {
		err = asyncio.RunLoops(*loops, run, opts...)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("httpd failed", "err", err)
		os.Exit(1)
	}
	slog.Info("httpd stopped")
}

// server holds what every connection of a loop shares. One loop runs all
// of them, so nothing here needs a lock (with -loops, each loop has its
// own server).
type server struct {
	idle time.Duration
	date dateCache
}

// serve listens on addr and serves HTTP until t is cancelled. If ready is
// not nil it receives the listener's address once listening (tests use
// it).
func (s *server) serve(t *asyncio.Task, addr string, ready func(string)) error {
	l, err := asyncio.Listen(t, "tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	slog.Info("httpd listening", "addr", l.Addr().String(), "backend", asyncio.Backend(t), "loop", asyncio.LoopIndex(t))
	if ready != nil {
		ready(l.Addr().String())
	}
	// Serve runs a task per connection in one task group, closes each
	// connection after its handler, and keeps accepting (after a pause)
	// when the process runs out of file descriptors.
	return asyncio.Serve(t, l, s.handle)
}

// connection is one client's state; its buffers are reused for every
// request.
type connection struct {
	conn *asyncio.Conn
	in   []byte    // maxHead bytes: the request heads being parsed
	out  []byte    // responses waiting to be written
	last time.Time // last time the client made progress (for -idle)
	// headSince is when the unfinished request head in the input began
	// (zero: none). A head must be complete within -idle of it, however
	// steadily its bytes trickle in: otherwise a client sending one byte
	// every (idle − ε) holds the connection for thousands of idle periods
	// (slowloris).
	headSince time.Time
}

// handle serves one connection. Its errors are logged: one bad client
// must not stop the server.
func (s *server) handle(t *asyncio.Task, conn *asyncio.Conn) {
	c := &connection{conn: conn, in: make([]byte, maxHead), out: make([]byte, 0, 4096), last: t.Now()}
	var err error
	if s.idle > 0 {
		// A watchdog task, not a timeout around every read: a cancel
		// scope per read would be an allocation per request.
		err = asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			wd := g.Spawn(func(t *asyncio.Task) error { return s.watch(t, c) })
			defer wd.Cancel()
			return s.serveConn(t, c)
		})
	} else {
		err = s.serveConn(t, c)
	}
	switch {
	case err == nil:
		slog.Debug("connection closed", "peer", conn.RemoteAddr().String())
	case asyncio.IsCancellation(err):
		// shutting down
	default:
		slog.Debug("connection ended", "peer", conn.RemoteAddr().String(), "err", err.Error())
	}
}

// watch closes the connection once it has been idle for s.idle, or a
// request head has taken longer than s.idle to arrive; the handler's
// pending read or write then fails with net.ErrClosed.
func (s *server) watch(t *asyncio.Task, c *connection) error {
	for {
		deadline := c.last.Add(s.idle)
		if h := c.headSince.Add(s.idle); !c.headSince.IsZero() && h.Before(deadline) {
			deadline = h
		}
		wait := deadline.Sub(t.Now())
		if wait <= 0 {
			slog.Debug("closing idle connection", "peer", c.conn.RemoteAddr().String())
			c.conn.Close()
			return nil
		}
		if err := t.Sleep(wait); err != nil {
			return nil // the handler finished and cancelled us
		}
	}
}

// serveConn reads requests, answers each, and returns nil when the
// connection is done (closed by the client, or by the server after
// "Connection: close", HTTP/1.0 or an error response).
func (s *server) serveConn(t *asyncio.Task, c *connection) error {
	var (
		req        request
		start, end int         // unparsed input is c.in[start:end]
		discard    int64       // Content-Length body bytes still to skip
		chunked    bool        // a chunked body is being skipped
		body       chunkedBody // where in it
	)
	for {
		n, err := c.conn.Read(t, c.in[end:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		end += n
		now := t.Now()
		c.last = now
		date := s.date.at(now)

		for start < end {
			if discard > 0 {
				k := min(discard, int64(end-start))
				start += int(k)
				discard -= k
				continue
			}
			if chunked {
				m, done, status := body.skip(c.in[start:end])
				start += m
				if status == 0 && !done && m == 0 && start == 0 && end == len(c.in) {
					status = statusBadRequest // a chunk-size or trailer line longer than the buffer
				}
				if status != 0 {
					c.out = appendError(c.out, status, date)
					return s.finish(t, c)
				}
				if !done {
					break // the rest of a line is still on its way
				}
				chunked = false
				continue
			}
			m, status := parseRequest(c.in[start:end], &req)
			if status == 0 && m == 0 && start == 0 && end == len(c.in) {
				status = statusHeadersTooLarge
			}
			if status != 0 {
				c.out = appendError(c.out, status, date)
				return s.finish(t, c)
			}
			if m == 0 {
				if c.headSince.IsZero() {
					c.headSince = now
				}
				break // the rest of this head is still on its way
			}
			c.headSince = time.Time{}
			start += m
			discard, chunked = req.contentLength, req.chunked
			c.out = appendResponse(c.out, &req, date)
			if !req.keepAlive {
				return s.finish(t, c)
			}
			if len(c.out) >= flushAt {
				if err := c.flush(t); err != nil {
					return err
				}
			}
		}
		if err := c.flush(t); err != nil {
			return err
		}
		// Move the start of an unfinished head to the front of the buffer.
		if start > 0 {
			end = copy(c.in, c.in[start:end])
			start = 0
		}
	}
}

// flush writes the pending responses.
func (c *connection) flush(t *asyncio.Task) error {
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.conn.Write(t, c.out)
	c.out = c.out[:0]
	c.last = t.Now()
	return err
}

// finish writes the last responses and closes the connection gracefully:
// it shuts down the sending side, then reads (and drops) what the client
// still sends for up to a second. Closing at once with unread input would
// make the kernel reset the connection, and the client could lose the
// response.
func (s *server) finish(t *asyncio.Task, c *connection) error {
	if err := c.flush(t); err != nil {
		return err
	}
	if err := c.conn.CloseWrite(); err != nil {
		return err
	}
	_, err := asyncio.SkipAfter(t, time.Second, func(t *asyncio.Task) error {
		for total := 0; total < 1<<20; {
			n, err := c.conn.Read(t, c.in)
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err == io.EOF || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
