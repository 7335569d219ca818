//go:build linux

package uring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// newTestRing sets up a ring, or skips the test when the kernel or a
// container refuses io_uring (ENOSYS, EPERM): that must never fail the
// suite.
func newTestRing(t testing.TB, cfg Config) *Ring {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	r, err := New(cfg)
	if refused(err) {
		t.Skipf("io_uring refused here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// refused reports whether err is the kernel or its sandbox refusing
// io_uring: tests skip then.
func refused(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) ||
		errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOMEM)
}

// waitCQE submits and returns the next completion, failing after 5s.
func waitCQE(t testing.TB, r *Ring) CQE {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var c [1]CQE
	for time.Now().Before(deadline) {
		if r.Reap(c[:]) == 1 {
			return c[0]
		}
		if _, err := r.SubmitAndWait(1, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("no completion within 5s")
	return CQE{}
}

// waitCQEs collects n completions keyed by user_data.
func waitCQEs(t testing.TB, r *Ring, n int) map[uint64]CQE {
	t.Helper()
	m := make(map[uint64]CQE)
	for len(m) < n {
		c := waitCQE(t, r)
		if _, dup := m[c.UserData]; dup {
			t.Fatalf("duplicate completion for %d", c.UserData)
		}
		m[c.UserData] = c
	}
	return m
}

func TestLayout(t *testing.T) {
	checks := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof SQE", unsafe.Sizeof(SQE{}), 64},
		{"sizeof CQE", unsafe.Sizeof(CQE{}), 16},
		{"sizeof Params", unsafe.Sizeof(Params{}), 120},
		{"sizeof SQRingOffsets", unsafe.Sizeof(SQRingOffsets{}), 40},
		{"sizeof CQRingOffsets", unsafe.Sizeof(CQRingOffsets{}), 40},
		{"sizeof getevents_arg", unsafe.Sizeof(getEventsArg{}), 24},
		{"sizeof io_uring_buf", unsafe.Sizeof(Buf{}), 16},
		{"sizeof io_uring_buf_reg", unsafe.Sizeof(bufReg{}), 40},
		{"sizeof io_uring_rsrc_update", unsafe.Sizeof(rsrcUpdate{}), 16},
		{"getevents_arg.ts", unsafe.Offsetof(getEventsArg{}.ts), 16},
		{"SQRingOffsets.Array", unsafe.Offsetof(SQRingOffsets{}.Array), 24},
		{"SQRingOffsets.UserAddr", unsafe.Offsetof(SQRingOffsets{}.UserAddr), 32},
		{"CQRingOffsets.CQEs", unsafe.Offsetof(CQRingOffsets{}.CQEs), 20},
		{"CQRingOffsets.Flags", unsafe.Offsetof(CQRingOffsets{}.Flags), 24},
		{"SQE.Opcode", unsafe.Offsetof(SQE{}.Opcode), 0},
		{"SQE.Flags", unsafe.Offsetof(SQE{}.Flags), 1},
		{"SQE.IoPrio", unsafe.Offsetof(SQE{}.IoPrio), 2},
		{"SQE.Fd", unsafe.Offsetof(SQE{}.Fd), 4},
		{"SQE.Off", unsafe.Offsetof(SQE{}.Off), 8},
		{"SQE.Addr", unsafe.Offsetof(SQE{}.Addr), 16},
		{"SQE.Len", unsafe.Offsetof(SQE{}.Len), 24},
		{"SQE.OpFlags", unsafe.Offsetof(SQE{}.OpFlags), 28},
		{"SQE.UserData", unsafe.Offsetof(SQE{}.UserData), 32},
		{"SQE.BufIndex", unsafe.Offsetof(SQE{}.BufIndex), 40},
		{"SQE.Personality", unsafe.Offsetof(SQE{}.Personality), 42},
		{"SQE.SpliceFdIn", unsafe.Offsetof(SQE{}.SpliceFdIn), 44},
		{"SQE.Addr3", unsafe.Offsetof(SQE{}.Addr3), 48},
		{"CQE.Res", unsafe.Offsetof(CQE{}.Res), 8},
		{"CQE.Flags", unsafe.Offsetof(CQE{}.Flags), 12},
		{"Params.Features", unsafe.Offsetof(Params{}.Features), 20},
		{"Params.SQOff", unsafe.Offsetof(Params{}.SQOff), 40},
		{"Params.CQOff", unsafe.Offsetof(Params{}.CQOff), 80},
		{"Buf.Bid", unsafe.Offsetof(Buf{}.Bid), 12},
		{"Buf.resv (ring tail)", unsafe.Offsetof(Buf{}.resv), 14},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestPrepFieldTables(t *testing.T) {
	buf := make([]byte, 10)
	addr := uint64(uintptr(unsafe.Pointer(&buf[0])))
	var sa unix.RawSockaddrAny
	saAddr := uint64(uintptr(unsafe.Pointer(&sa)))
	var salen uint32
	salenAddr := uint64(uintptr(unsafe.Pointer(&salen)))
	var ts unix.Timespec
	tsAddr := uint64(uintptr(unsafe.Pointer(&ts)))
	var msg unix.Msghdr
	msgAddr := uint64(uintptr(unsafe.Pointer(&msg)))
	iovs := make([]unix.Iovec, 3)
	iovAddr := uint64(uintptr(unsafe.Pointer(&iovs[0])))
	path := []byte("/tmp\x00")
	pathAddr := uint64(uintptr(unsafe.Pointer(&path[0])))
	var stx unix.Statx_t
	stxAddr := uint64(uintptr(unsafe.Pointer(&stx)))
	tests := []struct {
		name string
		prep func(*SQE)
		want SQE
	}{
		{"nop", func(s *SQE) { s.PrepNop() }, SQE{Opcode: uint8(OpNop)}},
		{"read", func(s *SQE) { s.PrepRead(3, buf, 7) }, SQE{Opcode: uint8(OpRead), Fd: 3, Addr: addr, Len: 10, Off: 7}},
		{"write cur pos", func(s *SQE) { s.PrepWrite(4, buf, ^uint64(0)) }, SQE{Opcode: uint8(OpWrite), Fd: 4, Addr: addr, Len: 10, Off: ^uint64(0)}},
		{"readv", func(s *SQE) { s.PrepReadv(5, iovs, 1) }, SQE{Opcode: uint8(OpReadv), Fd: 5, Addr: iovAddr, Len: 3, Off: 1}},
		{"writev", func(s *SQE) { s.PrepWritev(5, iovs, 2) }, SQE{Opcode: uint8(OpWritev), Fd: 5, Addr: iovAddr, Len: 3, Off: 2}},
		{"recv", func(s *SQE) { s.PrepRecv(6, buf, unix.MSG_PEEK) }, SQE{Opcode: uint8(OpRecv), Fd: 6, Addr: addr, Len: 10, OpFlags: unix.MSG_PEEK}},
		{"send", func(s *SQE) { s.PrepSend(6, buf, unix.MSG_NOSIGNAL) }, SQE{Opcode: uint8(OpSend), Fd: 6, Addr: addr, Len: 10, OpFlags: unix.MSG_NOSIGNAL}},
		{"recvmsg", func(s *SQE) { s.PrepRecvmsg(7, &msg, 0) }, SQE{Opcode: uint8(OpRecvmsg), Fd: 7, Addr: msgAddr, Len: 1}},
		{"sendmsg", func(s *SQE) { s.PrepSendmsg(7, &msg, 1) }, SQE{Opcode: uint8(OpSendmsg), Fd: 7, Addr: msgAddr, Len: 1, OpFlags: 1}},
		{"accept", func(s *SQE) { s.PrepAccept(8, &sa, &salen, unix.SOCK_CLOEXEC) }, SQE{Opcode: uint8(OpAccept), Fd: 8, Addr: saAddr, Off: salenAddr, OpFlags: unix.SOCK_CLOEXEC}},
		{"accept multishot", func(s *SQE) { s.PrepMultishotAccept(8, nil, nil, 0) }, SQE{Opcode: uint8(OpAccept), Fd: 8, IoPrio: AcceptMultishot}},
		{"connect", func(s *SQE) { s.PrepConnect(9, &sa, 16) }, SQE{Opcode: uint8(OpConnect), Fd: 9, Addr: saAddr, Off: 16}},
		{"close", func(s *SQE) { s.PrepClose(10) }, SQE{Opcode: uint8(OpClose), Fd: 10}},
		{"shutdown", func(s *SQE) { s.PrepShutdown(11, unix.SHUT_WR) }, SQE{Opcode: uint8(OpShutdown), Fd: 11, Len: unix.SHUT_WR}},
		{"timeout", func(s *SQE) { s.PrepTimeout(&ts, 2, TimeoutAbs) }, SQE{Opcode: uint8(OpTimeout), Fd: -1, Addr: tsAddr, Len: 1, Off: 2, OpFlags: TimeoutAbs}},
		{"timeout remove", func(s *SQE) { s.PrepTimeoutRemove(42, 0) }, SQE{Opcode: uint8(OpTimeoutRemove), Fd: -1, Addr: 42}},
		{"link timeout", func(s *SQE) { s.PrepLinkTimeout(&ts, 0) }, SQE{Opcode: uint8(OpLinkTimeout), Fd: -1, Addr: tsAddr, Len: 1}},
		{"cancel", func(s *SQE) { s.PrepCancel(99, AsyncCancelAll) }, SQE{Opcode: uint8(OpAsyncCancel), Fd: -1, Addr: 99, OpFlags: AsyncCancelAll}},
		{"cancel fd", func(s *SQE) { s.PrepCancelFd(12, AsyncCancelAll) }, SQE{Opcode: uint8(OpAsyncCancel), Fd: 12, OpFlags: AsyncCancelAll | AsyncCancelFd}},
		{"poll add", func(s *SQE) { s.PrepPollAdd(13, unix.POLLIN) }, SQE{Opcode: uint8(OpPollAdd), Fd: 13, OpFlags: unix.POLLIN}},
		{"poll remove", func(s *SQE) { s.PrepPollRemove(77) }, SQE{Opcode: uint8(OpPollRemove), Fd: -1, Addr: 77}},
		{"openat", func(s *SQE) { s.PrepOpenat(unix.AT_FDCWD, &path[0], unix.O_RDONLY, 0o644) }, SQE{Opcode: uint8(OpOpenat), Fd: unix.AT_FDCWD, Addr: pathAddr, Len: 0o644}},
		{"fsync", func(s *SQE) { s.PrepFsync(14, 1) }, SQE{Opcode: uint8(OpFsync), Fd: 14, OpFlags: 1}},
		{"statx", func(s *SQE) { s.PrepStatx(unix.AT_FDCWD, &path[0], 0, unix.STATX_SIZE, &stx) }, SQE{Opcode: uint8(OpStatx), Fd: unix.AT_FDCWD, Addr: pathAddr, Len: unix.STATX_SIZE, Off: stxAddr}},
		{"msg ring", func(s *SQE) { s.PrepMsgRing(15, 5, 1234, 0) }, SQE{Opcode: uint8(OpMsgRing), Fd: 15, Len: 5, Off: 1234}},
		{"recv multishot", func(s *SQE) { s.PrepRecvMultishot(16, 3, 0) }, SQE{Opcode: uint8(OpRecv), Fd: 16, IoPrio: RecvMultishot, Flags: SQEBufferSelect, BufIndex: 3}},
		{"recv multishot async", func(s *SQE) { s.PrepRecvMultishot(16, 3, unix.MSG_DONTWAIT); s.AddFlags(SQEAsync); s.SetUserData(5) },
			SQE{Opcode: uint8(OpRecv), Fd: 16, IoPrio: RecvMultishot, Flags: SQEBufferSelect | SQEAsync, BufIndex: 3, OpFlags: unix.MSG_DONTWAIT, UserData: 5}},
		{"set flags replaces", func(s *SQE) { s.PrepNop(); s.AddFlags(SQEIODrain); s.SetFlags(SQEAsync) }, SQE{Opcode: uint8(OpNop), Flags: SQEAsync}},
		{"fsync datasync", func(s *SQE) { s.PrepFsync(14, FsyncDatasync) }, SQE{Opcode: uint8(OpFsync), Fd: 14, OpFlags: FsyncDatasync}},
		{"read nil buf", func(s *SQE) { s.PrepRead(3, nil, 0) }, SQE{Opcode: uint8(OpRead), Fd: 3}},
	}
	for _, tt := range tests {
		// Dirty the SQE: each Prep method must reset every field, not
		// rely on GetSQE's zeroing, and the table compares all of them.
		var s SQE
		b := unsafe.Slice((*byte)(unsafe.Pointer(&s)), unsafe.Sizeof(s))
		for i := range b {
			b[i] = 0xa5
		}
		tt.prep(&s)
		if s != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, s, tt.want)
		}
	}
}

func TestNopRoundTrip(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	if r.Features()&FeatNodrop == 0 {
		t.Log("kernel lacks FEAT_NODROP")
	}
	if !r.Supported(OpNop) || !r.Supported(OpRead) {
		t.Fatal("probe says NOP/READ unsupported")
	}
	if r.Supported(Op(250)) {
		t.Fatal("probe says opcode 250 is supported")
	}
	sqe := r.GetSQE()
	sqe.PrepNop()
	sqe.SetUserData(0xfeedbeef)
	c := waitCQE(t, r)
	if c.UserData != 0xfeedbeef || c.Res != 0 {
		t.Fatalf("cqe %+v", c)
	}
	t.Logf("setup flags %#x features %#x sq %d cq %d", r.SetupFlags(), r.Features(), r.SQEntries(), r.CQEntries())
}

func TestRegisteredRingFd(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	if err := r.RegisterRingFd(); err != nil {
		t.Skipf("kernel lacks registered ring fds: %v", err)
	}
	for i := range 3 {
		sqe := r.GetSQE()
		sqe.PrepNop()
		sqe.SetUserData(uint64(i))
	}
	if m := waitCQEs(t, r, 3); len(m) != 3 {
		t.Fatal(m)
	}
}

func TestSQFull(t *testing.T) {
	r := newTestRing(t, Config{Entries: 4})
	n := 0
	for sqe := r.GetSQE(); sqe != nil; sqe = r.GetSQE() {
		sqe.PrepNop()
		sqe.SetUserData(uint64(n))
		n++
		if n > 100 {
			t.Fatal("GetSQE never reports a full SQ")
		}
	}
	if uint32(n) != r.SQEntries() || r.SQReady() != r.SQEntries() {
		t.Fatalf("handed out %d SQEs, ready %d, ring has %d", n, r.SQReady(), r.SQEntries())
	}
	waitCQEs(t, r, n)
	sqe := r.GetSQE()
	if sqe == nil {
		t.Fatal("no SQE after the kernel consumed the queue")
	}
	sqe.PrepNop()
}

func TestPipeReadWrite(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	p := testPipe(t)
	in := make([]byte, 100)
	rd := r.GetSQE()
	rd.PrepRead(p[0], in, ^uint64(0))
	rd.SetUserData(1)
	r.Submit()
	msg := []byte("through the pipe")
	wr := r.GetSQE()
	wr.PrepWrite(p[1], msg, ^uint64(0))
	wr.SetUserData(2)
	m := waitCQEs(t, r, 2)
	if m[2].Res != int32(len(msg)) || m[1].Res != int32(len(msg)) || !bytes.Equal(in[:len(msg)], msg) {
		t.Fatalf("write %+v read %+v data %q", m[2], m[1], in)
	}
	runtime.KeepAlive(in)
	runtime.KeepAlive(msg)
}

func TestFileReadWriteAtOffsets(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	wr := r.GetSQE()
	wr.PrepWrite(int(f.Fd()), data, 4096)
	wr.SetUserData(1)
	if c := waitCQE(t, r); c.Res != int32(len(data)) {
		t.Fatalf("write: %+v", c)
	}
	got := make([]byte, len(data))
	iov := []unix.Iovec{{Base: &got[0]}}
	iov[0].SetLen(len(got))
	rd := r.GetSQE()
	rd.PrepReadv(int(f.Fd()), iov, 4096)
	rd.SetUserData(2)
	if c := waitCQE(t, r); c.Res != int32(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("readv: %+v", c)
	}
	st, _ := f.Stat()
	if st.Size() != 4096+int64(len(data)) {
		t.Fatalf("size %d", st.Size())
	}
	fs := r.GetSQE()
	fs.PrepFsync(int(f.Fd()), 0)
	if c := waitCQE(t, r); c.Res != 0 {
		t.Fatalf("fsync %+v", c)
	}
	runtime.KeepAlive(got)
	runtime.KeepAlive(data)
}

// testPipe returns a pipe closed when the test ends.
func testPipe(t *testing.T) [2]int {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p
}

// loopbackListener returns a blocking listening socket and its address.
func loopbackListener(t *testing.T) (int, *unix.SockaddrInet4) {
	t.Helper()
	ls, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(ls) })
	if err := unix.Bind(ls, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ls, 64); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(ls)
	return ls, sa.(*unix.SockaddrInet4)
}

func rawInet4(sa *unix.SockaddrInet4) (unix.RawSockaddrAny, uint32) {
	var raw unix.RawSockaddrAny
	in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&raw))
	in.Family = unix.AF_INET
	p := (*[2]byte)(unsafe.Pointer(&in.Port))
	p[0], p[1] = byte(sa.Port>>8), byte(sa.Port)
	in.Addr = sa.Addr
	return raw, unix.SizeofSockaddrInet4
}

// connectedPair returns an accepted and a connected socket, made with
// io_uring ACCEPT and CONNECT.
func connectedPair(t *testing.T, r *Ring) (int, int) {
	t.Helper()
	ls, sa := loopbackListener(t)
	var peer unix.RawSockaddrAny
	peerLen := uint32(unix.SizeofSockaddrAny)
	acc := r.GetSQE()
	acc.PrepAccept(ls, &peer, &peerLen, unix.SOCK_CLOEXEC)
	acc.SetUserData(1)
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, n := rawInet4(sa)
	con := r.GetSQE()
	con.PrepConnect(c, &raw, n)
	con.SetUserData(2)
	m := waitCQEs(t, r, 2)
	if m[1].Res < 0 || m[2].Res != 0 {
		t.Fatalf("accept %+v connect %+v", m[1], m[2])
	}
	if peer.Addr.Family != unix.AF_INET || peerLen != unix.SizeofSockaddrInet4 {
		t.Fatalf("peer address not filled: family %d len %d", peer.Addr.Family, peerLen)
	}
	s := int(m[1].Res)
	t.Cleanup(func() { unix.Close(s); unix.Close(c) })
	runtime.KeepAlive(&raw)
	return s, c
}

func TestSocketAcceptConnectSendRecv(t *testing.T) {
	r := newTestRing(t, Config{Entries: 16})
	s, c := connectedPair(t, r)
	msg := []byte("hello over loopback")
	in := make([]byte, 64)
	rv := r.GetSQE()
	rv.PrepRecv(s, in, 0)
	rv.SetUserData(3)
	sd := r.GetSQE()
	sd.PrepSend(c, msg, unix.MSG_NOSIGNAL)
	sd.SetUserData(4)
	m := waitCQEs(t, r, 2)
	if m[4].Res != int32(len(msg)) || m[3].Res != int32(len(msg)) || !bytes.Equal(in[:len(msg)], msg) {
		t.Fatalf("send %+v recv %+v", m[4], m[3])
	}
	sh := r.GetSQE()
	sh.PrepShutdown(c, unix.SHUT_WR)
	sh.SetUserData(5)
	rv = r.GetSQE()
	rv.PrepRecv(s, in, 0)
	rv.SetUserData(6)
	m = waitCQEs(t, r, 2)
	if m[5].Res != 0 || m[6].Res != 0 {
		t.Fatalf("shutdown %+v, recv after it %+v (want EOF = 0)", m[5], m[6])
	}
	runtime.KeepAlive(in)
	runtime.KeepAlive(msg)
}

func TestTimeoutFiresAndIsRemoved(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	short := unix.NsecToTimespec(int64(5 * time.Millisecond))
	long := unix.NsecToTimespec(int64(time.Hour))
	a := r.GetSQE()
	a.PrepTimeout(&short, 0, 0)
	a.SetUserData(1)
	b := r.GetSQE()
	b.PrepTimeout(&long, 0, 0)
	b.SetUserData(2)
	start := time.Now()
	if c := waitCQE(t, r); c.UserData != 1 || c.Res != -int32(unix.ETIME) {
		t.Fatalf("short timeout: %+v", c)
	}
	if d := time.Since(start); d < 4*time.Millisecond {
		t.Fatalf("timeout fired after %v", d)
	}
	rm := r.GetSQE()
	rm.PrepTimeoutRemove(2, 0)
	rm.SetUserData(3)
	m := waitCQEs(t, r, 2)
	if m[3].Res != 0 || m[2].Res != -int32(unix.ECANCELED) {
		t.Fatalf("remove %+v, removed timeout %+v", m[3], m[2])
	}
	runtime.KeepAlive(&short)
	runtime.KeepAlive(&long)
}

func TestSubmitAndWaitTimeout(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	start := time.Now()
	n, err := r.SubmitAndWait(1, 20*time.Millisecond)
	if err != nil || n != 0 {
		t.Fatalf("wait with nothing to complete: n=%d err=%v", n, err)
	}
	if d := time.Since(start); d < 15*time.Millisecond || d > 5*time.Second {
		t.Fatalf("waited %v for a 20ms timeout", d)
	}
}

func TestLinkTimeoutCancelsRecv(t *testing.T) {
	r := newTestRing(t, Config{Entries: 16})
	s, _ := connectedPair(t, r)
	in := make([]byte, 8)
	ts := unix.NsecToTimespec(int64(10 * time.Millisecond))
	rv := r.GetSQE()
	rv.PrepRecv(s, in, 0)
	rv.SetUserData(1)
	rv.SetFlags(SQEIOLink)
	lt := r.GetSQE()
	lt.PrepLinkTimeout(&ts, 0)
	lt.SetUserData(2)
	m := waitCQEs(t, r, 2)
	// io_uring_prep_link_timeout(3): the linked request completes with
	// -ECANCELED (-EINTR if it was already running), the timeout with -ETIME.
	if m[1].Res != -int32(unix.ECANCELED) && m[1].Res != -int32(unix.EINTR) {
		t.Fatalf("recv %+v, want -ECANCELED", m[1])
	}
	if m[2].Res != -int32(unix.ETIME) {
		t.Fatalf("link timeout %+v, want -ETIME", m[2])
	}
	runtime.KeepAlive(in)
	runtime.KeepAlive(&ts)
}

func TestAsyncCancelPendingRecv(t *testing.T) {
	t.Run("defer-taskrun", func(t *testing.T) { testAsyncCancelPendingRecv(t, Config{Entries: 16}) })
	t.Run("coop-taskrun", func(t *testing.T) {
		testAsyncCancelPendingRecv(t, Config{Entries: 16, Flags: SetupCoopTaskrun | SetupTaskrunFlag})
	})
	t.Run("no-flags", func(t *testing.T) { testAsyncCancelPendingRecv(t, Config{Entries: 16, Flags: SetupCQSize}) })
}

func testAsyncCancelPendingRecv(t *testing.T, cfg Config) {
	r := newTestRing(t, cfg)
	s, c := connectedPair(t, r)
	in := make([]byte, 8)
	firsts := map[uint64]int{} // which CQE came first, per round
	for round := range 20 {
		rv := r.GetSQE()
		rv.PrepRecv(s, in, 0)
		rv.SetUserData(100)
		r.Submit()
		data := round%3 != 0
		if data {
			// Data arrives just before the cancel: either may win.
			unix.Write(c, []byte("x"))
		}
		if round%3 == 2 {
			// Let the kernel post the recv's completion first: the
			// cancel then finds nothing, and its CQE comes second.
			r.Submit()
		}
		cn := r.GetSQE()
		cn.PrepCancel(100, 0)
		cn.SetUserData(200)
		// Either CQE may come first; nothing may depend on the order.
		first, second := waitCQE(t, r), waitCQE(t, r)
		firsts[first.UserData]++
		m := map[uint64]CQE{first.UserData: first, second.UserData: second}
		recv, cancel := m[100], m[200]
		if len(m) != 2 || recv.UserData != 100 || cancel.UserData != 200 {
			t.Fatalf("round %d: completions %+v %+v", round, first, second)
		}
		switch {
		case recv.Res == -int32(unix.ECANCELED) || recv.Res == -int32(unix.EINTR):
			if cancel.Res != 0 && cancel.Res != -int32(unix.EALREADY) {
				t.Fatalf("recv cancelled but cancel res %d", cancel.Res)
			}
			if data {
				// The byte is still in the socket.
				if n, _, _ := unix.Recvfrom(s, in, unix.MSG_DONTWAIT); n != 1 {
					t.Fatalf("cancelled recv lost the byte")
				}
			}
		case recv.Res == 1:
			if cancel.Res != -int32(unix.ENOENT) && cancel.Res != -int32(unix.EALREADY) {
				t.Fatalf("recv completed, cancel res %d, want -ENOENT", cancel.Res)
			}
		default:
			t.Fatalf("round %d: recv %+v cancel %+v", round, recv, cancel)
		}
	}
	t.Logf("first CQE: recv %d times, cancel %d times", firsts[100], firsts[200])
	if firsts[100] == 0 || firsts[200] == 0 {
		t.Fatalf("only one CQE order seen (%v): the test covers less than it says", firsts)
	}
	runtime.KeepAlive(in)
}

// TestCQOverflowLosesNothing submits many more NOPs than the CQ holds
// without reaping; with FEAT_NODROP every completion must arrive once, and
// the kernel's dropped-completion counter must stay zero.
func TestCQOverflowLosesNothing(t *testing.T) {
	r := newTestRing(t, Config{Entries: 4, CQEntries: 8})
	if r.Features()&FeatNodrop == 0 {
		t.Skip("kernel lacks FEAT_NODROP")
	}
	const total = 200
	next := uint64(0)
	overflowed := false
	for spins := 0; next < total; spins++ {
		if spins > 10*total {
			t.Fatalf("submitted only %d of %d", next, total)
		}
		for next < total {
			sqe := r.GetSQE()
			if sqe == nil {
				break
			}
			sqe.PrepNop()
			sqe.SetUserData(next)
			next++
		}
		if _, err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		overflowed = overflowed || r.CQOverflowPending()
	}
	if !overflowed {
		t.Fatal("the CQ never overflowed: the test proves nothing")
	}
	if got := r.CQReady(); got != r.CQEntries() {
		t.Fatalf("CQ holds %d, want it full (%d)", got, r.CQEntries())
	}
	// Now reap everything, in small batches mixing Reap and
	// PeekCQEs+CQAdvance.
	seen := make(map[uint64]bool)
	record := func(c CQE) {
		if seen[c.UserData] {
			t.Fatalf("completion %d twice", c.UserData)
		}
		if c.Res != 0 {
			t.Fatalf("nop %+v", c)
		}
		seen[c.UserData] = true
	}
	buf := make([]CQE, 3)
	deadline := time.Now().Add(5 * time.Second)
	for round := 0; len(seen) < total && time.Now().Before(deadline); round++ {
		n := 0
		if round%2 == 0 {
			n = r.Reap(buf)
			for _, c := range buf[:n] {
				record(c)
			}
		} else {
			a, b := r.PeekCQEs()
			for _, c := range a {
				record(c)
			}
			for _, c := range b {
				record(c)
			}
			n = len(a) + len(b)
			r.CQAdvance(uint32(n))
		}
		if n == 0 {
			// Moves the overflow list into the CQ.
			if _, err := r.SubmitAndWait(1, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != total {
		t.Fatalf("got %d of %d completions", len(seen), total)
	}
	if r.CQOverflowPending() {
		t.Fatal("overflow still pending after every completion arrived")
	}
	if d := atomic.LoadUint32(r.cqOverflow); d != 0 {
		t.Fatalf("kernel counted %d dropped completions", d)
	}
}

func TestMultishotAccept(t *testing.T) {
	r := newTestRing(t, Config{Entries: 16})
	ls, sa := loopbackListener(t)
	sqe := r.GetSQE()
	sqe.PrepMultishotAccept(ls, nil, nil, unix.SOCK_CLOEXEC)
	sqe.SetUserData(7)
	r.Submit()
	const conns = 5
	for range conns {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(c)
		if err := unix.Connect(c, sa); err != nil {
			t.Fatal(err)
		}
	}
	for i := range conns {
		c := waitCQE(t, r)
		if c.UserData != 7 || c.Res < 0 {
			t.Fatalf("accept %d: %+v", i, c)
		}
		if c.Flags&CQEFMore == 0 {
			t.Fatalf("multishot accept ended early: %+v", c)
		}
		unix.Close(int(c.Res))
	}
}

func TestMultishotRecvWithBufferRing(t *testing.T) {
	r := newTestRing(t, Config{Entries: 16})
	if !r.Supported(OpRecv) {
		t.Skip("no RECV")
	}
	const nbufs, size = 8, 16
	br, err := r.RegisterBufRing(nbufs, 1)
	if err != nil {
		t.Skipf("no provided-buffer rings: %v", err)
	}
	defer br.Unregister()
	bufs := make([][]byte, nbufs)
	for i := range bufs {
		bufs[i] = make([]byte, size)
		br.Add(bufs[i], uint16(i), i)
	}
	br.Advance(nbufs)
	s, c := connectedPair(t, r)
	sqe := r.GetSQE()
	sqe.PrepRecvMultishot(s, br.Group(), 0)
	sqe.SetUserData(9)
	r.Submit()
	var got []byte
	const msgs = 30 // more than the ring holds: buffers must be recycled
	for i := range msgs {
		if _, err := unix.Write(c, []byte{byte('a' + i%26)}); err != nil {
			t.Fatal(err)
		}
		cq := waitCQE(t, r)
		bid, ok := cq.BufferID()
		if cq.UserData != 9 || cq.Res <= 0 || !ok || cq.Flags&CQEFMore == 0 {
			t.Fatalf("completion %d: %+v", i, cq)
		}
		buf := br.Buffer(bid)
		if &buf[0] != &bufs[bid][0] {
			t.Fatalf("Buffer(%d) is not the buffer added as %d", bid, bid)
		}
		got = append(got, buf[:cq.Res]...)
		br.Recycle(buf, bid)
	}
	want := make([]byte, msgs)
	for i := range want {
		want[i] = byte('a' + i%26)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestZeroAllocs(t *testing.T) {
	r := newTestRing(t, Config{Entries: 64})
	cqes := make([]CQE, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		for range 32 {
			r.GetSQE().PrepNop()
		}
		r.SubmitAndWait(32, -1)
		for got := 0; got < 32; {
			got += r.Reap(cqes)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per batch, want 0", allocs)
	}
}

// benchNop measures one NOP prepared, submitted and reaped, in batches
// of batch per io_uring_enter: b.N counts NOPs, so ns/op is per NOP. The C
// reference is testdata/nopbench.c.
func benchNop(b *testing.B, batch int) {
	r := newTestRing(b, Config{Entries: uint32(batch)})
	cqes := make([]CQE, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		for range batch {
			r.GetSQE().PrepNop()
		}
		if _, err := r.SubmitAndWait(uint32(batch), -1); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < batch; {
			got += r.Reap(cqes)
		}
	}
}

func BenchmarkNop1(b *testing.B)   { benchNop(b, 1) }
func BenchmarkNop32(b *testing.B)  { benchNop(b, 32) }
func BenchmarkNop256(b *testing.B) { benchNop(b, 256) }

// TestEntersCountsEverySyscall: SubmitAndWait may make more than one
// io_uring_enter (an optimistic submit of a large batch, then the wait),
// and Enters must count each, so that callers' syscall counts are honest.
func TestEntersCountsEverySyscall(t *testing.T) {
	r := newTestRing(t, Config{Entries: 64})
	if r.Features()&FeatExtArg == 0 {
		t.Skip("kernel lacks EXT_ARG")
	}
	// A batch of SplitSubmit SQEs: SplitSubmit-1 NOPs complete during the
	// submit, the timeout only 5 ms later, so waiting for all of them
	// takes a second enter.
	ts := &unix.Timespec{Nsec: int64(5 * time.Millisecond)}
	for i := range SplitSubmit - 1 {
		sqe := r.GetSQE()
		sqe.PrepNop()
		sqe.SetUserData(uint64(i))
	}
	sqe := r.GetSQE()
	sqe.PrepTimeout(ts, 0, 0)
	sqe.SetUserData(1000)
	before := r.Enters()
	if _, err := r.SubmitAndWait(SplitSubmit, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := r.CQReady(); got != SplitSubmit {
		t.Fatalf("%d completions ready, want %d", got, SplitSubmit)
	}
	// Two enters: the submit, then the wait (a signal during the wait
	// would add a retry, hence no upper bound).
	if d := r.Enters() - before; d < 2 {
		t.Fatalf("Enters counted %d io_uring_enter calls, want at least 2 (submit, then wait)", d)
	}
	runtime.KeepAlive(ts)
}

// TestSubmitAndWaitMin checks the batch wait's three ways out: a full batch
// ends it at once; once minWait has passed, one completion is enough; with
// none, it keeps waiting past minWait (for the first completion, or the
// timeout) instead of returning empty. (No subtests: the ring is
// SINGLE_ISSUER, and a subtest's goroutine may run on another thread.)
func TestSubmitAndWaitMin(t *testing.T) {
	r := newTestRing(t, Config{Entries: 64})
	if r.Features()&FeatMinTimeout == 0 {
		if _, err := r.SubmitAndWaitMin(4, time.Millisecond, time.Second); !errors.Is(err, ErrNoMinTimeout) {
			t.Fatalf("SubmitAndWaitMin without IORING_FEAT_MIN_TIMEOUT: err %v, want ErrNoMinTimeout", err)
		}
		t.Skip("kernel lacks IORING_FEAT_MIN_TIMEOUT (6.12)")
	}
	cqes := make([]CQE, 64)
	wait := func(what string, waitNr uint32, minWait, timeout time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := r.SubmitAndWaitMin(waitNr, minWait, timeout); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return time.Since(start)
	}
	// A read on a pipe that another goroutine writes to after d: an
	// ordinary completion. (A timeout SQE would not do: a fired timeout
	// ends any wait at once.)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	buf := make([]byte, 8)
	readAfter := func(d time.Duration, ud uint64) {
		sqe := r.GetSQE()
		sqe.PrepRead(p[0], buf, ^uint64(0))
		sqe.SetUserData(ud)
		time.AfterFunc(d, func() { unix.Write(p[1], []byte{1}) })
	}

	// A full batch ends the wait at once, long before minWait.
	for i := range 4 {
		sqe := r.GetSQE()
		sqe.PrepNop()
		sqe.SetUserData(uint64(i))
	}
	if el := wait("full batch", 4, 10*time.Second, -1); el > 5*time.Second {
		t.Errorf("full batch: a wait for 4 completions took %v with 4 ready: it waited out minWait", el)
	}
	if n := r.Reap(cqes); n != 4 {
		t.Fatalf("full batch: reaped %d completions, want 4", n)
	}

	// One completion (1ms) of the 8 asked for: the wait lasts minWait (the
	// kernel's timer does not fire early), then returns with it.
	readAfter(time.Millisecond, 1)
	el := wait("one after minWait", 8, 30*time.Millisecond, -1)
	if n := r.Reap(cqes); n != 1 || cqes[0].UserData != 1 {
		t.Fatalf("one after minWait: reaped %d completions, want the read's one", n)
	}
	if el < 25*time.Millisecond || el > 10*time.Second {
		t.Errorf("one after minWait: wait took %v, want about minWait (30ms)", el)
	}

	// Nothing by minWait (5ms): the wait goes on until the first
	// completion (60ms) instead of returning empty.
	readAfter(60*time.Millisecond, 2)
	el = wait("none by minWait", 8, 5*time.Millisecond, -1)
	if n := r.Reap(cqes); n != 1 || cqes[0].UserData != 2 {
		t.Fatalf("none by minWait: reaped %d completions, want the 60ms read's one", n)
	}
	if el < 50*time.Millisecond {
		t.Errorf("none by minWait: wait returned after %v; it must go on past minWait (5ms) until a completion", el)
	}

	// Nothing at all: the overall timeout ends it.
	if el := wait("overall timeout", 8, 5*time.Millisecond, 40*time.Millisecond); el < 35*time.Millisecond {
		t.Errorf("overall timeout: wait with nothing in flight returned after %v, want the 40ms timeout", el)
	}
	if n := r.CQReady(); n != 0 {
		t.Fatalf("overall timeout: %d completions ready, want none", n)
	}
}

// TestSubmitAndWaitEndsOnTimeoutSQE: a fired timeout SQE ends the kernel's
// wait whatever min_complete was, and SubmitAndWait returns then with what
// is ready instead of waiting again for the rest (which, with no timeout of
// its own, would never end).
func TestSubmitAndWaitEndsOnTimeoutSQE(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	ts := &unix.Timespec{Nsec: int64(10 * time.Millisecond)}
	sqe := r.GetSQE()
	sqe.PrepTimeout(ts, 0, 0)
	sqe.SetUserData(1)
	start := time.Now()
	if _, err := r.SubmitAndWait(2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	runtime.KeepAlive(ts)
	if n := r.CQReady(); n != 1 {
		t.Fatalf("%d completions ready, want the timeout's", n)
	}
	if el > 2*time.Second {
		t.Errorf("SubmitAndWait(2) with a 10ms timeout SQE returned after %v, not when the timeout fired", el)
	}
}

// TestSubmitAndWaitBeyondCQSize: the kernel caps a wait at the CQ's size
// and returns once the CQ is full, so a waitNr beyond it can never be
// satisfied; SubmitAndWait must not spin re-entering the kernel.
func TestSubmitAndWaitBeyondCQSize(t *testing.T) {
	r := newTestRing(t, Config{Entries: 4, CQEntries: 8})
	if r.CQEntries() != 8 {
		t.Skipf("CQ has %d entries", r.CQEntries())
	}
	// 12 NOPs complete: 8 fill the CQ, 4 wait on the overflow list.
	for range 3 {
		for range 4 {
			r.GetSQE().PrepNop()
		}
		if _, err := r.Submit(); err != nil {
			t.Fatal(err)
		}
	}
	before := r.Enters()
	if _, err := r.SubmitAndWait(12, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := r.Enters() - before; d > 4 {
		t.Errorf("SubmitAndWait(12) on an 8-entry CQ made %d io_uring_enter calls: it spun", d)
	}
	if n := r.CQReady(); n != 8 {
		t.Errorf("%d completions ready, want a full CQ (8)", n)
	}
}

// TestSubmitAndWaitMinDeadlineAfterSignal: a signal interrupts the wait and
// the retry gets what is left of minWait and of the timeout; a minWait
// longer than what is left of the timeout would make the kernel sleep past
// the deadline (it arms the overall timer only once minWait ends).
func TestSubmitAndWaitMinDeadlineAfterSignal(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	if r.Features()&FeatMinTimeout == 0 {
		t.Skip("kernel lacks IORING_FEAT_MIN_TIMEOUT (6.12)")
	}
	tid, pid := unix.Gettid(), unix.Getpid()
	timer := time.AfterFunc(30*time.Millisecond, func() { unix.Tgkill(pid, tid, unix.SIGURG) })
	defer timer.Stop()
	start := time.Now()
	if _, err := r.SubmitAndWaitMin(8, 45*time.Millisecond, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Fixed: about 50ms. Unfixed: at least 30+45ms, however fast the machine.
	if el := time.Since(start); el < 45*time.Millisecond || el >= 72*time.Millisecond {
		t.Errorf("wait with a 50ms timeout (minWait 45ms, a signal at 30ms) returned after %v", el)
	}
}

// TestPrepClampsLength: a buffer longer than MaxRW asks the kernel for
// MaxRW bytes (a short count, as read(2) gives), never for a 32-bit length
// that wrapped (4 GiB would be 0).
func TestPrepClampsLength(t *testing.T) {
	big, err := unix.Mmap(-1, 0, 1<<32, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		t.Skipf("mmap 4 GiB: %v", err)
	}
	defer unix.Munmap(big)
	var s SQE
	for _, prep := range []func(){
		func() { s.PrepRead(0, big, 0) },
		func() { s.PrepWrite(0, big, 0) },
		func() { s.PrepRecv(0, big, 0) },
		func() { s.PrepSend(0, big, 0) },
	} {
		prep()
		if s.Len != MaxRW {
			t.Errorf("opcode %d with a 4 GiB buffer: len %d, want MaxRW (%d)", s.Opcode, s.Len, MaxRW)
		}
	}
	s.PrepRead(0, big[:100], 0)
	if s.Len != 100 {
		t.Errorf("100-byte buffer: len %d", s.Len)
	}
}
