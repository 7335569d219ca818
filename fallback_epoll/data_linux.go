//go:build linux

package epoll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's epoll_event carries a 64-bit data union right after the
// 32-bit event mask; x/sys/unix splits it into Fd and Pad (and on some
// architectures a leading pad). Writing 8 bytes at Fd's offset stores the
// whole union, whatever the split.
func putData(ev *unix.EpollEvent, data uint64) {
	*(*uint64)(unsafe.Pointer(&ev.Fd)) = data
}

func getData(ev *unix.EpollEvent) uint64 {
	return *(*uint64)(unsafe.Pointer(&ev.Fd))
}

// epollWaitRaw is epoll_wait(timeout 0) without the entersyscall dance: it
// never blocks, so parking the P for it would only add cost.
func epollWaitRaw(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
