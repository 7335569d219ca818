//go:build linux && !corio_epoll

package sched

import "errors"

func newUringBackend(l *Loop, entries uint32) (Backend, error) {
	return nil, errors.New("io_uring backend: not yet wired")
}

// UringCompiledIn reports whether the io_uring backend is part of this build.
const UringCompiledIn = true
