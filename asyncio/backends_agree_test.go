package asyncio_test

// Differential test of the two backends: one seeded random scenario over a
// stream connection (TCP or Unix, made with Listen/Dial/Accept inside one
// Run) runs on io_uring and on epoll, and what a user can observe is
// compared: the bytes each side received against what the writer's Writes
// reported, their contents, and the class of every error (errors.Is against
// the documented sentinels, and the *net.OpError's Op). Only observations
// that do not depend on timing are compared (the end of each stream, the
// errors after a synchronised close or reset, byte totals when no timeout
// or cancellation could cut a write short); the rest is checked against the
// contract on each backend alone (no byte lost, duplicated or reordered, a
// Write never reports more than arrives before an orderly close, errors of
// the documented classes, no hang, no fd or goroutine leak).
//
// Reproduce one scenario: CORIO_DIFF_SEED=123 go test -run TestBackendsAgree ./asyncio
// More scenarios:         CORIO_DIFF_SEEDS=500 go test -run TestBackendsAgree ./asyncio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

var d2Sizes = []int{0, 1, 7, 4095, 4096, 16384, 16385, 100000}

// How a Write or Read step runs.
const (
	d2Plain   = iota
	d2Timeout // under WithTimeout(d)
	d2Cancel  // in a group that a sibling Cancels after d
	d2Pause   // reader only: sleep d, no read (lets the writer block)
)

type d2WStep struct {
	size  int
	mode  int
	d     time.Duration
	flush bool // Flush after the write
}

type d2RStep struct {
	buf  int
	mode int
	d    time.Duration
}

// How a direction ends.
const (
	d2EndCloseWrite   = iota // the writer's side CloseWrite
	d2EndClose               // the writer's side Close
	d2EndReset               // the writer's side SO_LINGER 0 + Close
	d2EndCloseBlocked        // the writer floods; a sibling Closes its Conn while it is blocked
	d2EndReaderClose         // the reader reads everything, then Closes (with unread bytes or not); the writer writes on
	d2EndPeerReset           // the writer floods; the reader's side resets (SO_LINGER 0 + Close) without reading
	d2NumEnds
)

var d2EndNames = [...]string{"CloseWrite", "Close", "Reset", "CloseBlocked", "ReaderClose", "PeerReset"}

// d2Floods reports whether the direction's writers flood (write 100 000
// bytes at a time until an error stops them).
func d2Floods(end int) bool { return end == d2EndCloseBlocked || end == d2EndPeerReset }

type d2Dir struct {
	on         bool
	writers    [][]d2WStep
	reads      []d2RStep
	end        int
	closeAfter time.Duration // CloseBlocked: the closer's sleep
	unread     bool          // ReaderClose: 7 bytes stay unread at the Close
	post       []int         // ReaderClose: the sizes the writer writes after the Close
}

type d2Plan struct {
	seed    uint64
	network string
	dirs    [2]d2Dir // 0: client → server, 1: server → client
}

func (p *d2Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %s", p.seed, p.network)
	for i, d := range p.dirs {
		if !d.on {
			continue
		}
		fmt.Fprintf(&b, "\n  dir %d: end %s unread=%v closeAfter=%v post=%v", i, d2EndNames[d.end], d.unread, d.closeAfter, d.post)
		for w, steps := range d.writers {
			fmt.Fprintf(&b, "\n    writer %d: %+v", w, steps)
		}
		fmt.Fprintf(&b, "\n    reads: %+v", d.reads)
	}
	return b.String()
}

func d2Gen(seed uint64) *d2Plan {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := &d2Plan{seed: seed, network: "tcp"}
	if r.IntN(2) == 0 {
		p.network = "unix"
	}
	pick := func(ds ...time.Duration) time.Duration { return ds[r.IntN(len(ds))] }
	if r.IntN(3) == 0 {
		p.dirs[0].on, p.dirs[1].on = true, true // both ways at once, each ended by CloseWrite
	} else {
		d := &p.dirs[r.IntN(2)]
		d.on = true
		d.end = r.IntN(d2NumEnds)
	}
	for i := range p.dirs {
		d := &p.dirs[i]
		if !d.on {
			continue
		}
		nw := 1 + r.IntN(2)
		if d2Floods(d.end) {
			d.closeAfter = pick(0, time.Millisecond, 3*time.Millisecond)
		}
		for range nw {
			var steps []d2WStep
			for range 1 + r.IntN(6) {
				s := d2WStep{size: d2Sizes[r.IntN(len(d2Sizes))], flush: r.IntN(4) == 0}
				if d.end != d2EndReaderClose { // there the count must be known in advance
					switch x := r.IntN(20); {
					case x < 3:
						s.mode, s.d = d2Timeout, pick(0, 50*time.Microsecond, 500*time.Microsecond, 2*time.Millisecond)
					case x < 6:
						s.mode, s.d = d2Cancel, pick(0, 100*time.Microsecond, time.Millisecond)
					}
				}
				steps = append(steps, s)
			}
			d.writers = append(d.writers, steps)
		}
		// At least one plain read of 64 KiB and at most one pause per
		// cycle of the steps, to keep a scenario within milliseconds.
		big, paused := false, false
		for range 1 + r.IntN(8) {
			bufs := []int{1, 7, 512, 4096, 16384, 65536, 262144}
			if d2Floods(d.end) {
				bufs = []int{4096, 65536, 262144}
			}
			s := d2RStep{buf: bufs[r.IntN(len(bufs))]}
			switch x := r.IntN(20); {
			case x < 3:
				s.mode, s.d = d2Timeout, pick(0, 100*time.Microsecond, time.Millisecond, 3*time.Millisecond)
			case x < 6:
				s.mode, s.d = d2Cancel, pick(0, 200*time.Microsecond, time.Millisecond)
			case x < 8 && !paused:
				s.mode, s.d = d2Pause, pick(500*time.Microsecond, 2*time.Millisecond)
				paused = true
			}
			big = big || (s.mode == d2Plain && s.buf >= 65536)
			d.reads = append(d.reads, s)
		}
		if !big {
			d.reads = append(d.reads, d2RStep{buf: 65536})
		}
		if d.end == d2EndReaderClose {
			d.unread = r.IntN(2) == 0
			for range 3 {
				d.post = append(d.post, d2Sizes[1+r.IntN(len(d2Sizes)-1)])
			}
		}
	}
	return p
}

// d2Byte is byte p of writer w's stream in direction d: the top bit names
// the writer, the rest is a hash of the position (no short period).
func d2Byte(d, w, p int) byte {
	h := uint32(p)*2654435761 + uint32(d)*0x9E3779B9
	return byte(w<<7) | byte(h>>25)
}

func d2Fill(b []byte, d, w, off int) []byte {
	for i := range b {
		b[i] = d2Byte(d, w, off+i)
	}
	return b
}

// d2Class names what errors.Is and errors.As see in err.
func d2Class(err error) string {
	if err == nil {
		return "nil"
	}
	var parts []string
	for _, s := range []struct {
		name   string
		target error
	}{
		{"EOF", io.EOF}, {"ErrClosed", net.ErrClosed}, {"OsDeadline", os.ErrDeadlineExceeded},
		{"Canceled", context.Canceled}, {"CtxDeadline", context.DeadlineExceeded},
		{"ECONNRESET", syscall.ECONNRESET}, {"EPIPE", syscall.EPIPE},
		{"ECONNREFUSED", syscall.ECONNREFUSED}, {"ENOENT", syscall.ENOENT},
	} {
		if errors.Is(err, s.target) {
			parts = append(parts, s.name)
		}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		parts = append(parts, "op="+oe.Op)
	}
	if len(parts) == 0 || (len(parts) == 1 && oe != nil) {
		parts = append(parts, fmt.Sprintf("other(%v)", err))
	}
	return strings.Join(parts, "|")
}

// d2Run is what one run on one backend showed.
type d2Run struct {
	obs  []string // compared between backends
	viol []string // contract violations on this backend alone
}

func (r *d2Run) violf(format string, args ...any) {
	r.viol = append(r.viol, fmt.Sprintf(format, args...))
}

var d2UnixSeq atomic.Int64

// d2Pair returns a listener of network ("tcp" or "unix": an abstract name)
// and a connection made through it: the dialled end c and the accepted s.
func d2Pair(task *asyncio.Task, network string) (l *asyncio.Listener, c, s *asyncio.Conn, err error) {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = fmt.Sprintf("@corio-d2-%d-%d", os.Getpid(), d2UnixSeq.Add(1))
	}
	if l, err = asyncio.Listen(task, network, addr); err != nil {
		return nil, nil, nil, err
	}
	if c, err = asyncio.Dial(task, network, l.Addr().String()); err != nil {
		l.Close()
		return nil, nil, nil, err
	}
	if s, err = l.Accept(task); err != nil {
		c.Close()
		l.Close()
		return nil, nil, nil, err
	}
	return l, c, s, nil
}

// d2Dir's state during a run.
type d2DirRun struct {
	r        *d2Run
	d        int
	p        *d2Dir
	reported []int          // per writer: bytes its Writes reported
	bounds   []map[int]bool // per writer: its stream offsets at which a Write returned
	pos      []int          // per writer: bytes received
	runs     [][2]int       // (writer, pos) where the received stream switched writer
	last     int            // writer of the last byte received, -1 before any
	received int
	bad      bool
	obs      []string
	wdone    asyncio.Event // the writers (and the extra bytes) are done
	closed   asyncio.Event // ReaderClose: the reader closed; CloseBlocked: the closer closed
}

func (dr *d2DirRun) obsf(format string, args ...any) {
	dr.obs = append(dr.obs, fmt.Sprintf("dir %d: ", dr.d)+fmt.Sprintf(format, args...))
}

func (dr *d2DirRun) violf(format string, args ...any) {
	dr.r.violf("dir %d: "+format, append([]any{dr.d}, args...)...)
}

// consume checks received bytes against the writers' streams.
func (dr *d2DirRun) consume(b []byte) {
	for _, c := range b {
		w := int(c >> 7)
		if w >= len(dr.pos) {
			if !dr.bad {
				dr.violf("byte %d of the stream names writer %d of %d", dr.received, w, len(dr.pos))
			}
			dr.bad = true
			dr.received++
			continue
		}
		if dr.last != w && dr.last >= 0 {
			dr.runs = append(dr.runs, [2]int{dr.last, dr.pos[dr.last]})
		}
		dr.last = w
		if want := d2Byte(dr.d, w, dr.pos[w]); c != want && !dr.bad {
			dr.bad = true
			dr.violf("byte %d of the stream (byte %d of writer %d) is %#x, want %#x: bytes lost, duplicated or reordered", dr.received, dr.pos[w], w, c, want)
		}
		dr.pos[w]++
		dr.received++
	}
}

// write runs one Write step and returns the Write's error (nil if it wrote
// everything).
func (dr *d2DirRun) write(t *asyncio.Task, c *asyncio.Conn, w int, s d2WStep, buf []byte, allowed ...string) error {
	data := d2Fill(buf[:s.size], dr.d, w, dr.reported[w])
	var n int
	var err error
	switch s.mode {
	case d2Plain:
		n, err = c.Write(t, data)
	case d2Timeout:
		outer := asyncio.WithTimeout(t, s.d, func(t *asyncio.Task) error {
			n, err = c.Write(t, data)
			return err
		})
		dr.checkTimeout("write", err, outer)
		if errors.Is(err, context.DeadlineExceeded) {
			allowed = append(allowed, "CtxDeadline|op=write")
		}
	case d2Cancel:
		dr.cancelledAfter(t, s.d, func(t *asyncio.Task) { n, err = c.Write(t, data) })
		if errors.Is(err, context.Canceled) {
			allowed = append(allowed, "Canceled|op=write")
		}
	}
	if n < 0 || n > len(data) {
		dr.violf("Write of %d bytes reported %d", len(data), n)
		n = max(0, min(n, len(data)))
	}
	if err == nil && n != len(data) {
		dr.violf("Write of %d bytes reported %d without an error", len(data), n)
	}
	dr.reported[w] += n
	dr.bounds[w][dr.reported[w]] = true
	if err != nil && !slices.Contains(allowed, d2Class(err)) {
		dr.violf("Write (%+v) error %q (%v), want one of %q", s, d2Class(err), err, allowed)
	}
	return err
}

// checkTimeout checks the errors of an operation run under WithTimeout:
// inner is the operation's, outer WithTimeout's.
func (dr *d2DirRun) checkTimeout(op string, inner, outer error) {
	if errors.Is(inner, context.DeadlineExceeded) {
		if c := d2Class(outer); c != "OsDeadline|CtxDeadline" {
			dr.violf("WithTimeout around a %s that timed out returned %q (%v)", op, c, outer)
		}
		if c := d2Class(inner); c != "CtxDeadline|op="+op {
			dr.violf("timed-out %s returned %q (%v)", op, c, inner)
		}
	} else if outer != inner {
		dr.violf("WithTimeout around a %s that returned %v returned %v", op, inner, outer)
	}
}

// read reads until the stream ends (an error other than a step's own
// timeout or cancellation, returned) or limit bytes (limit >= 0) arrived.
func (dr *d2DirRun) read(t *asyncio.Task, c *asyncio.Conn, limit int) error {
	buf := make([]byte, 262144)
	for i := 0; ; i++ {
		if limit >= 0 && dr.received >= limit {
			return nil
		}
		s := dr.p.reads[i%len(dr.p.reads)]
		size := s.buf
		if limit >= 0 {
			size = min(size, limit-dr.received)
		}
		b := buf[:size]
		var n int
		var err error
		switch s.mode {
		case d2Pause:
			if err := t.Sleep(s.d); err != nil {
				return err
			}
			continue
		case d2Plain:
			n, err = c.Read(t, b)
		case d2Timeout:
			outer := asyncio.WithTimeout(t, s.d, func(t *asyncio.Task) error {
				n, err = c.Read(t, b)
				return err
			})
			dr.checkTimeout("read", err, outer)
		case d2Cancel:
			dr.cancelledAfter(t, s.d, func(t *asyncio.Task) { n, err = c.Read(t, b) })
		}
		if n < 0 || n > len(b) {
			dr.violf("Read into %d bytes returned %d", len(b), n)
			n = max(0, min(n, len(b)))
		}
		dr.consume(b[:n])
		if err == nil {
			if n == 0 {
				dr.violf("Read into %d bytes returned 0 and no error", len(b))
				return errors.New("empty read")
			}
			continue
		}
		if n != 0 {
			dr.violf("Read returned %d bytes and the error %v", n, err)
		}
		switch cl := d2Class(err); {
		case s.mode == d2Timeout && errors.Is(err, context.DeadlineExceeded):
			continue // checked by checkTimeout
		case s.mode == d2Cancel && errors.Is(err, context.Canceled):
			if cl != "Canceled|op=read" {
				dr.violf("cancelled Read returned %q (%v)", cl, err)
			}
			continue
		}
		return err
	}
}

// writers runs the direction's writer tasks to their end.
func (dr *d2DirRun) writers(t *asyncio.Task, c *asyncio.Conn, allowed ...string) {
	err := asyncio.Group(t, func(g *asyncio.TaskGroup) error {
		for w, steps := range dr.p.writers {
			g.Spawn(func(t *asyncio.Task) error {
				buf := make([]byte, 100000)
				for _, s := range steps {
					if err := dr.write(t, c, w, s, buf, allowed...); err != nil && !asyncio.IsCancellation(err) {
						return nil // the stream is broken: this writer stops
					}
					if s.flush {
						if err := c.Flush(t); err != nil {
							dr.violf("Flush: %v", err)
							return nil
						}
					}
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		dr.violf("writers' group: %v", err)
	}
}

// d2Errs runs Write(size)/Flush pairs and returns the class of the first
// error and the distinct classes of all the errors after it (a failed send
// is sticky: every later Write and Flush reports it). Which Write reports
// the failure first is not compared: write-behind reports it a Write later.
func d2Errs(t *asyncio.Task, c *asyncio.Conn, sizes []int, dr *d2DirRun) string {
	buf := make([]byte, 100000)
	first, later := "", map[string]bool{}
	note := func(err error) {
		if err == nil {
			return
		}
		if first == "" {
			first = d2Class(err)
		} else {
			later[d2Class(err)] = true
		}
	}
	for _, size := range sizes {
		n, err := c.Write(t, buf[:size])
		if err == nil && n != size {
			dr.violf("post Write of %d reported %d without an error", size, n)
		}
		if first != "" && err == nil && size > 0 {
			dr.violf("Write of %d after a failed send returned no error", size)
		}
		note(err)
		err = c.Flush(t)
		if first != "" && err == nil {
			dr.violf("Flush after a failed send returned no error")
		}
		note(err)
	}
	return fmt.Sprintf("first %s, then %v", cmp.Or(first, "nil"), slices.Sorted(maps.Keys(later)))
}

// firstErr runs Write(size)/Flush pairs and returns the class of the first
// error (after which it stops), and "nil" if none failed.
func d2FirstErr(t *asyncio.Task, c *asyncio.Conn, sizes []int, dr *d2DirRun) string {
	buf := make([]byte, 100000)
	for _, size := range sizes {
		n, err := c.Write(t, buf[:size])
		if err == nil && n != size {
			dr.violf("post Write of %d reported %d without an error", size, n)
		}
		if err == nil {
			err = c.Flush(t)
		}
		if err != nil {
			return d2Class(err)
		}
	}
	return "nil"
}

// run runs the direction: the writer side writes on w, the reader side
// reads on r.
func (dr *d2DirRun) run(g *asyncio.TaskGroup, w, r *asyncio.Conn) {
	p := dr.p
	// The writer's side.
	g.Spawn(func(t *asyncio.Task) error {
		switch p.end {
		case d2EndCloseBlocked, d2EndPeerReset:
			allowed := []string{"ErrClosed|op=write"}
			if p.end == d2EndPeerReset {
				allowed = []string{"ECONNRESET|op=write", "EPIPE|op=write"}
			}
			err := asyncio.Group(t, func(g *asyncio.TaskGroup) error {
				for wi := range p.writers {
					g.Spawn(func(t *asyncio.Task) error {
						buf := make([]byte, 100000)
						final := "nil"
						for range 400 {
							if err := dr.write(t, w, wi, d2WStep{size: 100000}, buf, allowed...); err != nil {
								final = d2Class(err)
								break
							}
						}
						dr.obsf("flooding writer %d's end: %s", wi, final)
						if p.end == d2EndPeerReset {
							dr.obsf("flooding writer %d's Flush: %s", wi, d2Class(w.Flush(t)))
						}
						return nil
					})
				}
				g.Spawn(func(t *asyncio.Task) error {
					if err := t.Sleep(p.closeAfter); err != nil {
						return err
					}
					c := w
					if p.end == d2EndPeerReset {
						c = r
						if err := unix.SetsockoptLinger(r.Fd(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
							dr.violf("SO_LINGER: %v", err)
						}
					}
					if err := c.Close(); err != nil {
						dr.violf("Close: %v", err)
					}
					dr.closed.Set()
					return nil
				})
				return nil
			})
			if err != nil {
				dr.violf("flood group: %v", err)
			}
			return nil
		case d2EndReaderClose:
			dr.writers(t, w)
			if p.unread {
				if n, err := w.Write(t, []byte("unread!")); n != 7 || err != nil {
					dr.violf("Write of the unread bytes: %d, %v", n, err)
				}
				if err := w.Flush(t); err != nil {
					dr.violf("Flush of the unread bytes: %v", err)
				}
			}
			dr.wdone.Set()
			if err := dr.closed.Wait(t); err != nil {
				return err
			}
			dr.obsf("writer after the reader's Close: errors %s", d2Errs(t, w, p.post, dr))
			return nil
		}
		dr.writers(t, w)
		dr.wdone.Set()
		switch p.end {
		case d2EndCloseWrite:
			if err := w.CloseWrite(); err != nil {
				dr.violf("CloseWrite: %v", err)
			}
			n, err := w.Write(t, []byte("after"))
			dr.obsf("Write after CloseWrite: %d, %s", n, d2Class(err))
			n, err = w.Write(t, nil)
			dr.obsf("empty Write after CloseWrite: %d, %s", n, d2Class(err))
			dr.obsf("Flush after CloseWrite: %s", d2Class(w.Flush(t)))
		case d2EndClose:
			if err := w.Close(); err != nil {
				dr.violf("Close: %v", err)
			}
		case d2EndReset:
			if err := unix.SetsockoptLinger(w.Fd(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
				dr.violf("SO_LINGER: %v", err)
			}
			if err := w.Close(); err != nil {
				dr.violf("Close: %v", err)
			}
		}
		return nil
	})
	// The reader's side.
	g.Spawn(func(t *asyncio.Task) error {
		switch p.end {
		case d2EndPeerReset:
			return nil // it never reads; the closer resets it
		case d2EndCloseBlocked:
			if err := dr.closed.Wait(t); err != nil {
				return err
			}
		case d2EndReaderClose:
			want := 0
			for _, steps := range p.writers {
				for _, s := range steps {
					want += s.size
				}
			}
			if err := dr.read(t, r, want); err != nil {
				dr.violf("reading the %d bytes written: %v", want, err)
			}
			if err := dr.wdone.Wait(t); err != nil {
				return err
			}
			if err := r.Close(); err != nil {
				dr.violf("Close: %v", err)
			}
			dr.closed.Set()
			return nil
		}
		end := dr.read(t, r, -1)
		dr.obsf("reader's end: %s", d2Class(end))
		_, err := r.Read(t, make([]byte, 10))
		dr.obsf("Read after the end: %s", d2Class(err))
		if p.end != d2EndCloseWrite && p.end != d2EndCloseBlocked {
			// Writing to a peer that closed or reset.
			dr.obsf("reader's writes after the end: first error %s", d2FirstErr(t, r, []int{7, 7, 7}, dr))
		}
		return nil
	})
}

// check checks the direction's totals once both sides are done.
func (dr *d2DirRun) check() {
	reported := 0
	for _, n := range dr.reported {
		reported += n
	}
	for w := range dr.pos {
		if dr.pos[w] > dr.reported[w] {
			dr.violf("writer %d: received %d bytes, its Writes reported %d", w, dr.pos[w], dr.reported[w])
		}
	}
	lossy := dr.p.end == d2EndReset || dr.p.end == d2EndPeerReset // a reset drops what the kernel still held
	if !lossy {
		for w := range dr.pos {
			if dr.pos[w] != dr.reported[w] {
				dr.violf("writer %d: received %d bytes before an orderly end, its Writes reported %d", w, dr.pos[w], dr.reported[w])
			}
		}
	}
	if dr.last >= 0 {
		dr.runs = append(dr.runs, [2]int{dr.last, dr.pos[dr.last]})
	}
	for _, run := range dr.runs[:max(0, len(dr.runs)-1)] { // the last run may end anywhere on a reset
		if !dr.bounds[run[0]][run[1]] {
			dr.violf("writer %d's bytes are interleaved with another's at its offset %d, inside a Write", run[0], run[1])
			break
		}
	}
	// A timeout or cancellation may cut a write short on one backend and
	// not on the other: the total is compared only when the plan has none.
	cuttable := false
	for _, steps := range dr.p.writers {
		for _, s := range steps {
			cuttable = cuttable || s.mode != d2Plain
		}
	}
	if !cuttable && !lossy && !d2Floods(dr.p.end) {
		dr.obsf("bytes received: %d", dr.received)
	}
}

// d2Epilogue checks, on a fresh connection and listener, what operations
// blocked in other tasks return when their Conn or Listener is closed or
// their group cancelled or their timeout fires, and what a closed
// listener's Accept and a Dial to it return.
func d2Epilogue(task *asyncio.Task, p *d2Plan, res *d2Run) error {
	l, c, s, err := d2Pair(task, p.network)
	if err != nil {
		return err
	}
	defer l.Close()
	defer c.Close()
	defer s.Close()
	obs := func(what string, err error) { res.obs = append(res.obs, what+": "+d2Class(err)) }
	var inner error
	outer := asyncio.WithTimeout(task, time.Millisecond, func(t *asyncio.Task) error {
		_, inner = l.Accept(t)
		return inner
	})
	obs("Accept under WithTimeout", inner)
	obs("WithTimeout around it", outer)
	err = asyncio.Group(task, func(g *asyncio.TaskGroup) error {
		g.Spawn(func(t *asyncio.Task) error {
			_, err := l.Accept(t)
			obs("Accept in a cancelled group", err)
			return nil
		})
		g.Spawn(func(t *asyncio.Task) error {
			_, err := s.Read(t, make([]byte, 10))
			obs("Read in a cancelled group", err)
			return nil
		})
		if err := task.Sleep(0); err != nil {
			return err
		}
		g.Cancel()
		return nil
	})
	obs("the cancelled group", err)
	err = asyncio.Group(task, func(g *asyncio.TaskGroup) error {
		g.Spawn(func(t *asyncio.Task) error {
			_, err := c.Read(t, make([]byte, 10))
			obs("Read blocked when its Conn is closed", err)
			return nil
		})
		g.Spawn(func(t *asyncio.Task) error {
			_, err := l.Accept(t)
			obs("Accept blocked when its Listener is closed", err)
			return nil
		})
		if err := task.Sleep(0); err != nil {
			return err
		}
		obs("Close under a blocked Read", c.Close())
		obs("Close under a blocked Accept", l.Close())
		return nil
	})
	obs("the closing group", err)
	_, err = l.Accept(task)
	obs("Accept after Close", err)
	obs("Listener Close after Close", l.Close())
	_, err = asyncio.Dial(task, p.network, l.Addr().String())
	obs("Dial to a closed listener", err)
	_, err = s.Read(task, make([]byte, 10))
	obs("Read from a closed peer", err)
	return nil
}

// d2RunOn runs the plan on one backend.
func d2RunOn(t testing.TB, p *d2Plan, backend string) *d2Run {
	res := &d2Run{}
	fds := openFDs(t)
	ignore := goleak.IgnoreCurrent()
	var dirs []*d2DirRun
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- asyncio.Run(func(task *asyncio.Task) error {
			addr := "127.0.0.1:0"
			if p.network == "unix" {
				addr = fmt.Sprintf("@corio-d2-%d-%d", os.Getpid(), d2UnixSeq.Add(1))
			}
			l, err := asyncio.Listen(task, p.network, addr)
			if err != nil {
				return err
			}
			c, err := asyncio.Dial(task, p.network, l.Addr().String())
			if err != nil {
				l.Close()
				return err
			}
			s, err := l.Accept(task)
			l.Close()
			if err != nil {
				c.Close()
				return err
			}
			ends := [2][2]*asyncio.Conn{{c, s}, {s, c}}
			err = asyncio.Group(task, func(g *asyncio.TaskGroup) error {
				for i := range p.dirs {
					if !p.dirs[i].on {
						continue
					}
					dr := &d2DirRun{r: res, d: i, p: &p.dirs[i], last: -1}
					n := len(dr.p.writers)
					dr.reported, dr.pos = make([]int, n), make([]int, n)
					for range n {
						dr.bounds = append(dr.bounds, map[int]bool{0: true})
					}
					dirs = append(dirs, dr)
					dr.run(g, ends[i][0], ends[i][1])
				}
				return nil
			})
			if err != nil {
				res.violf("scenario group: %v", err)
			}
			// Both ends, closed or not, then every operation on a closed Conn.
			res.obs = append(res.obs, "close client: "+d2Class(c.Close()), "close server: "+d2Class(s.Close()))
			_, err = c.Read(task, make([]byte, 10))
			res.obs = append(res.obs, "closed Read: "+d2Class(err))
			_, err = c.Read(task, nil)
			res.obs = append(res.obs, "closed empty Read: "+d2Class(err))
			_, err = c.Write(task, []byte("x"))
			res.obs = append(res.obs, "closed Write: "+d2Class(err))
			_, err = c.Write(task, nil)
			res.obs = append(res.obs, "closed empty Write: "+d2Class(err))
			res.obs = append(res.obs, "closed Flush: "+d2Class(c.Flush(task)),
				"closed CloseWrite: "+d2Class(c.CloseWrite()), "closed Close: "+d2Class(c.Close()))
			return d2Epilogue(task, p, res)
		}, asyncio.WithBackend(backend), asyncio.WithContext(ctx))
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: Run hangs after 20 s even with its context cancelled\nplan: %v", backend, p)
	}
	if err != nil {
		res.violf("Run: %v", err)
	}
	if ctx.Err() != nil {
		res.violf("the scenario did not finish in 8 s (hang)")
	}
	for _, dr := range dirs {
		dr.check()
		slices.Sort(dr.obs) // the writer's and the reader's lines come in either order
		res.obs = append(res.obs, dr.obs...)
	}
	if err := goleak.Find(ignore); err != nil {
		res.violf("goroutine leak: %v", err)
	}
	if after := openFDs(t); after != fds {
		// Descriptors can be closed a moment after Run by nothing of
		// ours; look again before calling it a leak.
		time.Sleep(20 * time.Millisecond)
		if after = openFDs(t); after != fds {
			res.violf("fd leak: %d open before, %d after", fds, after)
		}
	}
	return res
}

// d2Check runs the scenario of seed on both backends and reports each
// violation and difference.
func d2Check(t testing.TB, seed uint64) {
	p := d2Gen(seed)
	backends := testBackends(t)
	runs := map[string]*d2Run{}
	for _, b := range backends {
		r := d2RunOn(t, p, b)
		runs[b] = r
		for _, v := range r.viol {
			t.Errorf("seed %d, %s: %s", seed, b, v)
		}
	}
	if len(backends) == 2 {
		u, e := runs["uring"].obs, runs["epoll"].obs
		if !slices.Equal(u, e) {
			var b strings.Builder
			for i := range max(len(u), len(e)) {
				var x, y string
				if i < len(u) {
					x = u[i]
				}
				if i < len(e) {
					y = e[i]
				}
				mark := " "
				if x != y {
					mark = "≠"
				}
				fmt.Fprintf(&b, "\n%s uring: %-60s epoll: %s", mark, x, y)
			}
			t.Errorf("seed %d: the backends differ:%s", seed, b.String())
		}
	}
	if os.Getenv("CORIO_DIFF_VERBOSE") != "" {
		t.Logf("plan: %v\nuring: %s", p, strings.Join(runs[backends[len(backends)-1]].obs, "\n  "))
	}
	if t.Failed() {
		t.Logf("plan: %v\nreproduce: CORIO_DIFF_SEED=%d go test -run 'TestBackendsAgree$' ./asyncio", p, seed)
	}
}

func d2Seeds(t testing.TB, n int) []uint64 {
	if s := os.Getenv("CORIO_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return []uint64{v}
	}
	if s := os.Getenv("CORIO_DIFF_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		n = v
	}
	base := uint64(time.Now().UnixNano())
	if s := os.Getenv("CORIO_DIFF_BASE"); s != "" {
		base, _ = strconv.ParseUint(s, 10, 64)
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i)
	}
	return seeds
}

// cancelledAfter runs op in a task group that Cancel stops after d (or
// once op is done), as a user cancels a blocked call.
func (dr *d2DirRun) cancelledAfter(t *asyncio.Task, d time.Duration, op func(t *asyncio.Task)) {
	gerr := asyncio.Group(t, func(g *asyncio.TaskGroup) error {
		g.Spawn(func(t *asyncio.Task) error {
			op(t)
			g.Cancel()
			return nil
		})
		g.Spawn(func(t *asyncio.Task) error {
			if t.Sleep(d) == nil {
				g.Cancel()
			}
			return nil
		})
		return nil
	})
	if gerr != nil {
		dr.violf("a group cancelled by Cancel returned %v", gerr)
	}
}

// TestBackendsAgree runs fresh random scenarios (their seeds are printed on
// failure) on both backends.
func TestBackendsAgree(t *testing.T) {
	seeds := d2Seeds(t, 24)
	if testing.Short() {
		seeds = seeds[:min(len(seeds), 6)]
	}
	for _, seed := range seeds {
		d2Check(t, seed)
		if t.Failed() {
			return
		}
	}
}

func FuzzBackendsAgree(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 5, 8, 13} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { d2Check(t, seed) })
}

// An abortive close (SO_LINGER 0, then Close) of a connection whose writer
// is blocked by a peer that does not read: the peer's next Write must see
// the reset, as it does on epoll (the kernel sends the RST at close). With
// io_uring's write-behind the descriptor stayed open until the queued bytes
// drained, so the RST waited for the peer to read them (or for
// closeLinger): the peer's Write succeeded instead.
func TestAbortWithQueuedWrites(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			res := map[string]string{}
			for _, b := range testBackends(t) {
				var got string
				err := asyncio.Run(func(task *asyncio.Task) error {
					l, a, peer, err := d2Pair(task, network)
					if err != nil {
						return err
					}
					defer l.Close()
					defer a.Close()
					defer peer.Close()
					// Fill everything until a Write blocks, then give up on it.
					buf := make([]byte, 4096)
					timedOut, err := asyncio.SkipAfter(task, 5*time.Millisecond, func(t *asyncio.Task) error {
						for {
							if _, err := a.Write(t, buf); err != nil {
								return err
							}
						}
					})
					if err != nil || !timedOut {
						return fmt.Errorf("filling: %v, %v", timedOut, err)
					}
					if err := unix.SetsockoptLinger(a.Fd(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
						return err
					}
					if err := a.Close(); err != nil {
						return err
					}
					if err := task.Sleep(5 * time.Millisecond); err != nil {
						return err
					}
					_, werr := peer.Write(task, []byte("hello"))
					if werr == nil {
						werr = peer.Flush(task)
					}
					got = d2Class(werr)
					return nil
				}, asyncio.WithBackend(b))
				if err != nil {
					t.Fatalf("%s: %v", b, err)
				}
				res[b] = got
			}
			t.Logf("peer's Write after the abort: %v", res)
			for b, got := range res {
				if got != "ECONNRESET|op=write" && got != "EPIPE|op=write" {
					t.Errorf("%s: the peer's Write+Flush after an abortive close: %s, want ECONNRESET or EPIPE", b, got)
				}
			}
			if len(res) == 2 && res["uring"] != res["epoll"] {
				t.Errorf("the peer's Write after an abortive close: uring %s, epoll %s", res["uring"], res["epoll"])
			}
		})
	}
}
