package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// busyClient is the client CPU load above which msgs/s says more about the
// load generator than about the server: servers are then judged on their
// CPU per message.
const busyClient = 0.9

type report struct {
	cfg      config
	servers  []string
	runs     map[string]map[string][]measurement // point → server → runs
	notes    []string
	failures []string
	syscalls []syscallRow
	idle     []idleRow
	tools    []toolRow
	started  time.Time
	finished time.Time
	source   string // the commit measured
}

type syscallRow struct {
	server string
	spec   loadSpec
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
	cpuPerReq             float64 // server CPU ns per request
	note                  string
}

func newReport(cfg config) *report {
	return &report{cfg: cfg, runs: map[string]map[string][]measurement{}, started: time.Now(), source: source()}
}

func (r *report) add(kind string, pt loadSpec, m measurement) {
	k := pt.String()
	if r.runs[k] == nil {
		r.runs[k] = map[string][]measurement{}
	}
	r.runs[k][kind] = append(r.runs[k][kind], m)
}

func (r *report) note(s string) { r.notes = append(r.notes, s) }

func (r *report) fail(s string) { r.failures = append(r.failures, s) }

func stat(ms []measurement, f func(measurement) float64) (med, lo, hi float64) {
	xs := make([]float64, len(ms))
	for i, m := range ms {
		xs[i] = f(m)
	}
	return median(xs)
}

// pairRatio returns the median, min and max of the run-by-run ratios a/b,
// pairing the runs of the same repetition (which ran back to back), and
// how many pairs there were.
func pairRatio(a, b []measurement, f func(measurement) float64) (med, lo, hi float64, n int) {
	xs := pairRatios(a, b, f)
	med, lo, hi = median(xs)
	return med, lo, hi, len(xs)
}

// pairRatios returns f(a)/f(b) for each repetition both ran.
func pairRatios(a, b []measurement, f func(measurement) float64) []float64 {
	var xs []float64
	for _, x := range a {
		for _, y := range b {
			if x.rep == y.rep && f(y) != 0 {
				xs = append(xs, f(x)/f(y))
			}
		}
	}
	return xs
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
	return fmt.Sprintf("%s, %d CPUs, Linux %s, %s/%s, %s, host %s", model, runtime.NumCPU(), kernel, runtime.GOOS, runtime.GOARCH, runtime.Version(), host)
}

// source says which commit of the module was measured.
func source() string {
	head, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	s := "commit " + strings.TrimSpace(string(head))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		s += " with uncommitted changes"
	}
	return s
}

func (r *report) command() string {
	return strings.TrimSpace("go run ./bench " + strings.Join(os.Args[1:], " "))
}

func (r *report) header(b *strings.Builder) {
	fmt.Fprintf(b, "Machine: %s.  \n", machine())
	fmt.Fprintf(b, "Source: %s.  \n", r.source)
	fmt.Fprintf(b, "Command: `%s` (%s, %.0f minutes).  \n", r.command(), r.started.Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Minutes())
	if r.cfg.serverCPU >= 0 {
		fmt.Fprintf(b, "Each server runs as its own process pinned to CPU %d with GOMAXPROCS=1; the load generator runs pinned to CPU %d. ", r.cfg.serverCPU, r.cfg.clientCPU)
	} else {
		b.WriteString("Each server runs as its own process with GOMAXPROCS=1, sharing the only CPU with the load generator. ")
	}
	fmt.Fprintf(b, "%d run(s) per point, reported as median [min–max].\n\n", r.cfg.reps)
}

// point returns the matrix point with these parameters, if it was run.
func (r *report) point(conns, size, depth int) (loadSpec, bool) {
	for _, pt := range r.cfg.points {
		if pt.conns == conns && pt.size == size && pt.depth == depth {
			return pt, true
		}
	}
	return loadSpec{}, false
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# corio bench, %s\n\n", r.started.Format("2006-01-02 15:04"))
	r.header(&b)
	b.WriteString("## Targets\n\n")
	r.targetsTable(&b)
	b.WriteString("## Echo matrix\n\n")
	b.WriteString(columnsHelp)
	for _, pt := range r.cfg.points {
		r.pointTable(&b, pt)
	}
	r.syscallTable(&b)
	r.idleTable(&b)
	r.toolTable(&b)
	r.notesList(&b)
	return b.String()
}

const columnsHelp = "`msgs/s` echoed messages per second in the measured window; `MB/s` the same in bytes, one way; " +
	"`p50`/`p99`/`p99.9` round-trip latency of a message; " +
	"`CPU/msg` the server's CPU time (user+system, all threads, from its process CPU-time clock in ns; /proc/PID/stat where that clock is refused) per echoed message, lower is better; " +
	"`server`/`client` how busy the server's and the load generator's CPU were; " +
	"`sys/msg` syscalls per message from corio's own counters (whole run, warm-up included); " +
	"`÷ net` run-by-run ratios against `net` in the same repetition, median. " +
	"When the client's CPU is above 90%, msgs/s measures the client more than the server, and the ratio that judges the server is the CPU/msg one: it is in bold.\n\n"

func (r *report) pointTable(b *strings.Builder, pt loadSpec) {
	k := pt.String()
	fmt.Fprintf(b, "### %d connections, %d B messages, %d in flight per connection\n\n", pt.conns, pt.size, pt.depth)
	b.WriteString("| server | msgs/s | MB/s | p50 | p99 | p99.9 | CPU/msg (ns) | user/msg (ns) | server | client | sys/msg | msgs/s ÷ net | CPU/msg ÷ net |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	base := r.runs[k]["net"]
	for _, s := range r.servers {
		ms := r.runs[k][s]
		if len(ms) == 0 {
			fmt.Fprintf(b, "| %s | failed | | | | | | | | | | | |\n", s)
			continue
		}
		rate, rlo, rhi := stat(ms, measurement.rate)
		mbs, _, _ := stat(ms, measurement.mbs)
		cpu, clo, chi := stat(ms, measurement.cpuPerMsg)
		usr, _, _ := stat(ms, measurement.userPerMsg)
		sbusy, _, _ := stat(ms, measurement.serverBusy)
		cbusy, _, _ := stat(ms, measurement.clientBusy)
		p50, _, _ := stat(ms, func(m measurement) float64 { return m.quantile(0.5) })
		p99, _, _ := stat(ms, func(m measurement) float64 { return m.quantile(0.99) })
		p999, _, _ := stat(ms, func(m measurement) float64 { return m.quantile(0.999) })
		sys, _, _ := stat(ms, func(m measurement) float64 { return m.sysPerMsg })
		rr, _, _, n1 := pairRatio(ms, base, measurement.rate)
		cr, _, _, n2 := pairRatio(ms, base, measurement.cpuPerMsg)
		rs, cs := ratioCell(rr, n1), ratioCell(cr, n2)
		if n1 > 0 {
			bcbusy, _, _ := stat(base, measurement.clientBusy)
			if max(cbusy, bcbusy) > busyClient {
				cs = "**" + cs + "**"
			} else {
				rs = "**" + rs + "**"
			}
		}
		fmt.Fprintf(b, "| %s | %.0f [%.0f–%.0f] | %.1f | %s | %s | %s | %.0f [%.0f–%.0f] | %.0f | %.0f%% | %.0f%% | %s | %s | %s |\n",
			s, rate, rlo, rhi, mbs, dur(p50), dur(p99), dur(p999), cpu, clo, chi, usr, 100*sbusy, 100*cbusy, num(sys), rs, cs)
	}
	b.WriteString("\n")
}

func ratioCell(v float64, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

// num formats a positive number with at least two significant digits
// below 1, or "–" for 0 (unknown).
func num(v float64) string {
	switch {
	case v <= 0:
		return "–"
	case v < 0.1:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// section writes a "## title" section with an intro and a table, or
// nothing when there are no rows.
func section(b *strings.Builder, title, intro, head string, rows []string) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "## %s\n\n%s\n\n%s\n", title, intro, head)
	for _, row := range rows {
		b.WriteString(row + "\n")
	}
	b.WriteString("\n")
}

func (r *report) syscallTable(b *strings.Builder) {
	var rows []string
	for _, s := range r.syscalls {
		rows = append(rows, fmt.Sprintf("| %s | %d conns, %d B, %d in flight | %s | %s | %s |", s.server, s.spec.conns, s.spec.size, s.spec.depth, num(s.strace), num(s.own), s.note))
	}
	section(b, "Syscalls per echoed message",
		"Counted over a whole run (warm-up included) with `strace -c -f` attached to the server, which slows every server down; "+
			"for corio, also with the runtime's own counters in the same run (they miss the Go runtime's own syscalls: futex, nanosleep, signals). "+
			"The `sys/msg` column of the matrix has corio's counters without strace.",
		"| server | load | strace -c -f | corio's counters | note |\n|---|---|---:|---:|---|", rows)
}

func (r *report) idleTable(b *strings.Builder) {
	var rows []string
	for _, s := range r.idle {
		rows = append(rows, fmt.Sprintf("| %s | %.1f | %d | %s |", s.server, s.kb, s.conns, s.note))
	}
	section(b, "Peak server memory per idle connection",
		"Growth of the server's peak RSS (VmHWM) over its RSS before the connections, divided by the connections; each connection echoed one byte, then stayed idle.",
		"| server | KiB per connection | connections | note |\n|---|---:|---:|---|", rows)
}

func (r *report) toolTable(b *strings.Builder) {
	var rows []string
	for _, t := range r.tools {
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %.0f | %.0f | %s |", t.stage, t.server, t.metric, t.value, t.cpuPerReq, t.note))
	}
	section(b, "Real clients",
		"Servers pinned as above with GOMAXPROCS=1 (redis-server is single-threaded); the tool pinned to the client's CPU. `CPU/req` is the server's CPU time per request over the tool's whole run.",
		"| tool | server | metric | value | CPU/req (ns) | note |\n|---|---|---|---:|---:|---|", rows)
}

func (r *report) notesList(b *strings.Builder) {
	if len(r.notes)+len(r.failures) == 0 {
		return
	}
	b.WriteString("## Notes\n\n")
	for _, n := range r.notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	for _, f := range r.failures {
		fmt.Fprintf(b, "- FAILED: %s\n", f)
	}
	b.WriteString("\n")
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

// benchLines prints the runs in `go test -bench` format, for benchstat:
// ns/op is the server's CPU time per message.
func (r *report) benchLines() string {
	var b strings.Builder
	b.WriteString("goos: linux\ngoarch: " + runtime.GOARCH + "\npkg: github.com/corio-go/corio/bench\n")
	for _, pt := range r.cfg.points {
		k := pt.String()
		for _, s := range r.servers {
			for _, m := range r.runs[k][s] {
				fmt.Fprintf(&b, "BenchmarkEcho/server=%s/%s \t%d\t%.1f ns/op\t%.2f MB/s\t%.0f msgs/s\t%.0f p50-ns\t%.0f p99-ns\t%.1f client-cpu-%%\n",
					s, k, m.load.msgs, m.cpuPerMsg(), m.mbs(), m.rate(), m.quantile(0.5), m.quantile(0.99), 100*m.clientBusy())
			}
		}
	}
	return b.String()
}

// write saves the markdown, the plot and the benchstat lines into dir and
// returns their common path without extension.
func (r *report) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	host, _ := os.Hostname()
	base := filepath.Join(dir, r.started.Format("2006-01-02")+"-"+host)
	// A second run on the same day does not overwrite the first.
	for i := 2; ; i++ {
		if _, err := os.Stat(base + ".md"); errors.Is(err, fs.ErrNotExist) {
			break
		}
		base = filepath.Join(dir, fmt.Sprintf("%s-%s-%d", r.started.Format("2006-01-02"), host, i))
	}
	md := r.markdown() + "![msgs/s by connections](" + filepath.Base(base) + ".svg)\n\n" +
		"Per-run lines for benchstat: [" + filepath.Base(base) + ".txt](" + filepath.Base(base) + ".txt).\n"
	for _, f := range []struct{ ext, data string }{{".md", md}, {".svg", r.svg()}, {".txt", r.benchLines()}} {
		if err := os.WriteFile(base+f.ext, []byte(f.data), 0o644); err != nil {
			return "", err
		}
	}
	progress(fmt.Sprintf("wrote %s.md, .svg and .txt", base))
	return base, nil
}
