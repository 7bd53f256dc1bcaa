package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/termd/termd/protocol"
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

// checkNonces verifies the ring, the block table, the index and the
// expiry encoding against each other and returns the expiries of the
// remembered pairs, oldest first.
func checkNonces(t *testing.T, c *Nonces) []int64 {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n < 0 || c.n > c.capacity || c.head >= c.vlen {
		t.Fatalf("n=%d capacity=%d head=%d vlen=%d", c.n, c.capacity, c.head, c.vlen)
	}
	if int(c.vlen) < c.capacity+1<<c.bshift || c.vlen&c.bmask != 0 {
		t.Fatalf("vlen %d: want a whole number of %d-slot blocks, one more than the capacity %d needs", c.vlen, 1<<c.bshift, c.capacity)
	}
	// Live positions, and the blocks backing them.
	live := make(map[uint32]int, c.n) // position → age rank
	liveBlock := make(map[int]bool)
	for i := range c.n {
		pos := (c.head + uint32(i)) % c.vlen
		live[pos] = i
		liveBlock[int(pos>>c.bshift)] = true
	}
	for b, blk := range c.blocks {
		switch {
		case liveBlock[b] && len(blk) != 1<<c.bshift:
			t.Fatalf("block %d holds live pairs but has %d slots", b, len(blk))
		case !liveBlock[b] && blk != nil && b != int(c.head>>c.bshift):
			t.Fatalf("block %d is allocated without live pairs (head %d, n %d)", b, c.head, c.n)
		}
	}
	if c.nspare > nonceSpares {
		t.Fatalf("%d spares", c.nspare)
	}
	// The index: a power of two, at most 3/4 full, exactly one reachable,
	// correctly tagged entry per live pair.
	size := len(c.index)
	if size < nonceIndexMin || size&(size-1) != 0 || c.n*4 > size*3 {
		t.Fatalf("index of %d slots for %d pairs", size, c.n)
	}
	mask := uint32(size - 1)
	seen := make(map[uint32]bool, c.n)
	for i, e := range c.index {
		if e == 0 {
			continue
		}
		pos := e&c.posMask - 1
		if _, ok := live[pos]; !ok {
			t.Fatalf("index slot %d points at dead position %d", i, pos)
		}
		if seen[pos] {
			t.Fatalf("position %d indexed twice", pos)
		}
		seen[pos] = true
		k := &c.slot(pos).key
		if e&^c.posMask != uint32(hash(k)>>32)&^c.posMask {
			t.Fatalf("index slot %d: bad tag", i)
		}
		for j := uint32(hash(k)) & mask; j != uint32(i); j = (j + 1) & mask {
			if c.index[j] == 0 {
				t.Fatalf("index slot %d is unreachable from its home: slot %d is empty", i, j)
			}
		}
	}
	if len(seen) != c.n {
		t.Fatalf("index holds %d pairs, ring %d", len(seen), c.n)
	}
	// Expiries: decode the deltas from the head.
	exps := make([]int64, 0, c.n)
	far := 0
	for i := range c.n {
		pos := (c.head + uint32(i)) % c.vlen
		switch d := c.slot(pos).dexp; {
		case i == 0:
			exps = append(exps, c.headExp)
		case d == farDelta:
			if far == len(c.far) {
				t.Fatalf("pair %d: far expiry missing", i)
			}
			exps = append(exps, c.far[far])
			far++
		default:
			exps = append(exps, exps[i-1]+int64(d))
		}
	}
	if far != len(c.far) {
		t.Fatalf("%d far expiries queued, %d used", len(c.far), far)
	}
	if c.n > 0 && exps[c.n-1] != c.tailExp {
		t.Fatalf("newest expiry %d, tailExp %d", exps[c.n-1], c.tailExp)
	}
	return exps
}

// allocatedBlocks is how many ring blocks are in use (spares excluded).
func allocatedBlocks(c *Nonces) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for _, b := range c.blocks {
		if b != nil {
			k++
		}
	}
	return k
}

func TestNoncesLayout(t *testing.T) {
	if s := unsafe.Sizeof(nonceSlot{}); s != 20 {
		t.Fatalf("nonceSlot is %d bytes, want 20", s)
	}
	for _, tt := range []struct {
		capacity   int
		blen, vlen int
	}{
		{0, 1, 1},
		{1, 1, 2},
		{3, 4, 8},
		{1024, 1024, 2048},
		{1025, 1024, 3072},
		{500_000, 1024, 501_760},
		{-5, 1, 1},
		{math.MaxInt, 1024, 1<<30 + 1024},
	} {
		c := NewNonces(tt.capacity, 1)
		if 1<<c.bshift != tt.blen || int(c.vlen) != tt.vlen {
			t.Errorf("capacity %d: blocks of %d, vlen %d; want %d, %d", tt.capacity, 1<<c.bshift, c.vlen, tt.blen, tt.vlen)
		}
		// An entry's position+1 fits under the tag.
		if c.vlen > c.posMask || c.posMask&(c.posMask+1) != 0 {
			t.Errorf("capacity %d: posMask %#x for vlen %d", tt.capacity, c.posMask, c.vlen)
		}
	}
}

// TestNoncesKeyHash checks both hashing paths against the definition:
// SHA-256(salt ‖ device_id ‖ 0 ‖ nonce), truncated to 128 bits.
func TestNoncesKeyHash(t *testing.T) {
	c := NewNonces(10, 100)
	if c.salt == (nonceSalt{}) {
		t.Fatal("salt is zero")
	}
	if d := NewNonces(10, 100); d.salt == c.salt {
		t.Fatal("two caches share a salt")
	}
	for _, idLen := range []int{0, 1, protocol.MaxID, nonceBufLen - 16 - 1 - 16, nonceBufLen - 16 - 1 - 16 + 1, 300, 1000} {
		id := strings.Repeat("x", idLen)
		for _, nn := range [][]byte{nil, nonce(7), make([]byte, 100)} {
			h := sha256.New()
			h.Write(c.salt[:])
			h.Write([]byte(id))
			h.Write([]byte{0})
			h.Write(nn)
			var want nonceKey
			copy(want[:], h.Sum(nil))
			if got := c.key(id, nn); got != want {
				t.Fatalf("key(%d-byte id, %d-byte nonce) = %x, want %x", idLen, len(nn), got, want)
			}
		}
	}
	long := strings.Repeat("L", 500)
	if err := c.Add(long, nonce(1), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(long+"x", nonce(1), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(long, nonce(1), 0); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay with a long id = %v, want ErrReplay", err)
	}
}

// TestNoncesGrowthKeepsFIFO drives the ring through block allocation and
// release, index growth and wraparound of the ring's positions at full
// capacity, and checks that pairs expire in exactly the order they were
// added.
func TestNoncesGrowthKeepsFIFO(t *testing.T) {
	const (
		capacity = 3000
		ret      = 10_000
	)
	c := NewNonces(capacity, ret)
	// Blocks of 1024, positions 0..4095.
	if 1<<c.bshift != 1024 || c.vlen != 4096 {
		t.Fatalf("blocks of %d, vlen %d", 1<<c.bshift, c.vlen)
	}
	if len(c.blocks) != 0 || len(c.index) != nonceIndexMin {
		t.Fatalf("new cache holds %d blocks, %d index slots", len(c.blocks), len(c.index))
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
	state := func(head uint32, n, blocks, index int) {
		t.Helper()
		checkNonces(t, c)
		if c.head != head || c.n != n || allocatedBlocks(c) != blocks || len(c.index) != index {
			t.Fatalf("head=%d n=%d blocks=%d index=%d, want %d, %d, %d, %d", c.head, c.n, allocatedBlocks(c), len(c.index), head, n, blocks, index)
		}
	}

	// Fill the first block (pair i at now=i), then let the first 500
	// expire and add 500 more, into a second block.
	for i := range 1024 {
		mustAdd(i, int64(i))
	}
	state(0, 1024, 1, 2048)
	now := int64(ret + 499) // pairs 0..499 expire
	for i := 1024; i < 1524; i++ {
		mustAdd(i, now)
	}
	state(500, 1024, 2, 2048)
	for i := 1524; i < 3500; i++ {
		mustAdd(i, now)
	}
	state(500, capacity, 4, 4096)
	if err := c.Add("T-1", nonce(-1), now); !errors.Is(err, ErrNoncesFull) {
		t.Fatalf("Add to a full cache = %v, want ErrNoncesFull", err)
	}
	// Oldest remembered pair is 500, added at 500.
	if got, want := c.RetryAfter(now), int64(500+ret)-now; got != want {
		t.Fatalf("RetryAfter = %d, want %d", got, want)
	}

	// Pairs 500..1023 (added at now=i) expire one per ms, in order: at
	// now=i+ret, pair i is forgotten, pair i+1 is not, and there is room
	// for exactly one pair. Re-adding i fills the last block; when the
	// head leaves the first block it is released.
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
	state(1024, capacity, 3, 4096)
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
	// 527 pairs at positions 3500..4026, all in the last block (the index
	// is not 1/16 full yet, so it keeps its size); two freed blocks are
	// kept as spares.
	state(3500, 524+3, 1, 4096)
	if c.nspare != nonceSpares {
		t.Fatalf("%d spares, want %d", c.nspare, nonceSpares)
	}
	// Wrap the positions around: 3500..4095, then 0..
	for i := 5000; i < 5600; i++ {
		mustAdd(i, now)
	}
	state(3500, 1127, 2, 4096)
	if c.nspare != 1 {
		t.Fatalf("%d spares, want 1", c.nspare)
	}
	for _, i := range []int{500, 1023, 5000, 5599} {
		if !isReplay(i, now) {
			t.Fatalf("pair %d forgotten", i)
		}
	}
	// Everything expires: one block stays (the head's), the index is
	// back to the minimum.
	now = 10 * ret
	mustAdd(9999, now)
	state(3500+1127-4096, 1, 1, nonceIndexMin)
}

// TestNoncesWraparound runs a steady stream (more adds than positions,
// many times over) with pairs expiring continuously and in bursts, and
// checks the structure and replay detection of recent pairs throughout.
func TestNoncesWraparound(t *testing.T) {
	const capacity, ret = 2500, 2000
	c := NewNonces(capacity, ret)
	r := rand.New(rand.NewPCG(1, 2))
	now := int64(0)
	type added struct {
		i   int
		exp int64
	}
	var recent []added
	for i := range 60_000 {
		now += r.Int64N(5) // ~1000 pairs remembered
		if i%7000 == 6999 {
			now += ret // burst expiry
		}
		if err := c.Add("W", nonce(i), now); err != nil {
			t.Fatalf("Add %d at %d: %v", i, now, err)
		}
		recent = append(recent, added{i, now + ret})
		if len(recent) > 64 {
			recent = recent[1:]
		}
		if i%97 == 0 {
			exps := checkNonces(t, c)
			if got, want := allocatedBlocks(c), (c.n+1023)/1024+1; got > want {
				t.Fatalf("step %d: %d blocks for %d pairs", i, got, c.n)
			}
			if len(exps) > 0 && exps[len(exps)-1] != now+ret {
				t.Fatalf("step %d: newest expiry %d, want %d", i, exps[len(exps)-1], now+ret)
			}
			for _, a := range recent {
				err := c.Add("W", nonce(a.i), now)
				if a.exp > now && !errors.Is(err, ErrReplay) {
					t.Fatalf("step %d: pair %d (expiring %d) forgotten at %d: %v", i, a.i, a.exp, now, err)
				}
			}
			recent = recent[:0]
		}
	}
	if c.vlen > 5000 {
		t.Fatalf("vlen %d", c.vlen)
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

// add expires from the oldest pair while due: a pair that is not keeps
// younger ones, even if due (the clock may step back).
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

// TestNoncesMatchesModel runs long random sequences (bursts, repeats,
// a clock that may step back or leap) through growth, shrinking and many
// wraparounds and compares every result, and regularly the structure and
// every expiry, with the reference.
func TestNoncesMatchesModel(t *testing.T) {
	const day = 86_400_000
	tests := []struct {
		name       string
		capacity   int
		ret        int64
		maxStep    int64
		back       int64 // the clock steps back up to this much, at times
		leap       int64 // and leaps forward up to this much, at times
		steps      int
		checkEvery int
	}{
		{name: "large", capacity: 3000, ret: 5000, maxStep: 4, steps: 60_000, checkEvery: 211},
		{name: "one block", capacity: 1024, ret: 2000, maxStep: 3, steps: 60_000, checkEvery: 97},
		{name: "odd", capacity: 1500, ret: 700, maxStep: 2, steps: 60_000, checkEvery: 97},
		{name: "tiny", capacity: 5, ret: 50, maxStep: 20, steps: 60_000, checkEvery: 1},
		{name: "one", capacity: 1, ret: 50, maxStep: 20, steps: 20_000, checkEvery: 1},
		{name: "jitter", capacity: 2000, ret: 3000, maxStep: 3, back: 40, steps: 60_000, checkEvery: 173},
		{name: "jitter tiny", capacity: 7, ret: 60, maxStep: 10, back: 70, steps: 40_000, checkEvery: 1},
		// Expiry deltas beyond ±2^31 ms go through the far queue.
		{name: "far", capacity: 40, ret: 100 * day, maxStep: 3, back: 60 * day, leap: 60 * day, steps: 40_000, checkEvery: 3},
		{name: "far large", capacity: 3000, ret: 100 * day, maxStep: 1, back: 30 * day, leap: 40 * day, steps: 40_000, checkEvery: 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tt.capacity), uint64(tt.ret)))
			c := NewNonces(tt.capacity, tt.ret)
			m := &nonceModel{capacity: tt.capacity, ret: tt.ret, seen: make(map[nonceModelKey]bool)}
			now := int64(1 << 40)
			for step := range tt.steps {
				now += r.Int64N(tt.maxStep + 1)
				if tt.back > 0 && r.IntN(50) == 0 {
					now -= r.Int64N(tt.back + 1)
				}
				if tt.leap > 0 && r.IntN(50) == 0 {
					now += r.Int64N(tt.leap + 1)
				}
				dev := []string{"A", "B", "C"}[r.IntN(3)]
				n := r.IntN(4*tt.capacity + 1)
				want := m.add(dev, n, now)
				if got := c.Add(dev, nonce(n), now); got != want {
					t.Fatalf("step %d: Add(%s,%d,%d) = %v, model %v", step, dev, n, now, got, want)
				}
				if c.Len() != len(m.recs) {
					t.Fatalf("step %d: Len = %d, model %d", step, c.Len(), len(m.recs))
				}
				probe := now + r.Int64N(2*tt.ret) - tt.ret
				want2 := int64(0)
				if len(m.recs) > 0 {
					want2 = max(m.recs[0].expires-probe, 1)
				}
				if got := c.RetryAfter(probe); got != want2 {
					t.Fatalf("step %d: RetryAfter(%d) = %d, model %d", step, probe, got, want2)
				}
				if step%tt.checkEvery == 0 {
					exps := checkNonces(t, c)
					for i, rec := range m.recs {
						if exps[i] != rec.expires {
							t.Fatalf("step %d: pair %d expires %d, model %d", step, i, exps[i], rec.expires)
						}
					}
				}
			}
		})
	}
}

// TestNoncesFarExpiries pins the far queue: expiry differences that do
// not fit in 32 bits, both ways, and the oldest-first expiry of pairs
// already due behind one that is not.
func TestNoncesFarExpiries(t *testing.T) {
	const ret = int64(10_000_000_000) // ~116 days
	c := NewNonces(10, ret)
	adds := []struct {
		n   int
		now int64
	}{{1, 0}, {2, 3_000_000_000}, {3, -3_000_000_000}, {4, -2_999_999_000}, {5, 10}}
	for _, a := range adds {
		if err := c.Add("F", nonce(a.n), a.now); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.far) != 3 { // 0→3e9, 3e9→−3e9, −3e9+1000→10
		t.Fatalf("far queue %v, want 3 expiries", c.far)
	}
	want := []int64{ret, ret + 3_000_000_000, ret - 3_000_000_000, ret - 2_999_999_000, ret + 10}
	if got := checkNonces(t, c); !slices.Equal(got, want) {
		t.Fatalf("expiries %v, want %v", got, want)
	}
	// Pair 1 expires; pair 2 holds 3..5 although they are due.
	if err := c.Add("F", nonce(6), ret+20); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 5 || c.RetryAfter(ret+20) != 3_000_000_000-20 {
		t.Fatalf("Len %d RetryAfter %d", c.Len(), c.RetryAfter(ret+20))
	}
	if err := c.Add("F", nonce(3), ret+20); !errors.Is(err, ErrReplay) {
		t.Fatalf("pair 3 behind pair 2: %v, want ErrReplay", err)
	}
	checkNonces(t, c)
	if err := c.Add("F", nonce(7), ret+3_000_000_000); err != nil {
		t.Fatal(err)
	}
	// 6 and 7; 7's expiry is 3e9-20 after 6's.
	if c.Len() != 2 || !slices.Equal(c.far, []int64{2*ret + 3_000_000_000}) {
		t.Fatalf("Len %d far %v", c.Len(), c.far)
	}
	if got := checkNonces(t, c); !slices.Equal(got, []int64{2*ret + 20, 2*ret + 3_000_000_000}) {
		t.Fatalf("expiries %v", got)
	}
	if err := c.Add("F", nonce(8), 1<<62); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 1 || c.far != nil {
		t.Fatalf("Len %d far %v", c.Len(), c.far)
	}
}

// TestNoncesDeltaBounds: expiry differences at the edges of int32 (the
// sentinel itself included) are exact.
func TestNoncesDeltaBounds(t *testing.T) {
	const ret = int64(1) << 40
	for _, d := range []int64{math.MaxInt32, math.MaxInt32 + 1, -math.MaxInt32, math.MinInt32, math.MinInt32 - 1, math.MinInt32 + 1} {
		c := NewNonces(4, ret)
		m := &nonceModel{capacity: 4, ret: ret, seen: make(map[nonceModelKey]bool)}
		now := int64(0)
		for i, step := range []int64{0, d, -d, d} {
			now += step
			if got, want := c.Add("B", nonce(i), now), m.add("B", i, now); got != want {
				t.Fatalf("delta %d, pair %d: %v, model %v", d, i, got, want)
			}
		}
		// Differences d, -d, d: those outside (MinInt32, MaxInt32] go far.
		far := 0
		for _, dd := range []int64{d, -d, d} {
			if dd <= math.MinInt32 || dd > math.MaxInt32 {
				far++
			}
		}
		if len(c.far) != far {
			t.Fatalf("delta %d: far %v, want %d expiries", d, c.far, far)
		}
		exps := checkNonces(t, c)
		for i, r := range m.recs {
			if exps[i] != r.expires {
				t.Fatalf("delta %d: expiries %v, model %v", d, exps, m.recs)
			}
		}
		// Expire them oldest first, decoding the deltas.
		for range 4 {
			now := exps[0]
			want := m.add("X", 0, now)
			if got := c.Add("X", nonce(0), now); got != want || c.Len() != len(m.recs) {
				t.Fatalf("delta %d: Add at %d = %v, model %v, Len %d, model %d", d, now, got, want, c.Len(), len(m.recs))
			}
			exps = checkNonces(t, c)
		}
	}
}

func TestNoncesIndexSizeFor(t *testing.T) {
	for n := range 5000 {
		size := indexSizeFor(n)
		if size < nonceIndexMin || size&(size-1) != 0 || size < 4*n || (size > nonceIndexMin && size/2 >= 4*n) {
			t.Fatalf("indexSizeFor(%d) = %d", n, size)
		}
	}
}

// TestNoncesDrainReleasesMemory: as pairs expire the index shrinks, and
// after a burst expires the cache holds one block, its spares and a
// minimal index.
func TestNoncesDrainReleasesMemory(t *testing.T) {
	c := NewNonces(500_000, 1000)
	for i := range 19_000 {
		if err := c.Add("D", nonce(i), int64(i/17_000)); err != nil {
			t.Fatal(err)
		}
	}
	checkNonces(t, c)
	if got := allocatedBlocks(c); got != 19 || len(c.index) != 32768 {
		t.Fatalf("%d blocks, %d index slots", got, len(c.index))
	}
	// 17,000 expire: 2000 pairs are under 1/16 of the index.
	if err := c.Add("D", nonce(-2), 1000); err != nil {
		t.Fatal(err)
	}
	checkNonces(t, c)
	if c.n != 2001 || len(c.index) != 8192 {
		t.Fatalf("%d pairs, %d index slots", c.n, len(c.index))
	}
	if err := c.Add("D", nonce(-1), 2000); err != nil {
		t.Fatal(err)
	}
	checkNonces(t, c)
	if got := allocatedBlocks(c); got != 1 || c.nspare != nonceSpares || len(c.index) != nonceIndexMin {
		t.Fatalf("after draining: %d blocks, %d spares, %d index slots", got, c.nspare, len(c.index))
	}
}

// noncesHeapPerPair is the live heap a cache of the default capacity
// holds per pair after n distinct Adds, none expired.
func noncesHeapPerPair(n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := NewNonces(500_000, 610_000)
	var b [protocol.NonceSize]byte
	for i := range n {
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		if err := c.Add("T-000001", b[:], 0); err != nil {
			panic(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(c)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

func TestNoncesBytesPerPair(t *testing.T) {
	for _, n := range []int{1000, 19_000, 100_000, 500_000} {
		t.Logf("%7d pairs: %5.1f bytes/pair", n, noncesHeapPerPair(n))
	}
	// A few tries: a concurrent GC can skew one reading.
	best := math.Inf(1)
	for range 3 {
		best = min(best, noncesHeapPerPair(19_000))
	}
	if best > 40 {
		t.Fatalf("%.1f bytes/pair at 19000 pairs, want ≤ 40", best)
	}
}

func TestNoncesAddDoesNotAllocate(t *testing.T) {
	c := NewNonces(500_000, 1000)
	id := strings.Repeat("d", protocol.MaxID)
	var b [protocol.NonceSize]byte
	i, now := 0, int64(0)
	add := func() {
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		if err := c.Add(id, b[:], now); err != nil {
			t.Fatal(err)
		}
		i++
		now++ // ~1000 pairs remembered
	}
	for range 10_000 {
		add()
	}
	if a := testing.AllocsPerRun(10_000, add); a != 0 {
		t.Fatalf("Add allocates %v times per call in steady state", a)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if err := c.Add(id, b[:], now); !errors.Is(err, ErrReplay) {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("a replayed Add allocates %v times per call", a)
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
	checkNonces(t, c)
}

// TestNoncesConcurrentLoops: two event loops on a shared, advancing clock
// add their own pairs and replay each other's, through block turnover and
// index growth and shrinking.
func TestNoncesConcurrentLoops(t *testing.T) {
	const ret, per = 300, 20_000
	c := NewNonces(50_000, ret)
	var clock atomic.Int64
	var done [2]atomic.Int64 // pairs each loop has added
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for loop := range 2 {
		wg.Go(func() {
			for i := range per {
				now := clock.Add(1) / 8
				if i%3000 == 0 {
					now = clock.Add(2*ret*8) / 8
				}
				// A pair nobody has added yet.
				if err := c.Add("L", nonce(2*i+loop), now); err != nil {
					errs <- fmt.Errorf("loop %d pair %d: %w", loop, i, err)
					return
				}
				done[loop].Store(int64(i + 1))
				// Pairs already added, by this loop or the other, are
				// replays unless the other loop's clock expired them.
				j := int(done[1-loop].Load()) - 1
				for _, n := range []int{2*i + loop, 2*j + 1 - loop} {
					if err := c.Add("L", nonce(n), now); err != nil && !errors.Is(err, ErrReplay) {
						errs <- fmt.Errorf("loop %d replay of %d: %w", loop, n, err)
						return
					}
				}
				_ = c.RetryAfter(now)
				_ = c.Len()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkNonces(t, c)
}

// BenchmarkNoncesAdd measures Add in steady state: the default capacity,
// pairs expiring as fast as they arrive (~200,000 remembered), after a
// warm-up that has taken the ring once around its positions.
func BenchmarkNoncesAdd(b *testing.B) {
	steady := func(b *testing.B, id string) (*Nonces, func() error) {
		c := NewNonces(500_000, 200_000)
		var nb [protocol.NonceSize]byte
		i := 0
		add := func() error {
			binary.BigEndian.PutUint64(nb[8:], uint64(i))
			i++
			return c.Add(id, nb[:], int64(i))
		}
		for range 600_000 {
			if err := add(); err != nil {
				b.Fatal(err)
			}
		}
		return c, add
	}
	for _, id := range []string{"T-000001", strings.Repeat("d", protocol.MaxID)} {
		b.Run(fmt.Sprintf("new/id=%d", len(id)), func(b *testing.B) {
			_, add := steady(b, id)
			b.ReportAllocs()
			for b.Loop() {
				if err := add(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("replay", func(b *testing.B) {
		c, _ := steady(b, "T-000001")
		var nb [protocol.NonceSize]byte
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			// Pairs 500,000..599,999 are remembered at now=600,000.
			binary.BigEndian.PutUint64(nb[8:], uint64(500_000+i%100_000))
			i++
			if err := c.Add("T-000001", nb[:], 600_000); !errors.Is(err, ErrReplay) {
				b.Fatal(err)
			}
		}
	})
	b.Run("two-loops", func(b *testing.B) {
		c, _ := steady(b, "T-000001") // pairs 1..600,000
		var seq atomic.Int64
		seq.Store(600_000)
		b.ReportAllocs()
		b.ResetTimer()
		b.SetParallelism(1) // GOMAXPROCS goroutines, like the event loops
		b.RunParallel(func(pb *testing.PB) {
			var nb [protocol.NonceSize]byte
			for pb.Next() {
				i := seq.Add(1)
				binary.BigEndian.PutUint64(nb[8:], uint64(i))
				if err := c.Add("T-000001", nb[:], i); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("key-only", func(b *testing.B) {
		c := NewNonces(1, 1)
		var nb [protocol.NonceSize]byte
		b.ReportAllocs()
		for b.Loop() {
			_ = c.key("T-000001", nb[:])
		}
	})
}

// BenchmarkNoncesFill measures filling a cache of the default capacity
// with 19,000 pairs (growth included) and reports the heap it then holds
// per pair.
func BenchmarkNoncesFill(b *testing.B) {
	var nb [protocol.NonceSize]byte
	b.ReportAllocs()
	for b.Loop() {
		c := NewNonces(500_000, 610_000)
		for i := range 19_000 {
			binary.BigEndian.PutUint64(nb[8:], uint64(i))
			if err := c.Add("T-000001", nb[:], 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(noncesHeapPerPair(19_000), "heap-B/pair")
}
