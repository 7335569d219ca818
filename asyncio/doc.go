// Package asyncio is corio's user API: Run, task groups, timeouts, sockets,
// files, synchronization primitives and interop with ordinary goroutines.
//
// Every blocking function takes the calling task explicitly as its first
// argument, the way a context.Context would be passed. A *Task implements
// context.Context. Errors wrap Go's own sentinels (io.EOF, net.ErrClosed,
// os.ErrDeadlineExceeded, context.Canceled, context.DeadlineExceeded), so
// errors.Is works as with package net.
//
// # Cores
//
// Run runs one loop: one OS thread, one io_uring (or epoll set), every task
// of the program on it. A server uses more cores with RunLoops, which runs
// the same main on several loops at once (thread-per-core) and lets their
// TCP listeners share a port with SO_REUSEPORT, the kernel spreading the
// connections among them. Tasks of different loops share nothing; the
// synchronization primitives below are for tasks of one loop.
//
// # Synchronization
//
// Event, Lock, Semaphore and Queue are for tasks of one loop. They are fair
// (waiters are served first come, first served, and a released lock,
// permit, item or slot is handed directly to the first waiter, so a
// newcomer cannot barge in), and every wait is cancellable. A wake-up that
// happened before a cancellation wins: the waiter gets what it was handed,
// and the cancellation shows at its next blocking call. Nothing is ever
// lost. The zero Event and Lock are ready to use.
package asyncio
