package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The bench starts its Go servers by re-executing its own binary (or test
// binary) with these environment variables set.
const (
	envServe = "CORIO_BENCH_SERVE" // server kind
	envAddr  = "CORIO_BENCH_ADDR"
	envCPU   = "CORIO_BENCH_CPU"
)

var (
	flagQuick   = flag.Bool("quick", false, "smoke run: every server once at 64 connections, 64 B, 16 in flight (under a minute)")
	flagReps    = flag.Int("reps", 3, "repetitions of each point (median and min–max are reported)")
	flagWarmup  = flag.Duration("warmup", time.Second, "warm-up before each measured window")
	flagDur     = flag.Duration("t", 3*time.Second, "measured window per run")
	flagConns   = flag.String("conns", "1,64,1000", "connection counts of the matrix")
	flagOut     = flag.String("out", "", "results directory (default bench/results; \"-\": write nothing; -quick writes only when set)")
	flagIdle    = flag.Int("idle", 10000, "idle connections for the memory-per-connection stage (0: skip)")
	flagServers = flag.String("servers", "", "comma-separated subset of servers to run (default: all that can run here)")
	flagStages  = flag.Bool("stages", true, "run the syscall, idle-memory, wrk and redis-benchmark stages after the matrix (full mode)")
	flagReadme  = flag.Bool("readme", false, "also replace the results block of bench/README.md with this run's")
	flagShapes  = flag.String("shapes", "64x1,64x16,4096x1", "message shapes of the matrix: SIZExDEPTH (bytes x messages in flight per connection), comma-separated")
)

func main() {
	serveIfChild()
	flag.Parse()
	if err := bench(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is what a run measures.
type config struct {
	quick  bool
	reps   int
	points []loadSpec
	// serverCPU and clientCPU are the CPUs the servers and the load
	// generator are pinned to; -1 when there is only one CPU.
	serverCPU, clientCPU int
}

// shape is a message size and how many messages each connection keeps in
// flight.
type shape struct{ size, depth int }

func parseShapes(s string) ([]shape, error) {
	var out []shape
	for _, f := range strings.Split(s, ",") {
		sz, d, ok := strings.Cut(strings.TrimSpace(f), "x")
		size, err1 := strconv.Atoi(sz)
		depth, err2 := strconv.Atoi(d)
		if !ok || err1 != nil || err2 != nil || size < 1 || depth < 1 {
			return nil, fmt.Errorf("-shapes: bad shape %q (want SIZExDEPTH, e.g. 64x16)", f)
		}
		out = append(out, shape{size, depth})
	}
	return out, nil
}

func matrix(quick bool, conns []int, shapes []shape) config {
	cfg := config{serverCPU: 0, clientCPU: 1}
	if runtime.NumCPU() < 2 {
		cfg.serverCPU, cfg.clientCPU = -1, -1
	}
	if quick {
		cfg.quick, cfg.reps = true, 1
		cfg.points = []loadSpec{{conns: 64, size: 64, depth: 16, warmup: 300 * time.Millisecond, dur: 1500 * time.Millisecond}}
		return cfg
	}
	cfg.reps = max(1, *flagReps)
	for _, shape := range shapes {
		for _, c := range conns {
			cfg.points = append(cfg.points, loadSpec{conns: c, size: shape.size, depth: shape.depth, warmup: *flagWarmup, dur: *flagDur})
		}
	}
	return cfg
}

func parseConns(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-conns: bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func bench() error {
	conns, err := parseConns(*flagConns)
	if err != nil {
		return err
	}
	shapes, err := parseShapes(*flagShapes)
	if err != nil {
		return err
	}
	cfg := matrix(*flagQuick, conns, shapes)
	rep := newReport(cfg)
	if cfg.clientCPU < 0 {
		rep.note("only one CPU: server and client share it, nothing is pinned")
	} else {
		if err := pinProcess(0, cfg.clientCPU); err != nil {
			return fmt.Errorf("pinning the client: %w", err)
		}
		// One CPU: more Ps than that would only spin against each other.
		runtime.GOMAXPROCS(1)
	}
	if _, note := raiseNofile(uint64(max(*flagIdle, 1000) + 1024)); note != "" {
		rep.note(note)
	}
	tmp, err := os.MkdirTemp("", "corio-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	stopOnSignal(tmp)

	progress("building the C liburing server ...")
	cbin, cnote := buildCServer(tmp)
	kinds, notes := serverKinds(cbin, cnote)
	for _, n := range notes {
		rep.note(n)
	}
	if *flagServers != "" {
		kinds = filter(kinds, strings.Split(*flagServers, ","))
	} else {
		kinds = slices.DeleteFunc(kinds, func(k string) bool { return k == "corio-uring-sync" })
	}
	rep.servers = kinds

	total := len(cfg.points) * len(kinds) * cfg.reps
	done := 0
	began := time.Now()
	for _, pt := range cfg.points {
		for r := 0; r < cfg.reps; r++ {
			// Servers alternate inside each repetition, so that a slow
			// phase of the machine hits them all alike, and the runs of a
			// repetition can be compared pair by pair.
			for _, kind := range kinds {
				done++
				fmt.Fprintf(os.Stderr, "[%3d/%d %4.0fs] %-11s %s rep %d ... ", done, total, time.Since(began).Seconds(), kind, pt, r+1)
				m, err := runOne(kind, cbin, cfg.serverCPU, pt)
				if err != nil {
					fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
					rep.fail(fmt.Sprintf("%s %s rep %d: %v", kind, pt, r+1, err))
					continue
				}
				m.rep = r
				fmt.Fprintf(os.Stderr, "%8.0f msgs/s  %6.0f ns/msg server CPU (%4.0f user; %3.0f%% busy)  client CPU %3.0f%%\n",
					m.rate(), m.cpuPerMsg(), m.userPerMsg(), 100*m.serverBusy(), 100*m.clientBusy())
				rep.add(kind, pt, m)
			}
		}
	}
	if !cfg.quick && *flagStages {
		stageSyscalls(rep, kinds, cbin, cfg.serverCPU)
		if *flagIdle > 0 {
			stageIdle(rep, kinds, cbin, cfg.serverCPU, *flagIdle)
		}
		stageTools(rep, tmp, cfg.serverCPU, cfg.clientCPU)
	}
	rep.finished = time.Now()
	fmt.Println(rep.markdown())
	fmt.Print(rep.benchLines())
	if dir := *flagOut; dir != "-" && (!cfg.quick || dir != "") {
		if dir == "" {
			dir = filepath.Join(sourceDir(), "results")
		}
		base, err := rep.write(dir)
		if err != nil {
			return err
		}
		if *flagReadme {
			readme := filepath.Join(sourceDir(), "README.md")
			if err := updateReadme(readme, rep.readmeBlock(base, readme)); err != nil {
				return err
			}
			progress("updated " + readme)
		}
	}
	if len(rep.failures) > 0 {
		return errors.New(strconv.Itoa(len(rep.failures)) + " run(s) failed; see the notes")
	}
	return nil
}

func progress(s string) { fmt.Fprintln(os.Stderr, s) }

// children are the processes the bench started and has not waited for yet
// (servers, strace, wrk, redis-benchmark).
var children = struct {
	sync.Mutex
	m map[*os.Process]bool
}{m: map[*os.Process]bool{}}

func track(p *os.Process) { children.Lock(); children.m[p] = true; children.Unlock() }

func untrack(p *os.Process) { children.Lock(); delete(children.m, p); children.Unlock() }

// stopOnSignal makes SIGINT and SIGTERM kill the bench's children and
// remove tmp before the bench exits, so that none outlives it.
func stopOnSignal(tmp string) {
	sigs := []os.Signal{syscall.SIGTERM}
	if !signal.Ignored(os.Interrupt) {
		sigs = append(sigs, os.Interrupt)
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, sigs...)
	go func() {
		sig := <-c
		children.Lock()
		for p := range children.m {
			p.Kill()
		}
		children.Unlock()
		os.RemoveAll(tmp)
		fmt.Fprintf(os.Stderr, "\nbench: %v: stopped, children killed\n", sig)
		os.Exit(130)
	}()
}

// serveIfChild runs the server named by CORIO_BENCH_SERVE and exits, when
// this process is one of the bench's server children.
func serveIfChild() {
	kind := os.Getenv(envServe)
	if kind == "" {
		return
	}
	if cpu, err := strconv.Atoi(os.Getenv(envCPU)); err == nil && cpu >= 0 {
		pinProcess(0, cpu)
	}
	if err := serve(kind, os.Getenv(envAddr)); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func filter(kinds, want []string) []string {
	var out []string
	for _, k := range kinds {
		for _, w := range want {
			if k == strings.TrimSpace(w) {
				out = append(out, k)
			}
		}
	}
	return out
}
