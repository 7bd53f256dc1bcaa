package loadtest

import (
	"encoding/json"
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency range recorded, in microseconds: 1 µs to 60 s at 3 significant
// digits (HDR's usual precision for latency: ±0.1 %).
const (
	histMinUs  = 1
	histMaxUs  = 60_000_000
	histDigits = 3
)

// Histogram is an HDR latency histogram in microseconds, safe for
// concurrent use, that merges across worker processes through JSON.
type Histogram struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(histMinUs, histMaxUs, histDigits)}
}

// Record adds one latency; values outside the range are clamped.
func (h *Histogram) Record(us int64) {
	us = min(max(us, histMinUs), histMaxUs)
	h.mu.Lock()
	_ = h.h.RecordValue(us)
	h.mu.Unlock()
}

// Merge adds o's values.
func (h *Histogram) Merge(o *Histogram) {
	o.mu.Lock()
	snap := o.h.Export()
	o.mu.Unlock()
	other := hdrhistogram.Import(snap)
	h.mu.Lock()
	h.h.Merge(other)
	h.mu.Unlock()
}

// Quantile returns the value at percentile q (0–100), in µs.
func (h *Histogram) Quantile(q float64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.ValueAtQuantile(q)
}

// Max returns the largest value recorded, in µs.
func (h *Histogram) Max() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.Max()
}

// Count is the number of values recorded.
func (h *Histogram) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Reset empties the histogram (per-second timeline windows).
func (h *Histogram) Reset() {
	h.mu.Lock()
	h.h.Reset()
	h.mu.Unlock()
}

// histJSON carries the summary for people and the snapshot for merging.
type histJSON struct {
	Count    int64                  `json:"count"`
	P50      int64                  `json:"p50_us"`
	P90      int64                  `json:"p90_us"`
	P99      int64                  `json:"p99_us"`
	P999     int64                  `json:"p999_us"`
	Max      int64                  `json:"max_us"`
	Snapshot *hdrhistogram.Snapshot `json:"snapshot"`
}

// MarshalJSON implements json.Marshaler.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return json.Marshal(histJSON{
		Count: h.h.TotalCount(), P50: h.h.ValueAtQuantile(50), P90: h.h.ValueAtQuantile(90),
		P99: h.h.ValueAtQuantile(99), P999: h.h.ValueAtQuantile(99.9), Max: h.h.Max(),
		Snapshot: h.h.Export(),
	})
}

// UnmarshalJSON implements json.Unmarshaler.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if j.Snapshot == nil {
		h.h = hdrhistogram.New(histMinUs, histMaxUs, histDigits)
		return nil
	}
	h.h = hdrhistogram.Import(j.Snapshot)
	return nil
}
