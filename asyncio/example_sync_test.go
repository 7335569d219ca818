package asyncio_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/corio-go/corio/asyncio"
)

func ExampleEvent() {
	asyncio.Run(func(t *asyncio.Task) error {
		var ready asyncio.Event
		return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error {
				if err := ready.Wait(t); err != nil {
					return err
				}
				fmt.Println("worker: go!")
				return nil
			})
			fmt.Println("main: setting up")
			ready.Set()
			return nil
		})
	})
	// Output:
	// main: setting up
	// worker: go!
}

func ExampleLock() {
	asyncio.Run(func(t *asyncio.Task) error {
		var mu asyncio.Lock
		balance := 0
		return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			for range 3 {
				g.Spawn(func(t *asyncio.Task) error {
					if err := mu.Lock(t); err != nil {
						return err
					}
					defer mu.Unlock()
					b := balance
					if err := t.Sleep(time.Millisecond); err != nil { // other tasks run here
						return err
					}
					balance = b + 10
					fmt.Println("balance", balance)
					return nil
				})
			}
			return nil
		})
	})
	// Output:
	// balance 10
	// balance 20
	// balance 30
}

func ExampleSemaphore() {
	asyncio.Run(func(t *asyncio.Task) error {
		sem := asyncio.NewSemaphore(2) // at most two downloads at once
		active, peak := 0, 0
		err := asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			for range 6 {
				g.Spawn(func(t *asyncio.Task) error {
					if err := sem.Acquire(t); err != nil {
						return err
					}
					defer sem.Release()
					active++
					peak = max(peak, active)
					defer func() { active-- }()
					return t.Sleep(time.Millisecond)
				})
			}
			return nil
		})
		fmt.Println("peak concurrency:", peak, err)
		return nil
	})
	// Output: peak concurrency: 2 <nil>
}

func ExampleQueue() {
	asyncio.Run(func(t *asyncio.Task) error {
		q := asyncio.NewQueue[string](2)
		return asyncio.Group(t, func(g *asyncio.TaskGroup) error {
			g.Spawn(func(t *asyncio.Task) error {
				defer q.Close()
				for _, job := range []string{"a", "b", "c"} {
					if err := q.Put(t, job); err != nil {
						return err
					}
				}
				return nil
			})
			for {
				job, err := q.Get(t)
				if errors.Is(err, asyncio.ErrQueueClosed) {
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Println("job", job)
			}
		})
	})
	// Output:
	// job a
	// job b
	// job c
}

func ExampleToThread() {
	asyncio.Run(func(t *asyncio.Task) error {
		// A blocking call runs on a goroutine; the loop keeps serving
		// other tasks meanwhile.
		n, err := asyncio.ToThread(t, func() (int, error) {
			time.Sleep(5 * time.Millisecond)
			return 42, nil
		})
		fmt.Println(n, err)
		return nil
	})
	// Output: 42 <nil>
}

func ExampleRecv() {
	results := make(chan string, 1)
	go func() { results <- "from a goroutine" }()
	asyncio.Run(func(t *asyncio.Task) error {
		v, ok, err := asyncio.Recv(t, results)
		fmt.Println(v, ok, err)
		return nil
	})
	// Output: from a goroutine true <nil>
}
