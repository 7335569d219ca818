// Command fetch is giambio's first example on corio: a client that talks to
// several servers at once, one task per address in one task group, each
// under its own timeout, and reports what every address answered.
//
//	go run ./examples/fetch example.com:80 localhost:8080 localhost:9
//	go run ./examples/fetch -failfast -timeout 2s localhost:8080 localhost:9
//
// For each address it connects, sends the -send bytes (default an HTTP/1.0
// GET; the flag takes Go escapes such as \r\n), reads the response until
// the server closes or -max bytes arrived, and prints one report line: ok,
// error, timeout or cancelled, with the bytes read and the first line of
// the response (or the error).
//
// The timeout is a cancel scope around each connection (asyncio.WithTimeout):
// when it fires, whatever that task is blocked in (connect, write or read)
// fails, and only that task. With -failfast the first failure is returned
// to the group, which cancels every sibling still running: they are
// reported as cancelled. Ctrl-C cancels them all the same way.
//
// Flags: -send, -max, -timeout, -failfast, -backend auto|uring|epoll.
// The addresses are the arguments (there is no -addr: fetch listens on
// nothing).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// options are the flags that shape each fetch.
type options struct {
	send     []byte
	max      int
	timeout  time.Duration
	failfast bool
}

func main() {
	send := flag.String("send", `GET / HTTP/1.0\r\n\r\n`, "bytes to send after connecting (Go escapes: \\r, \\n, \\t, \\xHH)")
	max := flag.Int("max", 4096, "read at most this many bytes of each response")
	timeout := flag.Duration("timeout", 5*time.Second, "time limit per address: connect, send and read")
	failfast := flag.Bool("failfast", false, "cancel every other fetch after the first failure")
	backend := flag.String("backend", "auto", "I/O backend: auto, uring or epoll")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: fetch [flags] host:port...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *max <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	o := options{send: unescape(*send), max: *max, timeout: *timeout, failfast: *failfast}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var results []result
	err := asyncio.Run(func(t *asyncio.Task) error {
		slog.Info("fetching", "addresses", flag.NArg(), "backend", asyncio.Backend(t))
		results = fetchAll(t, flag.Args(), o)
		return nil
	}, asyncio.WithBackend(*backend), asyncio.WithContext(ctx))
	if err != nil {
		slog.Error("fetch failed", "err", err)
		os.Exit(1)
	}
	if report(os.Stdout, results) > 0 {
		os.Exit(1)
	}
}

// unescape interprets Go escapes in s (a flag typed in a shell holds a
// backslash and an 'r', not a CR); s is used as it is if it does not parse.
func unescape(s string) []byte {
	u, err := strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`)
	if err != nil {
		return []byte(s)
	}
	return []byte(u)
}

// result is what one address gave.
type result struct {
	addr    string
	status  string // ok, error, timeout or cancelled
	n       int    // response bytes read
	head    []byte // the response's first bytes (up to -max)
	err     error
	elapsed time.Duration
}

// fetchAll fetches every address concurrently, one task each in one
// group, and returns the results in the order of addrs. It returns when
// every task has finished: the group guarantees it.
func fetchAll(t *asyncio.Task, addrs []string, o options) []result {
	results := make([]result, len(addrs))
	err := asyncio.Group(t, func(g *asyncio.TaskGroup) error {
		for i, addr := range addrs {
			g.Spawn(func(t *asyncio.Task) error {
				r := &results[i]
				r.addr = addr
				start := t.Now()
				err := asyncio.WithTimeout(t, o.timeout, func(t *asyncio.Task) error {
					return fetch(t, addr, o, r)
				})
				r.elapsed = t.Now().Sub(start)
				r.err = err
				switch {
				case err == nil:
					r.status = "ok"
				case errors.Is(err, context.DeadlineExceeded):
					r.status = "timeout"
				case errors.Is(err, context.Canceled):
					r.status = "cancelled"
					return err // not a failure of ours: the group ignores its own cancellation
				default:
					r.status = "error"
				}
				slog.Info("done", "addr", addr, "status", r.status, "bytes", r.n, "elapsed", r.elapsed.Round(time.Microsecond))
				if err != nil && o.failfast {
					return err // the group cancels the siblings
				}
				return nil
			})
		}
		return nil
	})
	if err != nil && !asyncio.IsCancellation(err) {
		slog.Warn("stopped at the first failure (-failfast)", "err", err)
	}
	return results
}

// fetch connects to addr, sends o.send and reads the response into r,
// until EOF or o.max bytes.
func fetch(t *asyncio.Task, addr string, o options, r *result) error {
	conn, err := asyncio.Dial(t, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if len(o.send) > 0 {
		if _, err := conn.Write(t, o.send); err != nil {
			return err
		}
	}
	buf := make([]byte, o.max)
	for r.n < len(buf) {
		n, err := conn.Read(t, buf[r.n:])
		r.n += n
		if err == io.EOF {
			break
		}
		if err != nil {
			r.head = buf[:r.n]
			return err
		}
	}
	r.head = buf[:r.n]
	return nil
}

// report prints one line per result and returns how many did not succeed.
func report(w io.Writer, results []result) (failed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tRESULT\tBYTES\tTIME\tDETAIL")
	for _, r := range results {
		detail := ""
		if r.err != nil {
			detail = r.err.Error()
			failed++
		} else {
			line, _, _ := bytes.Cut(r.head, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) > 60 {
				line = append(line[:60:60], "..."...)
			}
			detail = strconv.Quote(string(line))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%s\n", r.addr, r.status, r.n, r.elapsed.Round(10*time.Microsecond), detail)
	}
	tw.Flush()
	return failed
}
