package history

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/termd/termd/storage"
)

// t0 is a Monday 00:00 UTC.
var t0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixMilli()

func at(hour int64) int64 { return t0 + hour*HourMs }

func fixed(ms int64) func() time.Time { return func() time.Time { return time.UnixMilli(ms) } }

func TestMarkOnline(t *testing.T) {
	now := at(200) + 30*60_000
	h := New(Options{Clock: fixed(now)})
	h.Mark("A", at(200)+5)
	h.Mark("A", at(199)+HourMs-1)
	h.Mark("A", at(40)) // 160 hours before now
	h.Mark("B", at(32)) // 168 hours before now: the oldest hour answered
	for _, c := range []struct {
		id   string
		hour int64
		want bool
	}{
		{"A", 200, true}, {"A", 199, true}, {"A", 198, false}, {"A", 40, true}, {"A", 201, false},
		{"B", 32, true}, {"B", 33, false}, {"C", 200, false},
	} {
		if got := h.Online(c.id, at(c.hour)+17); got != c.want {
			t.Errorf("Online(%s, hour %d) = %v, want %v", c.id, c.hour, got, c.want)
		}
	}
	if h.Len() != 2 {
		t.Fatalf("Len %d", h.Len())
	}
	// Older than the window answered: false even though marked.
	h2 := New(Options{Clock: fixed(at(300))})
	h2.Mark("A", at(100))
	if h2.Online("A", at(100)) {
		t.Fatal("an hour 200 hours old is answered")
	}
}

// Moving the ring forward clears the hours it wraps over.
func TestRingWraps(t *testing.T) {
	h := New(Options{Clock: fixed(at(1000))})
	for hr := int64(0); hr < 1000; hr += 7 {
		h.Mark("A", at(hr))
	}
	h.Mark("A", at(1000))
	for hr := int64(1000 - Hours); hr <= 1000; hr++ {
		want := hr%7 == 0 || hr == 1000
		if got := h.Online("A", at(hr)); got != want {
			t.Fatalf("hour %d: %v, want %v", hr, got, want)
		}
	}
	// A gap longer than the ring clears everything.
	h.Mark("A", at(1000+ringBits+5))
	h.now = fixed(at(1000 + ringBits + 5))
	for hr := int64(1000 + ringBits + 5 - Hours); hr < 1000+ringBits+5; hr++ {
		if h.Online("A", at(hr)) {
			t.Fatalf("hour %d survived a gap longer than the ring", hr)
		}
	}
	// A late mark of an older hour inside the ring fills it in.
	h.Mark("A", at(1000+ringBits))
	if !h.Online("A", at(1000+ringBits)) {
		t.Fatal("late mark lost")
	}
}

func TestMarkRange(t *testing.T) {
	h := New(Options{Clock: fixed(at(500))})
	h.MarkRange("A", at(490)+59*60_000, at(495)+1)
	for hr := int64(485); hr <= 500; hr++ {
		want := hr >= 490 && hr <= 495
		if got := h.Online("A", at(hr)); got != want {
			t.Fatalf("hour %d: %v, want %v", hr, got, want)
		}
	}
	// A range longer than the ring marks only the ring.
	h.MarkRange("B", at(0), at(500))
	if !h.Online("B", at(500-Hours)) || !h.Online("B", at(500)) {
		t.Fatal("long range not marked")
	}
}

// Share averages, over the 7 most recent complete occurrences of the
// hour of day, the share of the listed devices online in it.
func TestShare(t *testing.T) {
	// now: day 8 (a Tuesday), 10:30 UTC.
	now := at(8*24+10) + 30*60_000
	h := New(Options{Clock: fixed(now)})
	// "day": online 09:00-17:00 every day of the week (countertop).
	// "night": online only 02:00 on days 5 and 6.
	// "always": online every hour, including the current one.
	// "old": online at 09:00 only 8 days ago (outside the 7 days).
	for d := int64(0); d <= 8; d++ {
		for hr := int64(9); hr < 17; hr++ {
			if d*24+hr < 8*24+10 {
				h.Mark("day", at(d*24+hr))
			}
		}
	}
	h.Mark("night", at(5*24+2))
	h.Mark("night", at(6*24+2))
	for hr := int64(8*24 + 10 - 200); hr <= 8*24+10; hr++ {
		h.Mark("always", at(hr))
	}
	h.Mark("old", at(0*24+9))
	ids := []string{"day", "night", "always", "old", "never"}
	for _, c := range []struct {
		hod  int
		want float64
	}{
		// 09:00: day 7/7, always 7/7, old 0 (day 0 is 8 days back: days 1..7 count).
		{9, 2.0 / 5},
		// 10:00: the current hour is incomplete; days 1..7 at 10:00: day and always.
		{10, 2.0 / 5},
		// 02:00: always 7, night 2 → 9/35.
		{2, 9.0 / 35},
		// 20:00: only always.
		{20, 1.0 / 5},
	} {
		if got := h.Share(ids, c.hod, now); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Share(%d:00) = %v, want %v", c.hod, got, c.want)
		}
	}
	if got := h.Share(nil, 9, now); got != 0 {
		t.Fatalf("no ids: %v", got)
	}
	if got := h.Share(ids, 24, now); got != 0 {
		t.Fatalf("hour 24: %v", got)
	}
	if got := h.Share([]string{"night"}, 2, now); math.Abs(got-2.0/7) > 1e-9 {
		t.Fatalf("night alone: %v", got)
	}
}

func TestSlotHours(t *testing.T) {
	now := at(8*24+10) + 1
	base := hourOf(t0)
	rel := func(a [Days]int64) [Days]int64 {
		for i := range a {
			a[i] -= base
		}
		return a
	}
	got := rel(SlotHours(10, now))
	if got[0] != 7*24+10 || got[6] != 1*24+10 {
		t.Fatalf("10:00 at 10:00: %v", got)
	}
	got = rel(SlotHours(9, now))
	if got[0] != 8*24+9 || got[6] != 2*24+9 {
		t.Fatalf("09:00 at 10:00: %v", got)
	}
	got = rel(SlotHours(11, now))
	if got[0] != 7*24+11 {
		t.Fatalf("11:00 at 10:00: %v", got)
	}
}

func TestPrune(t *testing.T) {
	h := New(Options{})
	h.Mark("old", at(0))
	h.Mark("new", at(100))
	if n := h.Prune(at(Hours + 1)); n != 1 || h.Len() != 1 {
		t.Fatalf("pruned %d, len %d", n, h.Len())
	}
}

// A snapshot saved to a store loads back into an equal history; only
// changed shards are written again.
func TestSaveLoad(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{OnlineHistoryStore: storage.NewMemory()}
	h := New(Options{Clock: fixed(at(300))})
	for i := range 500 {
		h.MarkRange(fmt.Sprint("T-", i), at(300-int64(i%150)), at(300))
	}
	if err := h.Save(ctx, st); err != nil {
		t.Fatal(err)
	}
	if st.saves == 0 || st.saves > Shards {
		t.Fatalf("%d shard saves", st.saves)
	}
	st.saves = 0
	if err := h.Save(ctx, st); err != nil || st.saves != 0 {
		t.Fatalf("a save with nothing changed wrote %d shards: %v", st.saves, err)
	}
	h.Mark("T-0", at(299))
	h.Mark("T-1", at(300)) // already marked: not a change
	if err := h.Save(ctx, st); err != nil || st.saves != 1 {
		t.Fatalf("one changed device: %d shard saves: %v", st.saves, err)
	}
	h2 := New(Options{Clock: fixed(at(300))})
	if err := h2.Load(ctx, st); err != nil {
		t.Fatal(err)
	}
	if h2.Len() != 500 {
		t.Fatalf("loaded %d devices", h2.Len())
	}
	for i := range 500 {
		id := fmt.Sprint("T-", i)
		for hr := int64(300 - Hours); hr <= 300; hr++ {
			if a, b := h.Online(id, at(hr)), h2.Online(id, at(hr)); a != b {
				t.Fatalf("%s hour %d: %v before, %v loaded", id, hr, a, b)
			}
		}
	}
	// A corrupt shard is reported and skipped; the others load.
	st.OnlineHistoryStore.SaveOnlineHistory(ctx, 63, []byte{1, 5, 'a'})
	h3 := New(Options{Clock: fixed(at(300))})
	if err := h3.Load(ctx, st); err == nil {
		t.Fatal("corrupt shard not reported")
	}
	if h3.Len() == 0 {
		t.Fatal("nothing loaded next to a corrupt shard")
	}
	st.OnlineHistoryStore.SaveOnlineHistory(ctx, 63, []byte{blobVersion, 1, 2, 3}) // a truncated version 2 record
	if err := New(Options{}).Load(ctx, st); err == nil {
		t.Fatal("truncated version 2 shard not reported")
	}
}

// A snapshot saved by an earlier termd (version 1: keyed by id) loads.
func TestLoadVersion1(t *testing.T) {
	ctx := context.Background()
	st := storage.NewMemory()
	ids := []string{"pos-1", "kiosk-22", "meter-333"}
	blobs := map[int][]byte{}
	for n, id := range ids {
		i := shardOf(id)
		if blobs[i] == nil {
			blobs[i] = []byte{blobVersionV1}
		}
		b := binary.AppendUvarint(blobs[i], uint64(len(id)))
		b = append(b, id...)
		var r rec
		r.mark(hourOf(at(300)))
		r.mark(hourOf(at(300 - int64(n) - 1)))
		b = binary.BigEndian.AppendUint32(b, r.last)
		for _, w := range r.ring {
			b = binary.BigEndian.AppendUint64(b, w)
		}
		blobs[i] = b
	}
	for i, b := range blobs {
		if err := st.SaveOnlineHistory(ctx, i, b); err != nil {
			t.Fatal(err)
		}
	}
	h := New(Options{Clock: fixed(at(300))})
	if err := h.Load(ctx, st); err != nil {
		t.Fatal(err)
	}
	if h.Len() != len(ids) {
		t.Fatalf("loaded %d devices", h.Len())
	}
	for n, id := range ids {
		if !h.Online(id, at(300)) || !h.Online(id, at(300-int64(n)-1)) || h.Online(id, at(300-int64(n)-2)) {
			t.Fatalf("%s: hours not loaded as saved", id)
		}
	}
	// Saved again, it is version 2, and loads the same.
	h.Mark("pos-1", at(300)) // nothing new: mark the shards dirty another way
	for i := range h.shards {
		h.shards[i].dirty = true
	}
	st2 := storage.NewMemory()
	if err := h.Save(ctx, st2); err != nil {
		t.Fatal(err)
	}
	h2 := New(Options{Clock: fixed(at(300))})
	if err := h2.Load(ctx, st2); err != nil || h2.Len() != len(ids) || !h2.Online("meter-333", at(297)) {
		t.Fatalf("version 2 reload: %d devices, %v", h2.Len(), err)
	}
}

// A failed save keeps the shards dirty for the next one.
func TestSaveRetries(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{OnlineHistoryStore: storage.NewMemory(), fail: storage.ErrDiskFull}
	h := New(Options{})
	h.Mark("A", at(1))
	if err := h.Save(ctx, st); err == nil {
		t.Fatal("failure not reported")
	}
	st.fail = nil
	if err := h.Save(ctx, st); err != nil || st.saves != 1 {
		t.Fatalf("retry: %d saves, %v", st.saves, err)
	}
}

// Loading merges with marks made meanwhile.
func TestLoadMerges(t *testing.T) {
	ctx := context.Background()
	st := storage.NewMemory()
	h := New(Options{Clock: fixed(at(300))})
	h.Mark("A", at(250))
	h.Mark("A", at(299))
	_ = h.Save(ctx, st)
	h2 := New(Options{Clock: fixed(at(300))})
	h2.Mark("A", at(300))
	if err := h2.Load(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, hr := range []int64{250, 299, 300} {
		if !h2.Online("A", at(hr)) {
			t.Fatalf("hour %d lost in the merge", hr)
		}
	}
}

type countingStore struct {
	storage.OnlineHistoryStore
	saves int
	fail  error
}

func (c *countingStore) SaveOnlineHistory(ctx context.Context, shard int, blob []byte) error {
	if c.fail != nil {
		return c.fail
	}
	c.saves++
	return c.OnlineHistoryStore.SaveOnlineHistory(ctx, shard, blob)
}

// Mark allocates nothing once the device has a history.
func TestMarkAllocs(t *testing.T) {
	h := New(Options{})
	h.Mark("T-1", at(0))
	hr := int64(0)
	if n := testing.AllocsPerRun(1000, func() { hr++; h.Mark("T-1", at(hr)) }); n != 0 {
		t.Fatalf("%v allocations per Mark", n)
	}
}

func TestConcurrentMarks(t *testing.T) {
	h := New(Options{Clock: fixed(at(10))})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Mark(fmt.Sprint("T-", i), at(int64(g)))
				_ = h.Share([]string{"T-1", "T-2"}, 3, at(10))
			}
		}()
	}
	wg.Wait()
	if h.Len() != 1000 || !h.Online("T-999", at(7)) {
		t.Fatalf("len %d", h.Len())
	}
}

// fleet is the device count docs/performance.md quotes.
const fleet = 19_000

// TestMemoryPerDevice measures the heap a history of 19,000 devices
// with a week of marks takes (figure in docs/performance.md).
func TestMemoryPerDevice(t *testing.T) {
	ids := make([]string, fleet)
	for i := range ids {
		ids[i] = fmt.Sprintf("T-%06d", i) // 8-byte ids, as the load tests use
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := New(Options{})
	for _, id := range ids {
		h.MarkRange(id, at(0), at(Hours))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / fleet
	t.Logf("%d devices: %.0f bytes of heap per device (key 8 bytes, record 28)", fleet, per)
	// The map's slots at its load factor after growing to 19,000: about
	// 45–80 bytes (Go maps double). Keyed by the id it was about 105.
	if per > 80 {
		t.Fatalf("%.0f bytes per device", per)
	}
	runtime.KeepAlive(h)
	runtime.KeepAlive(ids)
}

func BenchmarkMark(b *testing.B) {
	h := New(Options{})
	ids := make([]string, fleet)
	for i := range ids {
		ids[i] = fmt.Sprintf("T-%06d", i)
		h.Mark(ids[i], at(0))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Mark(ids[i%fleet], at(int64(i/fleet)))
		i++
	}
}

func BenchmarkShare19k(b *testing.B) {
	h := New(Options{})
	ids := make([]string, fleet)
	for i := range ids {
		ids[i] = fmt.Sprintf("T-%06d", i)
		h.MarkRange(ids[i], at(0), at(Hours))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Share(ids, 3, at(Hours))
	}
}

// TestRecordSize: a device's history is its 8-byte key and this record in
// the shard's map (docs/performance.md, memory per terminal).
func TestRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(rec{}); n > 32 {
		t.Fatalf("rec is %d bytes, over 32", n)
	}
}
