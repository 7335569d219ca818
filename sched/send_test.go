package sched

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pingPong runs rounds request/response exchanges of msg between a client
// task and an echo task over a socket pair, both writing with Send, and
// returns the loop's Resumes per round.
func pingPong(t *testing.T, cfg Config, rounds int) (resumesPerRound float64, allocsPerRound float64) {
	t.Helper()
	err := Run(cfg, func(task *Task) error {
		a, b := socketPair(t, task.Loop())
		defer a.Close()
		defer b.Close()
		g := task.Loop()
		msg := bytes.Repeat([]byte("x"), 64)
		return RunGroup(task, func(grp *Group) error {
			grp.Spawn(func(task *Task) error {
				buf := make([]byte, 4096)
				for {
					n, err := recvOnce(task, b, buf)
					if err != nil || n == 0 {
						return err
					}
					if _, res, err := task.Send(b, buf[:n]); err != nil || res < 0 {
						return fmt.Errorf("echo send: %d, %v", res, err)
					}
				}
			})
			buf := make([]byte, 4096)
			round := func() {
				if _, res, err := task.Send(a, msg); err != nil || res < 0 {
					t.Errorf("send: %d, %v", res, err)
				}
				got := 0
				for got < len(msg) {
					n, err := recvOnce(task, a, buf)
					if err != nil || n == 0 {
						t.Errorf("recv: %d, %v", n, err)
						return
					}
					got += n
				}
			}
			for range 100 {
				round() // warm up: buffers, in-flight table, pools
			}
			before := g.Stats().Resumes
			for range rounds {
				round()
			}
			resumesPerRound = float64(g.Stats().Resumes-before) / float64(rounds)
			allocsPerRound = testing.AllocsPerRun(rounds, round)
			return unix.Shutdown(a.Sysfd, unix.SHUT_WR)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return resumesPerRound, allocsPerRound
}

// On io_uring a request/response round costs each side one trap (its
// read): the write does not wait for its completion. With NoWriteBehind
// every write is a trap of its own too. Neither allocates.
func TestWriteBehindSavesATrapPerWrite(t *testing.T) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			wb, wbAllocs := pingPong(t, Config{Backend: name}, 2000)
			sync, syncAllocs := pingPong(t, Config{Backend: name, NoWriteBehind: true}, 2000)
			t.Logf("resumes per round trip: %.2f with write-behind, %.2f without", wb, sync)
			if wbAllocs != 0 || syncAllocs != 0 {
				t.Errorf("allocs per round trip: %v with write-behind, %v without; want 0", wbAllocs, syncAllocs)
			}
			if name != BackendUring {
				return // epoll sends complete inline: no trap either way
			}
			if wb > 2.2 {
				t.Errorf("write-behind: %.2f resumes per round trip, want about 2 (one read per side)", wb)
			}
			if sync < 3.8 {
				t.Errorf("NoWriteBehind: %.2f resumes per round trip, want about 4 (a read and a write per side)", sync)
			}
		})
	}
}

// fillThenClose fills a socket pair's buffers and a's write-behind queue
// (the peer b never reads), closes a, and checks that its descriptor
// stayed open for the queued bytes.
func fillThenClose(t *testing.T, task *Task) (a, b *FD, err error) {
	a, b = socketPair(t, task.Loop())
	chunk := make([]byte, 8<<10)
	for {
		s := task.EnterScope(task.Now().Add(50e6), false)
		_, res, err := task.Send(a, chunk)
		task.ExitScope(s)
		if err != nil || res < 0 {
			break
		}
	}
	if !a.sq.pending() {
		return a, b, fmt.Errorf("nothing queued after filling the socket")
	}
	a.Close()
	if !a.sq.closing {
		return a, b, fmt.Errorf("Close did not linger")
	}
	// The number must still be open: the kernel may still read it.
	if _, err := unix.FcntlInt(uintptr(a.Sysfd), unix.F_GETFD, 0); err != nil {
		return a, b, fmt.Errorf("descriptor closed while bytes were queued: %v", err)
	}
	return a, b, nil
}

// Close with write-behind bytes still queued leaves the descriptor open
// until they are sent; if the loop ends first (the peer never reads), the
// descriptor is closed at teardown, exactly once.
func TestLingeringCloseIsClosedAtTeardown(t *testing.T) {
	if !UringCompiledIn {
		t.Skip("io_uring compiled out")
	}
	var a, b *FD
	err := Run(Config{Backend: BackendUring}, func(task *Task) (err error) {
		a, b, err = fillThenClose(t, task)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(a.Sysfd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("descriptor %d still open after Run: %v", a.Sysfd, err)
	}
	unix.Close(b.Sysfd)
}

// A closed FD whose peer never reads does not keep its descriptor for
// ever: after closeLinger the send is cancelled and the descriptor closed,
// while the loop runs on.
func TestLingerExpires(t *testing.T) {
	if !UringCompiledIn {
		t.Skip("io_uring compiled out")
	}
	defer func(d time.Duration) { closeLinger = d }(closeLinger)
	closeLinger = 50 * time.Millisecond
	err := Run(Config{Backend: BackendUring}, func(task *Task) error {
		a, b, err := fillThenClose(t, task)
		defer b.Close()
		if err != nil {
			return err
		}
		if err := task.Sleep(300 * time.Millisecond); err != nil {
			return err
		}
		if _, err := unix.FcntlInt(uintptr(a.Sysfd), unix.F_GETFD, 0); err != unix.EBADF {
			return fmt.Errorf("descriptor %d still open %v after Close: %v", a.Sysfd, 300*time.Millisecond, err)
		}
		if n := task.Loop().sendsLive; n != 0 {
			return fmt.Errorf("%d write-behind sends still in flight", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The io_uring backend polls before a recv on a socket its last recv
// drained (IORING_RECVSEND_POLL_FIRST): the hint follows what the recvs
// saw, and data that arrives later is still received.
func TestRecvDrainedHint(t *testing.T) {
	if !UringCompiledIn {
		t.Skip("io_uring compiled out")
	}
	err := Run(Config{Backend: BackendUring}, func(task *Task) error {
		a, b := socketPair(t, task.Loop())
		defer a.Close()
		defer b.Close()
		if _, res, err := task.Send(a, []byte("0123456789")); err != nil || res < 0 {
			return fmt.Errorf("send: %d, %v", res, err)
		}
		buf := make([]byte, 4)
		if n, err := recvOnce(task, b, buf); err != nil || n != 4 {
			return fmt.Errorf("recv: %d, %v", n, err)
		}
		if b.drained {
			return fmt.Errorf("a full read marked the socket drained")
		}
		buf = make([]byte, 64)
		if n, err := recvOnce(task, b, buf); err != nil || n != 6 {
			return fmt.Errorf("recv: %d, %v", n, err)
		}
		if !b.drained {
			return fmt.Errorf("a short read did not mark the socket drained")
		}
		// The next recv polls first; the data sent while it waits arrives.
		return RunGroup(task, func(g *Group) error {
			g.Spawn(func(task *Task) error {
				if err := task.Sleep(5e6); err != nil {
					return err
				}
				_, res, err := task.Send(a, []byte("later"))
				if err == nil && res < 0 {
					err = unix.Errno(-res)
				}
				return err
			})
			n, err := recvOnce(task, b, buf)
			if err != nil || string(buf[:n]) != "later" {
				return fmt.Errorf("recv after poll: %q, %v", buf[:n], err)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Small writes in flight on many connections at once (a broadcast) hold a
// small buffer each, not a 16 KiB one; bytes written behind a send in flight
// go in order in a buffer of their own.
func TestSendBuffersFitTheWrite(t *testing.T) {
	if !UringCompiledIn {
		t.Skip("io_uring compiled out")
	}
	err := Run(Config{Backend: BackendUring}, func(task *Task) error {
		const conns = 300
		msg := bytes.Repeat([]byte("m"), 100)
		var pairs [][2]*FD
		defer func() {
			for _, p := range pairs {
				p[0].Close()
				p[1].Close()
			}
		}()
		for range conns {
			a, b := socketPair(t, task.Loop())
			pairs = append(pairs, [2]*FD{a, b})
			if _, res, err := task.Send(a, msg); err != nil || res < 0 {
				return fmt.Errorf("send: %d, %v", res, err)
			}
			if c := cap(a.sq.buf); c != 256 {
				return fmt.Errorf("a 100-byte write took a %d-byte buffer", c)
			}
		}
		// Behind a send in flight: 3000 bytes, then the peer reads all.
		a, b := pairs[0][0], pairs[0][1]
		big := bytes.Repeat([]byte("0123456789"), 300)
		if _, res, err := task.Send(a, big); err != nil || res < 0 {
			return fmt.Errorf("send: %d, %v", res, err)
		}
		if c := cap(a.sq.next); c < len(big) {
			return fmt.Errorf("bytes behind the send in flight took a %d-byte buffer", c)
		}
		if res, err := task.Flush(a); err != nil || res < 0 {
			return fmt.Errorf("flush: %d, %v", res, err)
		}
		want := append(append([]byte(nil), msg...), big...)
		got := make([]byte, 0, len(want))
		buf := make([]byte, 4096)
		for len(got) < len(want) {
			n, err := recvOnce(task, b, buf)
			if err != nil || n == 0 {
				return fmt.Errorf("recv: %d, %v", n, err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("peer read %q..., want %q...", got[:20], want[:20])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A Send that has to wait for room in the middle of its bytes keeps the
// write side: a task that runs while it waits (here, one that was already
// ready when room appeared) queues its bytes behind, never between.
func TestWaitingSendIsNotSplit(t *testing.T) {
	if !UringCompiledIn {
		t.Skip("io_uring compiled out")
	}
	err := Run(Config{Backend: BackendUring}, func(task *Task) error {
		a, b := socketPair(t, task.Loop())
		defer b.Close()
		yWaiting := false
		err := RunGroup(task, func(g *Group) error {
			g.Spawn(func(task *Task) error { // Z: writes while Y waits for room
				for i := 0; !yWaiting || a.writeQ.Len() != 0; i++ {
					if i > 100000 {
						return fmt.Errorf("Y never waited")
					}
					if err := task.Checkpoint(); err != nil {
						return err
					}
				}
				_, res, err := task.Send(a, bytes.Repeat([]byte("Z"), 1000))
				if err != nil || res < 0 {
					return fmt.Errorf("Z: %d, %v", res, err)
				}
				return nil
			})
			g.Spawn(func(task *Task) error { // Y
				task.Send(a, bytes.Repeat([]byte("A"), 100))  // in flight
				task.Send(a, bytes.Repeat([]byte("B"), 2000)) // queued behind it
				yWaiting = true
				_, res, err := task.Send(a, bytes.Repeat([]byte("Y"), 1000)) // waits for room
				if err != nil || res < 0 {
					return fmt.Errorf("Y: %d, %v", res, err)
				}
				return nil
			})
			return nil
		})
		if err != nil {
			return err
		}
		if res, err := task.Flush(a); err != nil || res < 0 {
			return fmt.Errorf("flush: %d, %v", res, err)
		}
		a.Close()
		var got []byte
		buf := make([]byte, 8192)
		for {
			n, err := recvOnce(task, b, buf)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			got = append(got, buf[:n]...)
		}
		var runs []string
		for i := 0; i < len(got); {
			j := i
			for j < len(got) && got[j] == got[i] {
				j++
			}
			runs = append(runs, fmt.Sprintf("%c×%d", got[i], j-i))
			i = j
		}
		if len(runs) != 4 {
			return fmt.Errorf("a Send was split by another task's Send: %v", runs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Flush on a closed FD returns net.ErrClosed at once, as Send does, even
// while its bytes linger.
func TestFlushAfterClose(t *testing.T) {
	if !UringCompiledIn {
		t.Skip("io_uring compiled out")
	}
	err := Run(Config{Backend: BackendUring}, func(task *Task) error {
		a, b, err := fillThenClose(t, task)
		defer b.Close()
		if err != nil {
			return err
		}
		began := time.Now()
		if res, err := task.Flush(a); !errors.Is(err, net.ErrClosed) || res != 0 {
			return fmt.Errorf("flush after close: %d, %v; want net.ErrClosed", res, err)
		}
		if _, _, err := task.Send(a, []byte("x")); !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("send after close: %v; want net.ErrClosed", err)
		}
		if d := time.Since(began); d > time.Second {
			return fmt.Errorf("flush after close took %v", d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
