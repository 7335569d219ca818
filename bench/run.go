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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a running server process under test.
type server struct {
	name   string
	cmd    *exec.Cmd
	addr   string
	stderr *strings.Builder
}

// serverKinds lists what can run here, in table order, with a note for
// each one that cannot.
func serverKinds(quick bool, cbin string) (kinds []string, notes []string) {
	kinds = []string{"net"}
	if uringAvailable() {
		kinds = append(kinds, "corio-uring")
	} else {
		notes = append(notes, "corio-uring skipped: io_uring unavailable here (the epoll fallback is measured)")
	}
	kinds = append(kinds, "corio-epoll")
	if quick {
		return kinds, notes
	}
	kinds = append(kinds, "netpoll")
	if cbin != "" {
		kinds = append(kinds, "c-liburing")
	} else {
		notes = append(notes, "c-liburing skipped: needs gcc and liburing headers (apt-get install liburing-dev)")
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

// startServer starts kind as its own process pinned to CPU serverCPU with
// GOMAXPROCS=1 and waits until it accepts connections.
func startServer(kind, cbin string, serverCPU int) (*server, error) {
	addr := freeAddr()
	var cmd *exec.Cmd
	if kind == "c-liburing" {
		_, port, _ := net.SplitHostPort(addr)
		cmd = exec.Command(cbin, port)
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self)
	}
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "CORIO_BACKEND=",
		envServe+"="+kind, envAddr+"="+addr, envCPU+"="+strconv.Itoa(serverCPU))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if serverCPU >= 0 {
		pinProcess(cmd.Process.Pid, serverCPU)
	}
	s := &server{name: kind, cmd: cmd, addr: addr, stderr: &stderr}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s, nil
		}
	}
	s.stop()
	return nil, fmt.Errorf("%s did not start: %s", kind, stderr.String())
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// stop ends the server and returns what it printed on stderr.
func (s *server) stop() string {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	return s.stderr.String()
}

var corioStats = regexp.MustCompile(`corio-stats syscalls=(\d+) submitted=(\d+)`)

// measurement is one run of one server at one matrix point.
type measurement struct {
	load      loadResult
	serverCPU time.Duration
}

func (m measurement) rate() float64 { return m.load.rate() }
func (m measurement) cpuPerMsg() float64 {
	return float64(m.serverCPU.Nanoseconds()) / float64(m.load.msgs)
}
func (m measurement) clientBusy() float64 {
	return m.load.clientCPU.Seconds() / m.load.window.Seconds()
}

func measure(s *server, spec loadSpec) (measurement, error) {
	var c0, c1 time.Duration
	res, err := runLoad(s.addr, spec, func(start bool) {
		c, _ := pidCPU(s.pid())
		if start {
			c0 = c
		} else {
			c1 = c
		}
	})
	if err != nil {
		return measurement{}, err
	}
	return measurement{load: res, serverCPU: c1 - c0}, nil
}

// syscallsPerMsg runs a short load under `strace -c -f -p` and returns the
// server's syscalls per message. Corio servers also report their own count.
func syscallsPerMsg(s *server, spec loadSpec) (float64, string) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		return 0, "strace not installed"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, strace, "-c", "-f", "-p", strconv.Itoa(s.pid()))
	var out strings.Builder
	cmd.Stderr = &out
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return 0, err.Error()
	}
	time.Sleep(300 * time.Millisecond) // attach
	res, err := runLoad(s.addr, spec, func(bool) {})
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if err != nil {
		return 0, err.Error()
	}
	// The total line: "100.00    0.123456           2     61234      12 total"
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[len(f)-1] == "total" {
			calls, _ := strconv.ParseFloat(f[3], 64)
			// strace counts the warm-up too: divide by every message sent.
			msgs := float64(res.msgs) * float64(spec.warmup+spec.dur) / float64(spec.dur)
			return calls / msgs, ""
		}
	}
	return 0, "no strace summary"
}

// idleRSS opens n idle connections (each echoes one message first, so the
// server has set it up fully) and returns the server's peak RSS growth per
// connection in KiB.
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

// buildCServer compiles bench/c/uring_echo.c when gcc and liburing are
// present; "" otherwise.
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

// sourceDir is the bench package's directory (the working directory when
// run as `go run ./bench` from the module root, or the package dir in tests).
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

// runTool runs a load tool (wrk, redis-benchmark) pinned to clientCPU when
// taskset exists, and returns its output.
func runTool(clientCPU int, name string, args ...string) (string, error) {
	if ts, err := exec.LookPath("taskset"); err == nil && clientCPU >= 0 {
		args = append([]string{"-c", strconv.Itoa(clientCPU), name}, args...)
		name = ts
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(b), err
}

func waitPort(addr string) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
	}
	return errors.New("not listening: " + addr)
}

func scanFloat(re *regexp.Regexp, s string) float64 {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
