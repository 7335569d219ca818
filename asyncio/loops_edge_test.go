package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"golang.org/x/sys/unix"
)

// a loop of RunLoops that listens twice on one address with port
// 0 (a server with a public and an admin listener, say) must get two
// ports, as under Run; the k-th such listener of every loop shares its
// port with the k-th of the other loops. The port map was keyed by address
// only, so the second Listen of a loop was bound, with SO_REUSEPORT, to
// the port of its own first listener: the kernel then spread one port's
// connections over both, and the second port did not exist.
func TestRunLoopsTwoListenersPerLoop(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			var mu sync.Mutex
			addrs := map[int][2]string{}
			err := asyncio.RunLoops(2, func(task *asyncio.Task) error {
				l1, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				defer l1.Close()
				l2, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				defer l2.Close()
				mu.Lock()
				addrs[asyncio.LoopIndex(task)] = [2]string{l1.Addr().String(), l2.Addr().String()}
				mu.Unlock()
				return nil
			}, asyncio.WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range addrs {
				if a[0] == a[1] {
					t.Errorf("loop %d: two Listens on 127.0.0.1:0 got one address, %s", i, a[0])
				}
			}
			if addrs[0] != addrs[1] {
				t.Errorf("loop 0 listens on %v, loop 1 on %v: want the same two addresses", addrs[0], addrs[1])
			}
		})
	}
}

// RunLoops with WithContext of a context that can never be done
// (context.WithValue(context.Background(), ...), whose Done is nil: Run
// reports a deadlock under it) hung for ever on a deadlock: RunLoops
// wraps it in a context.WithCancel of its own, which the loops then
// counted as something that could still wake them. Run in a child
// process, as the failure is a hang.
func TestRunLoopsDeadlockUnderValuesContext(t *testing.T) {
	if b := os.Getenv("REVIEW4_DEADLOCK_CHILD"); b != "" {
		type key struct{}
		ctx := context.WithValue(context.Background(), key{}, "v")
		var ev asyncio.Event
		err := asyncio.RunLoops(1, func(task *asyncio.Task) error { return ev.Wait(task) },
			asyncio.WithBackend(b), asyncio.WithContext(ctx))
		if !errors.Is(err, asyncio.ErrDeadlock) {
			fmt.Printf("RunLoops = %v, want ErrDeadlock\n", err)
			os.Exit(1)
		}
		fmt.Println("REVIEW4-DEADLOCK-REPORTED")
		os.Exit(0)
	}
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRunLoopsDeadlockUnderValuesContext$", "-test.count=1")
			cmd.Env = append(os.Environ(), "REVIEW4_DEADLOCK_CHILD="+b)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("RunLoops(1, deadlocked main, WithContext(a values-only context)) hung: no deadlock report within 3s")
			}
			if err != nil || !strings.Contains(string(out), "REVIEW4-DEADLOCK-REPORTED") {
				t.Fatalf("child: %v\n%s", err, out)
			}
		})
	}
}

// A second copy of a RunLoops server (another process of the same user,
// whose listeners also have SO_REUSEPORT) must not silently share the
// first one's port and take part of its connections: Listen fails with
// EADDRINUSE, as a plain Listen does.
func TestRunLoopsRefusesPortOfAnotherServer(t *testing.T) {
	// The other server's socket: SO_REUSEPORT, bound and listening.
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(s, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(s, 16); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(s)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			err := asyncio.RunLoops(2, func(task *asyncio.Task) error {
				l, err := asyncio.Listen(task, "tcp", addr)
				if err == nil {
					l.Close()
					return fmt.Errorf("loop %d listens on %s, which another server holds", asyncio.LoopIndex(task), addr)
				}
				return err
			}, asyncio.WithBackend(b))
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("RunLoops = %v, want EADDRINUSE", err)
			}
		})
	}
}
