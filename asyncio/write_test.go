package asyncio_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// Write semantics that hold on every backend, whether Write waits for the
// kernel (epoll, WithSyncWrites) or returns once its bytes are queued in the
// loop's send buffer (io_uring's write-behind).

// conformPair runs fn on every backend (conform) with the two ends of a
// fresh loopback TCP connection, closing both afterwards (a second Close
// is harmless).
func conformPair(t *testing.T, fn func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error, opts ...asyncio.Option) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		c, s, err := tcpPair(task)
		if err != nil {
			return err
		}
		defer c.Close()
		defer s.Close()
		return fn(t, task, c, s)
	}, opts...)
}

// readAllChecked reads c to EOF and checks every byte against pattern.
func readAllChecked(task *asyncio.Task, c *asyncio.Conn, want int) error {
	got := 0
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(task, buf)
		for i := range n {
			if buf[i] != pattern(got+i) {
				return fmt.Errorf("byte %d is %d, want %d", got+i, buf[i], pattern(got+i))
			}
		}
		got += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read after %d bytes: %w", got, err)
		}
	}
	if got != want {
		return fmt.Errorf("read %d bytes, want %d", got, want)
	}
	return nil
}

// writeSizes writes total pattern bytes to c in writes of random sizes
// (from 1 byte to 40 KiB: both buffered and direct sends).
func writeSizes(task *asyncio.Task, c *asyncio.Conn, total int, seed int64) error {
	data := make([]byte, total)
	for i := range data {
		data[i] = pattern(i)
	}
	r := rand.New(rand.NewSource(seed))
	for sent := 0; sent < total; {
		end := min(sent+1+r.Intn(40<<10), total)
		if r.Intn(4) == 0 {
			end = min(sent+1+r.Intn(100), total)
		}
		n, err := c.Write(task, data[sent:end])
		if err != nil {
			return err
		}
		if n != end-sent {
			return fmt.Errorf("write returned %d of %d without an error", n, end-sent)
		}
		sent = end
	}
	return nil
}

func TestWritesArriveInOrder(t *testing.T) {
	for _, opts := range [][]asyncio.Option{nil, {asyncio.WithSyncWrites()}} {
		conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
			const total = 4 << 20
			return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
				g.Spawn(func(task *asyncio.Task) error {
					if err := writeSizes(task, s, total, 1); err != nil {
						return err
					}
					if err := s.Flush(task); err != nil {
						return fmt.Errorf("flush: %w", err)
					}
					return s.CloseWrite()
				})
				return readAllChecked(task, c, total)
			})
		}, opts...)
	}
}

// Two tasks writing whole messages to one connection: each Write's bytes
// arrive together, never interleaved with the other task's, whether the
// messages are buffered (1000 B) or sent directly and cut short by a full
// socket (100 KiB, read slowly).
func TestConcurrentWritersDoNotInterleave(t *testing.T) {
	for _, tc := range []struct{ msgs, size int }{{2000, 1000}, {40, 100 << 10}} {
		conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
			msgs, size := tc.msgs, tc.size
			return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
				done := 0
				for w := byte('a'); w <= 'b'; w++ {
					g.Spawn(func(task *asyncio.Task) error {
						msg := make([]byte, size)
						for i := range msg {
							msg[i] = w
						}
						for range msgs {
							if _, err := s.Write(task, msg); err != nil {
								return err
							}
						}
						if done++; done == 2 {
							return s.CloseWrite()
						}
						return nil
					})
				}
				var all []byte
				buf := make([]byte, 8<<10)
				for {
					n, err := c.Read(task, buf)
					all = append(all, buf[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						return err
					}
					if size > 1<<16 && len(all)%(256<<10) < n {
						// A slow reader now and then: the writers' sends
						// come back short and must wait for room.
						if err := task.Sleep(time.Millisecond); err != nil {
							return err
						}
					}
				}
				if len(all) != 2*msgs*size {
					return fmt.Errorf("read %d bytes, want %d", len(all), 2*msgs*size)
				}
				for i := 0; i < len(all); i += size {
					for j := i; j < i+size; j++ {
						if all[j] != all[i] {
							return fmt.Errorf("message at %d interleaved: %q then %q at %d", i, all[i], all[j], j)
						}
					}
				}
				return nil
			})
		})
	}
}

// Close right after writes that the peer has not read yet: every byte is
// still delivered, then EOF, and no descriptor leaks (conform checks).
func TestCloseDeliversWrittenBytes(t *testing.T) {
	conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		const total = 3 << 20 // more than the socket buffers hold
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(task *asyncio.Task) error {
				if err := writeSizes(task, s, total, 2); err != nil {
					return err
				}
				return s.Close()
			})
			// Let the writer fill the socket buffers before reading.
			if err := task.Sleep(20 * time.Millisecond); err != nil {
				return err
			}
			return readAllChecked(task, c, total)
		})
	})
}

// CloseWrite right after writes: the peer reads them all, then EOF; a
// Write after CloseWrite fails with EPIPE.
func TestCloseWriteAfterWrites(t *testing.T) {
	conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		const total = 100 << 10
		if err := writeSizes(task, s, total, 3); err != nil {
			return err
		}
		if err := s.CloseWrite(); err != nil {
			return err
		}
		_, err := s.Write(task, []byte("late"))
		if !errors.Is(err, syscall.EPIPE) {
			return fmt.Errorf("write after CloseWrite: %v, want EPIPE", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "write" {
			return fmt.Errorf("error %v is not a *net.OpError for write", err)
		}
		return readAllChecked(task, c, total)
	})
}

// A peer that resets the connection: writes fail soon after with ECONNRESET
// or EPIPE (the first may still succeed, as with net), and Flush reports
// it too.
func TestWriteAfterPeerReset(t *testing.T) {
	conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		if err := syscall.SetsockoptLinger(s.Fd(), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1}); err != nil {
			return err
		}
		s.Close()
		if err := task.Sleep(10 * time.Millisecond); err != nil {
			return err
		}
		msg := []byte("hello?")
		for i := 0; ; i++ {
			_, err := c.Write(task, msg)
			if err == nil {
				if i == 10 {
					return errors.New("10 writes to a reset connection succeeded")
				}
				// A trap, as a real writer makes between messages: it
				// lets the loop send what Write queued.
				if err := task.Sleep(time.Millisecond); err != nil {
					return err
				}
				continue
			}
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				return fmt.Errorf("write %d after reset: %v, want ECONNRESET or EPIPE", i, err)
			}
			break
		}
		if err := c.Flush(task); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			return fmt.Errorf("flush after reset: %v, want ECONNRESET or EPIPE", err)
		}
		return nil
	})
}

// netListener returns a plain net loopback listener, closed when the test
// ends.
func netListener(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Bytes written just before the main task returns reach a peer outside the
// loop (a plain net.Conn), even though nothing waited for them.
func TestRunDeliversWritesBeforeReturning(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			ln := netListener(t)
			const total = 200 << 10
			got := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err
					return
				}
				defer c.Close()
				time.Sleep(50 * time.Millisecond) // let the writer finish first
				buf, err := io.ReadAll(c)
				if err == nil && len(buf) != total {
					err = fmt.Errorf("peer read %d bytes, want %d", len(buf), total)
				}
				for i := range buf {
					if err == nil && buf[i] != pattern(i) {
						err = fmt.Errorf("byte %d wrong", i)
					}
				}
				got <- err
			}()
			err := asyncio.Run(func(task *asyncio.Task) error {
				c, err := asyncio.Dial(task, "tcp", ln.Addr().String())
				if err != nil {
					return err
				}
				defer c.Close()
				return writeSizes(task, c, total, 4)
			}, asyncio.WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := <-got; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A peer that never reads does not hold Run forever: bytes still queued
// when the main task returns get a bounded grace period.
func TestRunReturnsWhenPeerNeverReads(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			ln := netListener(t)
			peer := make(chan net.Conn, 1)
			go func() {
				c, _ := ln.Accept()
				peer <- c
			}()
			began := time.Now()
			var wrote int
			err := asyncio.Run(func(task *asyncio.Task) error {
				c, err := asyncio.Dial(task, "tcp", ln.Addr().String())
				if err != nil {
					return err
				}
				defer c.Close()
				chunk := make([]byte, 8<<10)
				_, err = asyncio.SkipAfter(task, 200*time.Millisecond, func(task *asyncio.Task) error {
					for {
						n, err := c.Write(task, chunk)
						wrote += n
						if err != nil {
							return err
						}
					}
				})
				return err
			}, asyncio.WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			if c := <-peer; c != nil {
				c.Close()
			}
			if wrote == 0 {
				t.Fatal("nothing was written")
			}
			if d := time.Since(began); d > 10*time.Second {
				t.Fatalf("Run took %v with an unread peer", d)
			}
		})
	}
}

// Flush waits for a slow peer, can be cancelled while it waits (losing
// nothing), and returns nil once the peer has taken everything.
func TestFlushWaitsForSlowPeer(t *testing.T) {
	conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
		const total = 32 << 20 // far more than loopback socket buffers hold
		var readNow asyncio.Event
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(task *asyncio.Task) error {
				// Write until the peer's buffers are full: a Write then
				// waits, and a short deadline stops it.
				sent := 0
				chunk := make([]byte, 8<<10)
				for sent < total {
					var n int
					if _, err := asyncio.SkipAfter(task, 20*time.Millisecond, func(task *asyncio.Task) error {
						for i := range chunk {
							chunk[i] = pattern(sent + i)
						}
						var err error
						n, err = s.Write(task, chunk[:min(len(chunk), total-sent)])
						return err
					}); err != nil {
						return err
					}
					sent += n
					if n < len(chunk) {
						break // blocked: the peer is not reading yet
					}
				}
				timedOut, err := asyncio.SkipAfter(task, 20*time.Millisecond, s.Flush)
				if err != nil {
					return fmt.Errorf("flush under a deadline: %w", err)
				}
				if !timedOut && asyncio.Backend(task) == "uring" {
					return errors.New("flush returned while the peer read nothing")
				}
				// Now let the reader go, and finish the stream.
				readNow.Set()
				for sent < total {
					for i := range chunk {
						chunk[i] = pattern(sent + i)
					}
					n, err := s.Write(task, chunk[:min(len(chunk), total-sent)])
					if err != nil {
						return err
					}
					sent += n
				}
				if err := s.Flush(task); err != nil {
					return err
				}
				return s.CloseWrite()
			})
			if err := readNow.Wait(task); err != nil {
				return err
			}
			return readAllChecked(task, c, total)
		})
	})
}

// Close while another task's Write waits for room: that Write returns an
// error wrapping net.ErrClosed with the count of the bytes it handed over,
// and exactly those bytes (and all written before) reach the peer, then EOF.
func TestCloseWakesBlockedWriter(t *testing.T) {
	for _, size := range []int{8 << 10, 64 << 10} { // buffered and direct writes
		conformPair(t, func(t *testing.T, task *asyncio.Task, c, s *asyncio.Conn) error {
			sent := 0
			return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
				g.Spawn(func(task *asyncio.Task) error {
					data := make([]byte, size)
					for {
						for i := range data {
							data[i] = pattern(sent + i)
						}
						n, err := s.Write(task, data)
						sent += n
						if err != nil {
							if !errors.Is(err, net.ErrClosed) {
								return fmt.Errorf("blocked write: %v, want net.ErrClosed", err)
							}
							return nil
						}
					}
				})
				// The writer is blocked once it makes no progress for a
				// while (the peer reads nothing yet).
				for prev := -1; sent != prev; {
					prev = sent
					if err := task.Sleep(20 * time.Millisecond); err != nil {
						return err
					}
				}
				if err := s.Close(); err != nil {
					return err
				}
				// Let the writer see the close before reading.
				if err := task.Sleep(5 * time.Millisecond); err != nil {
					return err
				}
				return readAllChecked(task, c, sent)
			})
		})
	}
}
