// Command kv is an in-memory key-value server on corio that speaks RESP2,
// redis's protocol, so redis-cli and redis-benchmark can talk to it.
//
//	go run ./examples/kv -addr localhost:6380
//	redis-cli -p 6380 set greeting hello
//	redis-cli -p 6380 get greeting
//	redis-benchmark -p 6380 -q -t set,get -P 16
//
// Flags: -addr host:port (default localhost:6380), -backend
// auto|uring|epoll, -v (log every connection). Ctrl-C (or SIGTERM) cancels the server
// task; open connections are closed and the program exits cleanly.
//
// Commands: PING [msg], ECHO msg, GET key, SET key value [NX|XX] [GET]
// [EX seconds|PX milliseconds|KEEPTTL], DEL key..., EXISTS key...,
// INCR/DECR key, INCRBY/DECRBY key n, MGET key..., MSET key value...,
// TTL/PTTL key, DBSIZE, FLUSHALL, SELECT 0, QUIT, and stubs for COMMAND
// (an empty array) and CONFIG GET save|appendonly (what redis-benchmark
// asks at start-up). Requests come as RESP multibulk arrays or as inline
// lines ("PING\r\n", as typed into nc); several may arrive in one read
// (pipelining) and their replies leave in one write. An unknown command or
// a wrong number of arguments gets -ERR and the connection goes on; a
// protocol error gets -ERR Protocol error and closes that connection only.
//
// One loop runs every connection, so the map needs no lock. Expiry uses
// the loop's clock; expired keys are removed when touched and by a sweep
// task every 100 ms.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// flushAt is the size of pending replies at which they are written before
// the rest of the input is run.
const flushAt = 64 << 10

func main() {
	addr := flag.String("addr", "localhost:6380", "listen address host:port")
	backend := flag.String("backend", "auto", "I/O backend: auto, uring or epoll")
	verbose := flag.Bool("v", false, "log every connection")
	flag.Parse()
	if *verbose {
		slog.SetLogLoggerLevel(slog.LevelDebug)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &server{db: newStore()}
	err := asyncio.Run(func(t *asyncio.Task) error {
		return s.serve(t, *addr, nil)
	}, asyncio.WithBackend(*backend), asyncio.WithContext(ctx))
	if err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("kv server failed", "err", err)
		os.Exit(1)
	}
	slog.Info("kv server stopped")
}

type server struct {
	db *store
}

// serve listens on addr and serves until t is cancelled. If ready is not
// nil it receives the listener's address once listening (tests use it).
func (s *server) serve(t *asyncio.Task, addr string, ready func(string)) error {
	l, err := asyncio.Listen(t, "tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	slog.Info("kv server listening", "addr", l.Addr().String(), "backend", asyncio.Backend(t))
	if ready != nil {
		ready(l.Addr().String())
	}
	return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
		g.Spawn(s.sweeper)
		// Serve runs a task per connection, closes each connection after
		// its handler, and keeps accepting (after a pause) when the
		// process runs out of file descriptors.
		err := asyncio.Serve(t, l, s.handle)
		g.Cancel() // the sweeper too
		return err
	})
}

// sweeper removes expired keys that nobody touches.
func (s *server) sweeper(t *asyncio.Task) error {
	for {
		if err := t.Sleep(100 * time.Millisecond); err != nil {
			return err
		}
		s.db.sweep(t.Now())
	}
}

// handle serves one connection; its errors are logged: one bad client
// must not stop the server.
func (s *server) handle(t *asyncio.Task, conn *asyncio.Conn) {
	peer := conn.RemoteAddr().String()
	slog.Debug("client connected", "peer", peer)
	err := s.serveConn(t, conn)
	var perr protocolError
	switch {
	case err == nil:
		slog.Debug("client disconnected", "peer", peer)
	case asyncio.IsCancellation(err):
		// shutting down
	case errors.As(err, &perr):
		slog.Warn("protocol error, closing the connection", "peer", peer, "err", err.Error())
	default:
		slog.Debug("connection ended", "peer", peer, "err", err.Error())
	}
}

// serveConn reads commands and runs them, pipelined: every complete
// command in the input is run, and the replies are written together.
func (s *server) serveConn(t *asyncio.Task, conn *asyncio.Conn) error {
	var (
		in         = make([]byte, firstBuffer)
		out        = make([]byte, 0, firstBuffer)
		args       [][]byte
		start, end int      // unparsed input is in[start:end]
		prog       progress // how far the command at in[start:] was checked
	)
	for {
		if end == len(in) {
			// The command at in[start:] does not fit: make room.
			if start > 0 {
				end = copy(in, in[start:end])
				start = 0
			} else if len(in) < maxQuery {
				in = append(in, make([]byte, len(in))...)[:2*len(in)]
			} else {
				out = appendError(out, "ERR Protocol error: command too large")
				conn.Write(t, out)
				return protocolError("command too large")
			}
		}
		n, err := conn.Read(t, in[end:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		end += n
		now := t.Now()
		for start < end {
			var m int
			args, m, err = parseResume(in[start:end], args, &prog)
			if err != nil {
				out = appendError(out, "ERR "+err.Error())
				conn.Write(t, out)
				return err
			}
			if m == 0 {
				break
			}
			start += m
			if len(args) == 0 {
				continue
			}
			var quit bool
			out, quit = s.db.exec(out, args, now)
			if quit {
				_, err := conn.Write(t, out)
				return err
			}
			if len(out) >= flushAt {
				if _, err := conn.Write(t, out); err != nil {
					return err
				}
				out = shrink(out[:0])
			}
		}
		if len(out) > 0 {
			if _, err := conn.Write(t, out); err != nil {
				return err
			}
			out = shrink(out[:0])
		}
		if start == end {
			start, end = 0, 0
			if len(in) > 4*firstBuffer {
				in = make([]byte, firstBuffer) // a big command is done
			}
		}
	}
}

// shrink drops an output buffer that a big reply grew.
func shrink(b []byte) []byte {
	if cap(b) > 1<<20 {
		return make([]byte, 0, firstBuffer)
	}
	return b
}
