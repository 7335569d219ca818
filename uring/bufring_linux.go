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
// buffers from its group (PrepRecvMultishot). The ring memory is an
// anonymous mapping, so it never moves. Buffers added with Add must stay
// alive until they come back in a completion, and the whole set until
// Unregister.
type BufRing struct {
	r    *Ring
	mem  []byte
	bufs []Buf
	tail *uint16
	mask uint16
	bgid uint16
}

// RegisterBufRing registers a provided-buffer ring of entries buffers (a
// power of two, at most 32768) as buffer group bgid.
func (r *Ring) RegisterBufRing(entries uint32, bgid uint16) (*BufRing, error) {
	if entries == 0 || entries&(entries-1) != 0 || entries > 1<<15 {
		return nil, errors.New("uring: buffer ring entries must be a power of two ≤ 32768")
	}
	size := int(entries) * int(unsafe.Sizeof(Buf{}))
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
	br := &BufRing{r: r, mem: mem, mask: uint16(entries - 1), bgid: bgid}
	br.bufs = unsafe.Slice((*Buf)(unsafe.Pointer(&mem[0])), entries)
	// The tail overlays entry 0's reserved field (struct io_uring_buf_ring).
	br.tail = &br.bufs[0].resv
	return br, nil
}

// Add stages buf as buffer bid at position offset after the current tail
// (offset counts the buffers added since the last Advance). The kernel sees
// staged buffers only after Advance.
func (br *BufRing) Add(buf []byte, bid uint16, offset int) {
	e := &br.bufs[(*br.tail+uint16(offset))&br.mask]
	e.Addr = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
	e.Len = uint32(len(buf))
	e.Bid = bid
}

// Advance publishes n staged buffers to the kernel.
func (br *BufRing) Advance(n int) {
	// Release: the entries written by Add must be visible before the tail
	// that hands them over. The tail is 16 bits wide, in the same 32-bit
	// word as entry 0's bid, which only this goroutine writes: a 32-bit
	// atomic store of the whole word is the portable way to release it.
	word := (*uint32)(unsafe.Pointer(&br.bufs[0].Bid))
	cur := atomic.LoadUint32(word)
	newTail := uint32(*br.tail + uint16(n))
	atomic.StoreUint32(word, cur&0xffff|newTail<<16)
}

// Recycle gives buffer bid back to the kernel at once (Add then Advance).
func (br *BufRing) Recycle(buf []byte, bid uint16) {
	br.Add(buf, bid, 0)
	br.Advance(1)
}

// Group returns the buffer group id.
func (br *BufRing) Group() uint16 { return br.bgid }

// Unregister unregisters the ring and frees its memory.
func (br *BufRing) Unregister() error {
	reg := bufReg{bgid: br.bgid}
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(br.r.fd), unregisterPbuf, uintptr(unsafe.Pointer(&reg)), 1, 0, 0)
	unix.Munmap(br.mem)
	br.mem, br.bufs, br.tail = nil, nil, nil
	if e != 0 {
		return os.NewSyscallError("io_uring_register(UNREGISTER_PBUF_RING)", e)
	}
	return nil
}

// BufferID returns the provided buffer a completion used, if any.
func (c *CQE) BufferID() (uint16, bool) {
	return uint16(c.Flags >> CQEBufferShift), c.Flags&CQEFBuffer != 0
}
