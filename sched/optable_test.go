package sched

import "testing"

// TestOpTableStaleIDs checks that a completion for a slot that has been
// freed and reused is recognised as stale, never routed to the new owner.
func TestOpTableStaleIDs(t *testing.T) {
	var tbl opTable
	a, b := new(Op), new(Op)
	idA := tbl.add(a)
	if tbl.lookup(idA) != a {
		t.Fatal("lookup of a live id failed")
	}
	tbl.remove(a)
	if tbl.lookup(idA) != nil {
		t.Fatal("freed id still resolves")
	}
	idB := tbl.add(b) // reuses a's slot
	if uint32(idB) != uint32(idA) {
		t.Fatalf("slot not reused: %x vs %x", idB, idA)
	}
	if idB == idA {
		t.Fatal("reused slot kept the same generation")
	}
	if got := tbl.lookup(idA); got != nil {
		t.Fatalf("stale id routed to %p (the new owner is %p)", got, b)
	}
	if tbl.lookup(idB) != b || tbl.live != 1 {
		t.Fatal("live id lost")
	}
	if tbl.lookup(1<<63|1) != nil || tbl.lookup(uint64(99)) != nil {
		t.Fatal("unknown ids must not resolve")
	}
	for i := 0; i < 1000; i++ {
		id := tbl.add(a)
		if id>>63 != 0 {
			t.Fatal("op ids must leave the top bit to the backends")
		}
		tbl.remove(a)
	}
}
