// Package asyncio is corio's user API: Run, task groups, timeouts, sockets,
// files, synchronization primitives and interop with ordinary goroutines.
//
// Every blocking function takes the calling task explicitly as its first
// argument, the way a context.Context would be passed. A *Task implements
// context.Context. Errors wrap Go's own sentinels (io.EOF, net.ErrClosed,
// os.ErrDeadlineExceeded, context.Canceled, context.DeadlineExceeded), so
// errors.Is works as with package net.
package asyncio
