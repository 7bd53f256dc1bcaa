package auth

import (
	"fmt"
	"sync"
	"testing"
)

// dupStep is one call on a Replacements and what it must answer.
type dupStep struct {
	call    string // "replace", "cooling", "sweep"
	dev     string
	now     int64
	retry   int64 // replace: retryMs; cooling: ms left
	started bool  // replace only
}

func TestReplacements(t *testing.T) {
	const (
		limit    = 3
		window   = 1000
		cooldown = 5000
	)
	r := func(dev string, now, retry int64, started bool) dupStep {
		return dupStep{call: "replace", dev: dev, now: now, retry: retry, started: started}
	}
	cd := func(dev string, now, left int64) dupStep {
		return dupStep{call: "cooling", dev: dev, now: now, retry: left}
	}
	sweep := func(now int64) dupStep { return dupStep{call: "sweep", now: now} }
	tests := []struct {
		name  string
		steps []dupStep
	}{
		{
			name: "limit allowed, the next starts a cool-down once",
			steps: []dupStep{
				cd("T-1", 0, 0),
				r("T-1", 0, 0, false),
				r("T-1", 10, 0, false),
				r("T-1", 20, 0, false),
				cd("T-1", 20, 0),
				r("T-1", 30, cooldown, true),
				cd("T-1", 30, cooldown),
				cd("T-1", 1030, cooldown-1000),
				r("T-1", 1030, cooldown-1000, false),
				r("T-1", 30+cooldown-1, 1, false),
				cd("T-1", 30+cooldown-1, 1),
				// Cool-down over: the count starts afresh.
				cd("T-1", 30+cooldown, 0),
				r("T-1", 30+cooldown, 0, false),
				r("T-1", 31+cooldown, 0, false),
				r("T-1", 32+cooldown, 0, false),
				r("T-1", 33+cooldown, cooldown, true),
			},
		},
		{
			name: "devices are counted separately",
			steps: []dupStep{
				r("T-1", 0, 0, false), r("T-1", 0, 0, false), r("T-1", 0, 0, false),
				r("T-2", 0, 0, false), r("T-2", 0, 0, false), r("T-2", 0, 0, false),
				r("T-1", 1, cooldown, true),
				cd("T-2", 1, 0),
				r("T-2", 2, cooldown, true),
				cd("T-3", 2, 0),
			},
		},
		{
			name: "the window slides",
			steps: []dupStep{
				r("T-1", 0, 0, false),
				r("T-1", 500, 0, false),
				r("T-1", 900, 0, false),
				// At 1000 the replacement at 0 is a full window old and no
				// longer counts; 500 and 900 still do.
				r("T-1", window, 0, false),
				// Now 500, 900, 1000 count: the fourth within a window.
				r("T-1", window+499, cooldown, true),
			},
		},
		{
			name: "the window slides past several",
			steps: []dupStep{
				r("T-1", 0, 0, false),
				r("T-1", 1, 0, false),
				r("T-1", 2, 0, false),
				r("T-1", window+2, 0, false), // 0, 1, 2 all expired
				r("T-1", window+3, 0, false),
				r("T-1", window+4, 0, false),
				r("T-1", window+5, cooldown, true),
			},
		},
		{
			name: "sweep keeps what still counts",
			steps: []dupStep{
				r("T-1", 0, 0, false), r("T-1", 100, 0, false), r("T-1", 200, 0, false),
				sweep(300),
				r("T-1", 300, cooldown, true),
				sweep(400),
				cd("T-1", 400, cooldown-100),
				r("T-1", 400, cooldown-100, false),
				sweep(300 + cooldown - 1),
				cd("T-1", 300+cooldown-1, 1),
			},
		},
		{
			name: "sweep keeps a device whose newest replacement still counts",
			steps: []dupStep{
				r("T-1", 0, 0, false), r("T-1", 900, 0, false),
				sweep(window), // 0 has left the window, 900 has not
				r("T-1", window, 0, false),
				r("T-1", window+1, 0, false),
				r("T-1", window+2, cooldown, true), // 900, 1000, 1001 count
			},
		},
		{
			name: "sweep after the window forgets the count",
			steps: []dupStep{
				r("T-1", 0, 0, false), r("T-1", 100, 0, false), r("T-1", 200, 0, false),
				sweep(200 + window),
				r("T-1", 200+window, 0, false),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := NewReplacements(limit, window, cooldown)
			for i, s := range tt.steps {
				switch s.call {
				case "replace":
					retry, started := rp.replace(s.dev, s.now)
					if retry != s.retry || started != s.started {
						t.Fatalf("step %d: replace(%s, %d) = %d, %v; want %d, %v", i, s.dev, s.now, retry, started, s.retry, s.started)
					}
				case "cooling":
					if got := rp.CoolingDown(s.dev, s.now); got != s.retry {
						t.Fatalf("step %d: CoolingDown(%s, %d) = %d, want %d", i, s.dev, s.now, got, s.retry)
					}
				case "sweep":
					rp.Sweep(s.now)
				}
			}
		})
	}
}

// TestReplacementsCooldownShorterThanWindow: when a cool-down ends, the
// device starts with a clean count even if the replacements that led to it
// are still inside the window.
func TestReplacementsCooldownShorterThanWindow(t *testing.T) {
	const limit, window, cooldown = 2, 10_000, 1000
	rp := NewReplacements(limit, window, cooldown)
	steps := []struct {
		now     int64
		retry   int64
		started bool
	}{
		{0, 0, false},
		{1, 0, false},
		{2, cooldown, true},
		{2 + cooldown - 1, 1, false},
		{2 + cooldown, 0, false}, // 0 and 1 are still in the window, but forgiven
		{3 + cooldown, 0, false},
		{4 + cooldown, cooldown, true},
	}
	for i, s := range steps {
		retry, started := rp.replace("T-1", s.now)
		if retry != s.retry || started != s.started {
			t.Fatalf("step %d: replace(%d) = %d, %v; want %d, %v", i, s.now, retry, started, s.retry, s.started)
		}
	}
}

func (r *Replacements) tracked() int {
	n := 0
	for i := range r.shards {
		r.shards[i].mu.Lock()
		n += len(r.shards[i].m)
		r.shards[i].mu.Unlock()
	}
	return n
}

func TestReplacementsSweepDropsStaleState(t *testing.T) {
	const window, cooldown = 1000, 5000
	rp := NewReplacements(1, window, cooldown)
	// T-old: one replacement at 0. T-recent: one at 900. T-cool: a
	// cool-down from 100 to 5100.
	rp.replace("T-old", 0)
	rp.replace("T-recent", 900)
	rp.replace("T-cool", 0)
	if retry, started := rp.replace("T-cool", 100); retry != cooldown || !started {
		t.Fatalf("cool-down not started: %d, %v", retry, started)
	}
	tests := []struct {
		now  int64
		want int
	}{
		{now: 999, want: 3},          // everything still matters
		{now: window, want: 2},       // T-old's replacement left the window
		{now: 900 + window, want: 1}, // T-recent's too; T-cool still cooling
		{now: 100 + cooldown - 1, want: 1},
		{now: 100 + cooldown, want: 0}, // cool-down over
	}
	for _, tt := range tests {
		rp.Sweep(tt.now)
		if got := rp.tracked(); got != tt.want {
			t.Fatalf("after Sweep(%d): %d devices tracked, want %d", tt.now, got, tt.want)
		}
	}
}

func TestReplacementsConcurrent(t *testing.T) {
	const limit, devices, workers = 5, 50, 4
	rp := NewReplacements(limit, 1_000_000, 1_000_000)
	var mu sync.Mutex
	allowed := make(map[string]int)
	startedN := make(map[string]int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range 4 * limit {
				for d := range devices {
					id := fmt.Sprintf("T-%d", d)
					retry, started := rp.replace(id, int64(i))
					_ = rp.CoolingDown(id, int64(i))
					mu.Lock()
					if retry == 0 {
						allowed[id]++
					}
					if started {
						startedN[id]++
					}
					mu.Unlock()
				}
				if i%5 == 0 {
					rp.Sweep(int64(i))
				}
			}
		})
	}
	wg.Wait()
	for d := range devices {
		id := fmt.Sprintf("T-%d", d)
		// Takeover and Record are separate steps (the loop that closes
		// the old session confirms it), so takeovers racing each other
		// may each be allowed once more; never more than one per worker.
		if allowed[id] < limit || allowed[id] > limit+workers-1 || startedN[id] != 1 {
			t.Fatalf("%s: %d allowed, %d cool-downs started; want %d..%d, 1", id, allowed[id], startedN[id], limit, limit+workers-1)
		}
	}
}

// replace is a takeover of a live session that is confirmed at once:
// Takeover, then Record when allowed.
func (r *Replacements) replace(deviceID string, now int64) (retryMs int64, started bool) {
	if ms, started := r.Takeover(deviceID, now); ms > 0 {
		return ms, started
	}
	r.Record(deviceID, now)
	return 0, false
}

// CoolingDownAll lists the devices cooling down at now, bounded by limit,
// with the total.
func TestReplacementsCoolingDownAll(t *testing.T) {
	r := NewReplacements(1, 10_000, 5_000)
	for _, id := range []string{"a", "b", "c"} {
		r.Record(id, 100)
		if ms, started := r.Takeover(id, 200); ms != 5_000 || !started {
			t.Fatalf("%s: takeover %d %v", id, ms, started)
		}
	}
	r.Record("d", 100) // replaced once, not cooling down
	got, total := r.CoolingDownAll(300, 2)
	if total != 3 || len(got) != 2 || got[0].Until != 5_200 {
		t.Fatalf("cooling down: %+v of %d", got, total)
	}
	if got, total := r.CoolingDownAll(5_200, 10); total != 0 || len(got) != 0 {
		t.Fatalf("after the cool-down: %+v of %d", got, total)
	}
}
