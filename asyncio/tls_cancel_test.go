package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"go.uber.org/goleak"
)

// Scenario 3: the whole server is cancelled (WithContext) while handshakes
// and requests are in flight.
func TestCancelServerMidFlight(t *testing.T) {
	cfg, pool := tlsTestConfig(t)
	hello := clientHelloBytes(t)
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			fds := openFDs(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv := &tlsTestServer{cfg: cfg, hsTimeout: 5 * time.Second}
			addrc := make(chan string, 1)
			runErr := make(chan error, 1)
			go func() {
				runErr <- asyncio.Run(func(task *asyncio.Task) error {
					l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
					if err != nil {
						return err
					}
					defer l.Close()
					addrc <- l.Addr().String()
					return asyncio.Serve(task, l, srv.handle)
				}, asyncio.WithBackend(b), asyncio.WithContext(ctx))
			}()
			addr := <-addrc
			var wg sync.WaitGroup
			var conns []net.Conn
			var mu sync.Mutex
			keep := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
			// Stalled handshakes.
			for i := range 20 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				if i%2 == 1 {
					c.Write(hello[:len(hello)/2])
				}
				keep(c)
			}
			// Clients in the middle of a request (the body never ends),
			// and clients looping on keep-alive requests.
			cls := make(chan func(), 40)
			release := make(chan struct{})
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl, tr := tlsTestClient(pool)
					cls <- tr.CloseIdleConnections
					if i%2 == 0 {
						pr, pw := io.Pipe()
						go func() { pw.Write([]byte("partial")); <-release; pw.Close() }()
						req, _ := newR5Req(addr, pr)
						resp, err := cl.Do(req)
						if err == nil {
							resp.Body.Close()
						}
						return
					}
					for j := 0; ; j++ {
						if err := tlsTestDo(cl, addr, fmt.Sprintf("/k%d/%d", i, j), "y"); err != nil {
							return
						}
					}
				}()
			}
			time.Sleep(150 * time.Millisecond)
			start := time.Now()
			cancel()
			var err error
			select {
			case err = <-runErr:
			case <-time.After(3 * time.Second):
				t.Fatalf("Run did not return 3s after cancel")
			}
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("Run returned %v after cancel", took)
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
			close(release)
			wg.Wait()
			close(cls)
			for f := range cls {
				f()
			}
			for _, c := range conns {
				c.Close()
			}
			goleak.VerifyNone(t)
			if after := openFDs(t); after != fds {
				t.Fatalf("fd leak: %d open before, %d after", fds, after)
			}
		})
	}
}
