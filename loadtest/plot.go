package loadtest

import (
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Chart files Plot writes (names fixed: give each run its own dir).
const (
	plotRSSFile     = "rss_vs_connected.png"
	plotLatencyFile = "latency_over_time.png"
)

// Chart size: legible on a laptop screen and in a pull request.
const (
	plotWidth  = 20 * vg.Centimeter
	plotHeight = 12 * vg.Centimeter
)

// plotColors are the series' colours, in order (Okabe–Ito, readable by
// colour-blind eyes).
var plotColors = []color.RGBA{
	{R: 0x00, G: 0x72, B: 0xB2, A: 0xFF},
	{R: 0xE6, G: 0x9F, B: 0x00, A: 0xFF},
	{R: 0xD5, G: 0x5E, B: 0x00, A: 0xFF},
}

// Plot writes r's charts as PNGs into dir (created if needed):
// plotRSSFile, server RSS in MB against connected terminals, and
// plotLatencyFile, heartbeat p50/p99/p99.9 per second in ms. A chart
// whose data r lacks is skipped without error.
func Plot(dir string, r *Result) error {
	rss := plotRSSPoints(r)
	lat := len(r.Timeline) > 0 && slices.ContainsFunc(r.Timeline, func(p Point) bool { return p.P50us > 0 || p.P99us > 0 || p.P999us > 0 })
	if len(rss) == 0 && !lat {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	title := r.Proto + " " + r.Scenario
	if len(rss) > 0 {
		p := plot.New()
		p.Title.Text = "server RSS against connected terminals — " + title
		p.X.Label.Text = "connected terminals"
		p.Y.Label.Text = "server RSS (MB)"
		p.X.Min, p.Y.Min = 0, 0
		p.Add(plotter.NewGrid())
		if err := plotSeries(p, "", 0, rss); err != nil {
			return err
		}
		if err := p.Save(plotWidth, plotHeight, filepath.Join(dir, plotRSSFile)); err != nil {
			return err
		}
	}
	if lat {
		p := plot.New()
		p.Title.Text = "latency per second — " + title
		p.X.Label.Text = "seconds since start"
		p.Y.Label.Text = "latency (ms)"
		p.Y.Min = 0
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Legend.Left = true
		t0 := r.Timeline[0].At
		series := []struct {
			name string
			us   func(Point) int64
		}{
			{"p50", func(p Point) int64 { return p.P50us }},
			{"p99", func(p Point) int64 { return p.P99us }},
			{"p99.9", func(p Point) int64 { return p.P999us }},
		}
		for i, s := range series {
			xys := make(plotter.XYs, 0, len(r.Timeline))
			for _, pt := range r.Timeline {
				xys = append(xys, plotter.XY{X: pt.At.Sub(t0).Seconds(), Y: float64(s.us(pt)) / 1e3})
			}
			if err := plotSeries(p, s.name, i, xys); err != nil {
				return err
			}
		}
		if err := p.Save(plotWidth, plotHeight, filepath.Join(dir, plotLatencyFile)); err != nil {
			return err
		}
	}
	return nil
}

// plotSeries adds xys as a line with points in the i-th colour, in the
// legend unless name is "".
func plotSeries(p *plot.Plot, name string, i int, xys plotter.XYs) error {
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	c := plotColors[i%len(plotColors)]
	line.Color = c
	points.Color = c
	points.Radius = vg.Points(1.5)
	p.Add(line, points)
	if name != "" {
		p.Legend.Add(name, line, points)
	}
	return nil
}

// plotRSSPoints pairs each server sample's RSS (MB) with the connected
// terminals at that moment: the server's own count when it reports one,
// otherwise the generator's from the timeline point of that second (0
// before the first point; samples after the last point are left out,
// the run being over). Nil when there is nothing to plot.
func plotRSSPoints(r *Result) plotter.XYs {
	if len(r.Server) == 0 {
		return nil
	}
	fromServer := slices.ContainsFunc(r.Server, func(s ServerSample) bool { return s.Connected > 0 })
	if !fromServer && len(r.Timeline) == 0 {
		return nil
	}
	var xys plotter.XYs
	var maxConnected float64
	for _, s := range r.Server {
		connected := s.Connected
		if !fromServer {
			sec := s.At.Unix()
			tl := r.Timeline
			i := sort.Search(len(tl), func(i int) bool { return tl[i].At.Unix() > sec }) - 1
			switch {
			case i < 0:
				connected = 0
			case i == len(tl)-1 && sec > tl[i].At.Unix():
				continue
			default:
				connected = float64(tl[i].Connected)
			}
		}
		maxConnected = max(maxConnected, connected)
		xys = append(xys, plotter.XY{X: connected, Y: s.RSS / 1e6})
	}
	if maxConnected == 0 {
		return nil
	}
	return xys
}
