// Package servertest starts an example server inside asyncio.Run for a
// test and stops it when the test ends, with bounded waits everywhere. It
// also builds an example's command and runs it as a real process (Main),
// and finds the real clients the tests drive it with (Tool).
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
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
//
// When the test ends the server is cancelled, and Start checks that it
// stopped within 10 s, with no error but the cancellation, and that the
// process is left with no more open file descriptors and goroutines than
// it had before (register client cleanups after calling Start, so that
// they run first).
func Start(t testing.TB, backend string, serve func(t *asyncio.Task, addr string, ready func(string)) error) string {
	t.Helper()
	fds, goroutines := countFDs(), runtime.NumGoroutine()
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
			return
		}
		checkLeaks(t, fds, goroutines)
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		done <- err // for the cleanup, which waits for it too
		t.Fatalf("server exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}

// checkLeaks waits up to 5 s for the numbers of open file descriptors and
// goroutines to come back to what they were, and reports them otherwise.
func checkLeaks(t testing.TB, fds, goroutines int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, g := countFDs(), runtime.NumGoroutine()
		if f <= fds && g <= goroutines {
			return
		}
		if time.Now().After(deadline) {
			if f > fds {
				t.Errorf("%d file descriptors open after the server stopped, %d before:\n%s", f, fds, listFDs())
			}
			if g > goroutines {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines after the server stopped, %d before:\n%s", g, goroutines, buf[:runtime.Stack(buf, true)])
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0 // not Linux's /proc: nothing to compare
	}
	return len(ents)
}

func listFDs() string {
	var b strings.Builder
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		link, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		fmt.Fprintf(&b, "  %s -> %s\n", e.Name(), link)
	}
	return b.String()
}

// Tool returns the path of the named program, or skips the test when it
// is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// Process is an example's command running as a child process.
type Process struct {
	Addr string // the address it listens on, read from its log

	t    testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan error // the exit status, once
	// exited is closed once the process has been waited for; the cleanup
	// uses it rather than cmd.ProcessState, which Wait writes on another
	// goroutine.
	exited chan struct{}
}

// Build compiles the main package in the current directory (the test's
// package) into a temporary directory removed when t ends, and returns the
// executable.
func Build(t testing.TB) string {
	t.Helper()
	// go test puts its own GOROOT/bin first in the test's PATH.
	goTool := Tool(t, "go")
	wd, _ := os.Getwd()
	exe := filepath.Join(t.TempDir(), filepath.Base(wd))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// addrRE finds the listening address in a server's first log lines.
var addrRE = regexp.MustCompile(` addr=(\S+)`)

// Main runs exe (from Build) with "-addr 127.0.0.1:0" and args, and waits (up to 10 s) until its log
// names the address it listens on. The process is killed when the test
// ends if Stop was not called.
func Main(t testing.TB, exe string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, done: make(chan error, 1), exited: make(chan struct{})}
	p.cmd = exec.Command(exe, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			p.mu.Lock()
			p.log.WriteString(line)
			p.mu.Unlock()
			if m := addrRE.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
			if err != nil {
				p.done <- p.cmd.Wait()
				close(p.exited)
				return
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.Addr = <-addrc:
	case <-p.done:
		t.Fatalf("%s exited before listening:\n%s", exe, p.Log())
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not say where it listens:\n%s", exe, p.Log())
	}
	return p
}

// Log returns what the process logged so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Interrupt sends SIGINT (Ctrl-C) and checks that the process exits with
// status 0 within 10 s. It returns the whole log.
func (p *Process) Interrupt() string { return p.Stop(syscall.SIGINT) }

// Stop sends sig and checks that the process exits with status 0 within
// 10 s. It returns the whole log.
func (p *Process) Stop(sig syscall.Signal) string {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("exit after %v: %v\n%s", sig, err, p.Log())
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("still running 10 s after %v:\n%s", sig, p.Log())
	}
	return p.Log()
}

// WaitLog waits up to 10 s for the log to contain s.
func (p *Process) WaitLog(s string) {
	p.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Log(), s); {
		if time.Now().After(deadline) {
			p.t.Fatalf("log does not contain %q:\n%s", s, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Command builds the example in the test's directory and, for each
// backend, runs it with "-backend NAME" and args, calls fn with the
// running process, then interrupts it as Ctrl-C would and checks that it
// exits with status 0, having logged the backend it ran and that it
// stopped.
func Command(t *testing.T, args []string, fn func(t *testing.T, p *Process)) {
	CommandStopped(t, args, syscall.SIGINT, fn)
}

// CommandStopped is Command with sig (SIGTERM: a service manager's stop)
// in place of Ctrl-C.
func CommandStopped(t *testing.T, args []string, sig syscall.Signal, fn func(t *testing.T, p *Process)) {
	exe := Build(t)
	for _, b := range Backends(t) {
		t.Run(b, func(t *testing.T) {
			p := Main(t, exe, append([]string{"-backend", b}, args...)...)
			fn(t, p)
			log := p.Stop(sig)
			if !strings.Contains(log, "backend="+b) || !strings.Contains(log, " stopped") {
				t.Errorf("log does not tell the backend (%s) and the stop:\n%s", b, log)
			}
		})
	}
}

// Output runs a program (a real client) with stdin as its input, for at
// most 20 s, and returns its standard output.
func Output(stdin string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%s: %w\n%s", name, err, stderr.Bytes())
	}
	return out, err
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }
