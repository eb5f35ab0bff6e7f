package svgplot

import (
	"bufio"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Series is one curve of a panel.
type Series struct {
	Name  string
	Color string // any SVG color, such as "#1f77b4"
	X, Y  []float64
	// Fill draws the band between Base and Y (between 0 and Y when Base is
	// nil) instead of a line, for stacked areas.
	Fill bool
	Base []float64
	// Dash draws a dashed line.
	Dash bool
}

// Panel is one chart of a figure: its own y axis, the figure's x axis.
type Panel struct {
	Title  string
	YLabel string
	Series []Series
	// YMax fixes the top of the y axis; 0 fits the data.
	YMax float64
}

// Figure is a column of panels sharing an x axis.
type Figure struct {
	Title  string
	XLabel string
	// Width of the image and height of each panel, in pixels; zero takes
	// 960 and 240.
	Width, PanelHeight int
	// XMin and XMax fix the x axis; when equal it fits the data.
	XMin, XMax float64
	// Shade marks spans of x in every panel (such as outages), drawn
	// behind the curves and named by ShadeLabel in the figure's title line.
	Shade      []Span
	ShadeLabel string
	Panels     []Panel
}

// Span is a range of x.
type Span struct{ From, To float64 }

const shadeColor = "#d9d9d9"

const (
	marginLeft   = 70
	marginRight  = 20
	panelTop     = 44 // title and legend above each plot area
	panelBottom  = 36 // x tick labels below it
	figureTop    = 34
	tickLength   = 5
	fontFamily   = "sans-serif"
	legendSwatch = 12
)

// WriteSVG renders the figure as a standalone SVG document.
func (f *Figure) WriteSVG(w io.Writer) error {
	if len(f.Panels) == 0 {
		return errors.New("svgplot: a figure needs at least one panel")
	}
	width, ph := f.Width, f.PanelHeight
	if width == 0 {
		width = 960
	}
	if ph == 0 {
		ph = 240
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for _, p := range f.Panels {
		for _, s := range p.Series {
			if len(s.X) != len(s.Y) || (s.Base != nil && len(s.Base) != len(s.Y)) {
				return fmt.Errorf("svgplot: series %q: X, Y and Base lengths differ", s.Name)
			}
			for _, x := range s.X {
				xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			}
		}
	}
	if f.XMin != f.XMax {
		xmin, xmax = f.XMin, f.XMax
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	top0 := figureTop
	if len(f.Shade) > 0 && f.ShadeLabel != "" {
		top0 += 16
	}
	height := top0 + len(f.Panels)*(panelTop+ph+panelBottom) + 24
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s" font-size="12">`+"\n",
		width, height, width, height, fontFamily)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="22" font-size="16" font-weight="bold">%s</text>`+"\n", marginLeft, esc(f.Title))
	if len(f.Shade) > 0 && f.ShadeLabel != "" {
		p(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, marginLeft, figureTop-legendSwatch+4, legendSwatch, legendSwatch, shadeColor)
		p(`<text x="%d" y="%d">%s</text>`+"\n", marginLeft+legendSwatch+4, figureTop+3, esc(f.ShadeLabel))
	}
	plotW := float64(width - marginLeft - marginRight)
	xs := func(x float64) float64 { return marginLeft + (x-xmin)/(xmax-xmin)*plotW }
	xticks := ticks(xmin, xmax, 10)
	for i, pn := range f.Panels {
		top := float64(top0 + i*(panelTop+ph+panelBottom) + panelTop)
		bottom := top + float64(ph)
		ymax := pn.YMax
		if ymax == 0 {
			for _, s := range pn.Series {
				for _, y := range s.Y {
					ymax = math.Max(ymax, y)
				}
			}
		}
		if ymax <= 0 {
			ymax = 1
		}
		yticks := ticks(0, ymax, 5)
		ymax = math.Max(ymax, yticks[len(yticks)-1])
		ys := func(y float64) float64 { return bottom - y/ymax*float64(ph) }

		p(`<text x="%d" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", marginLeft, top-9, esc(pn.Title))
		legendX := float64(width - marginRight)
		for k := len(pn.Series) - 1; k >= 0; k-- {
			s := pn.Series[k]
			if s.Name == "" {
				continue
			}
			legendX -= float64(textWidth(s.Name) + legendSwatch + 18)
			p(`<rect x="%.1f" y="%.0f" width="%d" height="%d" fill="%s"/>`, legendX, top-8-legendSwatch, legendSwatch, legendSwatch, s.Color)
			p(`<text x="%.1f" y="%.0f">%s</text>`+"\n", legendX+legendSwatch+4, top-9, esc(s.Name))
		}
		// Grid and axes.
		for _, t := range yticks {
			y := ys(t)
			p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`, marginLeft, y, width-marginRight, y)
			p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginLeft-tickLength-3, y+4, label(t))
		}
		for _, t := range xticks {
			x := xs(t)
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e5e5"/>`, x, top, x, bottom)
			p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`, x, bottom, x, bottom+tickLength)
			p(`<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, bottom+tickLength+13, label(t))
		}
		p(`<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="none" stroke="black"/>`+"\n", marginLeft, top, plotW, ph)
		p(`<text transform="translate(16,%.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (top+bottom)/2, esc(pn.YLabel))
		// Curves, clipped to the plot area.
		p(`<clipPath id="clip%d"><rect x="%d" y="%.1f" width="%.1f" height="%d"/></clipPath>`+"\n", i, marginLeft, top, plotW, ph)
		p(`<g clip-path="url(#clip%d)">`+"\n", i)
		for _, sp := range f.Shade {
			p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"/>`+"\n", xs(sp.From), top, math.Max(1, xs(sp.To)-xs(sp.From)), ph, shadeColor)
		}
		for _, s := range pn.Series {
			if len(s.X) == 0 {
				continue
			}
			var b strings.Builder
			if s.Fill {
				for k := range s.X {
					b.WriteString(point(k == 0, xs(s.X[k]), ys(s.Y[k])))
				}
				for k := len(s.X) - 1; k >= 0; k-- {
					base := 0.0
					if s.Base != nil {
						base = s.Base[k]
					}
					b.WriteString(point(false, xs(s.X[k]), ys(base)))
				}
				p(`<path d="%sZ" fill="%s" fill-opacity="0.75" stroke="none"/>`+"\n", b.String(), s.Color)
				continue
			}
			for k := range s.X {
				b.WriteString(point(k == 0, xs(s.X[k]), ys(s.Y[k])))
			}
			dash := ""
			if s.Dash {
				dash = ` stroke-dasharray="6 4"`
			}
			p(`<path d="%s" fill="none" stroke="%s" stroke-width="1.5"%s/>`+"\n", b.String(), s.Color, dash)
		}
		p("</g>\n")
	}
	last := top0 + len(f.Panels)*(panelTop+ph+panelBottom)
	p(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginLeft+plotW/2, last+8, esc(f.XLabel))
	p("</svg>\n")
	return bw.Flush()
}

func point(first bool, x, y float64) string {
	cmd := "L"
	if first {
		cmd = "M"
	}
	return cmd + strconv.FormatFloat(x, 'f', 1, 64) + " " + strconv.FormatFloat(y, 'f', 1, 64)
}

// ticks returns round values covering [lo, hi] at about n intervals: steps
// of 1, 2 or 5 times a power of ten.
func ticks(lo, hi float64, n int) []float64 {
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Floor(lo/step) * step; v < hi+step*0.999; v += step {
		if v >= lo-step*1e-9 {
			out = append(out, v)
		}
	}
	return out
}

func label(v float64) string {
	if math.Abs(v) >= 10000 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// textWidth estimates the width of s in pixels at the figure's font size.
func textWidth(s string) int { return 7 * len(s) }

func esc(s string) string { return html.EscapeString(s) }
