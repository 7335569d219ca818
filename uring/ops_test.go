//go:build linux

package uring

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestFileOpsOpenatStatxWritevClose runs OPENAT, WRITEV, FSYNC, STATX and
// CLOSE on a real file.
func TestFileOpsOpenatStatxWritevClose(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	name := filepath.Join(t.TempDir(), "f")
	path := append([]byte(name), 0)
	op := r.GetSQE()
	op.PrepOpenat(unix.AT_FDCWD, &path[0], unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	op.SetUserData(1)
	c := waitCQE(t, r)
	if c.Res < 0 {
		t.Fatalf("openat: %v", unix.Errno(-c.Res))
	}
	fd := int(c.Res)
	a, b := []byte("hello, "), []byte("vectored world")
	iovs := make([]unix.Iovec, 2)
	iovs[0].Base, iovs[1].Base = &a[0], &b[0]
	iovs[0].SetLen(len(a))
	iovs[1].SetLen(len(b))
	wv := r.GetSQE()
	wv.PrepWritev(fd, iovs, 0)
	wv.SetUserData(2)
	if c := waitCQE(t, r); c.Res != int32(len(a)+len(b)) {
		t.Fatalf("writev %+v", c)
	}
	fs := r.GetSQE()
	fs.PrepFsync(fd, FsyncDatasync)
	fs.SetUserData(3)
	if c := waitCQE(t, r); c.Res != 0 {
		t.Fatalf("fdatasync %+v", c)
	}
	st := new(unix.Statx_t)
	sx := r.GetSQE()
	sx.PrepStatx(unix.AT_FDCWD, &path[0], 0, unix.STATX_SIZE|unix.STATX_MODE, st)
	sx.SetUserData(4)
	if c := waitCQE(t, r); c.Res != 0 || st.Size != uint64(len(a)+len(b)) || st.Mode&0o777 != 0o600 {
		t.Fatalf("statx %+v: size %d mode %o", c, st.Size, st.Mode)
	}
	cl := r.GetSQE()
	cl.PrepClose(fd)
	cl.SetUserData(5)
	if c := waitCQE(t, r); c.Res != 0 || fdOpen(fd) {
		t.Fatalf("close %+v, fd open %v", c, fdOpen(fd))
	}
	got, err := os.ReadFile(name)
	if err != nil || string(got) != "hello, vectored world" {
		t.Fatalf("file holds %q, %v", got, err)
	}
	runtime.KeepAlive(path)
	runtime.KeepAlive(iovs)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

// TestSendmsgRecvmsgDatagram sends and receives one UDP datagram with
// SENDMSG and RECVMSG, the sender's address coming back in the msghdr.
func TestSendmsgRecvmsgDatagram(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	sock := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	rx, tx := sock(), sock()
	rxAddr, _ := unix.Getsockname(rx)
	txAddr, _ := unix.Getsockname(tx)

	type msgState struct { // one heap block, as the package docs ask
		msg  unix.Msghdr
		iov  unix.Iovec
		name unix.RawSockaddrAny
		buf  [64]byte
	}
	in, out := new(msgState), new(msgState)
	in.iov.Base = &in.buf[0]
	in.iov.SetLen(len(in.buf))
	in.msg.Name = (*byte)(unsafe.Pointer(&in.name))
	in.msg.Namelen = unix.SizeofSockaddrAny
	in.msg.Iov = &in.iov
	in.msg.SetIovlen(1)
	rv := r.GetSQE()
	rv.PrepRecvmsg(rx, &in.msg, 0)
	rv.SetUserData(1)

	payload := "datagram"
	copy(out.buf[:], payload)
	out.iov.Base = &out.buf[0]
	out.iov.SetLen(len(payload))
	out.name, out.msg.Namelen = rawInet4(rxAddr.(*unix.SockaddrInet4))
	out.msg.Name = (*byte)(unsafe.Pointer(&out.name))
	out.msg.Iov = &out.iov
	out.msg.SetIovlen(1)
	sd := r.GetSQE()
	sd.PrepSendmsg(tx, &out.msg, 0)
	sd.SetUserData(2)

	m := waitCQEs(t, r, 2)
	if m[2].Res != int32(len(payload)) || m[1].Res != int32(len(payload)) || string(in.buf[:m[1].Res]) != payload {
		t.Fatalf("sendmsg %+v recvmsg %+v data %q", m[2], m[1], in.buf[:])
	}
	from := (*unix.RawSockaddrInet4)(unsafe.Pointer(&in.name))
	port := int(from.Port>>8 | from.Port<<8&0xff00)
	if in.msg.Namelen != unix.SizeofSockaddrInet4 || port != txAddr.(*unix.SockaddrInet4).Port {
		t.Fatalf("sender address: len %d port %d, want port %d", in.msg.Namelen, port, txAddr.(*unix.SockaddrInet4).Port)
	}
}

// TestPollAdd waits for a pipe to become readable.
func TestPollAdd(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	p := testPipe(t)
	sqe := r.GetSQE()
	sqe.PrepPollAdd(p[0], unix.POLLIN)
	sqe.SetUserData(1)
	if _, err := r.SubmitAndWait(1, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r.CQReady() != 0 {
		t.Fatal("poll fired on an empty pipe")
	}
	unix.Write(p[1], []byte("x"))
	if c := waitCQE(t, r); c.UserData != 1 || c.Res&unix.POLLIN == 0 {
		t.Fatalf("poll %+v", c)
	}
}

// TestCancelByFd cancels every pending recv on one socket with one
// ASYNC_CANCEL, leaving another socket's recv alone.
func TestCancelByFd(t *testing.T) {
	r := newTestRing(t, Config{Entries: 16})
	if !r.Supported(OpAsyncCancel) {
		t.Skip("no ASYNC_CANCEL")
	}
	s, c := connectedPair(t, r)
	in := make([]byte, 3*8)
	for i := range 3 {
		rv := r.GetSQE()
		rv.PrepRecv(s, in[i*8:(i+1)*8], 0)
		rv.SetUserData(uint64(10 + i))
	}
	other := r.GetSQE()
	other.PrepRecv(c, in[:0:0], 0) // on the other end: must survive
	other.SetUserData(20)
	r.Submit()
	cn := r.GetSQE()
	cn.PrepCancelFd(s, AsyncCancelAll)
	cn.SetUserData(30)
	m := waitCQEs(t, r, 4)
	if m[30].Res == -int32(unix.EINVAL) {
		t.Skip("kernel lacks IORING_ASYNC_CANCEL_FD (5.19)")
	}
	if m[30].Res != 3 {
		t.Fatalf("cancel by fd %+v, want res 3 (requests cancelled)", m[30])
	}
	for i := range 3 {
		if res := m[uint64(10+i)].Res; res != -int32(unix.ECANCELED) {
			t.Fatalf("recv %d: res %d, want -ECANCELED", i, res)
		}
	}
	if _, ok := m[20]; ok {
		t.Fatalf("the other socket's recv completed: %+v", m[20])
	}
	runtime.KeepAlive(in)
}

// TestMsgRing posts a completion from one ring onto another: the
// cross-loop wake-up path.
func TestMsgRing(t *testing.T) {
	src := newTestRing(t, Config{Entries: 8})
	dst := newTestRing(t, Config{Entries: 8})
	if !src.Supported(OpMsgRing) {
		t.Skip("no MSG_RING (5.18)")
	}
	sqe := src.GetSQE()
	sqe.PrepMsgRing(dst.Fd(), 42, 0xabcdef, 0)
	sqe.SetUserData(1)
	if c := waitCQE(t, src); c.UserData != 1 || c.Res != 0 {
		t.Fatalf("msg_ring on the source: %+v", c)
	}
	if c := waitCQE(t, dst); c.UserData != 0xabcdef || c.Res != 42 {
		t.Fatalf("posted completion: %+v", c)
	}
}

// TestPeekCQEsWraps checks PeekCQEs' two slices when the ready completions
// wrap around the end of the CQ.
func TestPeekCQEsWraps(t *testing.T) {
	r := newTestRing(t, Config{Entries: 4, CQEntries: 8})
	if a, b := r.PeekCQEs(); a != nil || b != nil {
		t.Fatal("completions on a new ring")
	}
	next := uint64(0)
	nops := func(k int) {
		for range k {
			sqe := r.GetSQE()
			sqe.PrepNop()
			sqe.SetUserData(next)
			next++
		}
		if _, err := r.SubmitAndWait(uint32(k), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	nops(4)
	nops(2)
	r.CQAdvance(6) // head at 6 of 8
	nops(4)        // ready: slots 6, 7, 0, 1
	a, b := r.PeekCQEs()
	if len(a) != 2 || len(b) != 2 {
		t.Fatalf("split %d+%d, want 2+2", len(a), len(b))
	}
	for i, c := range append(append([]CQE(nil), a...), b...) {
		if c.UserData != uint64(6+i) {
			t.Fatalf("cqe %d: %+v", i, c)
		}
	}
	if p, ok := r.PeekCQE(); !ok || p != &a[0] {
		t.Fatal("PeekCQE does not see the head slot")
	}
	r.CQAdvance(uint32(len(a) + len(b)))
	if r.CQReady() != 0 {
		t.Fatal("CQAdvance left completions")
	}
}

// TestSubmitAndWaitRetriesEINTR fires signals at the waiting thread (as
// the Go runtime's preemption and the profiler do): the waits must neither
// fail nor end early.
func TestSubmitAndWaitRetriesEINTR(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	tid, pid := unix.Gettid(), unix.Getpid()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Microsecond):
				unix.Tgkill(pid, tid, unix.SIGURG) // the runtime ignores stray SIGURGs
			}
		}
	}()
	defer wg.Wait()
	defer close(stop)

	// The signals really interrupt a raw wait.
	eintr := false
	ts := new(unix.Timespec)
	*ts = unix.NsecToTimespec(int64(50 * time.Millisecond))
	arg := &getEventsArg{ts: uint64(uintptr(unsafe.Pointer(ts)))}
	for range 5 {
		_, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.Fd()), 0, 1, enterGetEvents|enterExtArg, uintptr(unsafe.Pointer(arg)), unsafe.Sizeof(*arg))
		if e == unix.EINTR {
			eintr = true
			break
		}
	}
	if !eintr {
		t.Log("no EINTR seen: the retries below are not exercised")
	}
	runtime.KeepAlive(ts)
	runtime.KeepAlive(arg)

	// A timed wait with nothing in flight lasts its whole timeout.
	start := time.Now()
	n, err := r.SubmitAndWait(1, 100*time.Millisecond)
	if d := time.Since(start); err != nil || n != 0 || d < 95*time.Millisecond {
		t.Fatalf("timed wait: n=%d err=%v after %v, want the full 100ms", n, err, d)
	}

	// An untimed wait that also submits (its EINTR hides behind the
	// submit count) lasts until the completion.
	long := new(unix.Timespec)
	*long = unix.NsecToTimespec(int64(60 * time.Millisecond))
	sqe := r.GetSQE()
	sqe.PrepTimeout(long, 0, 0)
	sqe.SetUserData(7)
	start = time.Now()
	n, err = r.SubmitAndWait(1, -1)
	if d := time.Since(start); err != nil || n != 1 || r.CQReady() != 1 || d < 55*time.Millisecond {
		t.Fatalf("untimed wait: n=%d err=%v ready=%d after %v", n, err, r.CQReady(), d)
	}
	r.CQAdvance(1)

	// A timed wait that submits a later timeout lasts its own timeout.
	*long = unix.NsecToTimespec(int64(time.Second))
	sqe = r.GetSQE()
	sqe.PrepTimeout(long, 0, 0)
	sqe.SetUserData(8)
	start = time.Now()
	n, err = r.SubmitAndWait(1, 60*time.Millisecond)
	if d := time.Since(start); err != nil || n != 1 || r.CQReady() != 0 || d < 55*time.Millisecond || d > 900*time.Millisecond {
		t.Fatalf("timed wait with submit: n=%d err=%v ready=%d after %v", n, err, r.CQReady(), d)
	}
	runtime.KeepAlive(long)
}

// TestBufRingKeepsBuffers checks that the BufRing holds the buffers the
// kernel may write, and hands each back by id.
func TestBufRingKeepsBuffers(t *testing.T) {
	r := newTestRing(t, Config{Entries: 8})
	br, err := r.RegisterBufRing(4, 2)
	if err != nil {
		t.Skipf("no provided-buffer rings: %v", err)
	}
	for i := range 4 {
		br.Add(make([]byte, 8), uint16(100+i), i) // ids beyond the ring size
	}
	br.Advance(4)
	runtime.GC()
	for i := range 4 {
		if b := br.Buffer(uint16(100 + i)); len(b) != 8 {
			t.Fatalf("buffer %d: %v", 100+i, b)
		}
	}
	if br.Buffer(7) != nil || br.Buffer(60000) != nil {
		t.Fatal("Buffer invents buffers")
	}
	if _, err := r.RegisterBufRing(3, 3); err == nil {
		t.Fatal("a ring of 3 entries was accepted")
	}
	// A refused unregister (here: a group id the kernel does not know)
	// leaves the group registered as far as we know: its buffers must stay
	// mapped and referenced, for the kernel may still pick them.
	br.bgid = 9
	if err := br.Unregister(); err == nil {
		t.Fatal("unregistering an unknown group succeeded")
	}
	if br.mem == nil || br.Buffer(100) == nil || len(r.bufRings) != 1 {
		t.Fatal("a refused Unregister dropped the buffers")
	}
	br.bgid = 2
	if err := br.Unregister(); err != nil {
		t.Fatal(err)
	}
	if err := br.Unregister(); err != nil || len(r.bufRings) != 0 {
		t.Fatalf("second Unregister: %v, %d rings tracked", err, len(r.bufRings))
	}
}

// TestSQFullWithIndexArray repeats TestSQFull on a ring that keeps the SQ
// index array (no NO_SQARRAY: kernels before 6.6).
func TestSQFullWithIndexArray(t *testing.T) {
	r := newTestRing(t, Config{Entries: 4, Flags: SetupCQSize})
	if r.sqArray == nil {
		t.Fatal("no index array without NO_SQARRAY")
	}
	for round := range 3 {
		n := 0
		for sqe := r.GetSQE(); sqe != nil; sqe = r.GetSQE() {
			sqe.PrepNop()
			sqe.SetUserData(uint64(n))
			n++
		}
		if n != 4 {
			t.Fatalf("round %d: %d SQEs", round, n)
		}
		if m := waitCQEs(t, r, n); len(m) != n {
			t.Fatal(m)
		}
	}
}

// TestSubmitAndWaitOptimistic walks SubmitAndWait between its optimistic
// non-blocking submit and its combined submit-and-wait enter: every wait
// must end with what it waited for, whichever path it took.
func TestSubmitAndWaitOptimistic(t *testing.T) {
	r := newTestRing(t, Config{Entries: 64})
	nops := func(k int) {
		t.Helper()
		for range k {
			r.GetSQE().PrepNop()
		}
		if n, err := r.SubmitAndWait(uint32(k), -1); n != k || err != nil || r.CQReady() != uint32(k) {
			t.Fatalf("%d nops: n=%d err=%v ready=%d", k, n, err, r.CQReady())
		}
		r.CQAdvance(uint32(k))
	}
	nops(1)
	if r.splitMiss != 0 {
		t.Fatalf("splitMiss %d after an immediate completion", r.splitMiss)
	}
	ts := new(unix.Timespec)
	*ts = unix.NsecToTimespec(int64(20 * time.Millisecond))
	r.GetSQE().PrepTimeout(ts, 0, 0)
	start := time.Now()
	if n, err := r.SubmitAndWait(1, -1); n != 1 || err != nil || r.CQReady() != 1 || time.Since(start) < 15*time.Millisecond {
		t.Fatalf("timeout: n=%d err=%v ready=%d after %v", n, err, r.CQReady(), time.Since(start))
	}
	r.CQAdvance(1)
	if r.splitMiss != splitBackoff {
		t.Fatalf("splitMiss %d after a wait that blocked, want %d", r.splitMiss, splitBackoff)
	}
	nops(1) // combined enter
	if r.splitMiss != splitBackoff-1 {
		t.Fatalf("splitMiss %d, want %d", r.splitMiss, splitBackoff-1)
	}
	nops(SplitSubmit) // a large batch is optimistic, and succeeds
	if r.splitMiss != 0 {
		t.Fatalf("splitMiss %d after a large immediate batch", r.splitMiss)
	}
	runtime.KeepAlive(ts)
}
