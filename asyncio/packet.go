package asyncio

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/corio-go/corio/sched"
	"golang.org/x/sys/unix"
)

// PacketConn is a UDP socket owned by a loop. Its methods must be called
// from tasks of that loop.
type PacketConn struct {
	fd      *sched.FD
	network string
	family  int
	laddr   net.Addr
}

// ListenPacket opens a UDP socket bound to the local address ("udp",
// "udp4", "udp6"), like net.ListenPacket.
func ListenPacket(t *Task, network, address string) (*PacketConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	eps, err := resolve(t, "listen", network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ep := eps[0]
	s, err := newSocket(t, ep.family, unix.SOCK_DGRAM)
	if err != nil && ep.family == unix.AF_INET6 && network == "udp" && ep.ap.Addr().IsUnspecified() {
		ep.family = unix.AF_INET
		ep.ap = netip.AddrPortFrom(netip.IPv4Unspecified(), ep.ap.Port())
		s, err = newSocket(t, ep.family, unix.SOCK_DGRAM)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("socket", err)}
	}
	if ep.family == unix.AF_INET6 {
		v6only := 0
		if network == "udp6" {
			v6only = 1
		}
		unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	var raw unix.RawSockaddrAny
	n := putSockaddr(&raw, ep.ap, ep.family)
	if err := rawBind(s, &raw, n); err != nil {
		unix.Close(s)
		return nil, &net.OpError{Op: "listen", Net: network, Addr: ep.addr(unix.SOCK_DGRAM), Err: err}
	}
	return &PacketConn{fd: t.Loop().NewFD(s), network: network, family: ep.family,
		laddr: sockname(s, unix.SOCK_DGRAM)}, nil
}

// ReadFrom reads one datagram into b and returns its size and sender. A
// datagram larger than b is truncated, as with net.UDPConn.
func (p *PacketConn) ReadFrom(t *Task, b []byte) (int, net.Addr, error) {
	op := t.Op(sched.OpRecvFrom, p.fd)
	op.Buf = b
	res, err := t.Do(op)
	if err == nil && res < 0 {
		err = os.NewSyscallError("recvfrom", syscall.Errno(-res))
	}
	if err != nil {
		return 0, nil, &net.OpError{Op: "read", Net: p.network, Source: p.laddr, Err: err}
	}
	return int(res), sockaddrToAddr(&op.Addr, unix.SOCK_DGRAM), nil
}

// WriteTo sends b as one datagram to addr (a *net.UDPAddr, or any net.Addr
// whose String is an IP:port literal).
func (p *PacketConn) WriteTo(t *Task, b []byte, addr net.Addr) (int, error) {
	ap, err := addrPort(addr)
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: p.network, Source: p.laddr, Addr: addr, Err: err}
	}
	op := t.Op(sched.OpSendTo, p.fd)
	op.Buf = b
	fam := p.family
	if !ap.Addr().IsValid() {
		// A UDPAddr without an IP: the unspecified address (this host),
		// as net.UDPConn sends to.
		unspec := netip.IPv4Unspecified()
		if fam == unix.AF_INET6 {
			unspec = netip.IPv6Unspecified()
		}
		ap = netip.AddrPortFrom(unspec, ap.Port())
	}
	if fam == unix.AF_INET6 && ap.Addr().Is4() {
		ap = netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port()) // v4-mapped
	} else if fam == unix.AF_INET && ap.Addr().Is4In6() {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if fam == unix.AF_INET && !ap.Addr().Is4() {
		return 0, &net.OpError{Op: "write", Net: p.network, Source: p.laddr, Addr: addr,
			Err: &net.AddrError{Err: "non-IPv4 address", Addr: ap.Addr().String()}}
	}
	op.AddrLen = putSockaddr(&op.Addr, ap, fam)
	res, err := t.Do(op)
	if err == nil && res < 0 {
		err = os.NewSyscallError("sendto", syscall.Errno(-res))
	}
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: p.network, Source: p.laddr, Addr: addr, Err: err}
	}
	return int(res), nil
}

func addrPort(addr net.Addr) (netip.AddrPort, error) {
	if u, ok := addr.(*net.UDPAddr); ok {
		if u == nil {
			return netip.AddrPort{}, &net.AddrError{Err: "missing address"}
		}
		if len(u.IP) == 0 {
			return netip.AddrPortFrom(netip.Addr{}, uint16(u.Port)), nil
		}
		ip, ok := netip.AddrFromSlice(u.IP)
		if !ok {
			return netip.AddrPort{}, &net.AddrError{Err: "invalid IP", Addr: u.String()}
		}
		return netip.AddrPortFrom(ip.WithZone(u.Zone), uint16(u.Port)), nil
	}
	if addr == nil {
		return netip.AddrPort{}, &net.AddrError{Err: "missing address"}
	}
	return netip.ParseAddrPort(addr.String())
}

// LocalAddr returns the socket's local address.
func (p *PacketConn) LocalAddr() net.Addr { return p.laddr }

// Close closes the socket; tasks blocked on it get net.ErrClosed.
func (p *PacketConn) Close() error {
	if err := p.fd.Close(); err != nil {
		return &net.OpError{Op: "close", Net: p.network, Source: p.laddr, Err: err}
	}
	return nil
}
