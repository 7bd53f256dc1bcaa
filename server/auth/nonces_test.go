package auth

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

// nonce returns a distinct 16-byte nonce for i.
func nonce(i int) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return b
}

// nonceStep is one Add (or, with check set, a Len/RetryAfter probe) of a
// scripted scenario.
type nonceStep struct {
	dev   string
	nonce int
	now   int64
	want  error
	len   int   // checked after the step when >= 0
	retry int64 // RetryAfter(now) checked after the step when >= 0
}

func TestNoncesScenarios(t *testing.T) {
	const ret = 610_000
	add := func(dev string, n int, now int64, want error) nonceStep {
		return nonceStep{dev: dev, nonce: n, now: now, want: want, len: -1, retry: -1}
	}
	tests := []struct {
		name     string
		capacity int
		steps    []nonceStep
	}{
		{
			name:     "replay of the same pair",
			capacity: 10,
			steps: []nonceStep{
				add("T-1", 1, 0, nil),
				add("T-1", 1, 1, ErrReplay),
				add("T-1", 1, ret-1, ErrReplay),
			},
		},
		{
			name:     "same nonce on another device is not a replay",
			capacity: 10,
			steps: []nonceStep{
				add("T-1", 1, 0, nil),
				add("T-2", 1, 0, nil),
				add("T-2", 1, 0, ErrReplay),
				add("T-1", 2, 0, nil),
			},
		},
		{
			name:     "expiry exactly at the retention",
			capacity: 10,
			steps: []nonceStep{
				add("T-1", 1, 1000, nil),
				add("T-1", 1, 1000+ret-1, ErrReplay),
				add("T-1", 1, 1000+ret, nil), // forgotten, then remembered again
				add("T-1", 1, 1000+ret, ErrReplay),
				add("T-1", 1, 1000+2*ret-1, ErrReplay),
			},
		},
		{
			name:     "full cache refuses, never evicts early",
			capacity: 3,
			steps: []nonceStep{
				add("T-1", 1, 0, nil),
				add("T-1", 2, 10, nil),
				add("T-1", 3, 20, nil),
				{dev: "T-1", nonce: 4, now: 30, want: ErrNoncesFull, len: 3, retry: ret - 30},
				// The first pair is still remembered while the cache is full.
				add("T-1", 1, 30, ErrReplay),
				add("T-1", 1, ret-1, ErrReplay),
				{dev: "T-9", nonce: 9, now: ret - 1, want: ErrNoncesFull, len: 3, retry: 1},
				// The oldest expires: exactly one slot frees.
				{dev: "T-1", nonce: 4, now: ret, want: nil, len: 3, retry: 10},
				add("T-1", 5, ret, ErrNoncesFull),
				add("T-1", 2, ret, ErrReplay),
				add("T-1", 2, ret+10, nil),
				add("T-1", 3, ret+10, ErrReplay),
				// Everything expires.
				{dev: "T-1", nonce: 6, now: 10 * ret, want: nil, len: 1, retry: ret},
			},
		},
		{
			name:     "similar device ids are distinct",
			capacity: 10,
			steps: []nonceStep{
				{dev: "T-1", nonce: 1, now: 0, want: nil, len: 1, retry: ret},
				add("T-11", 1, 0, nil),
				add("T-", 1, 0, nil),
				{dev: "T-11", nonce: 1, now: 0, want: ErrReplay, len: 3, retry: ret},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewNonces(tt.capacity, ret)
			if got := c.RetryAfter(0); got != 0 {
				t.Fatalf("RetryAfter of an empty cache = %d, want 0", got)
			}
			for i, s := range tt.steps {
				if err := c.Add(s.dev, nonce(s.nonce), s.now); !errors.Is(err, s.want) || (err == nil) != (s.want == nil) {
					t.Fatalf("step %d: Add(%q, %d, %d) = %v, want %v", i, s.dev, s.nonce, s.now, err, s.want)
				}
				if s.len >= 0 {
					if got := c.Len(); got != s.len {
						t.Fatalf("step %d: Len = %d, want %d", i, got, s.len)
					}
				}
				if s.retry >= 0 {
					if got := c.RetryAfter(s.now); got != s.retry {
						t.Fatalf("step %d: RetryAfter(%d) = %d, want %d", i, s.now, got, s.retry)
					}
				}
			}
		})
	}
}

func TestNoncesRetryAfterIsAtLeastOne(t *testing.T) {
	c := NewNonces(2, 100)
	if err := c.Add("T-1", nonce(1), 0); err != nil {
		t.Fatal(err)
	}
	// RetryAfter does not expire: an overdue oldest pair still reports 1 ms,
	// never zero or negative.
	for _, now := range []int64{99, 100, 5000} {
		if got := c.RetryAfter(now); got != 1 {
			t.Errorf("RetryAfter(%d) = %d, want 1", now, got)
		}
	}
	if got := c.RetryAfter(40); got != 60 {
		t.Errorf("RetryAfter(40) = %d, want 60", got)
	}
}

func TestNoncesKeySeparatesDeviceAndNonce(t *testing.T) {
	c := NewNonces(10, 100)
	if err := c.Add("T-ab", []byte("c"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Add("T-a", []byte("bc"), 0); err != nil {
		t.Fatalf("(T-a, bc) after (T-ab, c) = %v, want nil: the id/nonce boundary must be part of the key", err)
	}
	if err := c.Add("T-ab", []byte("c"), 0); !errors.Is(err, ErrReplay) {
		t.Fatalf("(T-ab, c) again = %v, want ErrReplay", err)
	}
}

func TestNoncesZeroCapacity(t *testing.T) {
	c := NewNonces(0, 100)
	if err := c.Add("T-1", nonce(1), 0); !errors.Is(err, ErrNoncesFull) {
		t.Fatalf("Add to a zero-capacity cache = %v, want ErrNoncesFull", err)
	}
	if c.Len() != 0 || c.RetryAfter(0) != 0 {
		t.Fatalf("Len = %d, RetryAfter = %d, want 0, 0", c.Len(), c.RetryAfter(0))
	}
}

// TestNoncesGrowthKeepsFIFO drives the ring through growth while it is
// wrapped (head in the middle) and through wraparound at full capacity,
// and checks that pairs expire in exactly the order they were added.
func TestNoncesGrowthKeepsFIFO(t *testing.T) {
	const (
		capacity = 3000
		ret      = 10_000
	)
	c := NewNonces(capacity, ret)
	if len(c.ring) != nonceRingStart {
		t.Fatalf("initial ring = %d, want %d", len(c.ring), nonceRingStart)
	}
	mustAdd := func(n int, now int64) {
		t.Helper()
		if err := c.Add("T-1", nonce(n), now); err != nil {
			t.Fatalf("Add(%d, now=%d) = %v", n, now, err)
		}
	}
	isReplay := func(n int, now int64) bool {
		t.Helper()
		err := c.Add("T-1", nonce(n), now)
		if err != nil && !errors.Is(err, ErrReplay) {
			t.Fatalf("Add(%d, now=%d) = %v", n, now, err)
		}
		return err != nil
	}

	// Fill the first ring (pair i at now=i), then let the first 500 expire
	// and add 500 more so the 1024-ring wraps with head at 500.
	for i := range 1024 {
		mustAdd(i, int64(i))
	}
	if len(c.ring) != 1024 {
		t.Fatalf("ring after 1024 = %d, want 1024", len(c.ring))
	}
	now := int64(ret + 499) // pairs 0..499 expire
	for i := 1024; i < 1524; i++ {
		mustAdd(i, now)
	}
	if c.head != 500 || c.n != 1024 || len(c.ring) != 1024 {
		t.Fatalf("head=%d n=%d ring=%d, want a wrapped full 1024-ring at head 500", c.head, c.n, len(c.ring))
	}
	// Growth while wrapped.
	mustAdd(1524, now)
	if len(c.ring) != 2048 || c.n != 1025 {
		t.Fatalf("after growth ring=%d n=%d, want 2048, 1025", len(c.ring), c.n)
	}
	for i := 1525; i < 2548; i++ {
		mustAdd(i, now)
	}
	if len(c.ring) != 2048 || c.n != 2048 {
		t.Fatalf("ring=%d n=%d, want a full 2048-ring", len(c.ring), c.n)
	}
	mustAdd(2548, now) // 2049 pairs: grows to the capacity, not 4096
	if len(c.ring) != capacity {
		t.Fatalf("ring = %d, want capped at %d", len(c.ring), capacity)
	}
	for i := 2549; i < 3500; i++ {
		mustAdd(i, now)
	}
	if c.Len() != capacity {
		t.Fatalf("Len = %d, want %d", c.Len(), capacity)
	}
	if err := c.Add("T-1", nonce(-1), now); !errors.Is(err, ErrNoncesFull) {
		t.Fatalf("Add to a full cache = %v, want ErrNoncesFull", err)
	}
	// Oldest remembered pair is 500, added at 500.
	if got, want := c.RetryAfter(now), int64(500+ret)-now; got != want {
		t.Fatalf("RetryAfter = %d, want %d", got, want)
	}

	// Pairs 500..1023 (added at now=i) expire one per ms, in order: at
	// now=i+ret, pair i is forgotten, pair i+1 is not, and there is room
	// for exactly one pair. Re-adding i wraps the tail around the ring.
	for i := 500; i < 1024; i++ {
		now := int64(i + ret)
		if !isReplay(i+1, now) {
			t.Fatalf("pair %d forgotten early at now=%d", i+1, now)
		}
		if isReplay(i, now) {
			t.Fatalf("pair %d still remembered at now=%d", i, now)
		}
		if err := c.Add("T-1", nonce(-1), now); !errors.Is(err, ErrNoncesFull) {
			t.Fatalf("now=%d: Add = %v, want ErrNoncesFull", now, err)
		}
	}
	// The batch added at ret+499 (1024..3499) expires at once, before the
	// re-added 500..1023.
	now = 2*ret + 498
	if !isReplay(1024, now) || !isReplay(3499, now) {
		t.Fatal("batch forgotten early")
	}
	now = 2*ret + 499
	for _, i := range []int{1024, 2000, 3499} {
		if isReplay(i, now) {
			t.Fatalf("pair %d still remembered at now=%d", i, now)
		}
	}
	if !isReplay(500, now) || !isReplay(1023, now) {
		t.Fatal("re-added pairs forgotten early")
	}
	if got, want := c.Len(), 524+3; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
}

// nonceModel is the obvious, unbounded-time reference: a slice in
// insertion order.
type nonceModel struct {
	capacity int
	ret      int64
	recs     []nonceModelRec
	seen     map[nonceModelKey]bool
}

type nonceModelKey struct {
	dev string
	n   int
}

type nonceModelRec struct {
	dev     string
	n       int
	expires int64
}

func (m *nonceModel) add(dev string, n int, now int64) error {
	i := 0
	for i < len(m.recs) && m.recs[i].expires <= now {
		delete(m.seen, nonceModelKey{m.recs[i].dev, m.recs[i].n})
		i++
	}
	m.recs = m.recs[i:]
	if m.seen[nonceModelKey{dev, n}] {
		return ErrReplay
	}
	if len(m.recs) == m.capacity {
		return ErrNoncesFull
	}
	m.seen[nonceModelKey{dev, n}] = true
	m.recs = append(m.recs, nonceModelRec{dev, n, now + m.ret})
	return nil
}

// TestNoncesMatchesModel runs long random sequences (monotonic time,
// bursts, repeats) through growth and many wraparounds and compares every
// result with the reference.
func TestNoncesMatchesModel(t *testing.T) {
	tests := []struct {
		capacity int
		ret      int64
		maxStep  int64
	}{
		{capacity: 3000, ret: 5000, maxStep: 4},
		{capacity: 1024, ret: 2000, maxStep: 3},
		{capacity: 1500, ret: 700, maxStep: 2},
		{capacity: 5, ret: 50, maxStep: 20},
	}
	for _, tt := range tests {
		r := rand.New(rand.NewPCG(uint64(tt.capacity), uint64(tt.ret)))
		c := NewNonces(tt.capacity, tt.ret)
		m := &nonceModel{capacity: tt.capacity, ret: tt.ret, seen: make(map[nonceModelKey]bool)}
		now := int64(0)
		for step := range 60_000 {
			now += r.Int64N(tt.maxStep + 1)
			dev := []string{"A", "B", "C"}[r.IntN(3)]
			n := r.IntN(4 * tt.capacity)
			want := m.add(dev, n, now)
			if got := c.Add(dev, nonce(n), now); got != want {
				t.Fatalf("cap %d step %d: Add(%s,%d,%d) = %v, model %v", tt.capacity, step, dev, n, now, got, want)
			}
			if c.Len() != len(m.recs) {
				t.Fatalf("cap %d step %d: Len = %d, model %d", tt.capacity, step, c.Len(), len(m.recs))
			}
			if len(m.recs) > 0 {
				if got, want := c.RetryAfter(now), max(m.recs[0].expires-now, 1); got != want {
					t.Fatalf("cap %d step %d: RetryAfter = %d, model %d", tt.capacity, step, got, want)
				}
			}
		}
	}
}

func TestNoncesConcurrent(t *testing.T) {
	c := NewNonces(100_000, 1000)
	var wg sync.WaitGroup
	const workers, per = 8, 2000
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				// Every worker adds the same pairs: exactly one wins each.
				if err := c.Add("T-1", nonce(i), 0); err != nil && !errors.Is(err, ErrReplay) {
					errs <- err
					return
				}
				_ = c.Len()
				_ = c.RetryAfter(int64(w))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c.Len() != per {
		t.Fatalf("Len = %d, want %d", c.Len(), per)
	}
}
