package asyncio_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// clientHelloBytes returns the first bytes a crypto/tls client sends.
func clientHelloBytes(t *testing.T) []byte {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}).Handshake()
	buf := make([]byte, 4096)
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// Scenario 2: slow and hostile clients while a good client is served.
func TestHostileHandshakes(t *testing.T) {
	cfg, pool := tlsTestConfig(t)
	hello := clientHelloBytes(t)
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr := l.Addr().String()
		srv := &tlsTestServer{cfg: cfg, hsTimeout: 100 * time.Millisecond}
		var good error
		var maxLat time.Duration
		err = asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error { return asyncio.Serve(t, l, srv.handle) })
			_, err := asyncio.ToThread(task, func() (struct{}, error) {
				var wg sync.WaitGroup
				var hostile []net.Conn
				var hmu sync.Mutex
				keep := func(c net.Conn) { hmu.Lock(); hostile = append(hostile, c); hmu.Unlock() }
				for round := range 3 {
					for kind := range 4 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							c, err := net.Dial("tcp", addr)
							if err != nil {
								return
							}
							switch kind {
							case 0: // never sends anything
								keep(c)
							case 1: // half a ClientHello, then stalls
								c.Write(hello[:len(hello)/2])
								keep(c)
							case 2: // closes mid-handshake
								c.Write(hello[:len(hello)/2])
								time.Sleep(time.Duration(round*20) * time.Millisecond)
								c.Close()
							case 3: // resets
								c.Write(hello)
								time.Sleep(time.Duration(round*20) * time.Millisecond)
								c.(*net.TCPConn).SetLinger(0)
								c.Close()
							}
						}()
					}
				}
				// A good client meanwhile.
				cl, tr := tlsTestClient(pool)
				for i := range 20 {
					start := time.Now()
					if err := tlsTestDo(cl, addr, fmt.Sprintf("/g%d", i), "x"); err != nil {
						good = err
						break
					}
					maxLat = max(maxLat, time.Since(start))
					time.Sleep(10 * time.Millisecond)
				}
				tr.CloseIdleConnections()
				wg.Wait()
				time.Sleep(300 * time.Millisecond) // every stalled handshake has timed out
				hmu.Lock()
				for _, c := range hostile {
					// The server closed it: the client reads EOF or a reset.
					c.SetReadDeadline(time.Now().Add(time.Second))
					if _, err := c.Read(make([]byte, 1<<16)); err == nil {
						io.Copy(io.Discard, c)
					}
					c.Close()
				}
				hmu.Unlock()
				return struct{}{}, nil
			})
			l.Close()
			return err
		})
		if err != nil {
			return err
		}
		if good != nil {
			return fmt.Errorf("good client: %w", good)
		}
		if maxLat > time.Second {
			return fmt.Errorf("good client latency %v", maxLat)
		}
		if len(srv.hsErrs) != 12 {
			return fmt.Errorf("%d handshake errors, want 12: %v", len(srv.hsErrs), srv.hsErrs)
		}
		for _, e := range srv.hsErrs {
			t.Logf("hs err: %v (%T)", e, e)
			if !errors.Is(e, context.DeadlineExceeded) && !errors.Is(e, io.EOF) && !errors.Is(e, io.ErrUnexpectedEOF) && !errors.Is(e, syscall.ECONNRESET) {
				return fmt.Errorf("handshake error %v (%T)", e, e)
			}
		}
		return nil
	})
}
