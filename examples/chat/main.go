// Command chat is a broadcast chat room on corio: every line a client
// sends goes to everyone else in the room, prefixed with the sender's name.
//
//	go run ./examples/chat -addr localhost:8008
//	nc localhost 8008        # in several terminals; the first line is your name
//
// The first line a client sends is its name; "/quit" (or the end of its
// input) leaves, after what the room said until then has been sent to it.
//
// Flags: -addr host:port (default localhost:8008), -backend
// auto|uring|epoll, -queue (each client's outgoing queue, in messages).
// Ctrl-C (or SIGTERM) cancels the server task; every connection is closed and the
// program exits cleanly.
//
// Structure: one hub task owns the room (the set of clients) and is fed
// by one asyncio.Queue of events (join, say, leave). Each client has a
// reader task, which turns its lines into events, and a writer task, which
// sends it what is in its own bounded outgoing queue.
//
// Slow clients: the hub never waits for a client. It hands each message to
// every other client's queue without blocking; when a client's queue is
// full (the client has not read the last -queue messages, and its socket
// buffers are full too), that client is disconnected and the room is told
// "* NAME was disconnected (too slow)". Everyone else keeps chatting at
// their own pace. The hub handles one event per turn of the loop, so the
// writers it wakes run in between: a client that keeps up is never
// dropped, however fast the room talks, and a sender that floods the room
// is slowed down instead (its reader waits on the hub's full queue).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/corio-go/corio/asyncio"
)

const (
	maxLine    = 4096            // longer lines are cut into pieces of this size
	maxName    = 32              // bytes of a name
	nameWait   = 2 * time.Minute // time to type one's name
	drainWait  = 5 * time.Second // time to send a leaving client what is queued for it
	eventQueue = 1024            // the hub's queue
)

func main() {
	addr := flag.String("addr", "localhost:8008", "listen address host:port")
	backend := flag.String("backend", "auto", "I/O backend: auto, uring or epoll")
	queue := flag.Int("queue", 64, "messages queued for a client before it is disconnected as too slow")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := asyncio.Run(func(t *asyncio.Task) error {
		return newRoom(*queue).serve(t, *addr, nil)
	}, asyncio.WithBackend(*backend), asyncio.WithContext(ctx))
	if err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("chat server failed", "err", err)
		os.Exit(1)
	}
	slog.Info("chat server stopped")
}

// room is the chat room. Only the hub task touches clients.
type room struct {
	events  *asyncio.Queue[event]
	clients map[*client]bool
	queue   int // capacity of each client's outgoing queue
}

// client is one member of the room.
type client struct {
	name string
	conn *asyncio.Conn
	out  *asyncio.Queue[[]byte] // lines waiting to be sent to this client
}

type eventKind int

const (
	join eventKind = iota
	say
	leave
)

// event is what a client's reader tells the hub.
type event struct {
	kind eventKind
	from *client
	line []byte // for say: the message, without its newline
}

func newRoom(queue int) *room {
	return &room{
		events:  asyncio.NewQueue[event](eventQueue),
		clients: make(map[*client]bool),
		queue:   max(queue, 1),
	}
}

// serve listens on addr and runs the room until t is cancelled. If ready
// is not nil it receives the listener's address once listening (tests use
// it).
func (r *room) serve(t *asyncio.Task, addr string, ready func(string)) error {
	l, err := asyncio.Listen(t, "tcp", addr)
	if err != nil {
		return err
	}
	defer l.Close()
	slog.Info("chat server listening", "addr", l.Addr().String(), "backend", asyncio.Backend(t))
	if ready != nil {
		ready(l.Addr().String())
	}
	return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
		g.Spawn(r.hub)
		// A task per client; accepting goes on after EMFILE and the like.
		err := asyncio.Serve(t, l, func(t *asyncio.Task, conn *asyncio.Conn) { r.handle(t, conn) })
		g.Cancel() // stop the hub, if the listener was closed
		return err
	})
}

// hub owns the room: it applies every event in order and hands messages
// to the clients' queues, never waiting for any client.
func (r *room) hub(t *asyncio.Task) error {
	for {
		ev, err := r.events.Get(t)
		if err != nil {
			return err
		}
		c := ev.from
		switch ev.kind {
		case join:
			r.clients[c] = true
			c.out.Put(t, r.whoIsHere(c)) // its queue is new: Put does not wait
			slog.Info("joined", "name", c.name, "peer", c.conn.RemoteAddr().String(), "clients", len(r.clients))
			r.broadcast(t, c, fmt.Appendf(nil, "* %s joined (%d here)\n", c.name, len(r.clients)))
		case say:
			msg := make([]byte, 0, len(c.name)+len(ev.line)+3)
			msg = append(append(append(append(msg, c.name...), ": "...), ev.line...), '\n')
			r.broadcast(t, c, msg)
		case leave:
			if !r.clients[c] {
				break // already dropped
			}
			delete(r.clients, c)
			c.out.Close()
			slog.Info("left", "name", c.name, "clients", len(r.clients))
			r.broadcast(t, c, fmt.Appendf(nil, "* %s left\n", c.name))
		}
		// One event per turn of the loop: the writers woken by this one
		// get to run (and their writes to complete) before the next. A
		// client that keeps up is then never dropped, whatever the rate of
		// the room, and a flooding sender is slowed down instead: its
		// reader waits on the full event queue, so its TCP window closes.
		if err := t.Checkpoint(); err != nil {
			return err
		}
	}
}

// whoIsHere lists the other members, by name, for a client that just
// joined.
func (r *room) whoIsHere(c *client) []byte {
	var names []string
	for o := range r.clients {
		if o != c {
			names = append(names, o.name)
		}
	}
	if len(names) == 0 {
		return []byte("* here: nobody else yet\n")
	}
	slices.Sort(names)
	return []byte("* here: " + strings.Join(names, " ") + "\n")
}

// broadcast queues msg for every client but from. A client whose queue is
// full is disconnected, and the others are told (which may find more slow
// clients: the loop goes on until a round drops nobody).
func (r *room) broadcast(t *asyncio.Task, from *client, msg []byte) {
	for len(msg) > 0 {
		var dropped []byte
		for c := range r.clients {
			if c == from {
				continue
			}
			if c.out.Len() < c.out.Cap() {
				c.out.Put(t, msg) // room in the queue: Put does not wait
				continue
			}
			delete(r.clients, c)
			c.out.Close()
			c.conn.Close() // its reader and writer fail with net.ErrClosed
			slog.Warn("disconnected a slow client", "name", c.name, "queued", c.out.Len())
			dropped = fmt.Appendf(dropped, "* %s was disconnected (too slow)\n", c.name)
		}
		msg, from = dropped, nil
	}
}

// handle runs one client: it asks for a name, joins the room, then runs
// the client's reader (in this task) and writer (in a child task) until
// the client leaves, is dropped, or the server stops.
func (r *room) handle(t *asyncio.Task, conn *asyncio.Conn) error {
	defer conn.Close()
	peer := conn.RemoteAddr().String()
	lines := newLineReader(conn)
	if _, err := conn.Write(t, []byte("Welcome to the corio chat! Your name?\n")); err != nil {
		return quiet(peer, err)
	}
	var name []byte
	if err := asyncio.WithTimeout(t, nameWait, func(t *asyncio.Task) error {
		for len(name) == 0 {
			line, err := lines.next(t)
			if err != nil {
				return err
			}
			name = bytes.TrimSpace(line)
		}
		return nil
	}); err != nil {
		return quiet(peer, err)
	}
	if len(name) > maxName {
		// Cut at a character boundary, not inside a UTF-8 sequence.
		n := maxName
		for n > 0 && !utf8.RuneStart(name[n]) {
			n--
		}
		name = name[:n]
	}
	c := &client{name: string(clean(name)), conn: conn, out: asyncio.NewQueue[[]byte](r.queue)}
	if err := r.events.Put(t, event{kind: join, from: c}); err != nil {
		return err
	}
	left := false
	err := asyncio.Group(t, func(g *asyncio.TaskGroup) error {
		w := asyncio.Go(g, func(t *asyncio.Task) (struct{}, error) { return struct{}{}, writer(t, c) })
		err := r.read(t, c, lines)
		if err == nil {
			// A clean leave (/quit, or the end of the client's input):
			// once the hub has the event it closes the client's queue,
			// and the writer ends after sending what was queued before
			// ("* here: ..." to a client that quit at once), given up to
			// drainWait for it.
			if err = r.events.Put(t, event{kind: leave, from: c}); err == nil {
				left = true
				asyncio.SkipAfter(t, drainWait, func(t *asyncio.Task) error {
					_, err := w.Wait(t)
					return err
				})
			}
		}
		g.Cancel() // stop the writer if it still runs
		return err
	})
	if !left {
		// Tell the hub, outside the group (whose scope may be cancelled).
		// If the hub dropped this client, it has already closed the queue
		// and the connection, and it ignores the event.
		if perr := r.events.Put(t, event{kind: leave, from: c}); perr != nil && err == nil {
			err = perr
		}
	}
	return quiet(peer, err)
}

// read turns the client's lines into events for the hub, until the client
// closes, types /quit, or its connection fails.
func (r *room) read(t *asyncio.Task, c *client, lines *lineReader) error {
	for {
		line, err := lines.next(t)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, " \t")
		switch {
		case len(line) == 0:
			continue
		case string(line) == "/quit":
			return nil
		}
		if err := r.events.Put(t, event{kind: say, from: c, line: clean(line)}); err != nil {
			return err
		}
	}
}

// clean returns a copy of b with control characters (terminal escape
// sequences, for one) replaced by '?'.
func clean(b []byte) []byte {
	out := make([]byte, len(b))
	for i, ch := range b {
		if (ch < ' ' && ch != '\t') || ch == 0x7f {
			ch = '?'
		}
		out[i] = ch
	}
	return out
}

// writer sends the client what the hub queued for it, until its queue is
// closed and drained. Whatever is queued when it wakes goes out in one
// write (up to 64 KiB).
func writer(t *asyncio.Task, c *client) error {
	var buf []byte
	for {
		msg, err := c.out.Get(t)
		if errors.Is(err, asyncio.ErrQueueClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		buf = append(buf[:0], msg...)
		for c.out.Len() > 0 && len(buf) < 64<<10 {
			msg, err := c.out.Get(t) // an item is there: Get does not wait
			if err != nil {
				break
			}
			buf = append(buf, msg...)
		}
		if _, err := c.conn.Write(t, buf); err != nil {
			return err
		}
	}
}

// quiet logs a client's error and keeps it from the server's group,
// unless it is the server's own cancellation.
func quiet(peer string, err error) error {
	switch {
	case err == nil:
	case asyncio.IsCancellation(err) && !errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, net.ErrClosed):
		slog.Debug("connection closed", "peer", peer)
	default:
		slog.Info("client error", "peer", peer, "err", err.Error())
	}
	return nil
}

// lineReader splits a connection's input into lines; a line longer than
// maxLine comes in pieces of maxLine bytes.
type lineReader struct {
	conn       *asyncio.Conn
	buf        []byte
	start, end int
}

func newLineReader(conn *asyncio.Conn) *lineReader {
	return &lineReader{conn: conn, buf: make([]byte, maxLine)}
}

// next returns the next line without its "\n" or "\r\n". The slice is
// valid until the next call.
func (lr *lineReader) next(t *asyncio.Task) ([]byte, error) {
	for {
		if i := bytes.IndexByte(lr.buf[lr.start:lr.end], '\n'); i >= 0 {
			line := lr.buf[lr.start : lr.start+i]
			lr.start += i + 1
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
		if lr.start == 0 && lr.end == len(lr.buf) {
			line := lr.buf[:lr.end]
			lr.start = lr.end
			return line, nil
		}
		if lr.start > 0 {
			lr.end = copy(lr.buf, lr.buf[lr.start:lr.end])
			lr.start = 0
		}
		n, err := lr.conn.Read(t, lr.buf[lr.end:])
		if err != nil {
			if err == io.EOF && lr.end > 0 {
				line := lr.buf[:lr.end] // a last line without a newline
				lr.end = 0
				return line, nil
			}
			return nil, err
		}
		lr.end += n
	}
}
