package asyncio_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// Closing the listener from another task stops accepting; a connection
// already being served must be allowed to finish (Serve returns "after
// every connection task has finished", nil "when l was closed").
func TestServeListenerCloseLetsHandlersFinish(t *testing.T) {
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		l, err := asyncio.Listen(task, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		started := false
		var handlerErr error
		return asyncio.Group(task, func(g *asyncio.TaskGroup) error {
			srv := g.Spawn(func(t *asyncio.Task) error {
				return asyncio.Serve(t, l, func(t *asyncio.Task, c *asyncio.Conn) {
					started = true
					buf := make([]byte, 100)
					n, err := c.Read(t, buf)
					if err != nil {
						handlerErr = err
						return
					}
					if err := t.Sleep(50 * time.Millisecond); err != nil { // work
						handlerErr = err
						return
					}
					_, handlerErr = c.Write(t, buf[:n])
				})
			})
			c, err := asyncio.Dial(task, "tcp", l.Addr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			c.Write(task, []byte("ping"))
			for !started {
				task.Sleep(time.Millisecond)
			}
			task.Sleep(10 * time.Millisecond) // handler is in its Sleep
			l.Close()                         // graceful: stop accepting
			got, err := io.ReadAll(c.NetConn(task))
			if err2 := srv.Wait(task); err2 != nil {
				return fmt.Errorf("Serve: %v", err2)
			}
			if string(got) != "ping" {
				return fmt.Errorf("in-flight connection cut by l.Close: client got %q (%v), handler err %v", got, err, handlerErr)
			}
			return nil
		})
	})
}
