package asyncio

import (
	"net"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// putSockaddr writes ap into raw (allocation-free) and returns its length.
func putSockaddr(raw *unix.RawSockaddrAny, ap netip.AddrPort, family int) uint32 {
	ip := ap.Addr()
	if family == unix.AF_INET {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET}
		putPort(&sa.Port, ap.Port())
		sa.Addr = ip.Unmap().As4()
		return unix.SizeofSockaddrInet4
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(raw))
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6}
	putPort(&sa.Port, ap.Port())
	sa.Addr = ip.As16()
	if z := ip.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		} else if i, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.Scope_id = uint32(i) // a zone given as the interface's index, as net takes
		}
	}
	return unix.SizeofSockaddrInet6
}

// putPort stores a port in network byte order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(src *uint16) int {
	b := (*[2]byte)(unsafe.Pointer(src))
	return int(b[0])<<8 | int(b[1])
}

// putUnixSockaddr writes a Unix socket address: a path (NUL-terminated), an
// abstract name ("@name": a leading NUL, no terminator, so it may take the
// whole 108 bytes), or "" (bind: the kernel picks a free abstract name).
func putUnixSockaddr(raw *unix.RawSockaddrAny, path string) (uint32, error) {
	sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(raw))
	*sa = unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	if path == "" {
		return 2, nil // autobind
	}
	abstract := path[0] == '@'
	if len(path) > len(sa.Path) || (len(path) == len(sa.Path) && !abstract) {
		return 0, unix.EINVAL
	}
	for i := 0; i < len(path); i++ {
		sa.Path[i] = int8(path[i])
	}
	n := 2 + len(path)
	if abstract {
		sa.Path[0] = 0
	} else {
		n++ // the NUL terminator
	}
	return uint32(n), nil
}

// sockaddrToAddr converts a kernel sockaddr to the net.Addr type matching
// the socket type.
func sockaddrToAddr(raw *unix.RawSockaddrAny, sotype int) net.Addr {
	switch raw.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		ip := net.IP(append([]byte(nil), sa.Addr[:]...))
		return ipAddr(ip, getPort(&sa.Port), "", sotype)
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(raw))
		ip := net.IP(append([]byte(nil), sa.Addr[:]...))
		zone := ""
		if sa.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				zone = ifi.Name
			}
		}
		return ipAddr(ip, getPort(&sa.Port), zone, sotype)
	case unix.AF_UNIX:
		sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(raw))
		n := 0
		if sa.Path[0] == 0 {
			n = 1 // an abstract name starts with a NUL
		}
		for n < len(sa.Path) && sa.Path[n] != 0 {
			n++
		}
		b := make([]byte, n)
		for i := range n {
			b[i] = byte(sa.Path[i])
		}
		if n > 0 && b[0] == 0 {
			b[0] = '@' // as net shows abstract names
		}
		return &net.UnixAddr{Name: string(b), Net: "unix"}
	}
	return nil
}

// unixSockaddrToAddr converts the AF_UNIX address of length n that accept
// or recvfrom returned. The bytes past n are stale (the record is reused),
// so they are cleared first; an unnamed peer (n == 2) reads as "@", as in
// net.
func unixSockaddrToAddr(raw *unix.RawSockaddrAny, n uint32) net.Addr {
	sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(raw))
	sa.Family = unix.AF_UNIX
	if n < 2 {
		n = 2
	}
	clear(sa.Path[min(int(n)-2, len(sa.Path)):])
	return sockaddrToAddr(raw, unix.SOCK_STREAM)
}

func ipAddr(ip net.IP, port int, zone string, sotype int) net.Addr {
	if sotype == unix.SOCK_DGRAM {
		return &net.UDPAddr{IP: ip, Port: port, Zone: zone}
	}
	return &net.TCPAddr{IP: ip, Port: port, Zone: zone}
}

func sockname(fd int, sotype int) net.Addr {
	var raw unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return nil
	}
	return sockaddrToAddr(&raw, sotype)
}

func peername(fd int, sotype int) net.Addr {
	var raw unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	if _, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return nil
	}
	return sockaddrToAddr(&raw, sotype)
}
