// Package sched is corio's kernel: one loop per OS thread that runs tasks as
// coroutines, turns their traps into I/O operations on a Backend, batches
// submissions, reaps completions and resumes the waiting tasks.
//
// A task suspends only by trapping into its loop. Cancellation (cancel
// scopes, deadlines, task-group failure) is delivered at traps as errors that
// satisfy errors.Is(err, context.Canceled) or context.DeadlineExceeded. A
// task group returns only after all its children finished.
//
// Users normally import package asyncio, which is built on this package.
package sched
