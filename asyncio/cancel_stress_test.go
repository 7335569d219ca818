package asyncio_test

import (
	"fmt"
	"io"
	"math/rand"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// pattern is the byte at stream offset i in the cancellation stress tests.
func pattern(i int) byte { return byte(i % 251) }

// TestCancelledReadsLoseNoBytes reads a stream through reads that short
// deadlines keep cancelling: a read cancelled after the kernel filled its
// buffer must still return those bytes (the design's invariant 2: nothing
// the kernel did is lost to a cancellation), so the
// stream arrives whole and in order.
func TestCancelledReadsLoseNoBytes(t *testing.T) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		c, s, err := tcpPair(task)
		if err != nil {
			return err
		}
		defer c.Close()
		defer s.Close()
		const total = 200000
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(task *asyncio.Task) error {
				r := rand.New(rand.NewSource(1))
				buf := make([]byte, 0, 4096)
				for sent := 0; sent < total; {
					n := min(1+r.Intn(3000), total-sent)
					buf = buf[:0]
					for i := range n {
						buf = append(buf, pattern(sent+i))
					}
					if _, err := s.Write(task, buf); err != nil {
						return err
					}
					sent += n
					if r.Intn(4) == 0 {
						if err := task.Sleep(time.Duration(r.Intn(300)) * time.Microsecond); err != nil {
							return err
						}
					}
				}
				return s.CloseWrite()
			})
			got, timeouts := 0, 0
			buf := make([]byte, 1024)
			r := rand.New(rand.NewSource(2))
			for {
				var n int
				var rerr error
				timedOut, err := asyncio.SkipAfter(task, time.Duration(r.Intn(200))*time.Microsecond, func(task *asyncio.Task) error {
					n, rerr = c.Read(task, buf)
					if asyncio.IsCancellation(rerr) {
						return rerr
					}
					return nil
				})
				if err != nil {
					return err
				}
				for i := range n {
					if buf[i] != pattern(got+i) {
						return fmt.Errorf("byte %d wrong after %d cancelled reads", got+i, timeouts)
					}
				}
				got += n
				if timedOut {
					timeouts++
					continue
				}
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					return rerr
				}
			}
			if got != total {
				return fmt.Errorf("read %d bytes, want %d", got, total)
			}
			t.Logf("%d bytes through %d cancelled reads", got, timeouts)
			return nil
		})
	})
}

// TestCancelledWritesReportWhatWasWritten writes a stream through writes
// that short deadlines keep cancelling while the reader is slow: each
// cancelled Write must report exactly the bytes that went out, so resuming
// from there delivers the stream whole, with nothing doubled or skipped.
func TestCancelledWritesReportWhatWasWritten(t *testing.T) {
	conform(t, func(t *testing.T, task *asyncio.Task) error {
		c, s, err := tcpPair(task)
		if err != nil {
			return err
		}
		defer c.Close()
		defer s.Close()
		const total = 8 << 20
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(task *asyncio.Task) error {
				data := make([]byte, total)
				for i := range data {
					data[i] = pattern(i)
				}
				r := rand.New(rand.NewSource(3))
				sent, timeouts := 0, 0
				for sent < total {
					end := min(sent+1+r.Intn(512<<10), total)
					var n int
					timedOut, err := asyncio.SkipAfter(task, time.Duration(r.Intn(500))*time.Microsecond, func(task *asyncio.Task) error {
						var werr error
						n, werr = s.Write(task, data[sent:end])
						return werr
					})
					if err != nil {
						return err
					}
					if !timedOut && n != end-sent {
						return fmt.Errorf("write returned %d of %d without an error", n, end-sent)
					}
					if timedOut {
						timeouts++
					}
					sent += n
				}
				t.Logf("%d bytes through %d cancelled writes", sent, timeouts)
				return s.CloseWrite()
			})
			got := 0
			buf := make([]byte, 4096)
			r := rand.New(rand.NewSource(4))
			for {
				n, err := c.Read(task, buf[:1+r.Intn(len(buf))])
				for i := range n {
					if buf[i] != pattern(got+i) {
						return fmt.Errorf("byte %d wrong", got+i)
					}
				}
				got += n
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				if r.Intn(8) == 0 {
					if err := task.Sleep(time.Duration(r.Intn(200)) * time.Microsecond); err != nil {
						return err
					}
				}
			}
			if got != total {
				return fmt.Errorf("read %d bytes, want %d", got, total)
			}
			return nil
		})
	})
}
