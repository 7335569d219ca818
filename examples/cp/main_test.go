package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"github.com/corio-go/corio/examples/internal/servertest"
)

// inLoop runs fn as the main task of a loop on backend, bounded in time.
func inLoop(t *testing.T, backend string, fn func(t *asyncio.Task) error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- asyncio.Run(fn, asyncio.WithBackend(backend)) }()
	select {
	case err := <-done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("the loop did not finish")
	}
	return nil
}

func randomFile(t *testing.T, dir string, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	name := filepath.Join(dir, "src")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name, data
}

func TestCopy(t *testing.T) {
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			for _, tc := range []struct {
				name                 string
				size, workers, chunk int
			}{
				{"5MiB", 5 << 20, 4, 256 << 10},
				{"5MiB+odd tail", 5<<20 + 12345, 3, 64 << 10},
				{"smaller than a chunk", 1000, 4, 4096},
				{"empty", 0, 2, 4096},
				{"one worker", 300000, 1, 65536},
			} {
				t.Run(tc.name, func(t *testing.T) {
					dir := t.TempDir()
					src, data := randomFile(t, dir, tc.size)
					dst := filepath.Join(dir, "dst")
					// An existing, longer destination is truncated first.
					os.WriteFile(dst, bytes.Repeat([]byte("old"), tc.size/3+100), 0o644)
					var n, vsize int64
					var sum []byte
					err := inLoop(t, b, func(task *asyncio.Task) error {
						var err error
						if n, err = copyFile(task, src, dst, 0o644, tc.workers, tc.chunk, true); err != nil {
							return err
						}
						sum, vsize, err = verifyCopy(task, src, dst)
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
					got, err := os.ReadFile(dst)
					if err != nil {
						t.Fatal(err)
					}
					want := sha256.Sum256(data)
					if n != int64(tc.size) || vsize != int64(tc.size) || !bytes.Equal(got, data) || !bytes.Equal(sum, want[:]) {
						t.Fatalf("copied %d, verified %d, file %d bytes (equal %v), want %d", n, vsize, len(got), bytes.Equal(got, data), tc.size)
					}
				})
			}
		})
	}
}

func TestVerifyDetectsDifferences(t *testing.T) {
	dir := t.TempDir()
	src, data := randomFile(t, dir, 100000)
	other := filepath.Join(dir, "other")
	data[50000] ^= 1
	os.WriteFile(other, data, 0o644)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, data[:99999], 0o644)
	err := inLoop(t, "auto", func(task *asyncio.Task) error {
		if _, _, err := verifyCopy(task, src, other); err == nil || !strings.Contains(err.Error(), "SHA-256 differs") {
			t.Errorf("flipped bit: %v", err)
		}
		if _, _, err := verifyCopy(task, src, short); err == nil || !strings.Contains(err.Error(), "bytes") {
			t.Errorf("short copy: %v", err)
		}
		if _, err := copyFile(task, filepath.Join(dir, "missing"), other, 0o644, 2, 4096, false); !os.IsNotExist(err) {
			t.Errorf("missing source: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPaths(t *testing.T) {
	dir := t.TempDir()
	src, _ := randomFile(t, dir, 10)
	if _, _, _, err := paths(src, src); err == nil || !strings.Contains(err.Error(), "same file") {
		t.Errorf("same file: %v", err)
	}
	if _, _, _, err := paths(src, dir); err == nil || !strings.Contains(err.Error(), "same file") {
		t.Errorf("directory holding the source: %v", err)
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	os.Chmod(src, 0o750)
	if _, d, perm, err := paths(src, sub); err != nil || d != filepath.Join(sub, "src") || perm != 0o750 {
		t.Errorf("into a directory: %q %v %v", d, perm, err)
	}
	if _, _, _, err := paths(dir, sub); err == nil {
		t.Error("a directory as source was accepted")
	}
	// A FIFO either way is refused before anything opens it (opening one
	// waited, loop and all, for its other end; Ctrl-C could not stop it).
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := paths(fifo, filepath.Join(dir, "out")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO as source: %v", err)
	}
	if _, _, _, err := paths(src, fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO as destination: %v", err)
	}
}

// TestCommand runs the real command on a 32 MiB file with an odd tail:
// exit status 0, an identical copy with the source's mode, the SHA-256 in
// the log; and exit status 1 with the reason for a missing source.
func TestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("32 MiB copies skipped in -short mode")
	}
	exe := servertest.Build(t)
	dir := t.TempDir()
	src, data := randomFile(t, dir, 32<<20+4321)
	os.Chmod(src, 0o640)
	sum := sha256.Sum256(data)
	for _, b := range servertest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			dst := filepath.Join(dir, "copy-"+b)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, exe, "-backend", b, src, dst).CombinedOutput()
			if err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			got, err := os.ReadFile(dst)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("copy differs (%v)", err)
			}
			if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm()&^0o022 != 0o640 {
				t.Errorf("mode of the copy: %v %v", fi.Mode(), err)
			}
			if !strings.Contains(string(out), "backend="+b) || !strings.Contains(string(out), "sha256="+hex.EncodeToString(sum[:])) {
				t.Errorf("log:\n%s", out)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, filepath.Join(dir, "missing"), filepath.Join(dir, "x")).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "no such file or directory") {
		t.Fatalf("missing source: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Errorf("a destination was created for a missing source: %v", err)
	}
}
