package asyncio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/corio-go/corio/sched"
	"golang.org/x/sys/unix"
)

// listenBacklog is the accept queue length asked of listen(2); the kernel
// caps it at net.core.somaxconn.
const listenBacklog = 4096

// Listener is a TCP or Unix stream listener owned by the loop of the task
// that created it. Its methods must be called from tasks of that loop.
type Listener struct {
	fd       *sched.FD
	network  string
	addr     net.Addr
	unlinkOn string // Unix socket path to remove on Close
}

// Conn is a stream connection (TCP or Unix) owned by a loop. Its methods
// must be called from tasks of that loop. One task may read while another
// writes.
type Conn struct {
	fd      *sched.FD
	network string
	sotype  int
	laddr   net.Addr
	raddr   net.Addr
}

func newSocket(t *Task, family, sotype int) (int, error) {
	flags := unix.SOCK_CLOEXEC
	if t.Loop().NonblockingFDs() {
		flags |= unix.SOCK_NONBLOCK
	}
	return unix.Socket(family, sotype|flags, 0)
}

// streamNetwork reports whether network names a stream socket, the only
// kind Listen and Dial make.
func streamNetwork(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
		return true
	}
	return false
}

// Listen announces on the local network address, like net.Listen. The
// network must be "tcp", "tcp4", "tcp6" or "unix" (another gives a
// net.UnknownNetworkError; ListenPacket serves "udp"). "tcp" with an empty
// host listens on every IPv4 and IPv6 address. Inside RunLoops, a TCP
// listener is bound with SO_REUSEPORT and shares its port with the other
// loops' listeners of the same address (see RunLoops).
func Listen(t *Task, network, address string) (*Listener, error) {
	if !streamNetwork(network) {
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if err := t.Cancellation(); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	eps, err := resolve(t, "listen", network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ep := eps[0]
	var l *Listener
	if li := loopInfoOf(t); li != nil && ep.family != unix.AF_UNIX {
		l, err = li.listenShared(t, network, address, ep)
	} else {
		l, err = listenOn(t, network, ep, false)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: ep.addr(unix.SOCK_STREAM), Err: err}
	}
	return l, nil
}

// listenOn makes a listener bound to ep; with SO_REUSEPORT if reusePort
// (TCP only).
func listenOn(t *Task, network string, ep endpoint, reusePort bool) (*Listener, error) {
	s, ep, err := bindSocket(t, network, ep, reusePort)
	if err != nil {
		return nil, err
	}
	if err = unix.Listen(s, listenBacklog); err != nil {
		unix.Close(s)
		return nil, os.NewSyscallError("listen", err)
	}
	l := &Listener{fd: t.Loop().NewFD(s), network: network}
	if ep.family == unix.AF_UNIX {
		l.addr = &net.UnixAddr{Name: ep.path, Net: "unix"}
		if ep.path == "" {
			l.addr = sockname(s, unix.SOCK_STREAM) // the name the kernel picked
		} else if ep.path[0] != '@' {
			l.unlinkOn = ep.path
		}
	} else {
		l.addr = sockname(s, unix.SOCK_STREAM)
	}
	return l, nil
}

// bindSocket makes a stream socket for ep and binds it, with SO_REUSEADDR
// (TCP) and SO_REUSEPORT if reusePort. It returns the endpoint it bound:
// "tcp" on the IPv6 wildcard falls back to IPv4 on a host without IPv6.
func bindSocket(t *Task, network string, ep endpoint, reusePort bool) (int, endpoint, error) {
	s, err := newSocket(t, ep.family, unix.SOCK_STREAM)
	if err != nil && ep.family == unix.AF_INET6 && network == "tcp" && ep.ap.Addr().IsUnspecified() {
		// No IPv6 on this host: fall back to the IPv4 wildcard.
		ep.family = unix.AF_INET
		s, err = newSocket(t, ep.family, unix.SOCK_STREAM)
	}
	if err != nil {
		return -1, ep, os.NewSyscallError("socket", err)
	}
	var raw unix.RawSockaddrAny
	var n uint32
	switch ep.family {
	case unix.AF_UNIX:
		n, err = putUnixSockaddr(&raw, ep.path)
	case unix.AF_INET6:
		v6only := 0
		if network == "tcp6" {
			v6only = 1
		}
		unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
		fallthrough
	default:
		unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if reusePort {
			if err = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				err = os.NewSyscallError("setsockopt", err)
			}
		}
		n = putSockaddr(&raw, ep.ap, ep.family)
	}
	if err == nil {
		err = rawBind(s, &raw, n)
	}
	if err != nil {
		unix.Close(s)
		return -1, ep, err
	}
	return s, ep, nil
}

func rawBind(s int, raw *unix.RawSockaddrAny, n uint32) error {
	if _, _, e := unix.RawSyscall(unix.SYS_BIND, uintptr(s), uintptr(unsafePointer(raw)), uintptr(n)); e != 0 {
		return os.NewSyscallError("bind", e)
	}
	return nil
}

// Accept waits for and returns the next connection. When the task is
// cancelled, Accept returns the cancellation error; a connection the kernel
// accepted at the same moment is closed, not leaked. After Close it returns
// an error wrapping net.ErrClosed.
func (l *Listener) Accept(t *Task) (*Conn, error) {
	op := t.Op(sched.OpAccept, l.fd)
	res, err := t.Do(op)
	if err == nil && res < 0 {
		err = os.NewSyscallError("accept", syscall.Errno(-res))
	}
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: l.network, Addr: l.addr, Err: err}
	}
	sotype := unix.SOCK_STREAM
	c := &Conn{fd: t.Loop().NewFD(int(res)), network: l.network, sotype: sotype}
	if l.network != "unix" {
		c.raddr = sockaddrToAddr(&op.Addr, sotype)
		unix.SetsockoptInt(int(res), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	} else {
		c.raddr = unixSockaddrToAddr(&op.Addr, op.AddrLen) // the peer's bound name, or "@" (unnamed), as net reports
		c.laddr = l.addr
	}
	return c, nil
}

// Addr returns the listener's network address.
func (l *Listener) Addr() net.Addr { return l.addr }

// Close stops listening. A task blocked in Accept gets an error wrapping
// net.ErrClosed. A Unix socket's file is removed.
func (l *Listener) Close() error {
	if err := l.fd.Close(); err != nil {
		return &net.OpError{Op: "close", Net: l.network, Addr: l.addr, Err: err}
	}
	if l.unlinkOn != "" {
		unix.Unlink(l.unlinkOn)
	}
	return nil
}

// Dial connects to the address on the named network ("tcp", "tcp4",
// "tcp6", "unix"), like net.Dial: host names are resolved (off the loop) and
// each address is tried in turn. Dial is cancellable; wrap it in WithTimeout
// for a connect timeout.
func Dial(t *Task, network, address string) (*Conn, error) {
	if !streamNetwork(network) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	eps, err := resolve(t, "dial", network, address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var first error
	for _, ep := range eps {
		c, err := dialOne(t, network, ep)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if IsCancellation(err) {
			break
		}
	}
	return nil, first
}

func dialOne(t *Task, network string, ep endpoint) (*Conn, error) {
	sotype := unix.SOCK_STREAM
	raddr := ep.addr(sotype)
	fail := func(err error) (*Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
	}
	s, err := newSocket(t, ep.family, sotype)
	if err != nil {
		return fail(os.NewSyscallError("socket", err))
	}
	fd := t.Loop().NewFD(s)
	op := t.Op(sched.OpConnect, fd)
	if ep.family == unix.AF_UNIX {
		op.AddrLen, err = putUnixSockaddr(&op.Addr, ep.path)
		if err != nil {
			fd.Close()
			return fail(err)
		}
	} else {
		op.AddrLen = putSockaddr(&op.Addr, ep.ap, ep.family)
	}
	res, err := t.Do(op)
	if err == nil && res < 0 {
		err = os.NewSyscallError("connect", syscall.Errno(-res))
	}
	if err != nil {
		fd.Close()
		return fail(err)
	}
	if ep.family != unix.AF_UNIX {
		unix.SetsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if ep.ap.Addr().IsUnspecified() {
			// A wildcard means this host: report the address the kernel
			// connected to, as net does (getpeername).
			if pa := peername(s, sotype); pa != nil {
				raddr = pa
			}
		}
	}
	return &Conn{fd: fd, network: network, sotype: sotype, raddr: raddr}, nil
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: c.raddr, Err: err}
}

// Read reads up to len(p) bytes. It returns io.EOF when the peer closed its
// side and everything was read. Cancellation returns an error satisfying
// context.Canceled (or DeadlineExceeded); bytes that arrived together with a
// cancellation are returned, never dropped.
func (c *Conn) Read(t *Task, p []byte) (int, error) {
	if len(p) == 0 {
		if c.fd.Closed() {
			return 0, c.opError("read", net.ErrClosed)
		}
		return 0, nil
	}
	op := t.Op(sched.OpRecv, c.fd)
	op.Buf = p
	res, err := t.Do(op)
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case res > 0:
		return int(res), nil
	case res == 0:
		return 0, io.EOF
	}
	return 0, c.opError("read", os.NewSyscallError("read", syscall.Errno(-res)))
}

// Write writes all of p (giambio's send_all) unless an error stops it, and
// returns how many bytes were written.
//
// Like write(2) on a blocking socket, Write returns once the bytes are on
// their way, not once the peer has them. On io_uring it may return before
// the kernel has them, too: a write of up to 16 KiB is copied into a send
// buffer the loop owns and submitted with the next batch, so that the task
// goes on (to its next read, say) without waiting a loop turn for the send
// to complete. The bytes go out in order, and Close and CloseWrite send them
// before the connection ends. A send that fails after Write returned (the
// peer reset the connection) is reported by the next Write or Flush, as TCP
// reports a reset at the next write. Cancellation returns an error
// satisfying context.Canceled (or DeadlineExceeded) with the count of the
// bytes that were written and will be delivered.
func (c *Conn) Write(t *Task, p []byte) (int, error) {
	n, res, err := t.Send(c.fd, p)
	if err != nil {
		return n, c.opError("write", err)
	}
	if res < 0 {
		return n, c.opError("write", os.NewSyscallError("write", syscall.Errno(-res)))
	}
	return n, nil
}

// Flush waits until every byte written to c has been handed to the kernel,
// and returns the error of a send that failed after its Write returned, if
// any. Writes need no Flush to be delivered; use it to learn of a failure
// before going on, or to wait for a slow peer.
func (c *Conn) Flush(t *Task) error {
	res, err := t.Flush(c.fd)
	if err != nil {
		return c.opError("write", err)
	}
	if res < 0 {
		return c.opError("write", os.NewSyscallError("write", syscall.Errno(-res)))
	}
	return nil
}

// CloseWrite shuts down the writing side (the peer reads io.EOF after
// everything written before).
func (c *Conn) CloseWrite() error {
	if err := c.fd.ShutdownWrite(); err != nil {
		return c.opError("close", err)
	}
	return nil
}

// Close closes the connection. Operations other tasks have in flight on it
// return errors wrapping net.ErrClosed. Bytes written and still queued in
// the loop's send buffer (io_uring) are delivered first, as the kernel
// delivers a closed socket's buffer: the descriptor stays open until they
// are sent, for at most 30 seconds if the peer does not read them.
func (c *Conn) Close() error { return c.closeWith(c.fd.Close) }

// closeWith closes the connection's descriptor with closeFD (the loop's
// FD.Close, or FD.CloseDetached once the loop has ended).
func (c *Conn) closeWith(closeFD func() error) error {
	// A net.Conn keeps its addresses once closed (they are looked up
	// lazily): LocalAddr after Close, and the errors of later calls.
	c.LocalAddr()
	c.RemoteAddr()
	if err := closeFD(); err != nil {
		return c.opError("close", err)
	}
	return nil
}

// LocalAddr returns the local network address. It stays available after
// Close.
func (c *Conn) LocalAddr() net.Addr {
	if c.laddr == nil && !c.fd.Closed() {
		c.laddr = sockname(c.fd.Sysfd, c.sotype)
	}
	return c.laddr
}

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr {
	if c.raddr == nil && !c.fd.Closed() {
		c.raddr = peername(c.fd.Sysfd, c.sotype)
	}
	return c.raddr
}

// Fd returns the connection's file descriptor (owned by the Conn).
func (c *Conn) Fd() int { return c.fd.Sysfd }

// NetConn returns a net.Conn that runs every call in task t, deadlines
// included, so bufio, crypto/tls and net/http's parsers work over the
// connection. Its methods must be called from t only, except Close, which
// may also be called from any goroutine, as crypto/tls's HandshakeContext
// does when its context is cancelled: the connection is then closed by the
// loop, at once, and Close returns nil.
func (c *Conn) NetConn(t *Task) net.Conn { return &taskConn{c: c, t: t} }

// detachedMu serializes the closes of NetConns whose loop has ended.
var detachedMu sync.Mutex

type taskConn struct {
	c   *Conn
	t   *Task
	rdl time.Time
	wdl time.Time
}

func (tc *taskConn) withDeadline(dl time.Time, op string, fn func() (int, error)) (int, error) {
	if dl.IsZero() {
		return fn()
	}
	s := tc.t.EnterScope(dl, false)
	n, err := fn()
	tc.t.ExitScope(s)
	if s.Caught(err) {
		err = tc.c.opError(op, os.ErrDeadlineExceeded)
	}
	return n, err
}

func (tc *taskConn) Read(p []byte) (int, error) {
	return tc.withDeadline(tc.rdl, "read", func() (int, error) { return tc.c.Read(tc.t, p) })
}

func (tc *taskConn) Write(p []byte) (int, error) {
	return tc.withDeadline(tc.wdl, "write", func() (int, error) { return tc.c.Write(tc.t, p) })
}

func (tc *taskConn) Close() error {
	if l := tc.t.Loop(); !l.OnLoopThread() {
		// Another goroutine: the FD belongs to the loop's thread.
		if l.PostFunc(func() { tc.c.Close() }) {
			return nil
		}
		// The loop has ended (PostFunc's lock orders this after it): no
		// thread owns the FD any more, and the descriptor must not leak.
		// Other goroutines may be closing it too: one at a time, so that
		// the descriptor is closed once (a second close(2) could close a
		// number reused meanwhile).
		detachedMu.Lock()
		defer detachedMu.Unlock()
		return tc.c.closeWith(tc.c.fd.CloseDetached)
	}
	return tc.c.Close()
}

func (tc *taskConn) LocalAddr() net.Addr                { return tc.c.LocalAddr() }
func (tc *taskConn) RemoteAddr() net.Addr               { return tc.c.RemoteAddr() }
func (tc *taskConn) SetDeadline(t time.Time) error      { tc.rdl, tc.wdl = t, t; return nil }
func (tc *taskConn) SetReadDeadline(t time.Time) error  { tc.rdl = t; return nil }
func (tc *taskConn) SetWriteDeadline(t time.Time) error { tc.wdl = t; return nil }
func (tc *taskConn) CloseWrite() error                  { return tc.c.CloseWrite() }
