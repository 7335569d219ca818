package asyncio

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/corio-go/corio/sched"
	"golang.org/x/sys/unix"
)

// File is an open file whose reads and writes go through the loop: io_uring
// read/write operations on the io_uring backend (the task waits, the loop
// goes on), plain syscalls on the epoll backend (regular files are always
// "ready"; a slow disk then stalls the loop for the length of the call).
// Its methods must be called from tasks of the loop that opened it.
type File struct {
	fd   *sched.FD
	name string
}

// Open opens the named file with the os.OpenFile flags and permissions.
// The open itself is a plain syscall on the loop.
func Open(t *Task, name string, flag int, perm os.FileMode) (*File, error) {
	if err := t.Cancellation(); err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	fd, err := unix.Open(name, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return &File{fd: t.Loop().NewFD(fd), name: name}, nil
}

// Name returns the name given to Open.
func (f *File) Name() string { return f.name }

// Fd returns the file descriptor (owned by the File).
func (f *File) Fd() int { return f.fd.Sysfd }

func (f *File) io(t *Task, code sched.OpCode, name string, p []byte, off int64) (int, error) {
	op := t.Op(code, f.fd)
	op.Buf = p
	op.Off = off
	res, err := t.Do(op)
	if err == nil && res < 0 {
		err = syscall.Errno(-res)
	}
	if err != nil {
		return 0, f.pathError(name, err)
	}
	return int(res), nil
}

// pathError wraps err like os.File does. The loop reports operations on a
// closed descriptor as net.ErrClosed; for a file that is os.ErrClosed
// ("file already closed"), the sentinel users of os.File check for.
func (f *File) pathError(op string, err error) error {
	if err == net.ErrClosed {
		err = os.ErrClosed
	}
	return &os.PathError{Op: op, Path: f.name, Err: err}
}

// Read reads up to len(p) bytes at the file position; io.EOF at the end.
func (f *File) Read(t *Task, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.io(t, sched.OpRead, "read", p, -1)
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

// ReadAt reads len(p) bytes at offset off, like os.File.ReadAt: it returns
// an error (io.EOF at the end of the file) whenever n < len(p).
func (f *File) ReadAt(t *Task, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: f.name, Err: syscall.EINVAL}
	}
	n := 0
	for n < len(p) {
		m, err := f.io(t, sched.OpRead, "read", p[n:], off+int64(n))
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Write writes all of p at the file position.
func (f *File) Write(t *Task, p []byte) (int, error) {
	return f.writeAll(t, p, -1)
}

// WriteAt writes all of p at offset off.
func (f *File) WriteAt(t *Task, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "writeat", Path: f.name, Err: syscall.EINVAL}
	}
	return f.writeAll(t, p, off)
}

func (f *File) writeAll(t *Task, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		o := off
		if off >= 0 {
			o = off + int64(n)
		}
		m, err := f.io(t, sched.OpWrite, "write", p[n:], o)
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, &os.PathError{Op: "write", Path: f.name, Err: io.ErrShortWrite}
		}
		n += m
	}
	return n, nil
}

// Sync flushes the file to stable storage (fsync).
func (f *File) Sync(t *Task) error {
	_, err := f.io(t, sched.OpFsync, "sync", nil, 0)
	return err
}

// Close closes the file. A second Close returns an error wrapping
// os.ErrClosed, as do operations on a closed File.
func (f *File) Close() error {
	if err := f.fd.Close(); err != nil {
		return f.pathError("close", err)
	}
	return nil
}
