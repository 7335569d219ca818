package sched

import "golang.org/x/sys/unix"

func gettidSys() int { return unix.Gettid() }
