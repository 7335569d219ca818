package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// target is one of the goals of the issue that asked for this bench,
// checked against what the run measured.
type target struct {
	what       string
	goal       string
	value      float64 // median of the run-by-run ratios
	lo, hi     float64
	n          int       // runs paired; 0: not measured
	ratios     []float64 // the run-by-run ratios, when there are several
	met        bool      // meaningful only when n > 0
	why        string    // when n == 0: why not measured
	wantAtMost bool
	limit      float64
}

func (t *target) check() {
	if t.n > 0 {
		t.met = t.meets(t.value)
	}
}

func (t target) meets(v float64) bool {
	if t.wantAtMost {
		return v <= t.limit
	}
	return v >= t.limit
}

func (t target) verdict() string {
	switch {
	case t.n == 0:
		return "not measured: " + t.why
	case t.met:
		return "met"
	}
	return "missed"
}

// runsMet says in how many runs, one by one, the goal was met: on a noisy
// machine a median just past the limit and one well past it differ.
func (t target) runsMet() string {
	if len(t.ratios) < 2 {
		return ""
	}
	k := 0
	for _, v := range t.ratios {
		if t.meets(v) {
			k++
		}
	}
	if t.met {
		return fmt.Sprintf(" (%d/%d runs)", k, len(t.ratios))
	}
	return fmt.Sprintf(" (%d/%d runs met it)", k, len(t.ratios))
}

// targets checks the run against the goals:
//   - corio on io_uring within 1.1× the C liburing server's CPU per message
//     and ≤ 0.8× net's, at 64 and 1000 connections, 64 B, 16 in flight;
//   - corio on io_uring at least net's msgs/s everywhere;
//   - corio on epoll ≤ net's CPU per message (at the same points);
//   - far fewer syscalls per message than net at 1000 connections (taken
//     here as at most half).
func (r *report) targets() []target {
	var ts []target
	cpu := func(a, b string, conns int, limit float64) {
		t := target{what: fmt.Sprintf("%s CPU/msg ÷ %s, %d conns, 64 B, 16 in flight", a, b, conns),
			goal: fmt.Sprintf("≤ %.2f", limit), wantAtMost: true, limit: limit}
		pt, ok := r.point(conns, 64, 16)
		if !ok {
			t.why = "point not in this run"
		} else {
			k := pt.String()
			t.ratios = pairRatios(r.runs[k][a], r.runs[k][b], measurement.cpuPerMsg)
			t.value, t.lo, t.hi = median(t.ratios)
			t.n = len(t.ratios)
			if t.n == 0 {
				t.why = a + " or " + b + " did not run"
			}
		}
		t.check()
		ts = append(ts, t)
	}
	for _, c := range []int{64, 1000} {
		cpu("corio-uring", "c-liburing", c, 1.1)
		cpu("corio-uring", "net", c, 0.8)
	}
	for _, c := range []int{64, 1000} {
		cpu("corio-epoll", "net", c, 1.0)
	}

	// msgs/s at every point: the worst point's median ratio.
	t := target{what: "corio-uring msgs/s ÷ net, worst point of the matrix", goal: "≥ 1.00", limit: 1, value: math.Inf(1), why: "corio-uring or net did not run"}
	for _, pt := range r.cfg.points {
		k := pt.String()
		xs := pairRatios(r.runs[k]["corio-uring"], r.runs[k]["net"], measurement.rate)
		if v, lo, hi := median(xs); len(xs) > 0 && v < t.value {
			t.value, t.lo, t.hi, t.n, t.ratios = v, lo, hi, len(xs), xs
			t.what = fmt.Sprintf("corio-uring msgs/s ÷ net, worst point (%d conns, %d B, %d in flight)", pt.conns, pt.size, pt.depth)
		}
	}
	t.check()
	ts = append(ts, t)

	for _, spec := range syscallSpecs {
		t := target{what: fmt.Sprintf("corio-uring syscalls/msg ÷ net, %d conns, %d B, %d in flight (strace)", spec.conns, spec.size, spec.depth),
			goal: "≤ 0.50 (\"far fewer\")", wantAtMost: true, limit: 0.5, why: "syscall stage not run (full mode only)"}
		var u, n float64
		for _, s := range r.syscalls {
			if s.spec == spec && s.server == "corio-uring" {
				u = s.strace
			}
			if s.spec == spec && s.server == "net" {
				n = s.strace
			}
		}
		if u > 0 && n > 0 {
			t.value, t.lo, t.hi, t.n = u/n, u/n, u/n, 1
			t.what += fmt.Sprintf(": %.2f vs %.2f", u, n)
		} else if len(r.syscalls) > 0 {
			t.why = "no strace count for corio-uring or net (see the notes)"
		}
		t.check()
		ts = append(ts, t)
	}
	return ts
}

func (r *report) targetsTable(b *strings.Builder) {
	b.WriteString("The goals of the issue that asked for this bench, against this run. Ratios are medians of run-by-run ratios [min–max]; the verdict is the median's, with how many runs met the goal one by one; CPU/msg is the server's CPU time per echoed message.\n\n")
	b.WriteString("| target | goal | measured | |\n|---|---|---:|---|\n")
	for _, t := range r.targets() {
		m := "–"
		if t.n > 1 {
			m = fmt.Sprintf("%.2f [%.2f–%.2f]", t.value, t.lo, t.hi)
		} else if t.n == 1 {
			m = fmt.Sprintf("%.2f", t.value)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s%s |\n", t.what, t.goal, m, t.verdict(), t.runsMet())
	}
	b.WriteString("\n")
}

// The results block of bench/README.md lies between these lines.
const (
	readmeBegin = "<!-- bench results: begin (go run ./bench -readme rewrites this block) -->"
	readmeEnd   = "<!-- bench results: end -->"
)

// readmeBlock is the README's summary of this run: the machine and
// command, the targets, the 64 B, 16-in-flight tables and a link to the
// full results at base (.md, .svg, .txt), relative to the README.
func (r *report) readmeBlock(base, readme string) string {
	rel, err := filepath.Rel(filepath.Dir(readme), base)
	if err != nil {
		rel = base
	}
	rel = filepath.ToSlash(rel)
	var b strings.Builder
	b.WriteString(readmeBegin + "\n\n")
	r.header(&b)
	fmt.Fprintf(&b, "Full results: [%s.md](%s.md) (every point, syscalls, memory, wrk and redis-benchmark), plot [%s.svg](%s.svg), benchstat lines [%s.txt](%s.txt).\n\n", rel, rel, rel, rel, rel, rel)
	b.WriteString("### Targets\n\n")
	r.targetsTable(&b)
	for _, c := range []int{64, 1000} {
		if pt, ok := r.point(c, 64, 16); ok {
			r.pointTable(&b, pt)
		}
	}
	fmt.Fprintf(&b, "![msgs/s by connections](%s.svg)\n\n", rel)
	b.WriteString(readmeEnd)
	return b.String()
}

// updateReadme replaces the results block of the file at path with block.
func updateReadme(path, block string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceBlock(old, block)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

func replaceBlock(doc []byte, block string) ([]byte, error) {
	i := bytes.Index(doc, []byte(readmeBegin))
	j := bytes.Index(doc, []byte(readmeEnd))
	if i < 0 || j < i {
		return nil, errors.New("no results block (" + readmeBegin + " … " + readmeEnd + ")")
	}
	var out bytes.Buffer
	out.Write(doc[:i])
	out.WriteString(block)
	out.Write(doc[j+len(readmeEnd):])
	return out.Bytes(), nil
}
