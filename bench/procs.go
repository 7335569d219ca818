package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a running server process under test.
type server struct {
	name   string
	cmd    *exec.Cmd
	addr   string
	stderr *lockedBuffer
	exited chan struct{} // closed once the process has exited and been waited for
}

// lockedBuffer collects a child's stderr; os/exec writes it from its own
// goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serverKinds lists the echo servers that can run here, in table order,
// with a note for each one that cannot. cnote says why cbin is "".
// corio-uring-sync (corio-uring with asyncio.WithSyncWrites: every write
// waits for its completion) runs only when -servers names it: it shows
// what write-behind saves.
func serverKinds(cbin, cnote string) (kinds []string, notes []string) {
	kinds = []string{"net"}
	uring := uringAvailable()
	if uring {
		kinds = append(kinds, "corio-uring", "corio-uring-sync")
	} else {
		notes = append(notes, "corio-uring skipped: io_uring is unavailable here (or compiled out); corio-epoll is measured")
	}
	kinds = append(kinds, "corio-epoll", "netpoll")
	switch {
	case cbin == "":
		notes = append(notes, "c-liburing skipped: "+cnote+" (apt-get install gcc liburing-dev)")
	case !uring:
		notes = append(notes, "c-liburing skipped: io_uring is unavailable here")
	default:
		kinds = append(kinds, "c-liburing")
	}
	return kinds, notes
}

var nextPort = 21000 + os.Getpid()%20000

func freeAddr() string {
	for {
		nextPort++
		a := fmt.Sprintf("127.0.0.1:%d", nextPort)
		if l, err := net.Listen("tcp", a); err == nil {
			l.Close()
			return a
		}
	}
}

// startServer starts the echo server kind as its own process pinned to
// serverCPU (unless -1) with GOMAXPROCS=1, and waits until it listens.
func startServer(kind, cbin string, serverCPU int) (*server, error) {
	addr := freeAddr()
	if kind == "c-liburing" {
		_, port, _ := net.SplitHostPort(addr)
		return startProcess(kind, addr, serverCPU, []string{cbin, port})
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startProcess(kind, addr, serverCPU, []string{self},
		envServe+"="+kind, envAddr+"="+addr, envCPU+"="+strconv.Itoa(serverCPU))
}

// startProcess runs argv with GOMAXPROCS=1 and env, pins it to cpu (unless
// -1) and waits until it accepts connections on addr.
func startProcess(name, addr string, cpu int, argv []string, env ...string) (*server, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS=1", "CORIO_BACKEND="), env...)
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	track(cmd.Process)
	go func() { cmd.Wait(); untrack(cmd.Process); close(exited) }()
	if cpu >= 0 {
		// Go children also pin themselves (serveIfChild) before they start
		// serving; this covers the others.
		pinProcess(cmd.Process.Pid, cpu)
	}
	s := &server{name: name, cmd: cmd, addr: addr, stderr: stderr, exited: exited}
	if err := waitListening(cmd.Process.Pid, addr, exited); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s did not start: %v: %s", name, err, firstLine(stderr.String()))
	}
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop ends the server and returns what it printed on stderr.
func (s *server) stop() string {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	return s.stderr.String()
}

// waitListening waits until process pid listens on addr itself (not some
// other process that took the port), and gives up as soon as it exits.
func waitListening(pid int, addr string, exited <-chan struct{}) error {
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return errors.New("exited")
		default:
		}
		if ownsListener(pid, port) {
			return nil
		}
	}
	return errors.New("not listening on " + addr)
}

// ownsListener says whether pid has a TCP socket listening on port
// (IPv4, as every server here binds 127.0.0.1).
func ownsListener(pid, port int) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// local_address is HEXIP:HEXPORT, st 0A is LISTEN, inode is field 9.
		if len(f) > 9 && f[3] == "0A" && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[l] {
			return true
		}
	}
	return false
}

// syscallsPerMsg runs spec against s under `strace -c -f -p` and returns the
// server's syscalls per echoed message, the messages echoed (warm-up
// included: strace counts it too), and a note when it could not count.
func syscallsPerMsg(s *server, spec loadSpec) (float64, int64, string) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		// corio's own counters need no tool: run the load all the same.
		res, err := runLoad(s.addr, spec, func(bool) {})
		if err != nil {
			return 0, 0, err.Error()
		}
		return 0, res.all, "strace not installed (apt-get install strace)"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, strace, "-c", "-f", "-p", strconv.Itoa(s.pid()))
	var out strings.Builder
	cmd.Stderr = &out
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return 0, 0, err.Error()
	}
	track(cmd.Process)
	defer untrack(cmd.Process)
	time.Sleep(300 * time.Millisecond) // attach
	res, err := runLoad(s.addr, spec, func(bool) {})
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if err != nil {
		return 0, 0, err.Error()
	}
	calls, ok := straceTotal(out.String())
	if !ok {
		return 0, res.all, "no strace summary: " + firstLine(out.String())
	}
	return calls / float64(res.all), res.all, ""
}

// straceTotal returns the calls column of strace -c's total line:
//
//	100.00    0.123456           2     61234      12 total
func straceTotal(out string) (float64, bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[len(f)-1] == "total" {
			calls, err := strconv.ParseFloat(f[3], 64)
			return calls, err == nil
		}
	}
	return 0, false
}

// idleRSS opens n idle connections to s (each echoes one byte first, so
// that the server has set it up fully) and returns the growth of the
// server's peak RSS per connection in KiB, and how many connections opened.
func idleRSS(s *server, n int) (float64, int, error) {
	base := pidStatusKB(s.pid(), "VmRSS")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	msg := []byte("x")
	buf := make([]byte, 1)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			if len(conns) == 0 {
				return 0, 0, err
			}
			break
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			return 0, 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, 0, err
		}
	}
	time.Sleep(500 * time.Millisecond)
	peak := pidStatusKB(s.pid(), "VmHWM")
	return float64(peak-base) / float64(len(conns)), len(conns), nil
}

// buildCServer compiles bench/c/uring_echo.c into dir when gcc and liburing
// are present. It returns the binary, or "" and why not.
func buildCServer(dir string) (string, string) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", "gcc not installed"
	}
	src := filepath.Join(sourceDir(), "c", "uring_echo.c")
	if _, err := os.Stat(src); err != nil {
		return "", "source not found: " + src
	}
	out := filepath.Join(dir, "uring_echo")
	b, err := exec.Command(gcc, "-O2", "-o", out, src, "-luring").CombinedOutput()
	if err != nil {
		return "", "build failed (liburing-dev missing?): " + firstLine(string(b))
	}
	return out, ""
}

// sourceDir is the bench package's directory: bench under the module root
// (`go run ./bench`), or the working directory in tests.
func sourceDir() string {
	for _, d := range []string{"bench", "."} {
		if _, err := os.Stat(filepath.Join(d, "c", "uring_echo.c")); err == nil {
			return d
		}
	}
	return "bench"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
