package asyncio_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"golang.org/x/sys/unix"
)

// onOtherThread runs fn on a goroutine locked to a thread other than
// tid.
func onOtherThread(tid int, fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if unix.Gettid() == tid {
			onOtherThread(tid, fn) // this thread stays taken meanwhile
			return
		}
		fn()
	}()
	<-done
}

// NetConn's Close from another goroutine posts the close to the
// loop; once Run has ended PostFunc refuses it, and Close returned nil
// with the descriptor left open for ever. (When the goroutine happened to
// run on the ended loop's former thread, OnLoopThread said true and the
// loop's FD code ran there instead.)
func TestNetConnCloseAfterRun(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			fds := openFDs(t)
			var nc net.Conn
			var tid int
			err := asyncio.Run(func(task *asyncio.Task) error {
				tid = unix.Gettid()
				c, s, err := tcpPair(task)
				if err != nil {
					return err
				}
				s.Close()
				nc = c.NetConn(task) // handed to a goroutine that closes it later
				return nil
			}, asyncio.WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			var cerr error
			onOtherThread(tid, func() { cerr = nc.Close() })
			if after := openFDs(t); after != fds {
				t.Fatalf("NetConn.Close from another goroutine after Run returned %v and left the descriptor open: %d fds before, %d after", cerr, fds, after)
			}
			if err := nc.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close = %v, want net.ErrClosed", err)
			}
		})
	}
}

// SO_LINGER means nothing to an AF_UNIX socket (close(2) drops
// nothing the peer has not read: there is no send queue of the socket's
// own), but Close treated SO_LINGER 0 as an abort there too and dropped
// the write-behind bytes Write had already returned for: on io_uring the
// peer read a clean EOF after a truncated stream (tens of KiB missing),
// on epoll it read everything. The peer's writes must still fail at once
// (TestAbortWithQueuedWrites/unix).
func TestUnixAbortiveCloseKeepsWrittenBytes(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, a, peer, err := d2Pair(task, "unix")
		if err != nil {
			return err
		}
		defer l.Close()
		defer peer.Close()
		buf := make([]byte, 4096)
		written := 0
		timedOut, err := asyncio.SkipAfter(task, 5*time.Millisecond, func(t *asyncio.Task) error {
			for {
				n, err := a.Write(t, buf)
				written += n
				if err != nil {
					return err
				}
			}
		})
		if err != nil || !timedOut {
			a.Close()
			return fmt.Errorf("filling: %v, %v", timedOut, err)
		}
		if err := unix.SetsockoptLinger(a.Fd(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
			a.Close()
			return err
		}
		if err := a.Close(); err != nil {
			return err
		}
		got := 0
		for {
			n, err := peer.Read(task, buf)
			got += n
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read after %d bytes: %v", got, err)
			}
		}
		if got != written {
			return fmt.Errorf("Unix socket closed with SO_LINGER 0: the peer read %d bytes then EOF, Write had returned for %d", got, written)
		}
		return nil
	})
}
