package dashboard

import (
	"fmt"
	"strconv"
)

// chart is a bar chart drawn as inline SVG by the templates: geometry is
// computed here, in Go, so the page needs neither script nor inline style
// (colours come from presentation attributes and the stylesheet's classes).
type chart struct {
	Title   string
	ID      string // element id prefix, for aria-labelledby
	Width   int
	Height  int
	Max     string // label of the top of the scale
	Bars    []chartBar
	Summary string // text alternative: the newest value and the peak
	First   string // label of the first and last bars' times
	Last    string
}

type chartBar struct {
	X, Y, W, H string
	Label      string // tooltip: time and value
}

const (
	chartWidth  = 600
	chartHeight = 120
	chartTop    = 12 // room for the scale label
)

// barChart draws value(p) for each point.
func barChart(title, id string, s []Point, value func(Point) float64, format func(float64) string) chart {
	c := chart{Title: title, ID: id, Width: chartWidth, Height: chartHeight}
	peak := 0.0
	for _, p := range s {
		peak = max(peak, value(p))
	}
	c.Max = format(peak)
	if len(s) == 0 {
		c.Summary = title + ": no data"
		return c
	}
	slot := float64(chartWidth) / float64(len(s))
	w := slot * 0.8
	for i, p := range s {
		v := value(p)
		h := 0.0
		if peak > 0 {
			h = v / peak * float64(chartHeight-chartTop)
		}
		if v > 0 && h < 1 {
			h = 1 // a non-zero minute is always visible
		}
		c.Bars = append(c.Bars, chartBar{
			X: num(float64(i)*slot + (slot-w)/2), Y: num(float64(chartHeight) - h), W: num(w), H: num(h),
			Label: p.Start.UTC().Format("15:04") + " UTC: " + format(v),
		})
	}
	c.First = s[0].Start.UTC().Format("15:04")
	c.Last = s[len(s)-1].Start.UTC().Format("15:04")
	c.Summary = fmt.Sprintf("%s over the last %d minutes: now %s, peak %s.", title, len(s), format(value(s[len(s)-1])), format(peak))
	return c
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func fmtCount(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func fmtMillis(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " ms" }

func fmtAmount(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
