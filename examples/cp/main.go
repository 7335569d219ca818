// Command cp copies a file through corio's files: on the io_uring backend
// every read and write is an io_uring operation, several in flight at
// once; on the epoll backend they are plain pread/pwrite calls made by the
// loop (regular files are always "ready").
//
//	go run ./examples/cp SRC DST
//	go run ./examples/cp -workers 4 -chunk 1048576 -sync big.iso /tmp/copy.iso
//
// -workers tasks copy the file in -chunk byte pieces: each task takes the
// next offset, reads that chunk with ReadAt and writes it with WriteAt at
// the same offset, until one of them reads the end of the file. Then two
// more tasks read the source and the copy back in parallel and compare
// their sizes and SHA-256 sums (unless -verify=false). A new DST gets
// SRC's permission bits (less the umask), as with cp(1); DST may be a
// directory.
//
// Flags: -workers, -chunk, -sync (fsync the copy), -verify, -backend
// auto|uring|epoll. There is no -addr: cp does no networking. Ctrl-C
// cancels the copy (the partial destination is left as it is).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/corio-go/corio/asyncio"
)

func main() {
	workers := flag.Int("workers", 4, "chunks in flight at once")
	chunk := flag.Int("chunk", 256<<10, "chunk size in bytes")
	sync := flag.Bool("sync", false, "fsync the destination before verifying")
	verify := flag.Bool("verify", true, "compare sizes and SHA-256 of source and copy")
	backend := flag.String("backend", "auto", "I/O backend: auto, uring or epoll")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: cp [flags] SRC DST\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || *workers < 1 || *chunk < 1 {
		flag.Usage()
		os.Exit(2)
	}
	src, dst, perm, err := paths(flag.Arg(0), flag.Arg(1))
	if err != nil {
		slog.Error("cp", "err", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = asyncio.Run(func(t *asyncio.Task) error {
		start := t.Now()
		n, err := copyFile(t, src, dst, perm, *workers, *chunk, *sync)
		if err != nil {
			return err
		}
		d := t.Now().Sub(start)
		slog.Info("copied", "src", src, "dst", dst, "bytes", n, "elapsed", d.Round(time.Microsecond),
			"MiB/s", fmt.Sprintf("%.1f", float64(n)/(1<<20)/max(d.Seconds(), 1e-9)), "backend", asyncio.Backend(t))
		if !*verify {
			return nil
		}
		sum, size, err := verifyCopy(t, src, dst)
		if err != nil {
			return err
		}
		slog.Info("verified", "bytes", size, "sha256", hex.EncodeToString(sum))
		return nil
	}, asyncio.WithBackend(*backend), asyncio.WithContext(ctx))
	if err != nil {
		slog.Error("cp failed", "err", err)
		os.Exit(1)
	}
}

// paths resolves a directory destination to DST/base(SRC), refuses to
// copy a file onto itself (opening DST truncates it), and returns the
// source's permission bits, for a new DST (as cp(1) does; umask applies).
// It runs before the loop starts: plain blocking os calls are fine there.
func paths(src, dst string) (string, string, os.FileMode, error) {
	si, err := os.Stat(src)
	if err != nil {
		return "", "", 0, err
	}
	if si.IsDir() {
		return "", "", 0, fmt.Errorf("%s is a directory", src)
	}
	// cp copies by offset, which a FIFO or socket has not; and opening a
	// FIFO waits, loop and all, for its other end.
	const stream = os.ModeNamedPipe | os.ModeSocket
	if si.Mode()&stream != 0 {
		return "", "", 0, fmt.Errorf("%s is not a regular file (cp copies by offset)", src)
	}
	if di, err := os.Stat(dst); err == nil {
		if di.IsDir() {
			dst = filepath.Join(dst, filepath.Base(src))
			di, err = os.Stat(dst)
		}
		if err == nil && di.Mode()&stream != 0 {
			return "", "", 0, fmt.Errorf("%s is not a regular file (cp copies by offset)", dst)
		}
		if err == nil && os.SameFile(si, di) {
			return "", "", 0, fmt.Errorf("%s and %s are the same file", src, dst)
		}
	}
	return src, dst, si.Mode().Perm(), nil
}

// copyFile copies src to dst (truncated, or created with perm) with
// workers tasks, each reading and writing chunk bytes at a time at its own
// offsets, and returns the number of bytes copied.
func copyFile(t *asyncio.Task, src, dst string, perm os.FileMode, workers, chunk int, sync bool) (int64, error) {
	in, err := asyncio.Open(t, src, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := asyncio.Open(t, dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return 0, err
	}
	defer out.Close()

	// Shared by the workers without a lock: they all run on one loop, and
	// a task only ever stops at a blocking call.
	var (
		next int64 // the next chunk's offset
		size int64 // end of the furthest chunk written
		eof  bool  // a worker has read the end of the file
	)
	err = asyncio.Group(t, func(g *asyncio.TaskGroup) error {
		for range workers {
			g.Spawn(func(t *asyncio.Task) error {
				buf := make([]byte, chunk)
				for !eof {
					off := next
					next += int64(chunk)
					n, rerr := in.ReadAt(t, buf, off)
					if n > 0 {
						if _, err := out.WriteAt(t, buf[:n], off); err != nil {
							return err
						}
						size = max(size, off+int64(n))
					}
					if rerr == io.EOF {
						eof = true
					} else if rerr != nil {
						return rerr
					}
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return size, err
	}
	if sync {
		if err := out.Sync(t); err != nil {
			return size, err
		}
	}
	return size, nil
}

// verifyCopy hashes both files at once, in two tasks, and fails unless
// their sizes and SHA-256 sums are equal.
func verifyCopy(t *asyncio.Task, src, dst string) (sum []byte, size int64, err error) {
	type digest struct {
		sum  []byte
		size int64
	}
	var a, b digest
	err = asyncio.Group(t, func(g *asyncio.TaskGroup) error {
		fa := asyncio.Go(g, func(t *asyncio.Task) (digest, error) { s, n, err := hashFile(t, src); return digest{s, n}, err })
		fb := asyncio.Go(g, func(t *asyncio.Task) (digest, error) { s, n, err := hashFile(t, dst); return digest{s, n}, err })
		var err error
		if a, err = fa.Wait(t); err != nil {
			return err
		}
		b, err = fb.Wait(t)
		return err
	})
	switch {
	case err != nil:
		return nil, 0, err
	case a.size != b.size:
		return nil, 0, fmt.Errorf("verify: %s has %d bytes, %s has %d", src, a.size, dst, b.size)
	case !bytes.Equal(a.sum, b.sum):
		return nil, 0, fmt.Errorf("verify: SHA-256 differs: %s %x, %s %x", src, a.sum, dst, b.sum)
	}
	return a.sum, a.size, nil
}

// hashFile reads name sequentially and returns its SHA-256 and size.
func hashFile(t *asyncio.Task, name string) ([]byte, int64, error) {
	f, err := asyncio.Open(t, name, os.O_RDONLY, 0)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var size int64
	for {
		n, err := f.Read(t, buf)
		h.Write(buf[:n])
		size += int64(n)
		if err == io.EOF {
			return h.Sum(nil), size, nil
		}
		if err != nil {
			return nil, size, err
		}
	}
}
