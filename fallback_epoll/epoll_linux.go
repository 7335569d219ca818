//go:build linux

package epoll

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Event masks used with Add. Registration is always edge-triggered
// (EPOLLET): the caller tries its syscall first and waits only after EAGAIN,
// so it never needs level-triggered reminders.
const (
	In    = unix.EPOLLIN
	Out   = unix.EPOLLOUT
	RDHup = unix.EPOLLRDHUP
	Err   = unix.EPOLLERR
	Hup   = unix.EPOLLHUP
)

// Event is one readiness report: the events that fired and the opaque data
// given to Add.
type Event struct {
	Events uint32
	Data   uint64
}

// Poller is an epoll instance. It is not safe for concurrent use, except
// that the kernel side may be woken through a Waker registered with it.
type Poller struct {
	epfd   int
	events []unix.EpollEvent
}

// New creates a Poller whose Wait reports at most maxEvents events per call.
func New(maxEvents int) (*Poller, error) {
	if maxEvents <= 0 {
		maxEvents = 256
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	return &Poller{epfd: epfd, events: make([]unix.EpollEvent, maxEvents)}, nil
}

// Fd returns the epoll file descriptor.
func (p *Poller) Fd() int { return p.epfd }

// Add registers fd for events (edge-triggered) with the given opaque data.
func (p *Poller) Add(fd int, events uint32, data uint64) error {
	ev := unix.EpollEvent{Events: events | unix.EPOLLET}
	putData(&ev, data)
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Del removes fd from the interest set. Closing an fd removes it too (when
// no duplicate of it is open), so Del is needed only for fds that stay open.
func (p *Poller) Del(fd int) error {
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Wait waits up to timeout (negative: without limit; zero: do not block)
// and appends the ready events to dst. An interrupted wait (EINTR, frequent
// under the profiler's signals) returns no events and no error: the caller
// loops anyway.
func (p *Poller) Wait(dst []Event, timeout time.Duration) ([]Event, error) {
	ms := -1
	if timeout >= 0 {
		// Round up so that a 300µs deadline does not spin with 0ms waits.
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
		// epoll_wait's timeout is a C int: a longer wait (24.9 days and
		// up) would wrap to 0 (a busy loop) or a negative (no limit).
		// Waking early is harmless: the caller recomputes the timeout.
		ms = min(ms, 1<<30)
	}
	var n int
	var err error
	if ms == 0 {
		// A non-blocking poll cannot park the thread: skip the scheduler
		// hand-off that the blocking path needs.
		n, err = epollWaitRaw(p.epfd, p.events, 0)
	} else {
		n, err = unix.EpollWait(p.epfd, p.events, ms)
	}
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return dst, nil
		}
		return dst, os.NewSyscallError("epoll_wait", err)
	}
	for i := range n {
		dst = append(dst, Event{Events: p.events[i].Events, Data: getData(&p.events[i])})
	}
	return dst, nil
}

// Close closes the epoll instance.
func (p *Poller) Close() error {
	if p.epfd < 0 {
		return nil
	}
	err := unix.Close(p.epfd)
	p.epfd = -1
	return err
}

// Waker states.
const (
	awake    = 0 // the owner is running; wakers need no syscall
	sleeping = 1 // the owner is (about to be) blocked in the kernel
	notified = 2 // a waker wrote the eventfd since the owner went to sleep
)

// Waker wakes a loop blocked in epoll_wait or io_uring_enter from any
// goroutine. The owner calls Sleeping before it blocks and Awake after; Wake
// writes the eventfd only when the owner said it is sleeping, so a busy loop
// is woken for the price of one atomic operation.
type Waker struct {
	fd    int
	state atomic.Int32
	buf   [8]byte // read target for Drain; lives in the heap-allocated Waker
}

// NewWaker creates a non-blocking, close-on-exec eventfd waker.
func NewWaker() (*Waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	return &Waker{fd: fd}, nil
}

// Fd returns the eventfd, to be watched for readability.
func (w *Waker) Fd() int { return w.fd }

// Sleeping announces that the owner is about to block. The caller must then
// re-check its wake-up sources (a Wake that raced with this call either sees
// the sleeping state and writes the eventfd, or happened before it and left
// work the re-check finds): the atomic store orders the two.
func (w *Waker) Sleeping() { w.state.Store(sleeping) }

// Awake announces that the owner is running again and reports whether a Wake
// wrote the eventfd in the meantime (so the owner knows a read is due).
func (w *Waker) Awake() bool { return w.state.Swap(awake) == notified }

// Wake makes the owner return from its wait, if it is waiting. Safe for
// concurrent use; costs no syscall when the owner is awake.
func (w *Waker) Wake() error {
	if !w.state.CompareAndSwap(sleeping, notified) {
		return nil
	}
	var one = [8]byte{1}
	for {
		_, err := unix.Write(w.fd, one[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			// The counter is saturated: the owner is certainly woken.
			return nil
		}
		if err != nil {
			return os.NewSyscallError("write eventfd", err)
		}
		return nil
	}
}

// Drain consumes pending wake-ups (a non-blocking read of the eventfd).
func (w *Waker) Drain() {
	for {
		_, err := unix.Read(w.fd, w.buf[:])
		if err != unix.EINTR {
			return
		}
	}
}

// Close closes the eventfd.
func (w *Waker) Close() error {
	if w.fd < 0 {
		return nil
	}
	err := unix.Close(w.fd)
	w.fd = -1
	return err
}
