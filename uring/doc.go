// Package uring is a thin, typed, allocation-free binding to Linux io_uring
// over golang.org/x/sys/unix.
//
// It knows nothing about tasks or scheduling: it sets up a ring (stepping
// down through setup flags the kernel refuses), prepares submission queue
// entries (one small typed method per opcode, each starting from a zeroed
// SQE), submits them in batches with one io_uring_enter, and reaps
// completions in batches. user_data is an opaque uint64 chosen by the
// caller.
//
// Memory ownership: every buffer, sockaddr, iovec, msghdr or timespec whose
// address is placed in an SQE must stay reachable and unmoved until the
// matching completion has been reaped. This package stores only the address
// in the ring; the caller must keep a Go pointer to the memory (never a
// goroutine stack object) for the whole time the operation is in flight.
//
// A Ring is not safe for concurrent use: one goroutine, locked to its OS
// thread when the ring was created with IORING_SETUP_SINGLE_ISSUER, owns it.
package uring
