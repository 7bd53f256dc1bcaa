package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// kneeShare is the achieved/offered share at or above which a saturation
// step still counts as keeping up (see Result.Knee).
const kneeShare = 0.95

// Merge adds o, another process's result of the same run, into r.
//
// Counts, errors, terminals, processes and client CPU add; latency
// histograms merge. Timeline points are merged by second: Connected, Sent
// and Answered add, and each percentile is the larger of the two, an upper
// bound of the true merged percentile (the per-second histograms are not
// kept). Steps are merged by index: rates add, p99 is the larger; the knee
// is then recomputed from the merged steps. Duration is the longer one,
// Started the earlier one. RampEnd is the later one and MeasureEnd the
// earlier one (each only if set): between them every process is in its
// measured phase, none still connecting, none closing yet. Server samples
// are the receiver's if it has any, else o's: only one process samples
// the server, and if it is not one of those merged (the -procs parent),
// it moves the merged marks onto its own samples taken at those moments.
func (r *Result) Merge(o *Result) {
	if o == nil {
		return
	}
	if r.Scenario == "" {
		r.Scenario = o.Scenario
	}
	if r.Proto == "" {
		r.Proto = o.Proto
	}
	if r.Target == "" {
		r.Target = o.Target
	}
	if r.Started.IsZero() || (!o.Started.IsZero() && o.Started.Before(r.Started)) {
		r.Started = o.Started
	}
	if r.RampEnd.IsZero() || o.RampEnd.After(r.RampEnd) {
		r.RampEnd = o.RampEnd
	}
	if r.MeasureEnd.IsZero() || (!o.MeasureEnd.IsZero() && o.MeasureEnd.Before(r.MeasureEnd)) {
		r.MeasureEnd = o.MeasureEnd
	}
	r.Terminals += o.Terminals
	r.Procs += o.Procs
	r.Duration = max(r.Duration, o.Duration)
	r.ClientCPU += o.ClientCPU
	r.Counts = addCounts(r.Counts, o.Counts)
	r.Errors = addCounts(r.Errors, o.Errors)
	for kind, h := range o.Latency {
		if h == nil {
			continue
		}
		if r.Latency == nil {
			r.Latency = make(map[string]*Histogram, len(o.Latency))
		}
		if r.Latency[kind] == nil {
			r.Latency[kind] = NewHistogram()
		}
		r.Latency[kind].Merge(h)
	}
	r.Timeline = mergeTimeline(r.Timeline, o.Timeline)
	r.mergeSteps(o.Steps)
	for k, sp := range o.Spans {
		if r.Spans == nil {
			r.Spans = map[string]Span{}
		}
		r.Spans[k] = r.Spans[k].merge(sp)
	}
	if len(r.Server) == 0 {
		r.Server = slices.Clone(o.Server)
	}
}

// addCounts adds o into m, making m if needed.
func addCounts(m, o map[string]uint64) map[string]uint64 {
	if len(o) > 0 && m == nil {
		m = make(map[string]uint64, len(o))
	}
	for k, v := range o {
		m[k] += v
	}
	return m
}

// mergeTimeline merges two timelines by whole second, oldest first.
func mergeTimeline(a, b []Point) []Point {
	if len(b) == 0 {
		return a
	}
	bySec := make(map[int64]*Point, len(a)+len(b))
	for _, tl := range [][]Point{a, b} {
		for _, p := range tl {
			sec := p.At.Unix()
			m, ok := bySec[sec]
			if !ok {
				p.At = time.Unix(sec, 0).In(p.At.Location())
				bySec[sec] = &p
				continue
			}
			m.Connected += p.Connected
			m.Sent += p.Sent
			m.Answered += p.Answered
			m.P50us = max(m.P50us, p.P50us)
			m.P99us = max(m.P99us, p.P99us)
			m.P999us = max(m.P999us, p.P999us)
		}
	}
	out := make([]Point, 0, len(bySec))
	for _, sec := range slices.Sorted(maps.Keys(bySec)) {
		out = append(out, *bySec[sec])
	}
	return out
}

// mergeSteps adds saturation steps by index and recomputes the knee.
func (r *Result) mergeSteps(o []Step) {
	if len(o) == 0 {
		return
	}
	for i, s := range o {
		if i == len(r.Steps) {
			r.Steps = append(r.Steps, s)
			continue
		}
		r.Steps[i].Offered += s.Offered
		r.Steps[i].Achieved += s.Achieved
		r.Steps[i].P99us = max(r.Steps[i].P99us, s.P99us)
	}
	r.Knee = 0
	for _, s := range r.Steps {
		if s.Offered > 0 && s.Achieved >= kneeShare*s.Offered {
			r.Knee = max(r.Knee, s.Offered)
		}
	}
}

// Derived are the figures computed from a Result for reports.
//
// Server figures use the samples at these moments: the baseline, the
// last sample taken no later than Started (the first connect; the first
// sample if none is that early); the ramp's end, the last sample no later
// than RampEnd; the measured phase's start, the first sample no earlier
// than RampEnd; its end, the last sample no later than MeasureEnd; and
// the last sample. The run samples the server at RampEnd and MeasureEnd
// exactly, so these are the samples taken then (a failed one gives way to
// the nearest periodic sample inside the window). The CPU windows are:
//
//   - ServerCPURamp, baseline → ramp's end: the connects. Connects per
//     server CPU-second are the sessions opened in the ramp (connect_ok
//     less connect_ok_after_ramp) ÷ ServerCPURamp.
//   - ServerCPUPhase, phase start → phase end: the measured phase, from
//     the ramp's end (before its first request) to its end (before
//     termload closes anything). Requests per server CPU-second are the
//     requests answered in it (answered less answered_in_ramp) ÷
//     ServerCPUPhase; Rate is the same requests ÷ Duration. Zero for
//     connect, which has no phase after the ramp.
//   - ServerCPU, baseline → last sample: the whole run, teardown too.
//
// A result without RampEnd (saved before the marks existed) has no
// windows: ServerCPURamp and ServerCPUPhase are then the whole run's, and
// the figures are what they were. RSSPeak is the largest RSS sampled from
// the baseline on, so BytesPerTerminal is (peak − baseline) / Terminals:
// the end of the ramp or the peak of the hold, whichever is higher.
// Figures whose inputs are missing are 0.
type Derived struct {
	// BytesPerTerminal is server RSS growth per terminal, bytes.
	BytesPerTerminal float64 `json:"bytes_per_terminal"`
	// RequestsPerServerCPUSecond is requests answered in the measured
	// phase per server CPU-second of it.
	RequestsPerServerCPUSecond float64 `json:"requests_per_server_cpu_s"`
	// ConnectsPerServerCPUSecond is sessions opened in the ramp per server
	// CPU-second of it.
	ConnectsPerServerCPUSecond float64 `json:"connects_per_server_cpu_s"`
	// ConnectsPerServerCPUSecondSettled (connect with -settle) is the
	// same sessions per server CPU-second from the baseline to the end of
	// the settle: what the connects cost with the work the server
	// deferred (write-behind, collection), but not the teardown.
	ConnectsPerServerCPUSecondSettled float64 `json:"connects_per_server_cpu_s_settled,omitempty"`
	// BytesPerTerminalHeld is server RSS growth per terminal at the end of
	// the measured phase (the last sample at or before MeasureEnd): what
	// holding the terminals costs once the ramp's garbage is collected.
	BytesPerTerminalHeld float64 `json:"bytes_per_terminal_held,omitempty"`
	// ClientCPUPerRequestUs is the generator's CPU (whole run) per
	// answered request, µs.
	ClientCPUPerRequestUs float64 `json:"client_cpu_per_request_us"`
	// Rate is requests answered in the measured phase per second of it.
	Rate float64 `json:"rate_per_s"`
	// ServerCPU is the server's CPU time over the whole run, seconds.
	ServerCPU float64 `json:"server_cpu_s"`
	// ServerCPURamp is the server's CPU time from the baseline to the
	// ramp's end, seconds.
	ServerCPURamp float64 `json:"server_cpu_ramp_s"`
	// ServerCPUPhase is the server's CPU time in the measured phase,
	// seconds.
	ServerCPUPhase float64 `json:"server_cpu_phase_s"`
	// RSSBefore, RSSPeak and RSSAfter are server RSS at the baseline, at
	// its largest and at the last sample, bytes.
	RSSBefore float64 `json:"rss_before_bytes"`
	RSSPeak   float64 `json:"rss_peak_bytes"`
	RSSAfter  float64 `json:"rss_after_bytes"`
	// PlacementsPerSecond is the campaign scenario's placements per
	// second of Spans[SpanPlacement]; ServerCPUPlacement the server's CPU
	// time from the last sample before that span to the first after it
	// (wider than the span: an upper bound), and
	// PlacementsPerServerCPUSecond the placements over it.
	PlacementsPerSecond          float64 `json:"placements_per_s,omitempty"`
	ServerCPUPlacement           float64 `json:"server_cpu_placement_s,omitempty"`
	PlacementsPerServerCPUSecond float64 `json:"placements_per_server_cpu_s,omitempty"`
}

// phaseAnswered is the requests answered in the measured phase.
func (r *Result) phaseAnswered() uint64 {
	return r.Counts["answered"] - min(r.Counts["answered_in_ramp"], r.Counts["answered"])
}

// rampConnects is the sessions opened in the ramp.
func (r *Result) rampConnects() uint64 {
	return r.Counts["connect_ok"] - min(r.Counts["connect_ok_after_ramp"], r.Counts["connect_ok"])
}

// Derived computes the report figures; see the Derived type.
func (r *Result) Derived() Derived {
	var d Derived
	answered := float64(r.phaseAnswered())
	if secs := r.Duration.Seconds(); secs > 0 {
		d.Rate = answered / secs
	}
	if all := float64(r.Counts["answered"]); all > 0 {
		d.ClientCPUPerRequestUs = r.ClientCPU / all * 1e6
	}
	if sp, ok := r.Spans[SpanPlacement]; ok {
		d.PlacementsPerSecond = sp.Rate()
	}
	if len(r.Server) == 0 {
		return d
	}
	ss := r.Server
	// lastAt is the index of the last sample no later than t, or -1;
	// firstAt that of the first no earlier than t, or len(ss).
	lastAt := func(t time.Time) int {
		i := -1
		for j, s := range ss {
			if s.At.After(t) {
				break
			}
			i = j
		}
		return i
	}
	firstAt := func(t time.Time) int {
		for j, s := range ss {
			if !s.At.Before(t) {
				return j
			}
		}
		return len(ss)
	}
	base := max(lastAt(r.Started), 0)
	last := len(ss) - 1
	d.RSSBefore = ss[base].RSS
	d.RSSAfter = ss[last].RSS
	// The peak is the largest RSS while the terminals are held: up to the
	// measured phase's end, not the teardown after it (disconnecting
	// 19,000 terminals is work of its own). Without that mark, the run.
	held := last
	if !r.MeasureEnd.IsZero() {
		held = max(lastAt(r.MeasureEnd), base)
	}
	for _, s := range ss[base : held+1] {
		d.RSSPeak = max(d.RSSPeak, s.RSS)
	}
	if r.Terminals > 0 && d.RSSPeak > d.RSSBefore {
		d.BytesPerTerminal = (d.RSSPeak - d.RSSBefore) / float64(r.Terminals)
	}
	if r.Terminals > 0 && !r.MeasureEnd.IsZero() && ss[held].RSS > d.RSSBefore {
		d.BytesPerTerminalHeld = (ss[held].RSS - d.RSSBefore) / float64(r.Terminals)
	}
	// cpu is the CPU time between samples from and to; 0 if the window
	// holds no two samples.
	cpu := func(from, to int) float64 {
		if from < 0 || from >= len(ss) || to <= from {
			return 0
		}
		return ss[to].CPU - ss[from].CPU
	}
	d.ServerCPU = cpu(base, last)
	switch {
	case r.RampEnd.IsZero(): // saved before the marks: the whole run
		d.ServerCPURamp, d.ServerCPUPhase = d.ServerCPU, d.ServerCPU
	case r.MeasureEnd.IsZero(): // connect, or stopped in the ramp
		d.ServerCPURamp = cpu(base, lastAt(r.RampEnd))
	case r.Scenario == ScenarioConnect: // ramp, then settle
		d.ServerCPURamp = cpu(base, lastAt(r.RampEnd))
		if c := cpu(base, lastAt(r.MeasureEnd)); c > 0 {
			d.ConnectsPerServerCPUSecondSettled = float64(r.rampConnects()) / c
		}
	default:
		d.ServerCPURamp = cpu(base, lastAt(r.RampEnd))
		d.ServerCPUPhase = cpu(firstAt(r.RampEnd), lastAt(r.MeasureEnd))
	}
	if d.ServerCPURamp > 0 {
		d.ConnectsPerServerCPUSecond = float64(r.rampConnects()) / d.ServerCPURamp
	}
	if d.ServerCPUPhase > 0 {
		d.RequestsPerServerCPUSecond = answered / d.ServerCPUPhase
	}
	if sp, ok := r.Spans[SpanPlacement]; ok {
		d.PlacementsPerSecond = sp.Rate()
		from, to := max(lastAt(sp.First), 0), min(firstAt(sp.Last), last)
		if d.ServerCPUPlacement = cpu(from, to); d.ServerCPUPlacement > 0 {
			d.PlacementsPerServerCPUSecond = float64(sp.N) / d.ServerCPUPlacement
		}
	}
	return d
}

// resultFile is a Result as saved: the measurements and, for people and
// scripts reading the file, the figures derived from them.
type resultFile struct {
	*Result
	Derived Derived `json:"derived"`
}

// WriteJSON saves r, with its Derived figures, as indented JSON at path,
// creating the directory if needed.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(resultFile{Result: r, Derived: r.Derived()}, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResult loads a result saved by WriteJSON; the derived figures are
// recomputed on use, not read.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// tableRow is one row of WriteTable: a label and a cell per result. vals,
// when set, are the numbers behind the cells, for the ratio rows.
type tableRow struct {
	label string
	cells []string
	vals  []float64
}

// latencyQuantiles are the percentiles the table shows per message type.
var latencyQuantiles = []struct {
	name string
	q    float64
}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}}

// WriteTable writes rs side by side as a text table: counts, rates,
// errors by kind, latency per message type, server memory and CPU, and
// client CPU. With exactly two results it adds ratio rows, first ÷
// second (e.g. termd ÷ mosquitto: below 1 means the first costs less or
// answers faster). A "—" marks a figure a result does not have. Server
// CPU is shown over the whole run and over Derived's two windows, the
// ramp and the measured phase; the per-CPU figures of a result saved
// without the windows are over the whole run and say so.
func WriteTable(w io.Writer, rs ...*Result) {
	if len(rs) == 0 {
		return
	}
	ds := make([]Derived, len(rs))
	for i, r := range rs {
		ds[i] = r.Derived()
	}
	text := func(label string, f func(r *Result) string) tableRow {
		row := tableRow{label: label}
		for _, r := range rs {
			row.cells = append(row.cells, f(r))
		}
		return row
	}
	// num makes a numeric row; f's ok false means "not measured".
	num := func(label, format string, ratio bool, f func(i int) (float64, bool)) tableRow {
		row := tableRow{label: label}
		for i := range rs {
			v, ok := f(i)
			if !ok {
				row.cells = append(row.cells, "—")
				v = math.NaN()
			} else {
				row.cells = append(row.cells, formatNum(format, v))
			}
			if ratio {
				row.vals = append(row.vals, v)
			}
		}
		return row
	}
	hasServer := func(i int) bool { return len(rs[i].Server) > 0 }
	// marked: the result has the CPU windows (see Derived).
	marked := func(i int) bool { return !rs[i].RampEnd.IsZero() }
	// windowed notes, in a per-CPU row, the cells of results saved
	// before the windows, whose figure is over the whole run.
	windowed := func(row tableRow) tableRow {
		for i := range rs {
			if !marked(i) && row.cells[i] != "—" {
				row.cells[i] += " (whole run)"
			}
		}
		return row
	}

	rows := []tableRow{
		text("scenario", func(r *Result) string { return r.Scenario }),
		text("proto", func(r *Result) string { return r.Proto }),
		text("target", func(r *Result) string { return r.Target }),
		num("terminals", "int", false, func(i int) (float64, bool) { return float64(rs[i].Terminals), true }),
		num("procs", "int", false, func(i int) (float64, bool) { return float64(rs[i].Procs), true }),
		text("duration", func(r *Result) string { return r.Duration.Round(100 * time.Millisecond).String() }),
	}
	for _, k := range unionKeys(rs, func(r *Result) map[string]uint64 { return r.Counts }) {
		rows = append(rows, num("count "+k, "int", false, func(i int) (float64, bool) {
			v, ok := rs[i].Counts[k]
			return float64(v), ok
		}))
	}
	rows = append(rows, num("answered/s", "%.1f", true, func(i int) (float64, bool) { return ds[i].Rate, rs[i].Duration > 0 }))
	if slices.ContainsFunc(rs, func(r *Result) bool { return r.Spans[SpanPlacement].N > 0 }) {
		rows = append(rows,
			num("placements", "int", false, func(i int) (float64, bool) {
				sp, ok := rs[i].Spans[SpanPlacement]
				return float64(sp.N), ok
			}),
			num("placement span s", "%.2f", true, func(i int) (float64, bool) {
				sp, ok := rs[i].Spans[SpanPlacement]
				return sp.Last.Sub(sp.First).Seconds(), ok
			}),
			num("placements/s", "%.0f", true, func(i int) (float64, bool) {
				return ds[i].PlacementsPerSecond, ds[i].PlacementsPerSecond > 0
			}),
			num("server CPU s (placement span, widened to samples)", "%.2f", true, func(i int) (float64, bool) {
				return ds[i].ServerCPUPlacement, ds[i].ServerCPUPlacement > 0
			}),
			num("placements/server CPU-s", "%.0f", true, func(i int) (float64, bool) {
				return ds[i].PlacementsPerServerCPUSecond, ds[i].PlacementsPerServerCPUSecond > 0
			}),
		)
	}
	if slices.ContainsFunc(rs, func(r *Result) bool { return len(r.Steps) > 0 }) {
		rows = append(rows, num("saturation knee /s", "%.0f", true, func(i int) (float64, bool) {
			return rs[i].Knee, len(rs[i].Steps) > 0
		}))
	}
	for _, k := range unionKeys(rs, func(r *Result) map[string]uint64 { return r.Errors }) {
		rows = append(rows, num("error "+k, "int", false, func(i int) (float64, bool) {
			v, ok := rs[i].Errors[k]
			return float64(v), ok
		}))
	}
	for _, k := range unionKeys(rs, func(r *Result) map[string]*Histogram { return r.Latency }) {
		// ms returns a latency figure of result i for type k, in ms.
		ms := func(i int, f func(h *Histogram) int64) (float64, bool) {
			h := rs[i].Latency[k]
			if h == nil || h.Count() == 0 {
				return 0, false
			}
			return float64(f(h)) / 1e3, true
		}
		rows = append(rows, num(k+" n", "int", false, func(i int) (float64, bool) {
			h := rs[i].Latency[k]
			if h == nil {
				return 0, false
			}
			return float64(h.Count()), true
		}))
		for _, q := range latencyQuantiles {
			rows = append(rows, num(k+" "+q.name+" ms", "%.2f", true, func(i int) (float64, bool) {
				return ms(i, func(h *Histogram) int64 { return h.Quantile(q.q) })
			}))
		}
		rows = append(rows, num(k+" max ms", "%.2f", true, func(i int) (float64, bool) {
			return ms(i, (*Histogram).Max)
		}))
	}
	rows = append(rows,
		num("server RSS before MB", "%.1f", true, func(i int) (float64, bool) { return ds[i].RSSBefore / 1e6, hasServer(i) }),
		num("server RSS peak MB", "%.1f", true, func(i int) (float64, bool) { return ds[i].RSSPeak / 1e6, hasServer(i) }),
		num("server RSS after MB", "%.1f", true, func(i int) (float64, bool) { return ds[i].RSSAfter / 1e6, hasServer(i) }),
		num("server CPU s (whole run)", "%.2f", true, func(i int) (float64, bool) { return ds[i].ServerCPU, hasServer(i) }),
		num("server CPU s (ramp)", "%.2f", true, func(i int) (float64, bool) {
			return ds[i].ServerCPURamp, hasServer(i) && marked(i)
		}),
		num("server CPU s (measured phase)", "%.2f", true, func(i int) (float64, bool) {
			return ds[i].ServerCPUPhase, hasServer(i) && marked(i) && !rs[i].MeasureEnd.IsZero()
		}),
		num("bytes/terminal", "%.0f", true, func(i int) (float64, bool) {
			return ds[i].BytesPerTerminal, hasServer(i) && rs[i].Terminals > 0
		}),
		num("bytes/terminal held", "%.0f", true, func(i int) (float64, bool) {
			return ds[i].BytesPerTerminalHeld, ds[i].BytesPerTerminalHeld > 0
		}),
		windowed(num("requests/server CPU-s (measured phase)", "%.0f", true, func(i int) (float64, bool) {
			return ds[i].RequestsPerServerCPUSecond, ds[i].ServerCPUPhase > 0 && rs[i].phaseAnswered() > 0
		})),
		windowed(num("connects/server CPU-s (ramp)", "%.0f", true, func(i int) (float64, bool) {
			return ds[i].ConnectsPerServerCPUSecond, ds[i].ServerCPURamp > 0 && rs[i].rampConnects() > 0
		})),
		num("connects/server CPU-s (ramp + settle)", "%.0f", true, func(i int) (float64, bool) {
			return ds[i].ConnectsPerServerCPUSecondSettled, ds[i].ConnectsPerServerCPUSecondSettled > 0
		}),
		num("client CPU s", "%.2f", true, func(i int) (float64, bool) { return rs[i].ClientCPU, true }),
		num("client CPU/request µs", "%.1f", true, func(i int) (float64, bool) {
			return ds[i].ClientCPUPerRequestUs, rs[i].Counts["answered"] > 0
		}),
	)
	for si := range slices.MaxFunc(rs, func(a, b *Result) int { return len(a.Steps) - len(b.Steps) }).Steps {
		rows = append(rows, text(fmt.Sprintf("step %d offered→achieved /s, p99", si+1), func(r *Result) string {
			if si >= len(r.Steps) {
				return "—"
			}
			s := r.Steps[si]
			return fmt.Sprintf("%.0f→%.0f, %.2f ms", s.Offered, s.Achieved, float64(s.P99us)/1e3)
		}))
	}
	if len(rs) == 2 {
		rows = append(rows, tableRow{label: "ratios [1] ÷ [2]:"})
		for _, row := range rows {
			if row.vals == nil {
				continue
			}
			a, b := row.vals[0], row.vals[1]
			cell := "—"
			if a > 0 && b > 0 { // NaN (not measured) compares false too
				cell = "×" + formatRatio(a/b)
			}
			rows = append(rows, tableRow{label: "ratio " + row.label, cells: []string{cell}})
		}
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{""}
	for i, r := range rs {
		name := fmt.Sprintf("[%d] %s %s", i+1, r.Proto, r.Scenario)
		if len(r.Steps) > 0 {
			name += " -saturate"
		}
		header = append(header, name)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, row := range rows {
		fmt.Fprintln(tw, row.label+"\t"+strings.Join(row.cells, "\t")+"\t")
	}
	_ = tw.Flush()
}

// unionKeys returns the keys of every result's map, sorted.
func unionKeys[V any](rs []*Result, m func(*Result) map[string]V) []string {
	set := map[string]bool{}
	for _, r := range rs {
		for k := range m(r) {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// formatNum formats v as an integer with thousands separators ("int") or
// with a printf format.
func formatNum(format string, v float64) string {
	if format != "int" {
		return fmt.Sprintf(format, v)
	}
	return groupThousands(strconv.FormatInt(int64(math.Round(v)), 10))
}

// formatRatio keeps three significant digits.
func formatRatio(x float64) string {
	return strconv.FormatFloat(x, 'g', 3, 64)
}
