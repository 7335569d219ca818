package asyncio_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// Scenario 1: many concurrent real crypto/tls + net/http clients.
func TestManyTLSClients(t *testing.T) {
	cfg, pool := tlsTestConfig(t)
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr := l.Addr().String()
		srv := &tlsTestServer{cfg: cfg, hsTimeout: 2 * time.Second}
		const conns, reqs = 120, 4
		var (
			mu   sync.Mutex
			errs []error
		)
		err = asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error { return asyncio.Serve(t, l, srv.handle) })
			_, err := asyncio.ToThread(task, func() (struct{}, error) {
				var wg sync.WaitGroup
				for i := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						cl, tr := tlsTestClient(pool)
						defer tr.CloseIdleConnections()
						for j := range reqs {
							if err := tlsTestDo(cl, addr, fmt.Sprintf("/c%d/r%d", i, j), fmt.Sprintf("body-%d-%d", i, j)); err != nil {
								mu.Lock()
								errs = append(errs, err)
								mu.Unlock()
								return
							}
						}
					}()
				}
				wg.Wait()
				return struct{}{}, nil
			})
			l.Close()
			return err
		})
		if err != nil {
			return err
		}
		if len(errs) > 0 {
			return fmt.Errorf("%d client errors, first: %w", len(errs), errs[0])
		}
		if srv.served != conns*reqs {
			return fmt.Errorf("served %d, want %d", srv.served, conns*reqs)
		}
		if len(srv.hsErrs) > 0 {
			return errors.Join(srv.hsErrs...)
		}
		return nil
	})
}
