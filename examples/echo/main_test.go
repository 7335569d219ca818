package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// startServer runs the echo server on a free port with the given backend
// until the test ends, and returns its address.
func startServer(t *testing.T, backend string) string {
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

func backendsHere(t *testing.T) []string {
	b := []string{"epoll"}
	if asyncio.Run(func(*asyncio.Task) error { return nil }, asyncio.WithBackend("uring")) == nil {
		b = append(b, "uring")
	}
	return b
}

func TestEchoWithGoClient(t *testing.T) {
	for _, b := range backendsHere(t) {
		t.Run(b, func(t *testing.T) {
			addr := startServer(t, b)
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			welcome, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(welcome, "Welcome") {
				t.Fatalf("welcome %q %v", welcome, err)
			}
			for _, msg := range []string{"hello\n", "corio echoes\n", strings.Repeat("x", 100000) + "\n"} {
				if _, err := io.WriteString(c, msg); err != nil {
					t.Fatal(err)
				}
				got, err := r.ReadString('\n')
				if err != nil || got != msg {
					t.Fatalf("echo: got %d bytes (%v), want %d", len(got), err, len(msg))
				}
			}
		})
	}
}

// TestEchoWithNetcat drives the server with nc, a client nobody here wrote.
func TestEchoWithNetcat(t *testing.T) {
	nc, err := exec.LookPath("nc")
	if err != nil {
		t.Skip("nc not installed")
	}
	addr := startServer(t, "auto")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nc, "-q", "1", host, port)
	cmd.Stdin = strings.NewReader("ping from nc\n")
	out, err := cmd.Output()
	if err != nil {
		// Some nc variants lack -q; try without.
		cmd = exec.CommandContext(ctx, nc, "-N", host, port)
		cmd.Stdin = strings.NewReader("ping from nc\n")
		out, err = cmd.Output()
	}
	if err != nil {
		t.Skipf("nc could not run here: %v", err)
	}
	if !strings.Contains(string(out), "Welcome") || !strings.Contains(string(out), "ping from nc\n") {
		t.Fatalf("nc got %q", out)
	}
}
