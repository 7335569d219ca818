package main

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// measurement is one run of one server at one matrix point.
type measurement struct {
	rep       int // repetition, for pairing runs of different servers
	load      loadResult
	serverCPU time.Duration // the server's CPU time in the measured window
	serverUsr time.Duration // the user-space part of it
	// sysPerMsg is the server's syscalls per echoed message over its whole
	// life (warm-up included), from corio's own counters; 0 for others.
	sysPerMsg float64
}

func (m measurement) rate() float64 { return m.load.rate() }

func (m measurement) mbs() float64 { return m.load.rate() * float64(m.load.size) / 1e6 }

func (m measurement) cpuPerMsg() float64 {
	return float64(m.serverCPU.Nanoseconds()) / float64(m.load.msgs)
}

// userPerMsg is the user-space part of cpuPerMsg: what the server's own
// code costs, apart from the kernel's TCP work, which all servers share.
func (m measurement) userPerMsg() float64 {
	return float64(m.serverUsr.Nanoseconds()) / float64(m.load.msgs)
}

func (m measurement) serverBusy() float64 {
	return m.serverCPU.Seconds() / m.load.window.Seconds()
}

func (m measurement) clientBusy() float64 {
	return m.load.clientCPU.Seconds() / m.load.window.Seconds()
}

func (m measurement) quantile(q float64) float64 { return float64(m.load.hist.quantile(q)) }

// runOne starts kind, loads it with pt and stops it.
func runOne(kind, cbin string, serverCPU int, pt loadSpec) (measurement, error) {
	s, err := startServer(kind, cbin, serverCPU)
	if err != nil {
		return measurement{}, err
	}
	m, err := measure(s, pt)
	stderr := s.stop()
	if err != nil {
		return measurement{}, err
	}
	if os.Getenv("CORIO_BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "[%s msgs=%d] %s\n", kind, m.load.all, strings.TrimSpace(stderr))
	}
	if sys, ok := corioSyscalls(stderr); ok && m.load.all > 0 {
		m.sysPerMsg = float64(sys) / float64(m.load.all)
	}
	return m, nil
}

func measure(s *server, spec loadSpec) (measurement, error) {
	var c0, c1, u0, u1 time.Duration
	res, err := runLoad(s.addr, spec, func(start bool) {
		c, u, _ := pidCPUSplit(s.pid())
		if start {
			c0, u0 = c, u
		} else {
			c1, u1 = c, u
		}
	})
	if err != nil {
		return measurement{}, err
	}
	return measurement{load: res, serverCPU: c1 - c0, serverUsr: u1 - u0}, nil
}

// corioStatsRE matches the line a corio server prints on stderr as it
// exits (see serveCorio).
var corioStatsRE = regexp.MustCompile(`corio-stats syscalls=(\d+) `)

func corioSyscalls(stderr string) (uint64, bool) {
	m := corioStatsRE.FindStringSubmatch(stderr)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	return n, err == nil
}

// The syscall stage's load: 1000 connections, 64 B, 1 and 16 in flight.
var syscallSpecs = []loadSpec{
	{conns: 1000, size: 64, depth: 1, warmup: 500 * time.Millisecond, dur: 2 * time.Second},
	{conns: 1000, size: 64, depth: 16, warmup: 500 * time.Millisecond, dur: 2 * time.Second},
}

// stageSyscalls counts each server's syscalls per message under strace, and
// corio's own counters in the same runs.
func stageSyscalls(rep *report, kinds []string, cbin string, serverCPU int) {
	for _, spec := range syscallSpecs {
		for _, kind := range kinds {
			fmt.Fprintf(os.Stderr, "syscalls per message: %-11s %s ... ", kind, spec)
			row := syscallRow{server: kind, spec: spec}
			s, err := startServer(kind, cbin, serverCPU)
			if err != nil {
				row.note = err.Error()
				progress(row.note)
				rep.syscalls = append(rep.syscalls, row)
				continue
			}
			var all int64
			row.strace, all, row.note = syscallsPerMsg(s, spec)
			stderr := s.stop()
			if sys, ok := corioSyscalls(stderr); ok && all > 0 {
				row.own = float64(sys) / float64(all)
			}
			fmt.Fprintf(os.Stderr, "strace %s, corio's counters %s %s\n", num(row.strace), num(row.own), row.note)
			rep.syscalls = append(rep.syscalls, row)
		}
	}
}

// stageIdle measures the servers' peak memory per idle connection.
func stageIdle(rep *report, kinds []string, cbin string, serverCPU int, n int) {
	for _, kind := range kinds {
		fmt.Fprintf(os.Stderr, "memory at %d idle connections: %-11s ... ", n, kind)
		row := idleRow{server: kind}
		s, err := startServer(kind, cbin, serverCPU)
		if err != nil {
			row.note = err.Error()
			progress(row.note)
			rep.idle = append(rep.idle, row)
			continue
		}
		row.kb, row.conns, err = idleRSS(s, n)
		s.stop()
		if err != nil {
			row.note = err.Error()
		} else if row.conns < n {
			row.note = fmt.Sprintf("only %d of %d connections could be opened", row.conns, n)
		}
		fmt.Fprintf(os.Stderr, "%.1f KiB per connection %s\n", row.kb, row.note)
		rep.idle = append(rep.idle, row)
		time.Sleep(time.Second) // let the closed sockets drain a little
	}
}

var uringAvailable = func() bool {
	return asyncio.Run(func(*asyncio.Task) error { return nil }, asyncio.WithBackend("uring")) == nil
}

// median returns the median, the minimum and the maximum of xs.
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

// raiseNofile lifts RLIMIT_NOFILE's soft limit to the hard limit, and the
// hard limit to need when it is lower and the process may. Children inherit
// the limit. It returns the new soft limit and a note when it is below need.
func raiseNofile(need uint64) (uint64, string) {
	lim, err := setNofile(need)
	if lim >= need {
		return lim, ""
	}
	note := fmt.Sprintf("RLIMIT_NOFILE is %d, below the %d this run wants (server and client each hold one fd per connection)", lim, need)
	if err != nil {
		note += "; raising it failed: " + err.Error()
	}
	return lim, note
}
