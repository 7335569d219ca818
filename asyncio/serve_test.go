package asyncio_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"golang.org/x/sys/unix"
)

func TestServeEchoesAndStops(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		handled := 0
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			srv := g.Spawn(func(t *asyncio.Task) error {
				return asyncio.Serve(t, l, func(t *asyncio.Task, c *asyncio.Conn) {
					handled++
					buf := make([]byte, 100)
					n, err := c.Read(t, buf)
					if err == nil {
						c.Write(t, buf[:n])
					}
				})
			})
			for i := range 3 {
				c, err := asyncio.Dial(task, "tcp", l.Addr().String())
				if err != nil {
					return err
				}
				msg := fmt.Sprintf("hello %d", i)
				c.Write(task, []byte(msg))
				got, err := io.ReadAll(c.NetConn(task)) // Serve closes after the handler
				c.Close()
				if err != nil || string(got) != msg {
					return fmt.Errorf("got %q %v", got, err)
				}
			}
			// Closing the listener ends Serve without an error.
			l.Close()
			if err := srv.Wait(task); err != nil {
				return fmt.Errorf("Serve after Close: %v", err)
			}
			if handled != 3 {
				return fmt.Errorf("handled %d", handled)
			}
			return nil
		})
	})
}

// TestServeSurvivesEMFILE runs out of file descriptors while clients
// connect: Serve must pause and keep accepting once fds are free again.
func TestServeSurvivesEMFILE(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		logged.Reset()
		defer func() {
			if !strings.Contains(logged.String(), "too many open files") {
				t.Errorf("the retried accept error was not logged; log:\n%s", logged.String())
			}
		}()
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		// Connect a client first (its fd exists), then eat every free fd.
		client, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(client)
		var hog []int
		for {
			fd, err := syscall.Dup(0)
			if err != nil {
				break
			}
			hog = append(hog, fd)
		}
		release := func() {
			for _, fd := range hog {
				syscall.Close(fd)
			}
			hog = nil
		}
		defer release()
		addr := l.Addr().String()
		served := false
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error {
				return asyncio.Serve(t, l, func(t *asyncio.Task, c *asyncio.Conn) {
					served = true
					l.Close()
				})
			})
			sa := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
			fmt.Sscanf(addr[len("127.0.0.1:"):], "%d", &sa.Port)
			if err := syscall.Connect(client, sa); err != nil {
				return err
			}
			// Accept now fails with EMFILE; Serve must wait, not quit.
			if err := task.Sleep(30 * time.Millisecond); err != nil {
				return err
			}
			release()
			for range 200 {
				if served {
					return nil
				}
				if err := task.Sleep(5 * time.Millisecond); err != nil {
					return err
				}
			}
			return errors.New("connection never served after fds were freed")
		})
	})
}
