package main

import (
	"os"
	"strings"
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
	kinds, notes := serverKinds(cbin, note)
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

// run makes a measurement of msgs messages in one second, with the server
// and the client busy for the given fractions of it.
func run(rep int, msgs int64, server, client float64) measurement {
	return measurement{
		rep:       rep,
		load:      loadResult{size: 64, msgs: msgs, all: msgs, window: time.Second, clientCPU: time.Duration(client * float64(time.Second))},
		serverCPU: time.Duration(server * float64(time.Second)),
	}
}

func TestPairRatioPairsRepetitions(t *testing.T) {
	a := []measurement{run(0, 200, 1, 1), run(2, 300, 1, 1)} // repetition 1 failed
	b := []measurement{run(0, 100, 1, 1), run(1, 999, 1, 1), run(2, 100, 1, 1)}
	med, lo, hi, n := pairRatio(a, b, measurement.rate)
	if n != 2 || med != 2.5 || lo != 2 || hi != 3 {
		t.Errorf("pairRatio = %v [%v–%v] over %d pairs, want 2.5 [2–3] over 2", med, lo, hi, n)
	}
	if _, _, _, n := pairRatio(a, nil, measurement.rate); n != 0 {
		t.Errorf("pairRatio against nothing paired %d runs", n)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		xs            []float64
		med, min, max float64
	}{{nil, 0, 0, 0}, {[]float64{3}, 3, 3, 3}, {[]float64{5, 1, 3}, 3, 1, 5}, {[]float64{4, 1, 2, 3}, 2.5, 1, 4}} {
		med, lo, hi := median(c.xs)
		if med != c.med || lo != c.min || hi != c.max {
			t.Errorf("median(%v) = %v %v %v, want %v %v %v", c.xs, med, lo, hi, c.med, c.min, c.max)
		}
	}
}

// testReport is a run of the full matrix's 64 B, 16-in-flight points with
// made-up numbers: corio-uring uses 0.9× net's CPU per message and 1.05×
// the C server's, corio-epoll 1.1× net's.
func testReport() *report {
	cfg := config{reps: 3, serverCPU: 0, clientCPU: 1}
	for _, c := range []int{64, 1000} {
		cfg.points = append(cfg.points, loadSpec{conns: c, size: 64, depth: 16})
	}
	r := newReport(cfg)
	r.servers = []string{"net", "corio-uring", "corio-epoll", "c-liburing"}
	cpu := map[string]float64{"net": 1, "corio-uring": 0.9, "corio-epoll": 1.1, "c-liburing": 0.9 / 1.05}
	for _, pt := range cfg.points {
		for rep := range 3 {
			for _, s := range r.servers {
				// Same rate, so CPU/msg ratios are CPU-time ratios.
				r.add(s, pt, run(rep, 1000000, cpu[s], 0.99))
			}
		}
	}
	r.syscalls = []syscallRow{
		{server: "net", spec: syscallSpecs[1], strace: 2},
		{server: "corio-uring", spec: syscallSpecs[1], strace: 0.1},
	}
	return r
}

func TestTargets(t *testing.T) {
	want := map[string]string{
		"corio-uring CPU/msg ÷ c-liburing, 64 conns, 64 B, 16 in flight":                        "met",
		"corio-uring CPU/msg ÷ net, 1000 conns, 64 B, 16 in flight":                             "missed",
		"corio-epoll CPU/msg ÷ net, 64 conns, 64 B, 16 in flight":                               "missed",
		"corio-uring msgs/s ÷ net, worst point (64 conns, 64 B, 16 in flight)":                  "met",
		"corio-uring syscalls/msg ÷ net, 1000 conns, 64 B, 1 in flight (strace)":                "not measured: no strace count for corio-uring or net (see the notes)",
		"corio-uring syscalls/msg ÷ net, 1000 conns, 64 B, 16 in flight (strace): 0.10 vs 2.00": "met",
	}
	got := map[string]target{}
	for _, tg := range testReport().targets() {
		got[tg.what] = tg
	}
	for what, v := range want {
		tg, ok := got[what]
		if !ok {
			t.Errorf("no target %q; have %v", what, got)
			continue
		}
		if tg.verdict() != v {
			t.Errorf("%s: %v (%.3f), want %s", what, tg.verdict(), tg.value, v)
		}
	}
	if tg := got["corio-uring CPU/msg ÷ c-liburing, 64 conns, 64 B, 16 in flight"]; tg.n != 3 || tg.value < 1.049 || tg.value > 1.051 {
		t.Errorf("corio-uring ÷ c-liburing = %v over %d pairs, want 1.05 over 3", tg.value, tg.n)
	}
}

// TestTargetRunsMet: the verdict is the median's, and the runs are counted
// one by one, so that a median just past the goal reads differently from
// one that no run came near.
func TestTargetRunsMet(t *testing.T) {
	r := testReport()
	pt := loadSpec{conns: 64, size: 64, depth: 16}
	k := pt.String()
	// corio-uring ÷ net CPU/msg by run: 0.75, 0.85, 0.70: median 0.75, met
	// in 2 of 3 runs.
	for i, f := range []float64{0.75, 0.85, 0.70} {
		r.runs[k]["corio-uring"][i] = run(i, 1000000, f, 0.99)
	}
	for _, tg := range r.targets() {
		switch tg.what {
		case "corio-uring CPU/msg ÷ net, 64 conns, 64 B, 16 in flight":
			if got := tg.verdict() + tg.runsMet(); got != "met (2/3 runs)" {
				t.Errorf("%s: %q, want %q", tg.what, got, "met (2/3 runs)")
			}
		case "corio-uring CPU/msg ÷ c-liburing, 64 conns, 64 B, 16 in flight":
			// ÷ 0.857: 0.875, 0.99, 0.82: all within 1.1.
			if got := tg.verdict() + tg.runsMet(); got != "met (3/3 runs)" {
				t.Errorf("%s: %q, want %q", tg.what, got, "met (3/3 runs)")
			}
		}
	}
	for i, f := range []float64{0.85, 0.78, 0.90} {
		r.runs[k]["corio-uring"][i] = run(i, 1000000, f, 0.99)
	}
	for _, tg := range r.targets() {
		if tg.what == "corio-uring CPU/msg ÷ net, 64 conns, 64 B, 16 in flight" {
			if got := tg.verdict() + tg.runsMet(); got != "missed (1/3 runs met it)" {
				t.Errorf("%s: %q, want %q", tg.what, got, "missed (1/3 runs met it)")
			}
		}
	}
}

func TestMarkdownJudgesOnCPUWhenClientBusy(t *testing.T) {
	r := testReport()
	// A point where the client has room: msgs/s judges.
	pt := loadSpec{conns: 1, size: 64, depth: 1}
	r.cfg.points = append(r.cfg.points, pt)
	r.add("net", pt, run(0, 1000, 0.5, 0.5))
	r.add("corio-uring", pt, run(0, 2000, 0.5, 0.5))
	md := r.markdown()
	for _, s := range []string{
		"| corio-uring | 1000000 [1000000–1000000] |", // 64 conns: client 99% → CPU/msg in bold
		"| 1.00 | **0.90** |",
		"| corio-uring | 2000 [2000–2000] |", // 1 conn: client 50% → msgs/s in bold
		"| **2.00** | 0.50 |",
		"| corio-uring CPU/msg ÷ net, 64 conns, 64 B, 16 in flight | ≤ 0.80 | 0.90 [0.90–0.90] | missed (0/3 runs met it) |",
		"| corio-uring CPU/msg ÷ c-liburing, 64 conns, 64 B, 16 in flight | ≤ 1.10 | 1.05 [1.05–1.05] | met (3/3 runs) |",
		"| corio-epoll | failed |", // at the 1-connection point
	} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
	lines := r.benchLines()
	if !strings.Contains(lines, "BenchmarkEcho/server=corio-uring/conns=1000/size=64/depth=16 \t1000000\t900.0 ns/op\t") {
		t.Errorf("bench lines:\n%s", lines)
	}
	if svg := r.svg(); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "corio-uring") {
		t.Errorf("svg:\n%s", svg)
	}
}

func TestReplaceBlock(t *testing.T) {
	doc := "# title\n\n" + readmeBegin + "\nold\n" + readmeEnd + "\n\nafter\n"
	out, err := replaceBlock([]byte(doc), readmeBegin+"\nnew\n"+readmeEnd)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# title\n\n" + readmeBegin + "\nnew\n" + readmeEnd + "\n\nafter\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if _, err := replaceBlock([]byte("no block"), "x"); err == nil {
		t.Error("no error without a block")
	}
}

func TestToolOutputParsing(t *testing.T) {
	strace := `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.060000           1     40000           write
 40.00    0.040000           1     40000      1234 read
------ ----------- ----------- --------- --------- ----------------
100.00    0.100000           1     80000      1234 total
`
	if n, ok := straceTotal(strace); !ok || n != 80000 {
		t.Errorf("straceTotal = %v, %v", n, ok)
	}
	if n, ok := straceTotal(strings.Replace(strace, "      1234 total", " total", 1)); !ok || n != 80000 {
		t.Errorf("straceTotal without errors = %v, %v", n, ok)
	}
	redis := "SET: rps=0.0 (overall: nan) avg_msec=nan (overall: nan)\rSET: rps=84000.0 (overall: 84000.0)\r" +
		"SET: 84033.61 requests per second, p50=0.503 msec\n\n"
	if v, note := redisResult(redis, nil); v != 84033.61 || note != "" {
		t.Errorf("redisResult = %v, %q", v, note)
	}
	if n, ok := corioSyscalls("x\ncorio-stats syscalls=1234 submitted=99 enters=1 iterations=2\n"); !ok || n != 1234 {
		t.Errorf("corioSyscalls = %v, %v", n, ok)
	}
}

func TestPidCPU(t *testing.T) {
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	got, err := pidCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc/PID/stat counts in clock ticks (10 ms).
	if own := processCPU(); got > own+20*time.Millisecond || got < own-20*time.Millisecond {
		t.Errorf("pidCPU = %v, getrusage = %v", got, own)
	}
}

func TestParseConns(t *testing.T) {
	if got, err := parseConns("1, 64,1000"); err != nil || len(got) != 3 || got[2] != 1000 {
		t.Errorf("parseConns = %v, %v", got, err)
	}
	if _, err := parseConns("1,x"); err == nil {
		t.Error("parseConns accepted x")
	}
}
