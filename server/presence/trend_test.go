package presence

import (
	"context"
	"testing"
	"time"
)

// The ring keeps the newest TrendSamples samples, oldest first, and
// overwrites the oldest once full.
func TestTrendRing(t *testing.T) {
	tr := NewTrend()
	if got := tr.Samples(); len(got) != 0 {
		t.Fatalf("empty trend has %d samples", len(got))
	}
	for i := range 3 {
		tr.Add(int64(i), i*10)
	}
	got := tr.Samples()
	if len(got) != 3 || got[0].AtMs != 0 || got[2].Online != 20 {
		t.Fatalf("3 samples: %+v", got)
	}
	for i := 3; i < TrendSamples+5; i++ {
		tr.Add(int64(i), i)
	}
	got = tr.Samples()
	if len(got) != TrendSamples {
		t.Fatalf("full ring holds %d samples, want %d", len(got), TrendSamples)
	}
	if got[0].AtMs != 5 || got[len(got)-1].AtMs != TrendSamples+4 {
		t.Fatalf("full ring runs %d..%d, want 5..%d", got[0].AtMs, got[len(got)-1].AtMs, TrendSamples+4)
	}
	for i := 1; i < len(got); i++ {
		if got[i].AtMs != got[i-1].AtMs+1 {
			t.Fatalf("out of order at %d: %d after %d", i, got[i].AtMs, got[i-1].AtMs)
		}
	}
}

// Run takes a sample at once and then one per interval, until ctx ends.
func TestTrendRun(t *testing.T) {
	tr := NewTrend()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n := 0
	go func() {
		tr.Run(ctx, 5*time.Millisecond, func() int { n++; return 7 })
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(tr.Samples()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	s := tr.Samples()
	if len(s) < 3 || s[0].Online != 7 {
		t.Fatalf("samples after Run: %+v", s)
	}
}
