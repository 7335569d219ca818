//go:build linux && !corio_epoll

package sched

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestReapWithFullSQ: re-arming the waker's poll from inside reap needs an
// SQE; with the SQ full, getting one submits and reaps, and that inner reap
// used to overwrite the completions the outer one had not yet read: a
// completion behind the waker's in the same batch was lost, and its task
// would never wake.
func TestReapWithFullSQ(t *testing.T) {
	err := Run(Config{Backend: BackendUring, Entries: 8}, func(task *Task) error {
		l := task.Loop()
		b, ok := l.backend.(*uringBackend)
		if !ok {
			t.Skip("not the io_uring backend")
		}
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		// The waker's poll completes: its CQE first.
		if _, err := unix.Write(l.waker.Fd(), one); err != nil {
			return err
		}
		b.r.Submit()
		// Then an operation's completion, behind it in the same batch.
		op := task.Op(OpNop, nil)
		op.task = task
		if l.start(op) {
			t.Skip("NOP completed without a CQE")
		}
		b.r.Submit()
		// A full SQ (NOPs whose completions mean nothing).
		for s := b.r.GetSQE(); s != nil; s = b.r.GetSQE() {
			s.PrepNop()
			s.SetUserData(udCancel)
		}
		got := b.reap(nil)
		found := false
		for _, c := range got {
			found = found || c == op
		}
		// Finish the operation by hand either way, so that Run can end.
		op.pending = false
		l.ops.remove(op)
		unix.Read(l.waker.Fd(), one)
		if !found {
			t.Errorf("reap returned %d completions without the NOP's: lost behind the waker's", len(got))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
