//go:build linux

package uring

import (
	"errors"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bufReg is struct io_uring_buf_reg.
type bufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	resv        [3]uint64
}

// Buf is struct io_uring_buf, one entry of a provided-buffer ring.
type Buf struct {
	Addr uint64
	Len  uint32
	Bid  uint16
	resv uint16 // entry 0's resv is the ring's tail
}

// BufRing is a provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19): the
// kernel picks a buffer from it for each receive of a request that selects
// buffers from its group (PrepRecvMultishot), and names it in the
// completion (CQE.BufferID). The ring memory is an anonymous mapping, so it
// never moves. The BufRing keeps a reference to every buffer added, so the
// garbage collector cannot free one the kernel may still write; the caller
// must still not reuse a buffer between Add and the completion that hands
// it back.
//
// A BufRing belongs to its Ring's goroutine, like the Ring.
type BufRing struct {
	r    *Ring
	mem  []byte
	bufs []Buf
	keep [][]byte // by buffer id: the Go references the kernel's addresses need
	tail *uint16
	mask uint16
	bgid uint16
}

// RegisterBufRing registers a provided-buffer ring of entries buffers (a
// power of two, at most 32768) as buffer group bgid. Ring.Close unmaps it
// if Unregister was not called.
func (r *Ring) RegisterBufRing(entries uint32, bgid uint16) (*BufRing, error) {
	if entries == 0 || entries&(entries-1) != 0 || entries > 1<<15 {
		return nil, errors.New("uring: buffer ring entries must be a power of two ≤ 32768")
	}
	size := int(entries) * int(unsafe.Sizeof(Buf{}))
	// The kernel wants the ring page-aligned and pins its pages: an
	// anonymous mapping is both, and outside the Go heap.
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap buffer ring", err)
	}
	reg := bufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), ringEntries: entries, bgid: bgid}
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerPbufRing, uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
	if e != 0 {
		unix.Munmap(mem)
		return nil, os.NewSyscallError("io_uring_register(PBUF_RING)", e)
	}
	br := &BufRing{r: r, mem: mem, mask: uint16(entries - 1), bgid: bgid, keep: make([][]byte, entries)}
	br.bufs = unsafe.Slice((*Buf)(unsafe.Pointer(&mem[0])), entries)
	// The tail overlays entry 0's reserved field (struct io_uring_buf_ring).
	br.tail = &br.bufs[0].resv
	r.bufRings = append(r.bufRings, br)
	return br, nil
}

// Add stages buf as buffer bid at position offset after the current tail
// (offset counts the buffers added since the last Advance, from 0). The
// kernel sees staged buffers only after Advance. Receives into it are at
// most len(buf) bytes.
func (br *BufRing) Add(buf []byte, bid uint16, offset int) {
	e := &br.bufs[(*br.tail+uint16(offset))&br.mask]
	e.Addr = bufAddr(buf)
	e.Len = bufLen(buf)
	e.Bid = bid
	if int(bid) >= len(br.keep) {
		br.keep = append(br.keep, make([][]byte, int(bid)+1-len(br.keep))...)
	}
	br.keep[bid] = buf
}

// Advance publishes n staged buffers to the kernel.
func (br *BufRing) Advance(n int) {
	// Release: the entries written by Add must be visible before the tail
	// that hands them over (the kernel reads the tail with acquire). The
	// tail is 16 bits wide, in the same 32-bit word as entry 0's bid,
	// which only this goroutine writes: a 32-bit atomic store of the whole
	// word is the portable way to release it (Go has no 16-bit atomics).
	word := (*uint32)(unsafe.Pointer(&br.bufs[0].Bid))
	cur := atomic.LoadUint32(word) // ours alone: any load would do
	newTail := uint32(*br.tail + uint16(n))
	atomic.StoreUint32(word, cur&0xffff|newTail<<16)
}

// Recycle gives buffer bid back to the kernel at once (Add then Advance).
func (br *BufRing) Recycle(buf []byte, bid uint16) {
	br.Add(buf, bid, 0)
	br.Advance(1)
}

// Buffer returns the buffer last added as bid (nil if none): the one a
// completion with that buffer id filled.
func (br *BufRing) Buffer(bid uint16) []byte {
	if int(bid) >= len(br.keep) {
		return nil
	}
	return br.keep[bid]
}

// Group returns the buffer group id.
func (br *BufRing) Group() uint16 { return br.bgid }

// Unregister unregisters the ring and frees its memory. The requests
// selecting from the group must have ended. Unregister is idempotent.
func (br *BufRing) Unregister() error {
	if br.mem == nil {
		return nil
	}
	reg := bufReg{bgid: br.bgid}
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(br.r.fd), unregisterPbuf, uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
	if e != 0 {
		// The group may still be registered: the kernel may still pick
		// its buffers, so they stay mapped and referenced (Close frees
		// them with the ring).
		return os.NewSyscallError("io_uring_register(UNREGISTER_PBUF_RING)", e)
	}
	br.unmap()
	rings := br.r.bufRings
	for i, x := range rings {
		if x == br {
			br.r.bufRings = append(rings[:i], rings[i+1:]...)
			break
		}
	}
	return nil
}

// unmap frees the ring memory. The kernel pins the pages while the group is
// registered, so unmapping first never pulls them from under it.
func (br *BufRing) unmap() {
	if br.mem != nil {
		unix.Munmap(br.mem)
	}
	br.mem, br.bufs, br.tail, br.keep = nil, nil, nil, nil
}

// BufferID returns the provided buffer a completion used, if any.
func (c *CQE) BufferID() (uint16, bool) {
	return uint16(c.Flags >> CQEBufferShift), c.Flags&CQEFBuffer != 0
}
