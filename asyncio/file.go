package asyncio

import (
	"errors"
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
	fd     *sched.FD
	name   string
	append bool // O_APPEND: WriteAt is refused, as by os.File
	stream bool // no offsets (lseek says ESPIPE: a FIFO, a socket): no ReadAt/WriteAt
}

// errWriteAtInAppendMode is os.File's error for WriteAt with O_APPEND (where
// the kernel would append, whatever the offset).
var errWriteAtInAppendMode = errors.New("os: invalid use of WriteAt on file opened with O_APPEND")

// Open opens the named file with the os.OpenFile flags and permissions.
// The open itself is a plain syscall on the loop (so opening a FIFO waits,
// loop and all, for its other end, unless flag has O_NONBLOCK).
func Open(t *Task, name string, flag int, perm os.FileMode) (*File, error) {
	if err := t.Cancellation(); err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	fd, err := unix.Open(name, flag|unix.O_CLOEXEC, syscallMode(perm))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	f := &File{name: name, append: flag&os.O_APPEND != 0}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && t.Loop().NonblockingFDs() {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR:
			// The epoll backend waits for readiness only on EAGAIN: a
			// blocking read of an empty FIFO would stall the loop.
			unix.SetNonblock(fd, true)
		}
	}
	if _, err := unix.Seek(fd, 0, io.SeekCurrent); err == unix.ESPIPE {
		f.stream = true
	}
	f.fd = t.Loop().NewFD(fd)
	return f, nil
}

// syscallMode is os's conversion of a FileMode for open(2): the permission
// bits and setuid, setgid and sticky.
func syscallMode(m os.FileMode) uint32 {
	o := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		o |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		o |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		o |= unix.S_ISVTX
	}
	return o
}

// usable checks what every File method checks first, whatever the length
// of its buffer: that the File is open, and for ReadAt and WriteAt (at),
// that it has offsets (io_uring would read or write a stream at its
// position, ignoring the offset, where pread and os.File fail).
func (f *File) usable(op string, at bool) error {
	if f.fd.Closed() {
		return f.pathError(op, net.ErrClosed)
	}
	if at && f.stream {
		return f.pathError(op, syscall.ESPIPE)
	}
	return nil
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
	if err := f.usable("read", false); err != nil || len(p) == 0 {
		return 0, err
	}
	n, err := f.io(t, sched.OpRead, "read", p, -1)
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

// ReadAt reads len(p) bytes at offset off, like os.File.ReadAt: it returns
// an error (io.EOF at the end of the file) whenever n < len(p), and ESPIPE
// on a file without offsets (a FIFO, say).
func (f *File) ReadAt(t *Task, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: f.name, Err: syscall.EINVAL}
	}
	if err := f.usable("read", true); err != nil {
		return 0, err
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

// WriteAt writes all of p at offset off. Like os.File's, it fails on a
// file opened with O_APPEND, and on one without offsets (ESPIPE).
func (f *File) WriteAt(t *Task, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "writeat", Path: f.name, Err: syscall.EINVAL}
	}
	if f.append {
		return 0, &os.PathError{Op: "writeat", Path: f.name, Err: errWriteAtInAppendMode}
	}
	return f.writeAll(t, p, off)
}

func (f *File) writeAll(t *Task, p []byte, off int64) (int, error) {
	if err := f.usable("write", off >= 0); err != nil {
		return 0, err
	}
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
