package asyncio

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"sync"

	"github.com/corio-go/corio/sched"
	"golang.org/x/sys/unix"
)

// RunLoops runs main on n loops at once, each a Run of its own: its own OS
// thread, backend (one io_uring each) and tasks. This is how a corio server
// uses several cores: thread-per-core, as seastar, glommio and monoio scale,
// with n copies of the program that share nothing but the process (data
// they do share needs Go's own synchronisation, held only briefly: a task
// that blocks on a mutex stalls its loop). LoopIndex tells main which loop
// it runs on. n < 1 means runtime.GOMAXPROCS(0); the loops run in parallel
// only as far as GOMAXPROCS allows.
//
// Inside RunLoops, Listen binds TCP listeners with SO_REUSEPORT, so that
// each loop listens on the same address and the kernel spreads the
// incoming connections among the loops (the first bind of an address
// still fails when another socket, of another process, listens there, as
// Listen does: a second copy of a server does not silently share its
// port); when several loops listen on the
// same address with port 0, they all get the port the first one got (the
// k-th such listener of each loop shares the k-th port). A listener closed
// while the others go on loses the connections the kernel had already
// queued to it (they are reset): close them together. (A Unix socket
// cannot be shared that way: listen on one loop.)
//
// As in a task group, the first loop to fail cancels the others, and
// RunLoops returns after every loop has ended: with that error (when
// several failed, an error that unwraps to each of them), or with the
// cancellation error when the context of WithContext was done, or nil. A
// panic in a loop is re-raised by RunLoops once the other loops have ended.
// The options apply to every loop; a loop that deadlocks reports it, and so
// fails, even though the other loops could still cancel it.
func RunLoops(n int, main func(t *Task) error, opts ...Option) error {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	var cfg sched.Config
	for _, o := range opts {
		o(&cfg)
	}
	parent := cfg.Context
	if parent == nil {
		parent = context.Background()
	}
	if parent.Done() == nil {
		// The caller's context can never be done (none, or one that
		// only carries values, which Run would not wait on): only
		// RunLoops can cancel the loops' context, and that must not
		// hold off a loop's deadlock report.
		cfg.ContextKeepsDeadlocks = true
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	set := &loopSet{ports: make(map[string][]uint16)}

	var (
		mu       sync.Mutex
		failures []error // in the order the loops failed
		cancels  []error // cancellation errors, after ctx was done
		panicked any
	)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.Context = context.WithValue(ctx, loopKey{}, &loopInfo{set: set, index: i, listens: make(map[string]int)})
			var err error
			normal := false
			defer func() {
				mu.Lock()
				defer mu.Unlock()
				if !normal {
					// Every loop's panic is recovered here (one more would
					// end the process from this goroutine); the first is
					// re-raised.
					if r := recover(); panicked == nil {
						panicked = r
					}
					cancel()
					return
				}
				switch {
				case err == nil:
				case IsCancellation(err) && ctx.Err() != nil:
					cancels = append(cancels, err)
				default:
					failures = append(failures, err)
					cancel()
				}
			}()
			err = sched.Run(c, main)
			normal = true
		}()
	}
	wg.Wait()
	switch {
	case panicked != nil:
		panic(panicked)
	case len(failures) == 1:
		return failures[0]
	case len(failures) > 1:
		return &sched.MultiError{Errs: failures}
	case len(cancels) > 0 && parent.Err() != nil:
		return cancels[0]
	}
	return nil
}

// LoopIndex returns the index of the task's loop among those RunLoops
// started (0 to n-1), and 0 under Run.
func LoopIndex(t *Task) int {
	if li := loopInfoOf(t); li != nil {
		return li.index
	}
	return 0
}

// loopKey is the context key of a loop's loopInfo.
type loopKey struct{}

// loopInfo is what a loop of RunLoops knows of its set.
type loopInfo struct {
	set     *loopSet
	index   int
	listens map[string]int // listeners this loop made, by "network address"; guarded by set.mu
}

// loopSet is the state the loops of one RunLoops share.
type loopSet struct {
	mu    sync.Mutex          // held by Listen around a bind: briefly
	ports map[string][]uint16 // "network address" → the ports its k-th listeners got
}

func loopInfoOf(t *Task) *loopInfo {
	li, _ := t.Value(loopKey{}).(*loopInfo)
	return li
}

// listenShared binds a TCP listener of a RunLoops loop: with SO_REUSEPORT,
// and, for port 0, the k-th such listener of a loop on the port the k-th
// one of another loop got for the same address (two listeners of one loop
// get two ports, as under Run).
func (li *loopInfo) listenShared(t *Task, network, address string, ep endpoint) (*Listener, error) {
	s := li.set
	s.mu.Lock()
	defer s.mu.Unlock()
	key := network + " " + address
	k := li.listens[key] // this is the loop's k-th listener of address
	ports := s.ports[key]
	first := k == len(ports) // no other loop has its k-th one yet
	switch {
	case !first && ep.ap.Port() == 0:
		ep.ap = netip.AddrPortFrom(ep.ap.Addr(), ports[k])
	case first && ep.ap.Port() != 0:
		// SO_REUSEPORT would also let this bind join the listeners of
		// another process of the same user (a second copy of the
		// server), which would then take part of its connections: the
		// first bind of an address checks, without SO_REUSEPORT, that
		// nobody listens there, as a plain Listen fails.
		if err := probeFree(t, network, ep); err != nil {
			return nil, err
		}
	}
	l, err := listenOn(t, network, ep, true)
	if err != nil {
		return nil, err
	}
	if a, ok := l.addr.(*net.TCPAddr); ok {
		li.listens[key] = k + 1
		if first {
			s.ports[key] = append(ports, uint16(a.Port))
		}
	}
	return l, nil
}

// probeFree binds, and closes at once, a socket on ep without SO_REUSEPORT:
// it fails as Listen would when someone else listens there.
func probeFree(t *Task, network string, ep endpoint) error {
	s, _, err := bindSocket(t, network, ep, false)
	if err == nil {
		unix.Close(s)
	}
	return err
}
