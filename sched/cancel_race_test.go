package sched

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

func socketPair(t *testing.T, l *Loop) (*FD, *FD) {
	t.Helper()
	typ := unix.SOCK_STREAM | unix.SOCK_CLOEXEC
	if l.NonblockingFDs() {
		typ |= unix.SOCK_NONBLOCK
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
	if err != nil {
		t.Fatal(err)
	}
	return l.NewFD(fds[0]), l.NewFD(fds[1])
}

func recvOnce(t *Task, fd *FD, buf []byte) (int, error) {
	op := t.Op(OpRecv, fd)
	op.Buf = buf
	res, err := t.Do(op)
	if err != nil {
		return 0, err
	}
	if res < 0 {
		return 0, unix.Errno(-res)
	}
	return int(res), nil
}

// TestCancelRacingCompletion lets data arrive for a pending recv and cancels
// the recv in the same loop iteration, many times. Whichever wins — the
// completion (the data is delivered) or the cancellation (the data stays in
// the socket) — nothing may be lost or duplicated, and the loop must see
// both outcomes' results through the same path.
func TestCancelRacingCompletion(t *testing.T) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			var delivered, cancelled int
			err := Run(Config{Backend: name}, func(task *Task) error {
				a, b := socketPair(t, task.Loop())
				defer a.Close()
				defer b.Close()
				var sent, got bytes.Buffer
				for i := range 300 {
					msg := []byte(fmt.Sprintf("<%d>", i))
					err := RunGroup(task, func(g *Group) error {
						h := g.Spawn(func(t *Task) error {
							buf := make([]byte, 64)
							n, err := recvOnce(t, a, buf)
							got.Write(buf[:n])
							if err != nil {
								if !errors.Is(err, context.Canceled) || n != 0 {
									return fmt.Errorf("recv: n=%d err=%v", n, err)
								}
								cancelled++
							} else {
								delivered++
							}
							return nil
						})
						// Let the recv trap, then let the loop submit it (on
						// io_uring it is then armed in the kernel); then send
						// and cancel back to back.
						for range 2 {
							if err := task.Checkpoint(); err != nil {
								return err
							}
						}
						// A plain write, not a trap: the cancel below then
						// races the data's arrival in the kernel itself.
						if _, err := unix.Write(b.Sysfd, msg); err != nil {
							return err
						}
						sent.Write(msg)
						if i%2 == 0 {
							// Give the completion a head start.
							task.Checkpoint()
						}
						h.Cancel()
						return nil
					})
					if err != nil {
						return err
					}
					// A cancelled recv left its message in the socket:
					// read it now so that every round starts empty.
					for got.Len() < sent.Len() {
						buf := make([]byte, 64)
						n, err := recvOnce(task, a, buf)
						if err != nil {
							return err
						}
						got.Write(buf[:n])
					}
				}
				// Nothing may be left over either.
				for got.Len() < sent.Len() {
					buf := make([]byte, 4096)
					n, err := recvOnce(task, a, buf)
					if err != nil {
						return err
					}
					got.Write(buf[:n])
				}
				if !bytes.Equal(got.Bytes(), sent.Bytes()) {
					return fmt.Errorf("stream differs:\n got %q\nwant %q", got.Bytes(), sent.Bytes())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d recvs completed before their cancel, %d cancelled", name, delivered, cancelled)
		})
	}
}

// TestCancelledAcceptDoesNotLeak cancels accepts while connections arrive;
// an fd the kernel accepted for a cancelled accept must be closed.
func TestCancelledAcceptDoesNotLeak(t *testing.T) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			before := countFDs(t)
			err := Run(Config{Backend: name}, func(task *Task) error {
				typ := unix.SOCK_STREAM | unix.SOCK_CLOEXEC
				if task.Loop().NonblockingFDs() {
					typ |= unix.SOCK_NONBLOCK
				}
				ls, err := unix.Socket(unix.AF_INET, typ, 0)
				if err != nil {
					return err
				}
				unix.Bind(ls, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
				unix.Listen(ls, 128)
				sa, _ := unix.Getsockname(ls)
				lfd := task.Loop().NewFD(ls)
				defer lfd.Close()
				var accepted []int
				for range 50 {
					err := RunGroup(task, func(g *Group) error {
						h := g.Spawn(func(t *Task) error {
							op := t.Op(OpAccept, lfd)
							res, err := t.Do(op)
							if err == nil && res >= 0 {
								accepted = append(accepted, int(res))
							}
							return nil
						})
						task.Checkpoint()
						c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
						if err != nil {
							return err
						}
						defer unix.Close(c)
						unix.Connect(c, sa)
						h.Cancel()
						return nil
					})
					if err != nil {
						return err
					}
				}
				for _, fd := range accepted {
					unix.Close(fd)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if after := countFDs(t); after != before {
				t.Fatalf("fd leak: %d before, %d after", before, after)
			}
		})
	}
}
