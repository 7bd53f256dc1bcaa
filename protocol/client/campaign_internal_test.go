package client

import (
	"testing"
	"time"
)

// The check-in point lies in the first Spread of the slot, bounded by
// MaxSpread; a negative Spread checks in at the slot's start.
func TestCheckInSpread(t *testing.T) {
	slot := 10 * time.Minute
	for _, tc := range []struct {
		opts CheckInOptions
		want time.Duration
	}{
		{CheckInOptions{}, 150 * time.Second},
		{CheckInOptions{Spread: 0.1}, time.Minute},
		{CheckInOptions{Spread: -1}, 0},
		{CheckInOptions{Spread: 2}, DefaultMaxSlotSpread},
		{CheckInOptions{Spread: 1, MaxSpread: time.Hour}, slot},
		{CheckInOptions{Spread: 0.5, MaxSpread: time.Second}, time.Second},
	} {
		if got := tc.opts.spread(slot); got != tc.want {
			t.Errorf("%+v: spread %v, want %v", tc.opts, got, tc.want)
		}
	}
	if got := (&CheckInOptions{}).spread(0); got != 0 {
		t.Errorf("empty slot: spread %v", got)
	}
	top := func(n int64) int64 { return n - 1 }
	if got := randDuration(top, time.Second); got != time.Second {
		t.Errorf("randDuration at the top: %v, want 1s", got)
	}
	for range 100 {
		if got := randDuration(nil, time.Millisecond); got < 0 || got > time.Millisecond {
			t.Fatalf("randDuration %v outside [0, 1ms]", got)
		}
	}
	if got := randDuration(nil, 0); got != 0 {
		t.Errorf("randDuration(0) = %v", got)
	}
}
