// Package servertest starts an example server inside asyncio.Run for a
// test and stops it when the test ends, with bounded waits everywhere.
package servertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// Backends returns the backends this machine can run: epoll always,
// io_uring when it is compiled in and the kernel allows it.
func Backends(t testing.TB) []string {
	b := []string{"epoll"}
	if asyncio.Run(func(*asyncio.Task) error { return nil }, asyncio.WithBackend("uring")) == nil {
		b = append(b, "uring")
	}
	return b
}

// Start runs serve on 127.0.0.1:0 with the given backend until the test
// ends, and returns the address it listens on. serve must call ready with
// that address once it listens, and return when its task is cancelled.
func Start(t testing.TB, backend string, serve func(t *asyncio.Task, addr string, ready func(string)) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- asyncio.Run(func(task *asyncio.Task) error {
			return serve(task, "127.0.0.1:0", func(a string) { addrc <- a })
		}, asyncio.WithBackend(backend), asyncio.WithContext(ctx))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("server: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop after cancellation")
		}
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		t.Fatalf("server exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}
