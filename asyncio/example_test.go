package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/corio-go/corio/asyncio"
)

func ExampleRun() {
	err := asyncio.Run(func(t *asyncio.Task) error {
		fmt.Println("hello from the main task")
		return t.Sleep(time.Millisecond)
	})
	fmt.Println("Run returned", err)
	// Output:
	// hello from the main task
	// Run returned <nil>
}

func ExampleGroup() {
	asyncio.Run(func(t *asyncio.Task) error {
		results := make([]int, 3)
		err := asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			for i := range results {
				g.Spawn(func(t *asyncio.Task) error {
					if err := t.Sleep(time.Duration(3-i) * time.Millisecond); err != nil {
						return err
					}
					results[i] = i * i
					return nil
				})
			}
			return nil
		})
		// Group returned: every child has finished.
		fmt.Println(results, err)
		return nil
	})
	// Output: [0 1 4] <nil>
}

func ExampleGroup_firstErrorCancelsSiblings() {
	asyncio.Run(func(t *asyncio.Task) error {
		err := asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error {
				err := t.Sleep(time.Hour)
				fmt.Println("sibling:", err)
				return err
			})
			g.Spawn(func(t *asyncio.Task) error {
				return errors.New("database unreachable")
			})
			return nil
		})
		fmt.Println("group:", err)
		return nil
	})
	// Output:
	// sibling: context canceled
	// group: database unreachable
}

func ExampleGo() {
	asyncio.Run(func(t *asyncio.Task) error {
		return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			f := asyncio.Go(g, func(t *asyncio.Task) (string, error) {
				return "computed", t.Sleep(time.Millisecond)
			})
			v, err := f.Wait(t)
			fmt.Println(v, err)
			return nil
		})
	})
	// Output: computed <nil>
}

func ExampleWithTimeout() {
	asyncio.Run(func(t *asyncio.Task) error {
		err := asyncio.WithTimeout(t, 10*time.Millisecond, func(t *asyncio.Task) error {
			return t.Sleep(time.Hour)
		})
		fmt.Println(errors.Is(err, context.DeadlineExceeded))
		return nil
	})
	// Output: true
}

func ExampleSkipAfter() {
	asyncio.Run(func(t *asyncio.Task) error {
		timedOut, err := asyncio.SkipAfter(t, 10*time.Millisecond, func(t *asyncio.Task) error {
			return t.Sleep(time.Hour)
		})
		fmt.Println(timedOut, err)
		return nil
	})
	// Output: true <nil>
}

func ExampleShield() {
	asyncio.Run(func(t *asyncio.Task) error {
		asyncio.WithTimeout(t, 5*time.Millisecond, func(t *asyncio.Task) error {
			err := asyncio.Shield(t, func(t *asyncio.Task) error {
				// The outer deadline passes during this sleep, but the
				// shield keeps it out: cleanup finishes.
				return t.Sleep(20 * time.Millisecond)
			})
			fmt.Println("shielded:", err)
			fmt.Println("after the shield:", t.Checkpoint())
			return nil
		})
		return nil
	})
	// Output:
	// shielded: <nil>
	// after the shield: context deadline exceeded
}

func ExampleListen() {
	asyncio.Run(func(t *asyncio.Task) error {
		l, err := asyncio.Listen(t, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error {
				c, err := l.Accept(t)
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write(t, []byte("hello, client\n"))
				return err
			})
			c, err := asyncio.Dial(t, "tcp", l.Addr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			msg, err := io.ReadAll(c.NetConn(t))
			fmt.Printf("%q %v\n", msg, err)
			return nil
		})
	})
	// Output: "hello, client\n" <nil>
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "corio-example")
	defer os.RemoveAll(dir)
	asyncio.Run(func(t *asyncio.Task) error {
		f, err := asyncio.Open(t, filepath.Join(dir, "note.txt"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		f.Write(t, []byte("written through the loop"))
		buf := make([]byte, 7)
		n, err := f.ReadAt(t, buf, 8)
		fmt.Println(string(buf[:n]), err)
		return nil
	})
	// Output: through <nil>
}

func ExampleBackend() {
	asyncio.Run(func(t *asyncio.Task) error {
		fmt.Println(asyncio.Backend(t))
		return nil
	}, asyncio.WithBackend("epoll"))
	// Output: epoll
}

// A server on two loops (two threads, a ring each) sharing one port: both
// listen on 127.0.0.1:0 and get the same port, and the kernel spreads the
// connections between them.
func ExampleRunLoops() {
	var mu sync.Mutex
	ports := map[int]int{} // loop index → port
	err := asyncio.RunLoops(2, func(t *asyncio.Task) error {
		l, err := asyncio.Listen(t, "tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		mu.Lock()
		ports[asyncio.LoopIndex(t)] = l.Addr().(*net.TCPAddr).Port
		mu.Unlock()
		// A server would go on with asyncio.Serve(t, l, handle).
		return nil
	})
	fmt.Println(err, len(ports), ports[0] == ports[1])
	// Output: <nil> 2 true
}
