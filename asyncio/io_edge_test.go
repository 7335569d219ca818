package asyncio_test

// Edge cases of files, UDP and Unix sockets, each on both backends, held to
// what os.File, net.UDPConn and net.UnixListener do; each test failed
// before its fix (found in a review).

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// os.File.Read/Write with an empty buffer on a closed file return
// os.ErrClosed (checkValid runs first); Conn.Read does the same here.
func TestIOZeroLengthOnClosedFile(t *testing.T) {
	dir := t.TempDir()
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		f, err := asyncio.Open(task, filepath.Join(dir, asyncio.Backend(task)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		f.Close()
		if _, err := f.Read(task, nil); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read(nil) on closed File: err=%v, want os.ErrClosed", err)
		}
		if _, err := f.Write(task, nil); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Write(nil) on closed File: err=%v, want os.ErrClosed", err)
		}
		if _, err := f.ReadAt(task, nil, 0); !errors.Is(err, os.ErrClosed) {
			t.Errorf("ReadAt(nil) on closed File: err=%v, want os.ErrClosed", err)
		}
		return nil
	})
}

// WriteAt on an O_APPEND file fails, as os.File.WriteAt does: pwrite(2) and
// io_uring would ignore the offset and append. (It appended.)
func TestIOWriteAtOnAppendFile(t *testing.T) {
	dir := t.TempDir()
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		name := filepath.Join(dir, asyncio.Backend(task))
		os.WriteFile(name, []byte("0123456789"), 0o600)
		f, err := asyncio.Open(task, name, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := f.WriteAt(task, []byte("XY"), 2)
		b, _ := os.ReadFile(name)
		if err == nil && string(b) != "01XY456789" {
			t.Errorf("WriteAt(off=2) on O_APPEND file returned n=%d err=nil but file is %q (os.File.WriteAt returns an error)", n, b)
		}
		return nil
	})
}

// A FIFO read must not block the loop: another task writes to it. (On
// epoll the FIFO was blocking, and its read stalled the loop for good.)
func TestIOFIFO(t *testing.T) {
	dir := t.TempDir()
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			fifo := filepath.Join(dir, "fifo-"+b)
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skip(err)
			}
			done := make(chan error, 1)
			go func() {
				done <- asyncio.Run(func(task *asyncio.Task) error {
					f, err := asyncio.Open(task, fifo, os.O_RDWR, 0)
					if err != nil {
						return err
					}
					defer f.Close()
					return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
						g.Spawn(func(t *asyncio.Task) error {
							buf := make([]byte, 16)
							n, err := f.Read(t, buf)
							if err != nil || string(buf[:n]) != "ping" {
								return fmt.Errorf("fifo read: %q %v", buf[:n], err)
							}
							return nil
						})
						g.Spawn(func(t *asyncio.Task) error {
							if err := t.Sleep(20 * time.Millisecond); err != nil {
								return err
							}
							_, err := f.Write(t, []byte("ping"))
							return err
						})
						return nil
					})
				}, asyncio.WithBackend(b))
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(3 * time.Second):
				// Unblock the loop thread so the goroutine ends.
				w, _ := os.OpenFile(fifo, os.O_WRONLY, 0)
				w.Write([]byte("ping"))
				w.Close()
				<-done
				t.Fatalf("backend %s: a FIFO read blocked the whole loop (the writer task never ran)", b)
			}
		})
	}
}

// WriteTo with a typed nil *net.UDPAddr fails ("missing address"), as
// net.UDPConn's does. (It panicked.)
func TestIOUDPWriteToTypedNilAddr(t *testing.T) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		b, err := asyncio.ListenPacket(task, "udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer b.Close()
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("WriteTo with (*net.UDPAddr)(nil) panicked: %v (net.UDPConn returns an error)", r)
			}
		}()
		if _, err := b.WriteTo(task, []byte("x"), (*net.UDPAddr)(nil)); err == nil {
			t.Errorf("typed nil addr accepted")
		}
		return nil
	})
}

// linkLocal returns an interface with an IPv6 link-local address.
func reviewLinkLocal() (*net.Interface, net.IP) {
	ifs, _ := net.Interfaces()
	for i := range ifs {
		addrs, _ := ifs[i].Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
				return &ifs[i], ipn.IP
			}
		}
	}
	return nil, nil
}

// A numeric zone ("%2") is the interface index, as Go's net takes it. (It
// was ignored, so a link-local bind failed.)
func TestIOUDPNumericZone(t *testing.T) {
	ifi, ip := reviewLinkLocal()
	if ifi == nil {
		t.Skip("no IPv6 link-local address")
	}
	addr := fmt.Sprintf("[%s%%%d]:0", ip, ifi.Index)
	ref, err := net.ListenPacket("udp6", addr)
	if err != nil {
		t.Skipf("net.ListenPacket(%s): %v", addr, err)
	}
	ref.Close()
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		p, err := asyncio.ListenPacket(task, "udp6", addr)
		if err != nil {
			t.Errorf("ListenPacket(udp6, %s): %v (net.ListenPacket accepts it)", addr, err)
			return nil
		}
		defer p.Close()
		// Named zone works; numeric zone on WriteTo:
		q, err := asyncio.ListenPacket(task, "udp6", fmt.Sprintf("[%s%%%s]:0", ip, ifi.Name))
		if err != nil {
			return err
		}
		defer q.Close()
		dst := &net.UDPAddr{IP: ip, Port: q.LocalAddr().(*net.UDPAddr).Port, Zone: fmt.Sprint(ifi.Index)}
		if _, err := p.WriteTo(task, []byte("z"), dst); err != nil {
			t.Errorf("WriteTo %v: %v", dst, err)
		}
		return nil
	})
}

// An abstract name of 108 bytes ("@" + 107) needs no NUL terminator and
// fits sun_path, as net.Listen accepts. (It was refused.)
func TestIOUnixAbstract108(t *testing.T) {
	abs := "@" + strings.Repeat("a", 107)
	nl, err := net.Listen("unix", abs)
	if err != nil {
		t.Skipf("net.Listen: %v", err)
	}
	nl.Close()
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "unix", abs)
		if err != nil {
			t.Errorf("Listen(unix, 108-byte abstract): %v; net.Listen accepts it", err)
			return nil
		}
		return l.Close()
	})
}

// Listen("unix", "") autobinds a fresh abstract address each time, as
// net.Listen does. (It bound one fixed name.)
func TestIOUnixEmptyPathAutobind(t *testing.T) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		a, err := asyncio.Listen(task, "unix", "")
		if err != nil {
			t.Errorf("first Listen(unix, \"\"): %v", err)
			return nil
		}
		defer a.Close()
		b, err := asyncio.Listen(task, "unix", "")
		if err != nil {
			t.Errorf("second Listen(unix, \"\"): %v (net.Listen autobinds a fresh address each time); first Addr()=%q", err, a.Addr())
			return nil
		}
		b.Close()
		return nil
	})
}

// Open passes the permission bits like os.OpenFile (setuid/setgid/sticky too).
func TestIOOpenModeBits(t *testing.T) {
	dir := t.TempDir()
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		name := filepath.Join(dir, asyncio.Backend(task))
		f, err := asyncio.Open(task, name, os.O_CREATE|os.O_RDWR, 0o755|os.ModeSetuid)
		if err != nil {
			return err
		}
		f.Close()
		if st, _ := os.Stat(name); st.Mode()&os.ModeSetuid == 0 {
			t.Errorf("mode %v: setuid bit dropped (os.OpenFile keeps it)", st.Mode())
		}
		return nil
	})
}

// A UDPAddr without an IP: net.UDPConn sends to the unspecified address
// (the local host).
func TestIOUDPWriteToNilIP(t *testing.T) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		a, err := asyncio.ListenPacket(task, "udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer a.Close()
		b, err := asyncio.ListenPacket(task, "udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer b.Close()
		if _, err := a.WriteTo(task, []byte("x"), &net.UDPAddr{Port: b.LocalAddr().(*net.UDPAddr).Port}); err != nil {
			t.Errorf("WriteTo UDPAddr without IP: %v (net.UDPConn sends to the local host)", err)
		}
		return nil
	})
}

// ReadAt/WriteAt on a FIFO fail with ESPIPE, as pread/pwrite and os.File
// do. (On io_uring they read and wrote the stream, ignoring the offset.)
func TestIOPositionalIOOnFIFO(t *testing.T) {
	dir := t.TempDir()
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		fifo := filepath.Join(dir, "f"+asyncio.Backend(task))
		syscall.Mkfifo(fifo, 0o600)
		f, err := asyncio.Open(task, fifo, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := f.WriteAt(task, []byte("abcd"), 100)
		if !errors.Is(err, syscall.ESPIPE) {
			t.Errorf("WriteAt(off=100) on a FIFO: n=%d err=%v, want ESPIPE like os.File", n, err)
		}
		if err == nil {
			buf := make([]byte, 2)
			n, err := f.ReadAt(task, buf, 100)
			t.Errorf("ReadAt(off=100) on a FIFO: n=%d %q err=%v, want ESPIPE like os.File", n, buf[:n], err)
		}
		return nil
	})
}
