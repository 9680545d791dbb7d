package bench

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chartColumn is one group of bars: a contender on one encoding.
type chartColumn struct {
	label               string
	encoding, contender string
}

var chartColumns = []chartColumn{
	{"baseline\n(pull+flatten)", Gzip, Baseline},
	{"nanofs build\ngzip", Gzip, Build},
	{"nanofs build\neStargz", EStargz, Build},
	{"nanofs build\nzstd:chunked", ZstdChunked, Build},
	{"nanofs mount eStargz\n(program read)", EStargz, Mount},
}

var (
	coldColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	warmColor = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	refColor  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	// zstdRefColor tells the zstd:chunked plan's line from the eStargz one.
	zstdRefColor = color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
	limitColor   = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

// logFloor is where the bars start on the log axes: bars cannot start at
// zero there, and every measured value is far above it.
const (
	secondsFloor = 0.01
	mibFloor     = 0.01
)

// WriteChart draws results.png: per workload, the wall time of every
// contender cold and warm (top) and the bytes each cold run took from the
// registry (bottom), on log scales, with the local copy, the physical
// limit of a cold eStargz build and the plan's compressed size (eStargz
// and zstd:chunked) as reference lines.
func (r *Results) WriteChart(file string) error {
	const w, h = 15 * vg.Inch, 10 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(110))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 2, Cols: len(r.Workloads), PadX: vg.Inch / 3, PadY: vg.Inch / 3,
		PadTop: vg.Inch / 5, PadBottom: vg.Inch / 5, PadLeft: vg.Inch / 5, PadRight: vg.Inch / 5}
	for i, wl := range r.Workloads {
		p, err := r.timePlot(wl)
		if err != nil {
			return err
		}
		p.Draw(tiles.At(dc, i, 0))
		p, err = r.bytesPlot(wl)
		if err != nil {
			return err
		}
		p.Draw(tiles.At(dc, i, 1))
	}
	return writeAtomic(file, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}

func (r *Results) timePlot(wl Workload) (*plot.Plot, error) {
	p := newLogPlot(fmt.Sprintf("%s (%s uncompressed): wall time", wl.Name, fmtBytes(wl.UncompressedBytes)), "seconds (log scale)")
	var labels []string
	for _, c := range chartColumns {
		labels = append(labels, c.label)
	}
	p.NominalX(labels...)
	for i, cache := range []string{Cold, Warm} {
		vals := make(plotter.Values, len(chartColumns))
		texts := make([]string, len(chartColumns))
		for j, c := range chartColumns {
			if run, ok := r.Find(wl.Name, c.encoding, c.contender, cache); ok {
				vals[j], texts[j] = run.Wall, fmtSec(run.Wall)
			} else {
				texts[j] = "n/a"
			}
		}
		col := coldColor
		if cache == Warm {
			col = warmColor
		}
		if err := addBars(p, vals, texts, col, cache, i, secondsFloor); err != nil {
			return nil, err
		}
	}
	if c := r.LocalCopy[wl.Name]; c > 0 {
		if err := addRefLine(p, c, len(chartColumns), refColor, fmt.Sprintf("local copy of the plan (%s)", fmtSec(c))); err != nil {
			return nil, err
		}
	}
	if run, ok := r.Find(wl.Name, EStargz, Build, Cold); ok {
		if lim, ok := r.PhysicalLimit(run); ok {
			if err := addRefLine(p, lim, len(chartColumns), limitColor, fmt.Sprintf("physical limit, cold eStargz (%s)", fmtSec(lim))); err != nil {
				return nil, err
			}
		}
	}
	fixLogRange(p, secondsFloor)
	return p, nil
}

func (r *Results) bytesPlot(wl Workload) (*plot.Plot, error) {
	p := newLogPlot(fmt.Sprintf("%s: bytes from the registry", wl.Name), "MiB (log scale)")
	var labels []string
	for _, c := range chartColumns {
		labels = append(labels, c.label)
	}
	p.NominalX(labels...)
	for i, cache := range []string{Cold, Warm} {
		vals := make(plotter.Values, len(chartColumns))
		texts := make([]string, len(chartColumns))
		for j, c := range chartColumns {
			if run, ok := r.Find(wl.Name, c.encoding, c.contender, cache); ok {
				vals[j], texts[j] = float64(run.RegistryBytes)/(1<<20), fmtBytes(run.RegistryBytes)
			} else {
				texts[j] = "n/a"
			}
		}
		col := coldColor
		if cache == Warm {
			col = warmColor
		}
		if err := addBars(p, vals, texts, col, cache, i, mibFloor); err != nil {
			return nil, err
		}
	}
	for _, ref := range []struct {
		enc, name string
		col       color.Color
	}{{EStargz, "eStargz", refColor}, {ZstdChunked, "zstd:chunked", zstdRefColor}} {
		if run, ok := r.Find(wl.Name, ref.enc, Build, Cold); ok && run.MinFetch > 0 {
			if err := addRefLine(p, float64(run.MinFetch)/(1<<20), len(chartColumns), ref.col, fmt.Sprintf("plan compressed, %s (%s)", ref.name, fmtBytes(run.MinFetch))); err != nil {
				return nil, err
			}
		}
	}
	fixLogRange(p, mibFloor)
	return p, nil
}

// fixLogRange sets the value axis from floor to well above the largest
// value (room for the labels and the legend). Left to itself, a plot whose
// values are all equal (no run made) pads its range below zero, which a
// log axis cannot show.
func fixLogRange(p *plot.Plot, floor float64) {
	p.Y.Min = floor
	p.Y.Max = max(p.Y.Max*20, floor*1000)
}

func newLogPlot(title, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// addBars adds one series of a grouped bar chart (series i of two) with
// its values written above the bars. Bars stand on floor, which is never
// drawn, since a log axis has no zero.
func addBars(p *plot.Plot, vals plotter.Values, texts []string, col color.Color, name string, i int, floor float64) error {
	width := vg.Points(28)
	base := make(plotter.Values, len(vals))
	for j := range base {
		base[j] = floor
	}
	ground, err := plotter.NewBarChart(base, width)
	if err != nil {
		return err
	}
	bars, err := plotter.NewBarChart(vals, width)
	if err != nil {
		return err
	}
	bars.StackOn(ground)
	bars.Color = col
	bars.LineStyle.Width = 0
	bars.Offset = width * vg.Length(2*i-1) / 2
	p.Add(bars)
	p.Legend.Add(name, bars)

	xys := make(plotter.XYs, len(vals))
	for j, v := range vals {
		xys[j] = plotter.XY{X: float64(j), Y: floor + v}
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return err
	}
	for j := range lb.TextStyle {
		lb.TextStyle[j].Font.Size = vg.Points(8)
		lb.TextStyle[j].XAlign = draw.XCenter
	}
	lb.Offset = vg.Point{X: bars.Offset, Y: vg.Points(3)}
	p.Add(lb)
	return nil
}

// addRefLine draws a dashed horizontal line across the groups at y.
func addRefLine(p *plot.Plot, y float64, groups int, col color.Color, name string) error {
	l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: y}, {X: float64(groups) - 0.5, Y: y}})
	if err != nil {
		return err
	}
	l.Color = col
	l.Width = vg.Points(1.5)
	l.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}
