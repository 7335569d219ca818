package sched

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func gettidSys() int { return unix.Gettid() }

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}
