package asyncio

import (
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// endpoint is a resolved socket address.
type endpoint struct {
	family int
	ap     netip.AddrPort
	path   string // AF_UNIX
}

// resolve turns network and address into the endpoints to try, in order,
// the way net.Dial and net.Listen read them. IP literals and the empty host
// resolve on the loop; names go through Go's resolver on another goroutine
// (ToThread), so a slow DNS server stalls only the calling task.
func resolve(t *Task, op, network, address string) ([]endpoint, error) {
	switch network {
	case "unix":
		return []endpoint{{family: unix.AF_UNIX, path: address}}, nil
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return nil, net.UnknownNetworkError(network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		p, lerr := ToThread(t, func() (int, error) {
			return net.DefaultResolver.LookupPort(t, network, portStr)
		})
		if lerr != nil {
			return nil, lookupError(t, lerr)
		}
		port = uint64(p)
	}
	last := network[len(network)-1]
	want4, want6 := last != '6', last != '4'
	if host == "" {
		if op == "dial" {
			// Like net.Dial: an empty host means the local system.
			host = "localhost"
		} else {
			if last == '4' {
				return []endpoint{{family: unix.AF_INET, ap: netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(port))}}, nil
			}
			// Dual-stack wildcard ("tcp" with ":port"), as net.Listen.
			return []endpoint{{family: unix.AF_INET6, ap: netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port))}}, nil
		}
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ipNet := "ip"
		if !want6 {
			ipNet = "ip4"
		} else if !want4 {
			ipNet = "ip6"
		}
		ips, err = ToThread(t, func() ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(t, ipNet, host)
		})
		if err != nil {
			return nil, lookupError(t, err)
		}
	}
	var eps []endpoint
	for _, ip := range ips {
		ip = ip.Unmap()
		fam := unix.AF_INET6
		if ip.Is4() {
			fam = unix.AF_INET
		}
		if (fam == unix.AF_INET && !want4) || (fam == unix.AF_INET6 && !want6) {
			continue
		}
		eps = append(eps, endpoint{family: fam, ap: netip.AddrPortFrom(ip, uint16(port))})
	}
	if len(eps) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	// IPv4 first, as Go's resolver prefers on most hosts without IPv6
	// routes; loopback names resolve to both.
	for i, ep := range eps {
		if ep.family == unix.AF_INET && i > 0 {
			copy(eps[1:i+1], eps[:i])
			eps[0] = ep
			break
		}
	}
	return eps, nil
}

// lookupError returns the task's cancellation in place of the error of a
// lookup that the cancellation stopped (the resolver watches t, a
// context.Context, and fails with a *net.DNSError of its own): the scope
// that was cancelled must recognise the error as its own, as it does a
// cancelled connect's (WithTimeout reports its timeout, SkipAfter absorbs
// it, and a task cancelled with Handle.Cancel is no group failure).
func lookupError(t *Task, err error) error {
	if ce := t.Cancellation(); ce != nil {
		return ce
	}
	return err
}

func (ep endpoint) addr(sotype int) net.Addr {
	if ep.family == unix.AF_UNIX {
		return &net.UnixAddr{Name: ep.path, Net: "unix"}
	}
	ip := net.IP(ep.ap.Addr().AsSlice())
	return ipAddr(ip, int(ep.ap.Port()), ep.ap.Addr().Zone(), sotype)
}
