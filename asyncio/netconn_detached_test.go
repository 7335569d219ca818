package asyncio_test

import (
	"net"
	"sync"
	"testing"

	"github.com/corio-go/corio/asyncio"
)

// NetConn's Close "may be called from any goroutine": after Run has ended,
// two goroutines closing the same net.Conn at once (crypto/tls's AfterFunc
// goroutine and the user's) must close the descriptor once.
func TestConcurrentCloseAfterRun(t *testing.T) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			fds := openFDs(t)
			var ncs []net.Conn
			var raw []*asyncio.Conn
			err := asyncio.Run(func(task *asyncio.Task) error {
				for range 20 {
					c, s, err := tcpPair(task)
					if err != nil {
						return err
					}
					raw = append(raw, s)
					ncs = append(ncs, c.NetConn(task))
				}
				return nil
			}, asyncio.WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			for _, nc := range ncs {
				var wg sync.WaitGroup
				for range 2 {
					wg.Add(1)
					go func() { defer wg.Done(); nc.Close() }()
				}
				wg.Wait()
			}
			for _, s := range raw {
				s.Close()
			}
			if after := openFDs(t); after != fds {
				t.Fatalf("fd leak: %d open before, %d after", fds, after)
			}
		})
	}
}
