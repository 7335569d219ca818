// Command echo is giambio's echo server on corio: it greets each client,
// echoes every message back, and logs connects and disconnects.
//
// Run it, then talk to it with nc:
//
//	go run ./examples/echo -addr localhost:8007
//	nc localhost 8007
//
// Flags: -addr host:port (default localhost:8007), -backend auto|uring|epoll.
// Ctrl-C (or SIGTERM) cancels the server task; open connections are closed and the
// program exits cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/corio-go/corio/asyncio"
)

func main() {
	addr := flag.String("addr", "localhost:8007", "listen address host:port")
	backend := flag.String("backend", "auto", "I/O backend: auto, uring or epoll")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := asyncio.Run(func(t *asyncio.Task) error {
		return serve(t, *addr, nil)
	}, asyncio.WithBackend(*backend), asyncio.WithContext(ctx))
	if err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("echo server failed", "err", err)
		os.Exit(1)
	}
	slog.Info("echo server stopped")
}

// serve listens on addr and echoes until t is cancelled. If ready is not
// nil it receives the listener's address once listening (tests use it).
func serve(t *asyncio.Task, addr string, ready func(string)) error {
	l, err := asyncio.Listen(t, "tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	slog.Info("echo server listening", "addr", l.Addr().String(), "backend", asyncio.Backend(t))
	if ready != nil {
		ready(l.Addr().String())
	}
	// Serve runs handle in a task per connection, all in one task group
	// (giambio's pool), and closes each connection after its handler. It
	// also keeps accepting after EMFILE ("too many open files") and the
	// like, pausing a little: a burst of clients must not stop the server.
	return asyncio.Serve(t, l, handle)
}

// handle serves one client. Its errors are logged: one bad connection
// must not stop the server.
func handle(t *asyncio.Task, conn *asyncio.Conn) {
	peer := conn.RemoteAddr().String()
	slog.Info("client connected", "peer", peer)
	if _, err := conn.Write(t, []byte("Welcome to the corio echo server!\n")); err != nil {
		logged(peer, err)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(t, buf)
		if err == io.EOF {
			slog.Info("client disconnected", "peer", peer)
			return
		}
		if err != nil {
			logged(peer, err)
			return
		}
		if _, err := conn.Write(t, buf[:n]); err != nil {
			logged(peer, err)
			return
		}
	}
}

func logged(peer string, err error) {
	if asyncio.IsCancellation(err) {
		slog.Info("client disconnected: server stopping", "peer", peer)
		return
	}
	slog.Warn("client error", "peer", peer, "err", fmt.Sprint(err))
}
