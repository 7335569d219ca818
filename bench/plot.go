package main

import (
	"fmt"
	"math"
	"strings"
)

var colors = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// svg plots median msgs/s against connections (log scale), one panel per
// message shape and one line per server. Hand-written SVG: no dependency.
func (r *report) svg() string {
	type shape struct{ size, depth int }
	var shapes []shape
	conns := map[shape][]loadSpec{}
	for _, pt := range r.cfg.points {
		s := shape{pt.size, pt.depth}
		if conns[s] == nil {
			shapes = append(shapes, s)
		}
		conns[s] = append(conns[s], pt)
	}
	const pw, ph, pad = 360, 260, 50
	w := pad + len(shapes)*(pw+pad)
	h := ph + 2*pad + 20*len(r.servers)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, sh := range shapes {
		x0 := pad + i*(pw+pad)
		y0 := pad
		pts := conns[sh]
		maxRate := 1.0
		for _, pt := range pts {
			for _, s := range r.servers {
				if ms := r.runs[pt.String()][s]; len(ms) > 0 {
					m, _, _ := stat(ms, measurement.rate)
					maxRate = math.Max(maxRate, m)
				}
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13">%d B, %d in flight: msgs/s by connections</text>`+"\n", x0, y0-15, sh.size, sh.depth)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", x0, y0, pw, ph)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%.0f</text>`+"\n", x0+2, y0+12, maxRate)
		xOf := func(j int) float64 {
			if len(pts) == 1 {
				return float64(x0) + pw/2
			}
			return float64(x0) + 20 + float64(j)*float64(pw-40)/float64(len(pts)-1)
		}
		yOf := func(v float64) float64 { return float64(y0+ph) - v/maxRate*float64(ph-20) }
		for j, pt := range pts {
			fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">%d</text>`+"\n", xOf(j), y0+ph+14, pt.conns)
		}
		for si, s := range r.servers {
			var path []string
			for j, pt := range pts {
				if ms := r.runs[pt.String()][s]; len(ms) > 0 {
					m, _, _ := stat(ms, measurement.rate)
					path = append(path, fmt.Sprintf("%.1f,%.1f", xOf(j), yOf(m)))
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", xOf(j), yOf(m), colors[si%len(colors)])
				}
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(path, " "), colors[si%len(colors)])
		}
	}
	for si, s := range r.servers {
		y := ph + pad + 35 + 18*si
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", pad, y-10, colors[si%len(colors)], pad+18, y, s)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
