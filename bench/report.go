package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

type report struct {
	cfg      config
	servers  []string
	runs     map[string]map[string][]measurement // point → server → runs
	notes    []string
	syscalls []syscallRow
	idle     []idleRow
	tools    []toolRow
	started  time.Time
}

type syscallRow struct {
	server string
	strace float64 // syscalls per message, from strace; 0 if unknown
	own    float64 // from corio's own counters; 0 for other servers
	note   string
}

type idleRow struct {
	server string
	kb     float64
	conns  int
	note   string
}

type toolRow struct {
	stage, server, metric string
	value                 float64
	note                  string
}

func newReport(cfg config) *report {
	return &report{cfg: cfg, runs: map[string]map[string][]measurement{}, started: time.Now()}
}

func (r *report) add(kind string, pt loadSpec, m measurement) {
	k := pt.String()
	if r.runs[k] == nil {
		r.runs[k] = map[string][]measurement{}
	}
	r.runs[k][kind] = append(r.runs[k][kind], m)
}

func stat(ms []measurement, f func(measurement) float64) (med, lo, hi float64) {
	xs := make([]float64, len(ms))
	for i, m := range ms {
		xs[i] = f(m)
	}
	return median(xs)
}

// pairRatio is the median of the run-by-run ratios a/b (runs of the same
// repetition ran back to back).
func pairRatio(a, b []measurement, f func(measurement) float64) float64 {
	var xs []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if f(b[i]) != 0 {
			xs = append(xs, f(a[i])/f(b[i]))
		}
	}
	m, _, _ := median(xs)
	return m
}

func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := ""
	if b, err := exec.Command("uname", "-r").Output(); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d CPUs, Linux %s, %s, host %s", model, runtime.NumCPU(), kernel, runtime.Version(), host)
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# corio bench, %s\n\n", r.started.Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, "Machine: %s.  \n", machine())
	fmt.Fprintf(&b, "Command: `go run ./bench %s`.  \n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(&b, "Each server: its own process on CPU 0, GOMAXPROCS=1; load generator on CPU 1. %d run(s) per point: median [min–max]. "+
		"`CPU/msg` is the server's CPU time per echoed message; `client` is how busy the load generator's CPU was. "+
		"Ratios are taken run by run against `net` (same repetition); on CPU per message, lower is better.\n\n", r.cfg.reps)
	for _, pt := range r.cfg.points {
		k := pt.String()
		fmt.Fprintf(&b, "### %d connections, %d B messages, %d in flight per connection\n\n", pt.conns, pt.size, pt.depth)
		b.WriteString("| server | msgs/s | MB/s | p50 | p99 | p99.9 | CPU/msg (ns) | client CPU | msgs/s ÷ net | CPU/msg ÷ net |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		base := r.runs[k]["net"]
		for _, s := range r.servers {
			ms := r.runs[k][s]
			if len(ms) == 0 {
				continue
			}
			rate, rlo, rhi := stat(ms, measurement.rate)
			cpu, clo, chi := stat(ms, measurement.cpuPerMsg)
			busy, _, _ := stat(ms, measurement.clientBusy)
			p50, _, _ := stat(ms, func(m measurement) float64 { return float64(m.load.hist.quantile(0.5)) })
			p99, _, _ := stat(ms, func(m measurement) float64 { return float64(m.load.hist.quantile(0.99)) })
			p999, _, _ := stat(ms, func(m measurement) float64 { return float64(m.load.hist.quantile(0.999)) })
			mbs := rate * float64(pt.size) / 1e6
			fmt.Fprintf(&b, "| %s | %.0f [%.0f–%.0f] | %.1f | %s | %s | %s | %.0f [%.0f–%.0f] | %.0f%% | %.2f | %.2f |\n",
				s, rate, rlo, rhi, mbs, dur(p50), dur(p99), dur(p999), cpu, clo, chi, 100*busy,
				pairRatio(ms, base, measurement.rate), pairRatio(ms, base, measurement.cpuPerMsg))
		}
		b.WriteString("\n")
	}
	if len(r.syscalls) > 0 {
		b.WriteString("### Syscalls per echoed message (1000 connections, 64 B, 1 in flight)\n\n| server | strace -c -f | corio's own counters |\n|---|---:|---:|\n")
		for _, s := range r.syscalls {
			own := "–"
			if s.own > 0 {
				own = fmt.Sprintf("%.2f", s.own)
			}
			st := "–"
			if s.strace > 0 {
				st = fmt.Sprintf("%.2f", s.strace)
			} else if s.note != "" {
				st = s.note
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", s.server, st, own)
		}
		b.WriteString("\n")
	}
	if len(r.idle) > 0 {
		b.WriteString("### Peak server memory per idle connection\n\n| server | KiB per connection | connections |\n|---|---:|---:|\n")
		for _, s := range r.idle {
			fmt.Fprintf(&b, "| %s | %.1f | %d %s |\n", s.server, s.kb, s.conns, s.note)
		}
		b.WriteString("\n")
	}
	if len(r.tools) > 0 {
		b.WriteString("### Real clients\n\n| stage | server | metric | value | note |\n|---|---|---|---:|---|\n")
		for _, t := range r.tools {
			fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %s |\n", t.stage, t.server, t.metric, t.value, t.note)
		}
		b.WriteString("\n")
	}
	if len(r.notes) > 0 {
		b.WriteString("Notes:\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func dur(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

// benchLines prints the runs in `go test -bench` format, for benchstat.
func (r *report) benchLines() string {
	var b strings.Builder
	b.WriteString("\ngoos: linux\ngoarch: " + runtime.GOARCH + "\npkg: github.com/corio-go/corio/bench\n")
	for _, pt := range r.cfg.points {
		k := pt.String()
		for _, s := range r.servers {
			for _, m := range r.runs[k][s] {
				fmt.Fprintf(&b, "BenchmarkEcho/server=%s/%s \t%d\t%.1f ns/op\t%.0f msgs/s\t%.0f p99-ns\n",
					s, k, m.load.msgs, m.cpuPerMsg(), m.rate(), float64(m.load.hist.quantile(0.99)))
			}
		}
	}
	return b.String()
}

// write saves the markdown and the plot into dir.
func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	host, _ := os.Hostname()
	base := filepath.Join(dir, r.started.Format("2006-01-02")+"-"+host)
	md := r.markdown() + "\n![msgs/s by connections](" + filepath.Base(base) + ".svg)\n\n```\n" + r.benchLines() + "```\n"
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(base+".svg", []byte(r.svg()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s.md and %s.svg\n", base, base)
	return nil
}
