package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLiburingSkippedWithoutIOUring: where io_uring is refused
// (kernel.io_uring_disabled, Docker's default seccomp profile) the C
// liburing server cannot run either: it is skipped with a note, like
// corio-uring, instead of failing every run (the bench, CI's -quick smoke
// included, exited 1).
func TestCLiburingSkippedWithoutIOUring(t *testing.T) {
	saved := uringAvailable
	defer func() { uringAvailable = saved }()
	uringAvailable = func() bool { return false }
	kinds, notes := serverKinds("/nonexistent/uring_echo", "")
	if slices.Contains(kinds, "c-liburing") || slices.Contains(kinds, "corio-uring") {
		t.Errorf("io_uring unavailable, but the servers are %v", kinds)
	}
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, "c-liburing skipped: io_uring") }) {
		t.Errorf("no note says why c-liburing is skipped: %q", notes)
	}
	uringAvailable = func() bool { return true }
	if kinds, _ := serverKinds("/nonexistent/uring_echo", ""); !slices.Contains(kinds, "c-liburing") {
		t.Errorf("io_uring available and the C server built, but the servers are %v", kinds)
	}
}

// TestStartProcessNoticesExit: a server that exits at once (bad build,
// io_uring refused, port taken) is reported at once, not after the 10 s
// start-up wait (in a full run that was 10 s per point and repetition).
func TestStartProcessNoticesExit(t *testing.T) {
	addr := freeAddr()
	start := time.Now()
	s, err := startProcess("false", addr, -1, []string{"/bin/false"})
	if err == nil {
		s.stop()
		t.Fatal("started /bin/false")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a server that exited at once was reported after %v: %v", d.Round(time.Millisecond), err)
	}
}

// TestStartProcessPortInUse: when another process holds the server's port
// (freeAddr's probe-then-close leaves a window), the server's own failure
// is reported; a dial that reaches the other listener used to count as the
// server started, and the bench measured the other process under the
// server's name.
func TestStartProcessPortInUse(t *testing.T) {
	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	addr := squatter.Addr().String()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, err := startProcess("net", addr, -1, []string{self}, envServe+"=net", envAddr+"="+addr)
	if err != nil {
		return // the failure was noticed
	}
	time.Sleep(300 * time.Millisecond)
	state := procState(s.pid()) // "Z": exited, not yet reaped
	stderr := s.stop()
	t.Errorf("startProcess reported \"net\" started on %s, which another listener holds (child's state after 300ms: %q; its stderr: %q)",
		addr, state, firstLine(stderr))
}

// TestCorioCountersWithoutStrace: the syscall stage measures corio's own
// counters (Loop.Stats, no tool needed) even without strace; it used to
// run no load at all then.
func TestCorioCountersWithoutStrace(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no strace
	raiseNofile(4096)
	rep := newReport(config{reps: 1, serverCPU: -1, clientCPU: -1})
	saved := syscallSpecs
	defer func() { syscallSpecs = saved }()
	syscallSpecs = []loadSpec{{conns: 100, size: 64, depth: 1, warmup: 100 * time.Millisecond, dur: 300 * time.Millisecond}}
	stageSyscalls(rep, []string{"corio-epoll"}, "", -1)
	if len(rep.syscalls) != 1 {
		t.Fatalf("rows: %+v", rep.syscalls)
	}
	if row := rep.syscalls[0]; row.own == 0 {
		t.Errorf("corio-epoll without strace: corio's own counters not measured (own=%v, note %q)", row.own, row.note)
	}
}

// TestSignalStopsChildren: a SIGTERM or SIGINT to the bench's pid alone
// (kill, timeout(1), a CI runner's cancel, Ctrl-C when the bench is not in
// the terminal's foreground group) kills its children too: the server used
// to stay behind, listening and pinned to CPU 0. (SIGTERM here because the
// test's environment may ignore SIGINT, which exec passes on.)
func TestSignalStopsChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bench")
	}
	bin := filepath.Join(t.TempDir(), "bench")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	cmd := exec.Command(bin, "-quick", "-out", "-", "-servers", "net,corio-epoll")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := 0
	for deadline := time.Now().Add(15 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		child = childOf(cmd.Process.Pid)
	}
	if child == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("no server child seen")
	}
	time.Sleep(500 * time.Millisecond) // the load is running
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	time.Sleep(time.Second)
	if st := procState(child); st != "" && st != "Z" {
		syscall.Kill(child, syscall.SIGKILL)
		t.Errorf("server child %d still running (state %s) 1s after the bench died of SIGTERM", child, st)
	}
}

// childOf returns a server child of pid (one with CORIO_BENCH_SERVE set), or 0.
func childOf(pid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p))
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid && strings.Contains(string(env), envServe+"=") {
			return p
		}
	}
	return 0
}

// procState returns the state letter of pid, "" when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])[0]
}
