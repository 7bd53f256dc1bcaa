package presence

import (
	"context"
	"sync"
	"time"
)

// The online trend: how many devices were online, sampled once a minute
// for the last day, kept in a fixed ring in memory. It is what the
// console's fleet page draws (GET /v1/stats/online-trend), so operators
// see the day's curve without an external Prometheus. It is lost at a
// restart by design: 1,440 samples are cheap to gather again and not
// worth a durable write per minute.
const (
	// TrendInterval is the time between two samples.
	TrendInterval = time.Minute
	// TrendSamples is the ring's size: one day of TrendInterval samples.
	TrendSamples = 24 * 60
)

// TrendSample is one sample of the online trend.
type TrendSample struct {
	// AtMs is when the sample was taken, unix ms.
	AtMs int64
	// Online is the number of devices online then.
	Online int
}

// Trend is the ring of online samples (24 KB, fixed). Safe for
// concurrent use; Add and Samples take one short mutex.
type Trend struct {
	mu   sync.Mutex
	ring [TrendSamples]TrendSample
	next int // index the next sample goes to
	n    int // samples held, ≤ TrendSamples
}

// NewTrend returns an empty trend.
func NewTrend() *Trend { return &Trend{} }

// Add records a sample, replacing the oldest once the ring is full.
func (t *Trend) Add(atMs int64, online int) {
	t.mu.Lock()
	t.ring[t.next] = TrendSample{AtMs: atMs, Online: online}
	t.next = (t.next + 1) % TrendSamples
	t.n = min(t.n+1, TrendSamples)
	t.mu.Unlock()
}

// Samples returns the samples held, oldest first.
func (t *Trend) Samples() []TrendSample {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]TrendSample, 0, t.n)
	start := (t.next - t.n + TrendSamples) % TrendSamples
	for i := range t.n {
		out = append(out, t.ring[(start+i)%TrendSamples])
	}
	return out
}

// Run samples online() every interval until ctx ends, starting with one
// sample at once (so a fresh node has a point to show).
func (t *Trend) Run(ctx context.Context, interval time.Duration, online func() int) {
	t.Add(time.Now().UnixMilli(), online())
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			t.Add(now.UnixMilli(), online())
		}
	}
}
