package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// The bench starts its Go servers by re-executing its own binary (or test
// binary) with these environment variables set.
const (
	envServe = "CORIO_BENCH_SERVE" // server kind
	envAddr  = "CORIO_BENCH_ADDR"
	envCPU   = "CORIO_BENCH_CPU"
)

var (
	flagQuick   = flag.Bool("quick", false, "smoke run: three servers, one point, one repetition (under a minute)")
	flagReps    = flag.Int("reps", 3, "repetitions of each point (median and min–max are reported)")
	flagWarmup  = flag.Duration("warmup", time.Second, "warm-up before each measured window")
	flagDur     = flag.Duration("t", 3*time.Second, "measured window per run")
	flagOut     = flag.String("out", "", "results directory (default bench/results; \"-\": none)")
	flagIdle    = flag.Int("idle", 10000, "idle connections for the memory-per-connection stage (0: skip)")
	flagServers = flag.String("servers", "", "comma-separated subset of servers to run")
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
}

func matrix(quick bool) config {
	w, t := *flagWarmup, *flagDur
	if quick {
		return config{quick: true, reps: 1, points: []loadSpec{{conns: 64, size: 64, depth: 1, warmup: 500 * time.Millisecond, dur: 2 * time.Second}}}
	}
	var pts []loadSpec
	for _, shape := range []struct{ size, depth int }{{64, 1}, {64, 16}, {4096, 1}} {
		for _, c := range []int{1, 64, 1000} {
			pts = append(pts, loadSpec{conns: c, size: shape.size, depth: shape.depth, warmup: w, dur: t})
		}
	}
	return config{reps: max(1, *flagReps), points: pts}
}

func bench() error {
	cfg := matrix(*flagQuick)
	cpus := runtime.NumCPU()
	serverCPU, clientCPU := 0, 1
	if cpus < 2 {
		serverCPU, clientCPU = -1, -1
	}
	raiseNofile()
	if clientCPU >= 0 {
		if err := pinProcess(0, clientCPU); err != nil {
			return fmt.Errorf("pinning the client: %w", err)
		}
	}
	tmp, err := os.MkdirTemp("", "corio-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	rep := newReport(cfg)
	if cpus < 2 {
		rep.notes = append(rep.notes, "only one CPU: server and client share it, no pinning")
	}
	cbin, cnote := "", ""
	if !cfg.quick {
		cbin, cnote = buildCServer(tmp)
	}
	kinds, notes := serverKinds(cfg.quick, cbin)
	if cnote != "" && cbin == "" {
		notes = append(notes, "c-liburing: "+cnote)
	}
	rep.notes = append(rep.notes, notes...)
	if *flagServers != "" {
		want := strings.Split(*flagServers, ",")
		kinds = filter(kinds, want)
	}
	rep.servers = kinds

	total := len(cfg.points) * len(kinds) * cfg.reps
	done := 0
	began := time.Now()
	for _, pt := range cfg.points {
		for rep_ := 0; rep_ < cfg.reps; rep_++ {
			// Servers alternate inside each repetition, so a slow phase
			// of the machine hits them all alike.
			for _, kind := range kinds {
				done++
				fmt.Fprintf(os.Stderr, "[%3d/%d %5.0fs] %-12s %s rep %d ... ", done, total, time.Since(began).Seconds(), kind, pt, rep_+1)
				m, err := runOne(kind, cbin, serverCPU, pt)
				if err != nil {
					fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
					return fmt.Errorf("%s %s: %w", kind, pt, err)
				}
				fmt.Fprintf(os.Stderr, "%9.0f msgs/s  %6.0f ns/msg server CPU  client CPU %3.0f%%\n", m.rate(), m.cpuPerMsg(), 100*m.clientBusy())
				rep.add(kind, pt, m)
			}
		}
	}
	if !cfg.quick {
		stageSyscalls(rep, kinds, cbin, serverCPU)
		if *flagIdle > 0 {
			stageIdle(rep, kinds, cbin, serverCPU, *flagIdle)
		}
		stageTools(rep, tmp, serverCPU, clientCPU)
	}
	md := rep.markdown()
	fmt.Println(md)
	fmt.Print(rep.benchLines())
	if *flagOut != "-" && !cfg.quick {
		dir := *flagOut
		if dir == "" {
			dir = filepath.Join(sourceDir(), "results")
		}
		if err := rep.write(dir); err != nil {
			return err
		}
	}
	return nil
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

func runOne(kind, cbin string, serverCPU int, pt loadSpec) (measurement, error) {
	s, err := startServer(kind, cbin, serverCPU)
	if err != nil {
		return measurement{}, err
	}
	m, err := measure(s, pt)
	s.stop()
	return m, err
}

func stageSyscalls(rep *report, kinds []string, cbin string, serverCPU int) {
	spec := loadSpec{conns: 1000, size: 64, depth: 1, warmup: 500 * time.Millisecond, dur: 2 * time.Second}
	for _, kind := range kinds {
		fmt.Fprintf(os.Stderr, "syscalls per message: %s ...\n", kind)
		s, err := startServer(kind, cbin, serverCPU)
		if err != nil {
			rep.notes = append(rep.notes, fmt.Sprintf("syscalls %s: %v", kind, err))
			continue
		}
		per, note := syscallsPerMsg(s, spec)
		stderr := s.stop()
		own := 0.0
		if m := corioStats.FindStringSubmatch(stderr); m != nil {
			var sys, sub float64
			fmt.Sscan(m[1], &sys)
			fmt.Sscan(m[2], &sub)
			// Two operations (a read and a write) per echoed message.
			if sub > 0 {
				own = sys / (sub / 2)
			}
		}
		rep.syscalls = append(rep.syscalls, syscallRow{kind, per, own, note})
	}
}

func stageIdle(rep *report, kinds []string, cbin string, serverCPU int, n int) {
	for _, kind := range kinds {
		fmt.Fprintf(os.Stderr, "memory at %d idle connections: %s ...\n", n, kind)
		s, err := startServer(kind, cbin, serverCPU)
		if err != nil {
			continue
		}
		kb, got, err := idleRSS(s, n)
		s.stop()
		note := ""
		if err != nil {
			note = err.Error()
		} else if got < n {
			note = fmt.Sprintf("only %d connections could be opened", got)
		}
		rep.idle = append(rep.idle, idleRow{kind, kb, got, note})
		time.Sleep(time.Second) // let TIME_WAIT sockets drain a little
	}
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

func uringAvailable() bool {
	return asyncio.Run(func(*asyncio.Task) error { return nil }, asyncio.WithBackend("uring")) == nil
}

func median(xs []float64) (med, lo, hi float64) {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0, 0, 0
	}
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}
