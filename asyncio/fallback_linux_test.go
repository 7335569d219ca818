package asyncio_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/sched"
	"golang.org/x/sys/unix"
)

const seccompChildEnv = "CORIO_TEST_SECCOMP_CHILD"

// denySyscall installs, for every thread of the process, a seccomp filter
// that fails syscall nr with EPERM (io_uring_setup: exactly as Docker's and
// containerd's default profiles do).
func denySyscall(nr uint32) error {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = 0xc000003e // AUDIT_ARCH_X86_64
	case "arm64":
		arch = 0xc00000b7 // AUDIT_ARCH_AARCH64
	default:
		return fmt.Errorf("no seccomp arch for %s", runtime.GOARCH)
	}
	const (
		offNr   = 0 // struct seccomp_data.nr
		offArch = 4 // struct seccomp_data.arch
	)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offArch},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: arch},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offNr},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: nr},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// Without CAP_SYS_ADMIN a filter needs no_new_privs.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(NO_NEW_PRIVS): %w", err)
	}
	// TSYNC: Go runs on many threads; the loop's may already exist.
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return fmt.Errorf("seccomp: %w", e)
	}
	return nil
}

// TestSeccompFallback re-executes the test binary under a seccomp filter
// that refuses io_uring_setup, and checks that "auto" picks epoll and serves
// an echo round trip, while forcing "uring" is a clear error.
func TestSeccompFallback(t *testing.T) {
	if os.Getenv(seccompChildEnv) == "1" {
		seccompChild(t)
		return
	}
	if testing.Short() {
		t.Skip("re-exec test")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSeccompFallback$", "-test.v")
	cmd.Env = append(os.Environ(), seccompChildEnv+"=1", "CORIO_BACKEND=")
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "SKIP-SECCOMP") {
		t.Skipf("cannot install a seccomp filter here:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "SECCOMP-CHILD-OK") {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
}

func seccompChild(t *testing.T) {
	if err := denySyscall(unix.SYS_IO_URING_SETUP); err != nil {
		fmt.Println("SKIP-SECCOMP", err)
		return
	}
	// The filter works: io_uring_setup now fails like in a container.
	var params [120]byte
	if _, _, e := unix.RawSyscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&params)), 0); e != unix.EPERM {
		t.Fatalf("io_uring_setup under the filter: %v, want EPERM", e)
	}
	err := asyncio.Run(func(task *asyncio.Task) error {
		if b := asyncio.Backend(task); b != "epoll" {
			return fmt.Errorf("auto chose %q under seccomp, want epoll", b)
		}
		return echoRoundTrip(task)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = asyncio.Run(func(*asyncio.Task) error { return nil }, asyncio.WithBackend("uring"))
	if !errors.Is(err, asyncio.ErrBackendUnavailable) {
		t.Fatalf("forced uring under seccomp: %v, want ErrBackendUnavailable", err)
	}
	if sched.UringCompiledIn && !errors.Is(err, syscall.EPERM) {
		t.Fatalf("forced uring error does not wrap EPERM: %v", err)
	}
	fmt.Println("SECCOMP-CHILD-OK")
}

func echoRoundTrip(task *asyncio.Task) error {
	return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
		addr, l, err := echoServer(task, g)
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := asyncio.Dial(task, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write(task, []byte("through the filter")); err != nil {
			return err
		}
		c.CloseWrite()
		got, err := io.ReadAll(c.NetConn(task))
		if err != nil || string(got) != "through the filter" {
			return fmt.Errorf("echo: %q %v", got, err)
		}
		return nil
	})
}

const enterDeniedChildEnv = "CORIO_TEST_ENTER_DENIED_CHILD"

// A profile that allows io_uring_setup but not io_uring_enter: auto must
// fall back to epoll, not pick a ring it cannot use.
func TestAutoWithEnterDenied(t *testing.T) {
	if os.Getenv(enterDeniedChildEnv) == "1" {
		if err := denySyscall(unix.SYS_IO_URING_ENTER); err != nil {
			fmt.Println("SKIP-SECCOMP", err)
			return
		}
		err := asyncio.Run(func(task *asyncio.Task) error {
			fmt.Println("BACKEND", asyncio.Backend(task))
			return task.Sleep(time.Millisecond)
		})
		if err != nil {
			t.Fatalf("auto under a filter denying io_uring_enter: %v", err)
		}
		fmt.Println("ENTER-CHILD-OK")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAutoWithEnterDenied$", "-test.v")
	cmd.Env = append(os.Environ(), enterDeniedChildEnv+"=1", "CORIO_BACKEND=")
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "SKIP-SECCOMP") {
		t.Skipf("no seccomp:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "ENTER-CHILD-OK") {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
}
