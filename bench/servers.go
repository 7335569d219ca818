package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/cloudwego/netpoll"
	"github.com/corio-go/corio/asyncio"
)

// bufSize is every Go server's per-connection read buffer, the same for
// all so that memory per connection compares like with like.
const bufSize = 16 << 10

// serve runs one echo server until SIGTERM. It is what the bench runs in
// its child processes (-serve).
func serve(kind, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	switch kind {
	case "corio-uring", "corio-epoll":
		return serveCorio(ctx, addr, asyncio.WithBackend(kind[len("corio-"):]))
	case "corio-uring-sync":
		return serveCorio(ctx, addr, asyncio.WithBackend("uring"), asyncio.WithSyncWrites())
	case "net":
		return serveNet(ctx, addr)
	case "netpoll":
		return serveNetpoll(ctx, addr)
	case "nethttp":
		return serveNetHTTP(ctx, addr)
	}
	return fmt.Errorf("unknown server %q", kind)
}

func serveCorio(ctx context.Context, addr string, opts ...asyncio.Option) error {
	err := asyncio.Run(func(t *asyncio.Task) error {
		l, err := asyncio.Listen(t, "tcp", addr)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		defer func() {
			// The loop's counters, for syscalls per message.
			st := t.Loop().Stats()
			fmt.Fprintf(os.Stderr, "corio-stats syscalls=%d submitted=%d enters=%d iterations=%d resumes=%d completions=%d\n",
				st.Syscalls, st.Submitted, st.Enters, st.Iterations, st.Resumes, st.Completions)
		}()
		return asyncio.Serve(t, l, func(t *asyncio.Task, c *asyncio.Conn) {
			buf := make([]byte, bufSize)
			for {
				n, err := c.Read(t, buf)
				if err != nil {
					return
				}
				if _, err := c.Write(t, buf[:n]); err != nil {
					return
				}
			}
		})
	}, append(opts, asyncio.WithContext(ctx))...)
	if asyncio.IsCancellation(err) {
		return nil
	}
	return err
}

func serveNet(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			return nil
		}
		go func() {
			defer c.Close()
			buf := make([]byte, bufSize)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

func serveNetpoll(ctx context.Context, addr string) error {
	l, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return err
	}
	loop, err := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		r, w := c.Reader(), c.Writer()
		n := r.Len()
		if n == 0 {
			return nil
		}
		p, err := r.Next(n)
		if err != nil {
			return err
		}
		if _, err := w.WriteBinary(p); err != nil {
			return err
		}
		// WriteBinary may reference p: flush before releasing it.
		err = w.Flush()
		r.Release()
		return err
	})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	go func() {
		<-ctx.Done()
		loop.Shutdown(context.Background())
	}()
	if err := loop.Serve(l); err != nil && err != io.EOF {
		return nil
	}
	return nil
}
