// Package epoll is a thin edge-triggered epoll + eventfd readiness poller
// over golang.org/x/sys/unix, the floor corio falls back to when io_uring is
// unavailable (old kernels, seccomp-filtered containers,
// kernel.io_uring_disabled).
//
// It knows nothing about tasks: it registers file descriptors, waits for
// readiness events with a timeout, and offers a wake-up that costs no
// syscall while the waiting side is awake.
package epoll
