//go:build !linux || corio_epoll

package sched

import "errors"

// errUringCompiledOut explains why the io_uring backend is missing.
var errUringCompiledOut = errors.New("io_uring backend compiled out (build tag corio_epoll or non-Linux)")

func newUringBackend(l *Loop, entries uint32) (Backend, error) {
	return nil, errUringCompiledOut
}

// UringCompiledIn reports whether the io_uring backend is part of this build.
const UringCompiledIn = false
