package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// series is one line of a panel: a value per x category (NaN: missing).
type series struct {
	name   string
	color  string
	dashed bool
	ys     []float64
}

// panel is one chart: categories on x, a log scale on y.
type panel struct {
	title  string
	series []series
}

// Layout of the SVG, in pixels.
const (
	panelW   = 330
	panelH   = 300
	marginL  = 62
	marginR  = 18
	marginT  = 70
	marginB  = 90
	logFloor = 1e-3 // values at or below are drawn here (log scale)
)

// writeSVG draws the panels side by side with a shared legend, and returns
// the first write error.
func writeSVG(w io.Writer, title, caption string, xs []string, panels []panel) error {
	bw := bufio.NewWriter(w)
	width := len(panels) * (marginL + panelW + marginR)
	height := marginT + panelH + marginB
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(bw, `<text x="%d" y="20" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, esc(title))
	if len(panels) > 0 {
		legend(bw, panels[0].series)
	}
	for i, p := range panels {
		drawPanel(bw, i*(marginL+panelW+marginR)+marginL, marginT, xs, p)
	}
	if caption != "" {
		fmt.Fprintf(bw, `<text x="%d" y="%d" fill="#444">%s</text>`+"\n", marginL, height-8, esc(caption))
	}
	fmt.Fprintln(bw, `</svg>`)
	return bw.Flush()
}

func legend(w io.Writer, ss []series) {
	x := marginL
	for _, s := range ss {
		fmt.Fprintf(w, `<line x1="%d" y1="40" x2="%d" y2="40" stroke="%s" stroke-width="2.5"%s/>`+"\n", x, x+28, s.color, dash(s.dashed))
		fmt.Fprintf(w, `<text x="%d" y="44">%s</text>`+"\n", x+34, esc(s.name))
		x += 40 + 7*len(s.name) + 20
	}
}

func drawPanel(w io.Writer, left, top int, xs []string, p panel) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range p.series {
		for _, y := range s.ys {
			if math.IsNaN(y) {
				continue
			}
			y = math.Max(y, logFloor)
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", left, top-8, esc(p.title))
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", left, top, panelW, panelH)
	if math.IsInf(lo, 0) {
		return // nothing measured
	}
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1 == d0 {
		d1++
	}
	yOf := func(v float64) float64 {
		v = math.Max(v, logFloor)
		return float64(top+panelH) - (math.Log10(v)-d0)/(d1-d0)*panelH
	}
	for d := d0; d <= d1; d++ {
		y := yOf(math.Pow(10, d))
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+panelW, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, decade(d))
	}
	step := float64(panelW) / float64(len(xs))
	xOf := func(i int) float64 { return float64(left) + step*(float64(i)+0.5) }
	for i, x := range xs {
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="end" transform="rotate(-30 %.1f %d)">%s</text>`+"\n",
			xOf(i), top+panelH+16, xOf(i), top+panelH+16, esc(x))
	}
	for _, s := range p.series {
		var pts []string
		for i, y := range s.ys {
			if i >= len(xs) || math.IsNaN(y) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(i), yOf(y)))
			fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", xOf(i), yOf(y), s.color)
		}
		if len(pts) > 1 {
			fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash(s.dashed))
		}
	}
}

func dash(dashed bool) string {
	if dashed {
		return ` stroke-dasharray="6 4"`
	}
	return ""
}

// decade labels 10^d compactly: 0.001, 0.1, 1, 100, 10k, 1M.
func decade(d float64) string {
	v := math.Pow(10, d)
	switch {
	case d >= 6:
		return fmt.Sprintf("%gM", v/1e6)
	case d >= 3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func esc(s string) string { return html.EscapeString(s) }
