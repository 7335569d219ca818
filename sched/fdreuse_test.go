package sched

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCloseThenFdReuseInSamePass closes an FD while another task's send on
// it is prepared but not yet submitted, and reuses the descriptor number in
// the same loop pass. The send must never reach the new file.
func TestCloseThenFdReuseInSamePass(t *testing.T) {
	for _, name := range backends(t) {
		t.Run(name, func(t *testing.T) {
			err := Run(Config{Backend: name}, func(task *Task) error {
				a, b := socketPair(t, task.Loop())
				defer b.Close()
				var n2 [2]int
				var sendErr error
				var sendRes int32
				err := RunGroup(task, func(g *Group) error {
					g.Spawn(func(t *Task) error {
						op := t.Op(OpSend, a)
						op.Buf = []byte("for the old connection")
						sendRes, sendErr = t.Do(op)
						return nil
					})
					g.Spawn(func(t *Task) error {
						// Runs right after the sender trapped, in the same pass.
						old := a.Sysfd
						a.Close()
						fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
						if err != nil {
							return err
						}
						n2 = fds
						if fds[0] != old && fds[1] != old {
							return fmt.Errorf("descriptor %d not reused (got %v): the test cannot show anything", old, fds)
						}
						return nil
					})
					return nil
				})
				if err != nil {
					return err
				}
				defer unix.Close(n2[0])
				defer unix.Close(n2[1])
				// Nothing may have arrived on the new pair.
				buf := make([]byte, 64)
				for _, fd := range n2 {
					if n, _ := unix.Read(fd, buf); n > 0 {
						return fmt.Errorf("send on the closed FD reached the new file: %q", buf[:n])
					}
				}
				if sendErr != nil && !errors.Is(sendErr, net.ErrClosed) {
					return fmt.Errorf("send: %v", sendErr)
				}
				t.Logf("send res %d err %v", sendRes, sendErr)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
