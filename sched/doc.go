// Package sched is corio's kernel: one loop per OS thread that runs tasks as
// coroutines, turns their traps into I/O operations on a Backend, batches
// submissions, reaps completions and resumes the waiting tasks.
//
// # Loop
//
// Run locks a new goroutine to its OS thread, sets up the backend there (an
// io_uring created with SINGLE_ISSUER accepts submissions only from that
// thread) and runs the root task. Each iteration runs every ready task until
// it traps, then makes ONE backend call that submits everything the tasks
// asked for and waits for at least one completion (or the nearest timer),
// then reaps every completion and makes the owning tasks ready. Stats counts
// iterations, enters, syscalls, operations and completions, so syscalls per
// operation can be measured.
//
// # Tasks and traps
//
// A task is a coroutine (iter.Pull, the runtime's coroutine switch: about
// 100 ns per resume+yield, where a hand-off to a goroutine from a
// thread-locked loop costs microseconds). A task suspends only by trapping:
// Task.Do with its embedded operation record, a WaitQueue, a sleep, a group
// join, or WaitExternal. The record's user_data in the kernel is an index
// and generation into the loop's in-flight table, never a pointer, so a
// stale completion is recognised and dropped. A trap allocates nothing.
//
// A task must never make a blocking Go call (channel operation, mutex,
// time.Sleep, blocking syscall, os or net I/O, a long computation): the
// whole loop stalls with it. Use the loop's own operations, or
// WaitExternal (asyncio's ToThread and Recv) for work that must block.
//
// # Write-behind sends
//
// On io_uring, Task.Send copies a write of up to 16 KiB into a send buffer
// owned by the loop, submits it and returns without trapping, as write(2)
// returns once the socket buffer has the bytes: a request/response turn then
// costs each side one trap (its read) instead of two. One send per FD is in
// flight at a time, so bytes go out in order; a short send is continued by
// the loop; a failed one is reported by the next Send or Flush. FD.Close and
// ShutdownWrite deliver what is queued first (the descriptor stays open
// until then, for at most 30 seconds if the peer does not read, or until the
// loop ends: the end of Run waits up to a second for queued bytes). The
// epoll backend tries sends inline, so its Send waits as before;
// Config.NoWriteBehind turns the buffering off everywhere.
//
// # Cancellation
//
// Cancel scopes follow trio: a scope can be cancelled or given a deadline;
// every task inside it (and inside its unshielded child scopes) receives a
// *CancelError at its next trap, satisfying errors.Is(err, context.Canceled)
// or context.DeadlineExceeded. A shielded scope keeps outer cancellation
// out. An operation in flight in a cancelled scope is cancelled in the
// backend (ASYNC_CANCEL on io_uring) and the task resumes only when the
// operation's own completion arrives: if it completed anyway, its result is
// delivered (bytes read are returned; an accepted fd is closed, not leaked).
//
// # Task groups
//
// RunGroup (giambio's pool, trio's nursery) returns only after every child
// finished. The first error cancels the rest and is returned (all errors
// through MultiError); a child's panic is re-raised in the parent with the
// child's stack. Every task is a context.Context.
//
// # Timers
//
// Sleeps are kernel timeouts (IORING_OP_TIMEOUT) on the io_uring backend.
// Scope deadlines, and sleeps on the epoll backend or under a FakeClock,
// live in the loop's timer heap; the nearest one bounds the backend's wait
// (an IORING_ENTER_EXT_ARG timeout, or epoll_wait's).
//
// # Backends
//
// The Backend interface is the contract both backends implement with the
// same results for every OpCode: io_uring (one SQE per operation) and epoll
// (a non-blocking attempt, then edge-triggered readiness and a retry). The
// choice is made once per Run: Config.Backend, else CORIO_BACKEND, else
// "auto" (io_uring when setup and the opcode probe succeed, epoll
// otherwise). The build tag corio_epoll compiles io_uring out.
//
// An operation the epoll backend's first attempt completes (a read with
// data waiting) returns without a trap. So that a task on a busy socket
// cannot keep the loop from the others, a run of such completions ends
// with a yield after 64 of them, or once it has lasted a millisecond
// (checked every 4th), whichever comes first.
//
// # Deadlocks and debugging
//
// When no task is ready, nothing is in flight, no timer is armed and no
// other goroutine can wake the loop, Run returns an error wrapping
// ErrDeadlock that names every task and what it waits on. (The context of
// Config.Context, until it is done, is one more thing that can wake it.) Hooks observe
// scheduling; Loop.Dump lists the live tasks (with their stacks in Debug
// mode).
//
// Users normally import package asyncio, which is built on this package.
package sched
