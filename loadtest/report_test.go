package loadtest

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the synthetic runs' start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// hist returns a histogram holding n values of us each.
func hist(n int, us int64) *Histogram {
	h := NewHistogram()
	for range n {
		h.Record(us)
	}
	return h
}

// syntheticResult is a heartbeat run of 10,000 terminals for 4 s against
// a server that grew from 10 MB to a peak of 50 MB and used 4 CPU-s.
func syntheticResult() *Result {
	return &Result{
		Scenario: "heartbeat", Proto: "tgp", Target: "127.0.0.1:7000",
		Terminals: 10000, Procs: 1, Started: t0, Duration: 4 * time.Second,
		Counts:    map[string]uint64{"connect_ok": 10000, "sent": 8100, "answered": 8000},
		Errors:    map[string]uint64{"dial": 3},
		Latency:   map[string]*Histogram{"heartbeat": hist(100, 1500), "hello": hist(10, 800)},
		ClientCPU: 0.4,
		Server: []ServerSample{
			{At: t0.Add(-time.Second), RSS: 10e6, CPU: 1, Connected: 0},
			{At: t0.Add(time.Second), RSS: 30e6, CPU: 2, Connected: 5000},
			{At: t0.Add(2 * time.Second), RSS: 50e6, CPU: 3, Connected: 10000},
			{At: t0.Add(3 * time.Second), RSS: 40e6, CPU: 5, Connected: 10000},
		},
		Timeline: []Point{
			{At: t0, Connected: 4000, Sent: 0, Answered: 0},
			{At: t0.Add(time.Second), Connected: 8000, Sent: 2000, Answered: 1900, P50us: 900, P99us: 2000, P999us: 4000},
			{At: t0.Add(2 * time.Second), Connected: 10000, Sent: 3000, Answered: 3000, P50us: 1000, P99us: 2500, P999us: 9000},
			{At: t0.Add(3 * time.Second), Connected: 10000, Sent: 3100, Answered: 3100, P50us: 1100, P99us: 2100, P999us: 3000},
		},
	}
}

func TestDerived(t *testing.T) {
	d := syntheticResult().Derived()
	want := Derived{
		BytesPerTerminal:           4000, // (50 MB − 10 MB) / 10,000
		RequestsPerServerCPUSecond: 2000, // 8,000 / (5 − 1)
		ConnectsPerServerCPUSecond: 2500,
		ClientCPUPerRequestUs:      50, // 0.4 s / 8,000
		Rate:                       2000,
		ServerCPU:                  4,
		RSSBefore:                  10e6, RSSPeak: 50e6, RSSAfter: 40e6,
	}
	if !derivedNear(d, want) {
		t.Errorf("Derived = %+v\nwant      %+v", d, want)
	}
	// Saved before the marks: both windows are the whole run.
	if d.ServerCPURamp != 4 || d.ServerCPUPhase != 4 {
		t.Errorf("unmarked windows: ramp %v phase %v, want the whole run's 4", d.ServerCPURamp, d.ServerCPUPhase)
	}
	// No server samples, nothing answered: zeros, never NaN or Inf.
	empty := (&Result{Terminals: 5}).Derived()
	if empty != (Derived{}) {
		t.Errorf("empty Derived = %+v", empty)
	}
	// No sample before the start: the first one is the baseline.
	r := syntheticResult()
	r.Started = t0.Add(-time.Hour)
	if d := r.Derived(); d.RSSBefore != 10e6 || d.ServerCPU != 4 {
		t.Errorf("early start: %+v", d)
	}
	// The baseline is the last sample before the start, not the first.
	r.Started = t0.Add(1500 * time.Millisecond)
	if d := r.Derived(); d.RSSBefore != 30e6 || d.ServerCPU != 3 || d.BytesPerTerminal != 2000 {
		t.Errorf("late start: %+v", d)
	}
}

// derivedNear compares field by field to a relative 1e-9; b's
// ServerCPURamp and ServerCPUPhase are compared only if set.
func derivedNear(a, b Derived) bool {
	x := []float64{a.BytesPerTerminal, a.RequestsPerServerCPUSecond, a.ConnectsPerServerCPUSecond,
		a.ClientCPUPerRequestUs, a.Rate, a.ServerCPU, a.RSSBefore, a.RSSPeak, a.RSSAfter}
	y := []float64{b.BytesPerTerminal, b.RequestsPerServerCPUSecond, b.ConnectsPerServerCPUSecond,
		b.ClientCPUPerRequestUs, b.Rate, b.ServerCPU, b.RSSBefore, b.RSSPeak, b.RSSAfter}
	if b.ServerCPURamp != 0 || b.ServerCPUPhase != 0 {
		x = append(x, a.ServerCPURamp, a.ServerCPUPhase)
		y = append(y, b.ServerCPURamp, b.ServerCPUPhase)
	}
	for i := range x {
		if math.Abs(x[i]-y[i]) > 1e-9*math.Max(1, math.Abs(y[i])) {
			return false
		}
	}
	return true
}

func TestMerge(t *testing.T) {
	a := syntheticResult()
	a.Server = nil
	a.Steps = []Step{{Offered: 1000, Achieved: 1000, P99us: 100}, {Offered: 2000, Achieved: 1800, P99us: 900}}
	b := syntheticResult()
	b.Started = t0.Add(-time.Second)
	b.Duration = 5 * time.Second
	b.Errors = map[string]uint64{"timeout": 2, "dial": 1}
	b.Latency = map[string]*Histogram{"heartbeat": hist(100, 20000), "query": hist(1, 5)}
	b.Timeline = []Point{
		{At: t0.Add(1500 * time.Millisecond), Connected: 1, Sent: 10, Answered: 10, P50us: 5, P99us: 9000, P999us: 100},
		{At: t0.Add(10 * time.Second), Connected: 7},
	}
	b.Steps = []Step{{Offered: 1000, Achieved: 990, P99us: 300}, {Offered: 2000, Achieved: 2000, P99us: 200}, {Offered: 4000, Achieved: 3000}}
	a.Merge(b)

	if a.Terminals != 20000 || a.Procs != 2 || a.Duration != 5*time.Second || !a.Started.Equal(t0.Add(-time.Second)) ||
		math.Abs(a.ClientCPU-0.8) > 1e-9 {
		t.Errorf("totals: terminals %d procs %d duration %v started %v client CPU %v", a.Terminals, a.Procs, a.Duration, a.Started, a.ClientCPU)
	}
	if a.Counts["answered"] != 16000 || a.Counts["connect_ok"] != 20000 || a.Errors["dial"] != 4 || a.Errors["timeout"] != 2 {
		t.Errorf("counts %v errors %v", a.Counts, a.Errors)
	}
	hb := a.Latency["heartbeat"]
	if hb.Count() != 200 || hb.Quantile(25) > 1510 || hb.Quantile(75) < 19900 || a.Latency["query"].Count() != 1 {
		t.Errorf("heartbeat n=%d p25=%d p75=%d", hb.Count(), hb.Quantile(25), hb.Quantile(75))
	}
	if b.Latency["heartbeat"].Count() != 100 {
		t.Error("Merge changed its argument")
	}
	if len(a.Timeline) != 5 {
		t.Fatalf("timeline %+v", a.Timeline)
	}
	if p := a.Timeline[1]; !p.At.Equal(t0.Add(time.Second)) || p.Connected != 8001 || p.Sent != 2010 || p.Answered != 1910 ||
		p.P50us != 900 || p.P99us != 9000 || p.P999us != 4000 {
		t.Errorf("merged second: %+v", p)
	}
	if p := a.Timeline[4]; !p.At.Equal(t0.Add(10*time.Second)) || p.Connected != 7 {
		t.Errorf("last point: %+v", p)
	}
	for i := 1; i < len(a.Timeline); i++ {
		if !a.Timeline[i].At.After(a.Timeline[i-1].At) {
			t.Fatalf("timeline out of order at %d", i)
		}
	}
	wantSteps := []Step{{2000, 1990, 300}, {4000, 3800, 900}, {4000, 3000, 0}}
	if len(a.Steps) != 3 || a.Steps[0] != wantSteps[0] || a.Steps[1] != wantSteps[1] || a.Steps[2] != wantSteps[2] {
		t.Errorf("steps %+v", a.Steps)
	}
	if a.Knee != 4000 { // 3800/4000 = 95 %; 3000/4000 is below
		t.Errorf("knee %v", a.Knee)
	}
	if len(a.Server) != 4 {
		t.Errorf("server samples: %d, want o's 4", len(a.Server))
	}
	keep := syntheticResult()
	keep.Server = keep.Server[:1]
	keep.Merge(syntheticResult())
	if len(keep.Server) != 1 {
		t.Errorf("receiver's samples replaced: %d", len(keep.Server))
	}
	// Into an empty result: a worker merge starts from zero.
	var total Result
	total.Merge(syntheticResult())
	total.Merge(nil)
	if total.Counts["answered"] != 8000 || total.Latency["hello"].Count() != 10 || total.Scenario != "heartbeat" {
		t.Errorf("merge into zero: %+v", total)
	}
}

func TestWriteTable(t *testing.T) {
	a := syntheticResult()
	b := syntheticResult()
	b.Proto, b.Target = "mqtt", "127.0.0.1:1883"
	b.Server[2].RSS = 90e6 // peak: 8,000 B per terminal, twice termd's
	b.Latency = map[string]*Histogram{"heartbeat": hist(100, 3000)}
	b.Errors = nil
	var buf bytes.Buffer
	WriteTable(&buf, a, b)
	out := buf.String()
	for _, re := range []string{
		`\[1\] tgp heartbeat\s+\[2\] mqtt heartbeat`,
		`(?m)^terminals\s+10,000\s+10,000\s*$`,
		`(?m)^count answered\s+8,000\s+8,000\s*$`,
		`(?m)^error dial\s+3\s+—\s*$`,
		`(?m)^heartbeat p99 ms\s+1\.50\s+3\.00\s*$`,
		`(?m)^heartbeat p99\.9 ms\s+1\.50\s+3\.00\s*$`,
		`(?m)^hello p50 ms\s+0\.80\s+—\s*$`,
		`(?m)^bytes/terminal\s+4000\s+8000\s*$`,
		`(?m)^server RSS peak MB\s+50\.0\s+90\.0\s*$`,
		`(?m)^requests/server CPU-s \(measured phase\)\s+2000 \(whole run\)\s+2000 \(whole run\)\s*$`,
		`(?m)^client CPU/request µs\s+50\.0\s+50\.0\s*$`,
		`(?m)^ratios \[1\] ÷ \[2\]:`,
		`(?m)^ratio bytes/terminal\s+×0\.5\s*$`,
		`(?m)^ratio heartbeat p99 ms\s+×0\.5\s*$`,
		`(?m)^ratio hello p50 ms\s+—\s*$`,
		`(?m)^ratio requests/server CPU-s \(measured phase\)\s+×1\s*$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("table lacks %s:\n%s", re, out)
		}
	}
	// One or three results: no ratios.
	buf.Reset()
	WriteTable(&buf, a, b, a)
	if strings.Contains(buf.String(), "ratio ") || !strings.Contains(buf.String(), "[3] tgp heartbeat") {
		t.Errorf("three results:\n%s", buf.String())
	}
	buf.Reset()
	WriteTable(&buf)
	if buf.Len() != 0 {
		t.Errorf("no results wrote %q", buf.String())
	}
}

func TestWriteTableSteps(t *testing.T) {
	r := syntheticResult()
	r.Steps = []Step{{Offered: 1000, Achieved: 1000, P99us: 1500}}
	r.Knee = 1000
	var buf bytes.Buffer
	WriteTable(&buf, r)
	for _, want := range []string{"[1] tgp heartbeat -saturate", "saturation knee /s", "1000→1000, 1.50 ms"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	r := syntheticResult()
	r.Steps = []Step{{Offered: 1000, Achieved: 999, P99us: 12}}
	path := filepath.Join(t.TempDir(), "sub", "run.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Derived Derived `json:"derived"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || file.Derived != r.Derived() {
		t.Errorf("derived in file: %+v, %v", file.Derived, err)
	}
	if !bytes.Contains(raw, []byte("\n  \"scenario\": \"heartbeat\"")) {
		t.Errorf("not indented:\n%s", raw[:min(len(raw), 200)])
	}
	got, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Scenario != r.Scenario || got.Duration != r.Duration || !got.Started.Equal(r.Started) ||
		got.Counts["answered"] != 8000 || got.Errors["dial"] != 3 || len(got.Server) != 4 ||
		len(got.Timeline) != 4 || got.Steps[0] != r.Steps[0] || got.Derived() != r.Derived() {
		t.Errorf("round trip lost data: %+v", got)
	}
	for k, h := range r.Latency {
		g := got.Latency[k]
		if g == nil || g.Count() != h.Count() || g.Quantile(99) != h.Quantile(99) || g.Max() != h.Max() {
			t.Errorf("histogram %s did not survive", k)
			continue
		}
		g.Merge(h) // still a working histogram
		if g.Count() != 2*h.Count() {
			t.Errorf("histogram %s: merge after load: %d", k, g.Count())
		}
	}
	if _, err := ReadResult(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte("{"), 0o644)
	if _, err := ReadResult(bad); err == nil {
		t.Error("bad JSON: no error")
	}
}

// markedResult is a heartbeat run with its phase marks: the ramp from t0
// to t0+2s (3 CPU-s), the measured phase to t0+6s (4 CPU-s, 8,000
// answered), then the teardown (2 CPU-s more).
func markedResult() *Result {
	r := syntheticResult()
	r.RampEnd = t0.Add(2 * time.Second)
	r.MeasureEnd = t0.Add(6 * time.Second)
	r.Server = []ServerSample{
		{At: t0.Add(-time.Second), RSS: 10e6, CPU: 1}, // baseline
		{At: t0.Add(time.Second), RSS: 30e6, CPU: 2},
		{At: r.RampEnd, RSS: 50e6, CPU: 4}, // the ramp's end
		{At: t0.Add(3 * time.Second), RSS: 50e6, CPU: 5},
		{At: t0.Add(4 * time.Second), RSS: 50e6, CPU: 6},
		{At: r.MeasureEnd, RSS: 50e6, CPU: 8}, // the phase's end
		{At: t0.Add(6500 * time.Millisecond), RSS: 45e6, CPU: 9.5},
		{At: t0.Add(7 * time.Second), RSS: 40e6, CPU: 10}, // after the teardown
	}
	return r
}

func TestDerivedWindows(t *testing.T) {
	d := markedResult().Derived()
	want := Derived{
		BytesPerTerminal:           4000,        // (50 MB − 10 MB) / 10,000
		RequestsPerServerCPUSecond: 2000,        // 8,000 / (8 − 4): not the ramp, not the teardown
		ConnectsPerServerCPUSecond: 10000.0 / 3, // 10,000 / (4 − 1): baseline to the ramp's end
		ClientCPUPerRequestUs:      50,
		Rate:                       2000,
		ServerCPU:                  9, // 10 − 1
		ServerCPURamp:              3,
		ServerCPUPhase:             4,
		RSSBefore:                  10e6, RSSPeak: 50e6, RSSAfter: 40e6,
	}
	if !derivedNear(d, want) {
		t.Errorf("Derived = %+v\nwant      %+v", d, want)
	}

	// Work outside the windows is left out: heartbeats answered in the
	// ramp (idle, churn), sessions opened after it (churn).
	r := markedResult()
	r.Counts["answered_in_ramp"] = 800
	r.Counts["connect_ok_after_ramp"] = 1000
	d = r.Derived()
	if !near(d.RequestsPerServerCPUSecond, 1800) || !near(d.Rate, 1800) || // 7,200 / 4, 7,200 / 4 s
		!near(d.ConnectsPerServerCPUSecond, 3000) || !near(d.ClientCPUPerRequestUs, 50) { // 9,000 / 3
		t.Errorf("with work outside the windows: %+v", d)
	}

	// The samples at the marks failed: the nearest ones inside each window.
	r = markedResult()
	r.Server = slices.DeleteFunc(r.Server, func(s ServerSample) bool {
		return s.At.Equal(r.RampEnd) || s.At.Equal(r.MeasureEnd)
	})
	if d := r.Derived(); d.ServerCPURamp != 1 || d.ServerCPUPhase != 1 || d.ServerCPU != 9 { // 2 − 1; 6 − 5
		t.Errorf("without the mark samples: %+v", d)
	}

	// connect: the ramp is what it measures; there is no phase after it.
	r = markedResult()
	r.Scenario, r.MeasureEnd, r.Counts = ScenarioConnect, time.Time{}, map[string]uint64{"connect_ok": 9000}
	r.Server = slices.Delete(r.Server, 3, 6) // the ramp's end, then the teardown
	d = r.Derived()
	if d.ServerCPURamp != 3 || d.ServerCPUPhase != 0 || d.ServerCPU != 9 ||
		!near(d.ConnectsPerServerCPUSecond, 3000) || d.RequestsPerServerCPUSecond != 0 || d.Rate != 0 {
		t.Errorf("connect: %+v", d)
	}

	// Merged workers whose phases never overlapped: no phase window.
	r = markedResult()
	r.RampEnd, r.MeasureEnd = r.MeasureEnd, r.RampEnd
	if d := r.Derived(); d.ServerCPUPhase != 0 || d.RequestsPerServerCPUSecond != 0 {
		t.Errorf("empty phase: %+v", d)
	}
}

// near compares to a relative 1e-9.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestOldResultFileKeepsItsFigures(t *testing.T) {
	// A file saved before ramp_end and measure_end existed.
	old := `{"scenario":"heartbeat","proto":"tgp","target":"127.0.0.1:7000","terminals":10000,"procs":1,
	"started":"2026-01-02T03:04:05Z","duration_ns":4000000000,
	"counts":{"connect_ok":10000,"answered":8000},"errors":{},"latency":{},
	"server":[{"at":"2026-01-02T03:04:04Z","rss_bytes":1e7,"cpu_s":1,"connected":0},
	          {"at":"2026-01-02T03:04:07Z","rss_bytes":5e7,"cpu_s":3,"connected":10000},
	          {"at":"2026-01-02T03:04:10Z","rss_bytes":4e7,"cpu_s":5,"connected":10000}],
	"client_cpu_s":0.4,
	"derived":{"requests_per_server_cpu_s":2000,"server_cpu_s":4}}`
	path := filepath.Join(t.TempDir(), "old.json")
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	if !r.RampEnd.IsZero() || !r.MeasureEnd.IsZero() {
		t.Fatalf("marks from nowhere: %v %v", r.RampEnd, r.MeasureEnd)
	}
	want := Derived{ // the whole run, as before
		BytesPerTerminal: 4000, RequestsPerServerCPUSecond: 2000, ConnectsPerServerCPUSecond: 2500,
		ClientCPUPerRequestUs: 50, Rate: 2000, ServerCPU: 4, ServerCPURamp: 4, ServerCPUPhase: 4,
		RSSBefore: 1e7, RSSPeak: 5e7, RSSAfter: 4e7,
	}
	if d := r.Derived(); !derivedNear(d, want) {
		t.Errorf("old file: %+v\nwant     %+v", d, want)
	}
	// Saved again, it still has no marks.
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, []byte("ramp_end")) || bytes.Contains(raw, []byte("measure_end")) {
		t.Errorf("zero marks written:\n%s", raw[:min(len(raw), 400)])
	}
}

func TestMarksRoundTrip(t *testing.T) {
	r := markedResult()
	path := filepath.Join(t.TempDir(), "run.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.RampEnd.Equal(r.RampEnd) || !got.MeasureEnd.Equal(r.MeasureEnd) || got.Derived() != r.Derived() {
		t.Errorf("marks %v %v, derived %+v", got.RampEnd, got.MeasureEnd, got.Derived())
	}
}

func TestMergeMarks(t *testing.T) {
	a, b := markedResult(), markedResult()
	b.RampEnd = b.RampEnd.Add(300 * time.Millisecond)
	b.MeasureEnd = b.MeasureEnd.Add(200 * time.Millisecond)
	a.Merge(b)
	// The span when both were in their phase: the later ramp's end, the
	// earlier phase's end.
	if !a.RampEnd.Equal(b.RampEnd) || !a.MeasureEnd.Equal(t0.Add(6*time.Second)) {
		t.Errorf("merged marks %v %v", a.RampEnd, a.MeasureEnd)
	}
	// A result without marks (stopped early, or connect without a phase)
	// leaves them as they are; into an empty result they are taken over.
	a.Merge(syntheticResult())
	var total Result
	total.Merge(syntheticResult())
	total.Merge(markedResult())
	if !a.RampEnd.Equal(b.RampEnd) || !a.MeasureEnd.Equal(t0.Add(6*time.Second)) ||
		!total.RampEnd.Equal(t0.Add(2*time.Second)) || !total.MeasureEnd.Equal(t0.Add(6*time.Second)) {
		t.Errorf("zero marks: %v %v; into zero: %v %v", a.RampEnd, a.MeasureEnd, total.RampEnd, total.MeasureEnd)
	}
}

func TestWriteTableWindows(t *testing.T) {
	hb := markedResult()
	conn := markedResult()
	conn.Scenario, conn.MeasureEnd, conn.Counts = ScenarioConnect, time.Time{}, map[string]uint64{"connect_ok": 9000}
	var buf bytes.Buffer
	WriteTable(&buf, hb, conn, syntheticResult())
	out := buf.String()
	for _, re := range []string{
		`(?m)^server CPU s \(whole run\)\s+9\.00\s+9\.00\s+4\.00\s*$`,
		`(?m)^server CPU s \(ramp\)\s+3\.00\s+3\.00\s+—\s*$`,
		`(?m)^server CPU s \(measured phase\)\s+4\.00\s+—\s+—\s*$`,
		`(?m)^requests/server CPU-s \(measured phase\)\s+2000\s+—\s+2000 \(whole run\)\s*$`,
		`(?m)^connects/server CPU-s \(ramp\)\s+3333\s+3000\s+2500 \(whole run\)\s*$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("table lacks %s:\n%s", re, out)
		}
	}
}

// TestDerivedHeldAndSettled: the RSS peak stops at the measured phase's
// end (the teardown after it is not holding terminals), the held figure
// is the RSS there, and a connect run with a settle counts the CPU up to
// the settle's end.
func TestDerivedHeldAndSettled(t *testing.T) {
	r := &Result{
		Scenario: ScenarioIdle, Terminals: 10000, Started: t0,
		RampEnd: t0.Add(time.Second), MeasureEnd: t0.Add(3 * time.Second),
		Counts: map[string]uint64{"connect_ok": 10000},
		Server: []ServerSample{
			{At: t0, RSS: 10e6, CPU: 1},
			{At: t0.Add(time.Second), RSS: 40e6, CPU: 2, Connected: 10000},       // ramp's end: the peak
			{At: t0.Add(3 * time.Second), RSS: 30e6, CPU: 2.5, Connected: 10000}, // held
			{At: t0.Add(4 * time.Second), RSS: 60e6, CPU: 4},                     // teardown
		},
	}
	d := r.Derived()
	if d.RSSPeak != 40e6 || d.BytesPerTerminal != 3000 || d.BytesPerTerminalHeld != 2000 {
		t.Errorf("idle: peak %v, bytes/terminal %v, held %v; want 40e6, 3000, 2000", d.RSSPeak, d.BytesPerTerminal, d.BytesPerTerminalHeld)
	}
	r.Scenario = ScenarioConnect
	d = r.Derived()
	if d.ConnectsPerServerCPUSecond != 10000 || d.ConnectsPerServerCPUSecondSettled != 10000/1.5 {
		t.Errorf("connect: %v per CPU-s in the ramp, %v with the settle; want 10000, %v",
			d.ConnectsPerServerCPUSecond, d.ConnectsPerServerCPUSecondSettled, 10000/1.5)
	}
	// Without a measured phase's end: the whole run, no held figure.
	r.MeasureEnd = time.Time{}
	if d := r.Derived(); d.RSSPeak != 60e6 || d.BytesPerTerminalHeld != 0 || d.ConnectsPerServerCPUSecondSettled != 0 {
		t.Errorf("unmarked: %+v", d)
	}
}
