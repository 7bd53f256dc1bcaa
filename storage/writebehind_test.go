package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// Write-behind test timing.
const (
	testFlushInterval = 20 * time.Millisecond
	// testFlushLatency bounds how long a Put may take to reach the registry
	// under Run: generous (50 intervals) for loaded CI machines, yet far
	// below what a writer ignoring its interval would take.
	testFlushLatency = 50 * testFlushInterval
	// testWait bounds waits for something that should take a few intervals.
	testWait = 5 * time.Second
)

// snapshot returns every device of reg in id order.
func snapshot(t *testing.T, reg Registry) []Device {
	t.Helper()
	var all []Device
	opt := ListOptions{Limit: MaxListLimit}
	for {
		devs, next, err := reg.List(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, devs...)
		if next == "" {
			return all
		}
		opt.Cursor = next
	}
}

// sameRegistry fails unless both registries hold identical devices.
func sameRegistry(t *testing.T, got, want Registry, context string) {
	t.Helper()
	g, w := snapshot(t, got), snapshot(t, want)
	if reflect.DeepEqual(g, w) {
		return
	}
	if len(g) != len(w) {
		t.Fatalf("%s: %d devices, want %d:\n got %+v\nwant %+v", context, len(g), len(w), g, w)
	}
	for i := range g {
		if !reflect.DeepEqual(g[i], w[i]) {
			t.Fatalf("%s: first difference at %s:\n got %+v\nwant %+v", context, w[i].ID, g[i], w[i])
		}
	}
}

// sequential applies every update on its own, the reference the writer
// must match.
func sequential(t *testing.T, us []PresenceUpdate) *Memory {
	t.Helper()
	m := NewMemory()
	for _, u := range us {
		apply(t, m, u)
	}
	return m
}

func TestPresenceWriterCoalescingTable(t *testing.T) {
	st := []byte{1}
	tests := []struct {
		name    string
		prior   []PresenceUpdate // applied directly before the window
		updates []PresenceUpdate // Put into the writer
	}{
		{"seen merges", nil, []PresenceUpdate{seen("a", 5, st), seen("a", 3, nil), seen("a", 9, nil), seen("a", 7, []byte{2})}},
		{"online then seens", nil, []PresenceUpdate{online("a", 5, 1), seen("a", 4, nil), seen("a", 6, st)}},
		{"seen before online keeps status only", nil, []PresenceUpdate{seen("a", 9, st), online("a", 5, 1)}},
		{"offline then online keeps the offline", []PresenceUpdate{online("a", 1, 1)},
			[]PresenceUpdate{offline("a", 2, 1, "timeout"), online("a", 3, 2)}},
		{"online offline online", nil, []PresenceUpdate{online("a", 1, 1), offline("a", 2, 1, "bye"), online("a", 3, 2), seen("a", 4, nil)}},
		{"late offline of old session", nil, []PresenceUpdate{online("a", 1, 1), online("a", 3, 2), offline("a", 4, 1, "closed")}},
		{"late offline before online vs stored", []PresenceUpdate{online("a", 1, 5)},
			[]PresenceUpdate{offline("a", 2, 4, "closed"), offline("a", 3, 5, "timeout"), offline("a", 4, 6, "x")}},
		{"first online sets first seen", nil, []PresenceUpdate{online("a", 10, 1), online("a", 20, 2), online("a", 30, 3)}},
		{"online at zero", nil, []PresenceUpdate{online("a", 0, 1), online("a", 20, 2), online("a", 30, 3)}},
		{"offline on absent record", nil, []PresenceUpdate{offline("a", 1, 0, "x"), seen("a", 2, nil)}},
		{"seen then session-less offline", nil, []PresenceUpdate{seen("a", 1, nil), offline("a", 2, 0, "x")}},
		{"offline, seen, offline on absent record", nil,
			[]PresenceUpdate{offline("a", 1, 0, "x"), seen("a", 2, nil), offline("a", 3, 7, "y")}},
		{"offline, seen, offline on stored record", []PresenceUpdate{online("a", 1, 7)},
			[]PresenceUpdate{offline("a", 2, 7, "x"), seen("a", 3, nil), offline("a", 4, 0, "y"), offline("a", 5, 9, "z")}},
		{"empty status is a status", []PresenceUpdate{seen("a", 1, st)}, []PresenceUpdate{seen("a", 2, []byte{})}},
		{"status before reconnect", []PresenceUpdate{seen("a", 1, st)},
			[]PresenceUpdate{seen("a", 2, []byte{3}), online("a", 3, 1), offline("a", 4, 1, "bye")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := sequential(t, append(append([]PresenceUpdate(nil), tc.prior...), tc.updates...))
			got := NewMemory()
			apply(t, got, tc.prior...)
			w := NewPresenceWriter(got, time.Hour, nil)
			for _, u := range tc.updates {
				w.Put(u)
			}
			if err := w.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameRegistry(t, got, want, "coalesced vs sequential")
		})
	}
}

// randomUpdate draws an update over a few devices, sessions and times so
// that collisions (same time, same session, absent records) are common.
func randomUpdate(r *rand.Rand) PresenceUpdate {
	id := fmt.Sprintf("r%d", r.IntN(4))
	at := int64(r.IntN(30))
	randBytes := func() []byte {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		default:
			return []byte{byte(r.IntN(256)), 0, byte(r.IntN(256))}
		}
	}
	switch r.IntN(3) {
	case 0:
		u := online(id, at, uint64(r.IntN(5)))
		u.Attrs = randBytes()
		return u
	case 1:
		return seen(id, at, randBytes())
	default:
		return offline(id, at, uint64(r.IntN(5)), fmt.Sprintf("reason-%d", r.IntN(3)))
	}
}

// flakyRegistry fails ApplyPresence while fail says so. during, if set,
// runs inside ApplyPresence before it succeeds or fails, to Put updates
// while a flush is in flight.
type flakyRegistry struct {
	Registry
	fail   func() bool
	during func()
	calls  atomic.Int64
}

func (f *flakyRegistry) ApplyPresence(ctx context.Context, batch []PresenceUpdate) error {
	f.calls.Add(1)
	if f.during != nil {
		f.during()
	}
	if f.fail() {
		return errors.New("injected failure")
	}
	return f.Registry.ApplyPresence(ctx, batch)
}

func TestPresenceWriterCoalescingRandomized(t *testing.T) {
	const (
		seeds      = 2000
		maxUpdates = 60
	)
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 0x7e4d))
		var prior, updates []PresenceUpdate
		for range r.IntN(6) {
			prior = append(prior, randomUpdate(r))
		}
		for range 1 + r.IntN(maxUpdates) {
			updates = append(updates, randomUpdate(r))
		}
		mem := NewMemory()
		apply(t, mem, prior...)
		reg := &flakyRegistry{Registry: mem, fail: func() bool { return r.IntN(4) == 0 }}
		w := NewPresenceWriter(reg, time.Hour, nil)
		var put []PresenceUpdate // in the order the writer saw them
		reg.during = func() {
			// Puts racing the flush belong after everything it took.
			for range r.IntN(3) {
				u := randomUpdate(r)
				put = append(put, u)
				w.Put(u)
			}
		}
		for _, u := range updates {
			put = append(put, u)
			w.Put(u)
			if r.IntN(8) == 0 {
				_ = w.Flush(context.Background()) // failures are merged back
			}
		}
		reg.fail, reg.during = func() bool { return false }, nil
		if err := w.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := sequential(t, append(append([]PresenceUpdate(nil), prior...), put...))
		if w.Pending() != 0 {
			t.Fatalf("seed %d: %d pending after a good flush", seed, w.Pending())
		}
		sameRegistry(t, mem, want, fmt.Sprintf("seed %d, %d updates", seed, len(updates)))
	}
}

func TestPresenceWriterBoundsPerDevice(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p := &devicePresence{id: "a"}
	maxLen := 0
	for range 100_000 {
		u := randomUpdate(r)
		u.ID = "a"
		u.SessionID = uint64(r.IntN(1000)) // many sessions: exercises the cap
		p.put(&u)
		maxLen = max(maxLen, len(p.appendUpdates(nil)))
	}
	// condOffs, a create marker, two onlines, two offlines, one seen.
	if limit := maxCondOfflines + 6; maxLen > limit {
		t.Fatalf("a device coalesced to %d updates, bound %d", maxLen, limit)
	}
}

func TestPresenceWriterPendingAndInvalid(t *testing.T) {
	mem := NewMemory()
	w := NewPresenceWriter(mem, time.Hour, nil)
	w.Put(online("a", 1, 1))
	w.Put(seen("a", 2, nil))
	w.Put(seen("b", 2, nil))
	w.Put(offline("c", 2, 0, "x"))
	w.Put(seen("", 1, nil))                        // dropped: no id
	w.Put(PresenceUpdate{Kind: 9, ID: "d", At: 1}) // dropped: unknown kind
	if got := w.Pending(); got != 3 {
		t.Fatalf("Pending = %d, want 3", got)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := w.Pending(); got != 0 {
		t.Fatalf("Pending after flush = %d", got)
	}
	if got := len(snapshot(t, mem)); got != 2 { // c had no record to take an offline
		t.Fatalf("%d devices stored, want 2", got)
	}
	// An empty flush does not touch the registry or report.
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPresenceWriterRetriesAfterFailure(t *testing.T) {
	mem := NewMemory()
	failures := 1
	reg := &flakyRegistry{Registry: mem, fail: func() bool { failures--; return failures >= 0 }}
	var w *PresenceWriter
	// Updates Put while the failing flush is in flight must land after the
	// failed ones.
	during := []PresenceUpdate{seen("a", 9, []byte{2}), online("d", 1, 1)}
	reg.during = func() {
		for _, u := range during {
			w.Put(u)
		}
		during = nil
	}
	type report struct {
		n   int
		err error
	}
	var reports []report
	w = NewPresenceWriter(reg, time.Hour, func(n int, _ time.Duration, err error) { reports = append(reports, report{n, err}) })
	first := []PresenceUpdate{online("a", 1, 1), seen("a", 2, []byte{1}), online("b", 1, 1)}
	for _, u := range first {
		w.Put(u)
	}
	if err := w.Flush(context.Background()); err == nil {
		t.Fatal("Flush hid the registry's error")
	}
	if got := w.Pending(); got != 3 {
		t.Fatalf("Pending after failed flush = %d, want 3", got)
	}
	if len(snapshot(t, mem)) != 0 {
		t.Fatal("failed flush wrote something")
	}
	// Updates after the failure must land after the failed ones.
	later := []PresenceUpdate{offline("a", 3, 1, "bye"), seen("c", 4, nil)}
	for _, u := range later {
		w.Put(u)
	}
	if got := w.Pending(); got != 4 {
		t.Fatalf("Pending = %d, want 4", got)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := append(append(first, seen("a", 9, []byte{2}), online("d", 1, 1)), later...)
	sameRegistry(t, mem, sequential(t, all), "after retry")
	if len(reports) != 2 || reports[0].err == nil || reports[0].n != 2 || reports[1].err != nil || reports[1].n != 4 {
		t.Fatalf("onFlush reports %+v", reports)
	}
}

func TestPresenceWriterRunFlushesEveryInterval(t *testing.T) {
	mem := NewMemory()
	var (
		mu      sync.Mutex
		flushes []time.Time
	)
	w := NewPresenceWriter(mem, testFlushInterval, func(n int, _ time.Duration, err error) {
		mu.Lock()
		flushes = append(flushes, time.Now())
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Each Put must reach the registry within a few intervals, without any
	// explicit Flush.
	for i := range 5 {
		id := fmt.Sprintf("tick-%d", i)
		start := time.Now()
		w.Put(seen(id, int64(i), nil))
		for {
			if _, err := mem.Get(context.Background(), id); err == nil {
				break
			}
			if time.Since(start) > testFlushLatency {
				t.Fatalf("%s not flushed after %v (interval %v)", id, testFlushLatency, testFlushInterval)
			}
			time.Sleep(testFlushInterval / 4)
		}
	}
	mu.Lock()
	n := len(flushes)
	mu.Unlock()
	if n < 5 {
		t.Fatalf("%d flush reports for 5 separate puts", n)
	}
}

func TestPresenceWriterRunRetriesFailedFlush(t *testing.T) {
	mem := NewMemory()
	var failing atomic.Bool
	failing.Store(true)
	reg := &flakyRegistry{Registry: mem, fail: failing.Load}
	w := NewPresenceWriter(reg, testFlushInterval, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	w.Put(online("a", 1, 1))
	deadline := time.Now().Add(testWait)
	for reg.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not retry")
		}
		time.Sleep(testFlushInterval / 4)
	}
	failing.Store(false)
	for {
		if d, err := mem.Get(context.Background(), "a"); err == nil && d.Online {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("update lost after failures")
		}
		time.Sleep(testFlushInterval / 4)
	}
}

func TestPresenceWriterFinalFlushOnCancel(t *testing.T) {
	mem := NewMemory()
	w := NewPresenceWriter(mem, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	w.Put(online("a", 1, 1))
	w.Put(offline("a", 2, 1, "shutdown"))
	cancel()
	select {
	case <-done:
	case <-time.After(testWait):
		t.Fatal("Run did not return after cancel")
	}
	d := mustGet(t, mem, "a")
	if d.Online || d.OfflineReason != "shutdown" {
		t.Fatalf("final flush: %+v", d)
	}
}

func TestPresenceWriterConcurrentPuts(t *testing.T) {
	const (
		writers = 8
		perDev  = 200
	)
	mem := NewMemory()
	w := NewPresenceWriter(mem, time.Millisecond, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%d", g)
			for i := range perDev {
				w.Put(online(id, int64(i+1), uint64(i+1)))
				w.Put(seen(id, int64(i+1), []byte{byte(i)}))
			}
			w.Put(offline(id, perDev+1, perDev, "bye"))
		})
	}
	wg.Wait()
	cancel()
	<-done
	for g := range writers {
		d := mustGet(t, mem, fmt.Sprintf("w%d", g))
		if d.FirstSeen != 1 || d.Online || d.SessionID != perDev || d.Status[0] != byte(perDev-1) || d.OfflineReason != "bye" {
			t.Fatalf("w%d: %+v", g, d)
		}
	}
}

func TestPresenceWriterPutSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	w := NewPresenceWriter(NewMemory(), time.Hour, nil)
	status := []byte{0x81, 0xa1, 's', 0x01}
	w.Put(seen("dev", 1, status))
	at := int64(1)
	allocs := testing.AllocsPerRun(1000, func() {
		at++
		w.Put(PresenceUpdate{Kind: PresenceSeen, ID: "dev", At: at, Status: status})
	})
	if allocs != 0 {
		t.Fatalf("Put of a pending device allocates %.1f times", allocs)
	}
}

func BenchmarkPresenceWriterPut(b *testing.B) {
	const devices = 1024
	w := NewPresenceWriter(NewMemory(), time.Hour, nil)
	ids := make([]string, devices)
	status := []byte{0x82, 0xa3, 'b', 'a', 't', 0x50, 0xa4, 't', 'e', 'm', 'p', 0x20}
	for i := range ids {
		ids[i] = fmt.Sprintf("terminal-%05d", i)
		w.Put(online(ids[i], 1, 1))
		w.Put(seen(ids[i], 1, status))
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		w.Put(PresenceUpdate{Kind: PresenceSeen, ID: ids[i%devices], At: int64(i), Status: status})
		i++
	}
}

// TestPresenceWriterChunkFailure flushes more devices than one chunk holds
// and fails a later chunk: the retry applies the earlier chunks again,
// which must leave the same registry as applying every update in order.
func TestPresenceWriterChunkFailure(t *testing.T) {
	const devices = 3 * flushChunk
	r := rand.New(rand.NewPCG(7, 11))
	var updates []PresenceUpdate
	for i := range devices {
		id := fmt.Sprintf("c%05d", i)
		for range 1 + r.IntN(4) {
			u := randomUpdate(r)
			u.ID = id
			updates = append(updates, u)
		}
	}
	mem := NewMemory()
	reg := &flakyRegistry{Registry: mem}
	reg.fail = func() bool { return reg.calls.Load() == 2 } // the second chunk
	var calls []int
	w := NewPresenceWriter(reg, time.Hour, func(n int, _ time.Duration, err error) {
		if err != nil {
			calls = append(calls, -n)
		} else {
			calls = append(calls, n)
		}
	})
	for _, u := range updates {
		w.Put(u)
	}
	if err := w.Flush(context.Background()); err == nil {
		t.Fatal("flush with a failing chunk succeeded")
	}
	if p := w.Pending(); p <= 0 || p >= devices {
		t.Fatalf("after the failure %d devices pending, want those of the failed chunk and later (0 < n < %d)", p, devices)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[0] != -devices || calls[1] <= 0 || calls[1] >= devices {
		t.Fatalf("onFlush saw %v, want [-%d, the rest]", calls, devices)
	}
	if n := reg.calls.Load(); n < 2+3 {
		t.Fatalf("%d ApplyPresence calls: the flush was not chunked", n)
	}
	sameRegistry(t, mem, sequential(t, updates), "chunked retry vs sequential")
}

// TestDevicePresenceSize guards the write-behind's footprint in a connect
// storm: one devicePresence per device with news since the last flush.
func TestDevicePresenceSize(t *testing.T) {
	if n := unsafe.Sizeof(devicePresence{}); n > 224 {
		t.Fatalf("devicePresence is %d bytes, over the 224-byte size class", n)
	}
}

// TestPresenceWriterDropsStormMaps: after a storm's flush, no shard keeps
// a storm-sized map as its spare (Go maps never shrink). The size that
// decides is the map's size when taken: a successful flush deletes the
// applied devices from it, and judging by what is left kept every
// storm-sized map (50 bytes per terminal at 19,000, docs/performance.md).
func TestPresenceWriterDropsStormMaps(t *testing.T) {
	w := NewPresenceWriter(NewMemory(), time.Hour, nil)
	const storm = 40 * maxSpareDevices // well over maxSpareDevices in every shard
	for i := range storm {
		w.Put(online(fmt.Sprintf("storm-%05d", i), int64(i+1), 1))
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range w.shards {
		if sp := w.shards[i].spare; sp != nil {
			t.Fatalf("shard %d keeps its storm map as the spare", i)
		}
	}
	// A small flush keeps its map for the next one.
	for i := range 4 * presenceShards {
		w.Put(online(fmt.Sprintf("calm-%03d", i), 1, 1))
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for i := range w.shards {
		if w.shards[i].spare != nil {
			kept++
		}
	}
	if kept == 0 {
		t.Fatal("no small map kept as a spare")
	}
}

// TestPresenceWriterFlushesEarlyInAStorm: with an hour between ticks, a
// storm of new devices is still flushed as soon as earlyFlushDevices are
// pending, so its pending state stays bounded.
func TestPresenceWriterFlushesEarlyInAStorm(t *testing.T) {
	mem := NewMemory()
	var (
		mu      sync.Mutex
		flushed []int
	)
	w := NewPresenceWriter(mem, time.Hour, func(n int, _ time.Duration, err error) {
		mu.Lock()
		flushed = append(flushed, n)
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	const storm = 3 * earlyFlushDevices
	for i := range storm {
		w.Put(online(fmt.Sprintf("s-%05d", i), int64(i+1), 1))
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.Pending() >= earlyFlushDevices {
		if time.Now().After(deadline) {
			t.Fatalf("%d devices still pending with the interval an hour away", w.Pending())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := mem.Get(context.Background(), "s-00000"); err != nil {
		t.Fatalf("the storm's first device not in the registry: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(flushed) == 0 {
		t.Fatal("no flush reported")
	}
}
