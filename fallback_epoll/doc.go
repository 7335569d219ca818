// Package epoll is a thin edge-triggered epoll + eventfd readiness poller
// over golang.org/x/sys/unix, the floor corio falls back to when io_uring is
// unavailable (old kernels, seccomp-filtered containers,
// kernel.io_uring_disabled).
//
// It knows nothing about tasks. A Poller registers file descriptors
// edge-triggered and waits for readiness events with a timeout. A Waker is an
// eventfd with a compare-and-swap guard: a thread-safe wake-up that costs no
// syscall while the waiting side is awake. Both of corio's backends use the
// Waker; only the epoll backend uses the Poller.
//
// The directory is fallback_epoll; the package name is epoll because that
// reads best at call sites (epoll.New, epoll.Waker).
package epoll
