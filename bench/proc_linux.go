package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clkTck is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux
// ABI Go supports.
const clkTck = 100

// processCPU returns this process's user+system CPU time.
func processCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidCPU returns the user+system CPU time of every thread of pid.
func pidCPU(pid int) (time.Duration, error) {
	total, _, err := pidCPUSplit(pid)
	return total, err
}

// pidCPUSplit returns the user+system and the user CPU time of every
// thread of pid.
func pidCPUSplit(pid int) (total, user time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	user = time.Duration(ut) * time.Second / clkTck // the split only: in ticks
	// The total from the process's CPU-time clock instead: every thread,
	// in nanoseconds, where /proc counts 10ms ticks, each field rounded
	// down (a 3s window of a fast server would be off by up to 1%, a
	// -quick one by 5%). The clock id is the kernel's
	// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED).
	var ts unix.Timespec
	if unix.ClockGettime(int32((^pid)<<3|2), &ts) == nil {
		return time.Duration(ts.Nano()), user, nil
	}
	return time.Duration(ut+st) * time.Second / clkTck, user, nil
}

// pidStatusKB returns a "VmHWM"-style field of /proc/PID/status in KiB.
func pidStatusKB(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

// pinProcess pins every thread of pid (0: this process) to cpu. Threads
// created later inherit the affinity of the thread that creates them.
func pinProcess(pid, cpu int) error {
	if pid == 0 {
		pid = os.Getpid()
	}
	var set unix.CPUSet
	set.Set(cpu)
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return err
		}
	}
	return nil
}

// setNofile raises RLIMIT_NOFILE's soft limit to the hard limit, and both
// to need when the hard limit is lower (which needs CAP_SYS_RESOURCE). It
// goes through package syscall, so that os/exec does not restore the
// original soft limit in the children. It returns the soft limit now set.
func setNofile(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	var err error
	if lim.Max < need {
		want := syscall.Rlimit{Cur: need, Max: need}
		if err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			return need, nil
		}
	}
	lim.Cur = lim.Max
	if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err2 != nil {
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		return lim.Cur, err2
	}
	return lim.Cur, err
}
