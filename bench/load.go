package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// loadSpec is one point of the matrix.
type loadSpec struct {
	conns  int
	size   int
	depth  int
	warmup time.Duration
	dur    time.Duration
}

func (s loadSpec) String() string {
	return fmt.Sprintf("conns=%d/size=%d/depth=%d", s.conns, s.size, s.depth)
}

// loadResult is what the generator measured.
type loadResult struct {
	size      int           // message size in bytes
	msgs      int64         // messages echoed inside the window
	all       int64         // messages echoed from the first to the last, warm-up included
	window    time.Duration // measured wall time
	hist      histogram
	clientCPU time.Duration // this process's CPU time in the window
}

func (r loadResult) rate() float64 { return float64(r.msgs) / r.window.Seconds() }

// The echoed stream of connection c is pattern[(offset+c) % patLen]: every
// byte is checked, and a byte from another connection or out of order shows.
const patLen = 251

var bigPattern = func() []byte {
	b := make([]byte, patLen+256<<10)
	for i := range b {
		b[i] = byte(i%patLen*7 + 3)
	}
	return b
}()

func streamAt(conn int, off int64, n int) []byte {
	start := int((off + int64(conn)) % patLen)
	return bigPattern[start : start+n]
}

// runLoad drives an echo server at addr: spec.conns connections, each
// keeping spec.depth messages of spec.size bytes in flight, for spec.warmup
// and then a measured window of spec.dur. It calls onWindow(true) as the
// window opens and onWindow(false) as it closes, so that the caller can
// sample the server's CPU at the same instants.
func runLoad(addr string, spec loadSpec, onWindow func(start bool)) (loadResult, error) {
	conns := make([]net.Conn, spec.conns)
	for i := range conns {
		var err error
		for try := 0; ; try++ {
			conns[i], err = net.DialTimeout("tcp", addr, 5*time.Second)
			if err == nil || try == 50 {
				break
			}
			time.Sleep(20 * time.Millisecond) // accept queue overflow under a burst of dials
		}
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return loadResult{}, fmt.Errorf("dial %d: %w", i, err)
		}
	}
	var (
		counting atomic.Bool
		stop     atomic.Bool
		total    atomic.Int64
		all      atomic.Int64
		firstErr error
		errOnce  sync.Once
		mu       sync.Mutex
		hist     histogram
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		stop.Store(true)
	}
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h histogram
			n, err := drive(i, c, spec, &counting, &stop, &total, &h)
			if err != nil && !stop.Load() {
				fail(fmt.Errorf("conn %d: %w", i, err))
			}
			all.Add(n)
			mu.Lock()
			hist.merge(&h)
			mu.Unlock()
		}()
	}
	time.Sleep(spec.warmup)
	cpu0 := processCPU()
	onWindow(true)
	start := time.Now()
	counting.Store(true)
	time.Sleep(spec.dur)
	counting.Store(false)
	window := time.Since(start)
	onWindow(false)
	cpu1 := processCPU()
	n := total.Load()
	stop.Store(true)
	for _, c := range conns {
		c.SetDeadline(time.Now()) // unblock readers
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	if firstErr != nil {
		return loadResult{}, firstErr
	}
	if n == 0 {
		return loadResult{}, errors.New("no message was echoed in the window")
	}
	return loadResult{size: spec.size, msgs: n, all: all.Load(), window: window, hist: hist, clientCPU: cpu1 - cpu0}, nil
}

// drive keeps spec.depth messages in flight on c, checking every byte, and
// returns how many messages came back. While counting is set, it adds them
// to total and their round trips to h.
func drive(id int, c net.Conn, spec loadSpec, counting, stop *atomic.Bool, total *atomic.Int64, h *histogram) (int64, error) {
	size := spec.size
	sent := make([]time.Time, spec.depth) // send time of each message in flight, FIFO
	head, inflight := 0, 0
	var sendOff, recvOff int64
	send := func(k int) error {
		now := time.Now()
		for range k {
			sent[(head+inflight)%len(sent)] = now
			inflight++
		}
		n := k * size
		_, err := c.Write(streamAt(id, sendOff, n))
		sendOff += int64(n)
		return err
	}
	var echoed int64
	if err := send(spec.depth); err != nil {
		return 0, err
	}
	buf := make([]byte, max(64<<10, 2*size*spec.depth))
	partial := 0 // bytes of the current message already received
	for !stop.Load() {
		n, err := c.Read(buf)
		if n > 0 {
			if !bytes.Equal(buf[:n], streamAt(id, recvOff, n)) {
				return echoed, fmt.Errorf("echoed bytes differ at stream offset %d", recvOff)
			}
			recvOff += int64(n)
			partial += n
			done := partial / size
			partial %= size
			if done > 0 {
				echoed += int64(done)
				now := time.Now()
				count := counting.Load()
				for range done {
					if count {
						h.add(now.Sub(sent[head]))
					}
					head = (head + 1) % len(sent)
					inflight--
				}
				if count {
					total.Add(int64(done))
				}
				if err := send(done); err != nil {
					return echoed, err
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				return echoed, errors.New("server closed the connection")
			}
			return echoed, err
		}
	}
	return echoed, nil
}

// histogram is a log-scale latency histogram: 64 buckets per power of two
// (about 1% resolution) from 1µs up.
type histogram struct {
	counts [64 * 24]int64
	n      int64
}

func (h *histogram) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = int(math.Log2(us) * 64)
	}
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0..1).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= want {
			return time.Duration(math.Exp2(float64(i+1)/64) * float64(time.Microsecond))
		}
	}
	return 0
}
