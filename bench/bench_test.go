package main

import (
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bench's server children.
func TestMain(m *testing.M) {
	serveIfChild()
	os.Exit(m.Run())
}

// TestEchoServersCorrect runs the quick mode's correctness part: every Go
// server, started as the bench starts it, echoes every byte right under the
// load generator (which checks each byte), with several messages in flight.
func TestEchoServersCorrect(t *testing.T) {
	cbin, note := buildCServer(t.TempDir())
	if note != "" {
		t.Log("c-liburing:", note)
	}
	kinds, notes := serverKinds(false, cbin)
	for _, n := range notes {
		t.Log(n)
	}
	spec := loadSpec{conns: 8, size: 100, depth: 4, warmup: 100 * time.Millisecond, dur: 300 * time.Millisecond}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			m, err := runOne(kind, cbin, -1, spec)
			if err != nil {
				t.Fatal(err)
			}
			if m.load.msgs == 0 || m.load.hist.n == 0 {
				t.Fatalf("nothing measured: %+v", m.load)
			}
		})
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}} {
		got := h.quantile(c.q)
		if got < c.want*97/100 || got > c.want*103/100 {
			t.Errorf("quantile(%v) = %v, want ≈%v", c.q, got, c.want)
		}
	}
}
