package loadtest

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// checkPNG fails unless path is a decodable PNG of a sensible size.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("%s: %v", path, b)
	}
}

func TestPlotWritesBoth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots")
	r := syntheticResult()
	// A longer run: a ramp to 10,000 and a latency spike.
	r.Server, r.Timeline = nil, nil
	for s := range 60 {
		at := t0.Add(time.Duration(s) * time.Second)
		connected := min(10000, s*500)
		r.Server = append(r.Server, ServerSample{At: at.Add(300 * time.Millisecond), RSS: 16e6 + float64(connected)*1900, CPU: float64(s) / 10})
		spike := int64(1)
		if s == 40 {
			spike = 8
		}
		r.Timeline = append(r.Timeline, Point{At: at, Connected: connected, Sent: 10000, Answered: 10000,
			P50us: 200 + int64(s), P99us: 900 * spike, P999us: 2500 * spike})
	}
	if got := plotRSSPoints(r); len(got) != 60 || got[10].X != 5000 || got[59].X != 10000 {
		t.Fatalf("RSS points from the timeline: %v", got)
	}
	if err := Plot(dir, r); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, plotRSSFile))
	checkPNG(t, filepath.Join(dir, plotLatencyFile))
	if keep := os.Getenv("TERMLOAD_PLOT_KEEP"); keep != "" { // to look at the charts
		_ = os.MkdirAll(keep, 0o755)
		for _, name := range []string{plotRSSFile, plotLatencyFile} {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			_ = os.WriteFile(filepath.Join(keep, name), b, 0o644)
		}
	}
}

func TestPlotServerConnected(t *testing.T) {
	r := syntheticResult() // samples carry termd_online: 0, 5,000, 10,000, 10,000
	got := plotRSSPoints(r)
	if len(got) != 4 || got[1].X != 5000 || got[1].Y != 30 {
		t.Errorf("points %v", got)
	}
	// Without termd_online, from the timeline: the sample before the
	// first point is at 0, each other at its second's count.
	for i := range r.Server {
		r.Server[i].Connected = 0
	}
	got = plotRSSPoints(r)
	if len(got) != 4 || got[0].X != 0 || got[1].X != 8000 || got[3].X != 10000 {
		t.Errorf("points from timeline %v", got)
	}
}

func TestPlotSkipsMissingData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots")
	r := syntheticResult()
	r.Timeline = nil
	for i := range r.Server {
		r.Server[i].Connected = 0
	}
	if err := Plot(dir, r); err != nil { // neither chart has data
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("dir made for no charts: %v", err)
	}
	r = syntheticResult()
	r.Server = nil
	if err := Plot(dir, r); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, filepath.Join(dir, plotLatencyFile))
	if _, err := os.Stat(filepath.Join(dir, plotRSSFile)); !os.IsNotExist(err) {
		t.Errorf("RSS chart without samples: %v", err)
	}
}
