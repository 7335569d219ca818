// Package uring is a thin, typed, allocation-free binding to Linux io_uring
// over golang.org/x/sys/unix.
//
// It knows nothing about tasks or scheduling: it sets up a ring (stepping
// down through setup flags the kernel refuses), probes the opcodes the
// kernel implements, prepares submission queue entries (one small typed
// Prep method per supported opcode, each resetting the whole SQE), submits them in
// batches with one io_uring_enter, and reaps completions in batches.
// user_data is an opaque uint64 chosen by the caller; a completion carries
// it back unchanged. The structures and constants follow
// include/uapi/linux/io_uring.h as of Linux 6.12.
//
// # Memory ownership
//
// No API takes a uintptr for memory: buffers are []byte, everything else a
// typed pointer. The ring stores only the address, which the garbage
// collector does not see, so the caller keeps the memory alive:
//
//   - Buffers, iovecs and the buffers they point to, msghdrs with their
//     names and control buffers, sockaddrs and their lengths, paths, statx
//     buffers: reachable through a Go pointer the caller holds until the
//     request's completion has been reaped. Close does not wait for the
//     kernel to finish cancelling what is in flight: cancel those requests
//     and reap their completions before Close, or keep their memory.
//   - Timespecs of TIMEOUT and LINK_TIMEOUT: until the SQE has been
//     submitted; the kernel copies them then.
//   - None of this memory may live on a goroutine stack: stacks move when
//     they grow or shrink, and the kernel would write into freed memory.
//     Allocate it on the heap (a field of a heap-allocated struct, a slice
//     from make) or in an mmap'd region.
//   - Provided buffers (BufRing): the BufRing holds a reference to every
//     buffer added; the caller must not reuse one between Add and the
//     completion that hands it back.
//
// # Threads
//
// A Ring is not safe for concurrent use: one goroutine owns it. With
// IORING_SETUP_SINGLE_ISSUER (the default when the kernel offers it) and
// after RegisterRingFd, that goroutine must be locked to the OS thread that
// created the ring (runtime.LockOSThread before New) for the ring's whole
// life, Close included.
//
// # Errors
//
// New returns a *SetupError that unwraps to the errno (or, for setup flags
// the binding does not honour, an error wrapping errors.ErrUnsupported): ENOSYS, EPERM
// (seccomp, kernel.io_uring_disabled) and ENOMEM (memlock limit) mean the
// kernel refuses io_uring, and a caller may fall back to another backend.
// SubmitAndWait retries EINTR and returns ErrCQEDropped if the kernel ever
// reports lost completions; with IORING_FEAT_NODROP a full completion queue
// only parks completions on the kernel's overflow list, and the next
// Submit or SubmitAndWait moves them into the ring.
//
// # Waiting for a batch
//
// SubmitAndWaitMin (Linux 6.12, FeatMinTimeout) asks for several
// completions with a bound on how long a lone one may wait: the kernel wakes
// the caller once the batch is complete, or, after the bound, as soon as at
// least one completion is ready. A fired timeout SQE ends any wait at once,
// batch or not: that is how the kernel's own timeouts work.
package uring
