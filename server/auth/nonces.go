// Package auth holds the in-memory state HELLO is checked against without
// blocking an event loop: the nonce replay cache, the index of per-device
// keys and blocked flags, and the duplicate-device replacement tracker.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"sync"

	"github.com/termd/termd/protocol"
)

// ErrReplay: the (device_id, nonce) pair was seen within the retention.
var ErrReplay = errors.New("auth: nonce replay")

// ErrNoncesFull: the cache is at capacity with nothing old enough to drop.
var ErrNoncesFull = errors.New("auth: nonce cache full")

// nonceKey is a 128-bit digest of a (device_id, nonce) pair: accidental
// collisions (false replays) are negligible while entries stay small.
type nonceKey [16]byte

// nonceSlot is one remembered pair: 20 bytes.
type nonceSlot struct {
	key nonceKey
	// dexp is this pair's expiry minus the previous pair's, or farDelta
	// when that difference does not fit (the exact expiry is then queued
	// in Nonces.far). Only the oldest pair's expiry is ever needed, and it
	// is kept exactly in Nonces.headExp.
	dexp int32
}

// farDelta marks a slot whose expiry difference did not fit in an int32.
const farDelta = math.MinInt32

const (
	// nonceBlockShift sets the largest block of slots: 1024 slots, 20 KiB.
	nonceBlockShift = 10
	// nonceIndexMin is the smallest hash index, in slots.
	nonceIndexMin = 64
	// nonceSpares is how many emptied blocks are kept for reuse, so that
	// the steady state allocates nothing.
	nonceSpares = 2
	// maxNonceCapacity bounds the capacity so that ring positions fit the
	// 32-bit index entries. It is far above anything that fits in memory
	// (it would take ~30 GiB).
	maxNonceCapacity = 1 << 30
	// nonceBufLen is the stack buffer key hashes the pair in; longer pairs
	// are streamed through it.
	nonceBufLen = 256
)

// A HELLO's pair hashes in one call, without a heap allocation.
var _ [nonceBufLen - (len(nonceSalt{}) + protocol.MaxID + 1 + protocol.NonceSize)]struct{}

type nonceSalt [16]byte

// Nonces remembers (device_id, nonce) pairs for a fixed retention in a
// cache of fixed capacity. When the cache is full of unexpired pairs it
// refuses new ones instead of evicting early, which would reopen a replay
// window. It is safe for concurrent use.
//
// Entries expire in insertion order (the retention is constant), so they
// live in a FIFO ring and expire from its head in O(1). The ring is
// virtual: its positions are backed by blocks of up to 1024 slots that are
// allocated as the tail reaches them and released (to a couple of spares,
// then the garbage collector) as the head leaves them, so the memory
// follows the number of remembered pairs and an idle node does not hold
// (or make the garbage collector budget for) the whole bound. A slot is a
// 16-byte key and a 4-byte expiry delta.
//
// Lookups go through an open-addressing hash index of 32-bit entries:
// linear probing, at most 3/4 full, doubled (and rebuilt from the ring)
// when it gets fuller and shrunk when the ring drains, deletions (always
// of the ring's head) by backward shift, so there are no tombstones. An
// entry holds the pair's ring position + 1 in its low bits and a
// fingerprint of the key in the bits the positions leave free, so most
// probes of other pairs never touch the ring. The keys are salted per
// cache, so which index slots a pair lands in cannot be chosen by a client
// grinding nonces.
//
// All told a remembered pair costs ~21 bytes of ring and 5–11 bytes of
// index, and Add does not allocate except to grow.
type Nonces struct {
	mu        sync.Mutex
	salt      nonceSalt // immutable
	capacity  int
	retention int64 // ms

	// The ring: vlen positions, block b backing positions
	// [b<<bshift, (b+1)<<bshift). vlen exceeds the capacity by at least
	// one block, so the block the head leaves never holds live pairs.
	blocks  [][]nonceSlot // nil where no pair is, but the head's; grown lazily
	spare   [nonceSpares][]nonceSlot
	nspare  int
	bshift  uint
	bmask   uint32
	vlen    uint32
	head    uint32  // position of the oldest pair
	n       int     // remembered pairs, at positions head..head+n-1 (mod vlen)
	headExp int64   // expiry of the oldest pair (unix ms), when n > 0
	tailExp int64   // expiry of the newest pair, when n > 0
	far     []int64 // exact expiries of the farDelta slots, oldest first

	// The index: 0 is an empty slot, anything else tag | position+1.
	index   []uint32
	posMask uint32 // low bits of an entry: position+1
}

// NewNonces returns a cache for capacity pairs kept retentionMs each.
func NewNonces(capacity int, retentionMs int64) *Nonces {
	capacity = min(max(capacity, 0), maxNonceCapacity)
	c := &Nonces{capacity: capacity, retention: retentionMs}
	_, _ = rand.Read(c.salt[:]) // never fails
	if capacity > 1 {
		c.bshift = uint(min(bits.Len(uint(capacity-1)), nonceBlockShift))
	}
	blen := 1 << c.bshift
	c.bmask = uint32(blen - 1)
	c.vlen = uint32((capacity+blen-1)/blen*blen + blen)
	c.posMask = 1<<bits.Len32(c.vlen) - 1
	c.index = make([]uint32, nonceIndexMin)
	return c
}

// key hashes the pair, salted, with a 0 between id and nonce so that the
// boundary is part of the key.
func (c *Nonces) key(deviceID string, nonce []byte) (k nonceKey) {
	var buf [nonceBufLen]byte
	s := len(c.salt)
	copy(buf[:], c.salt[:])
	if m := s + len(deviceID) + 1 + len(nonce); m <= len(buf) {
		copy(buf[s:], deviceID)
		buf[s+len(deviceID)] = 0
		copy(buf[s+len(deviceID)+1:], nonce)
		sum := sha256.Sum256(buf[:m])
		copy(k[:], sum[:])
		return k
	}
	// Longer than any protocol id: stream it through the buffer.
	h := sha256.New()
	h.Write(c.salt[:])
	for len(deviceID) > 0 {
		m := copy(buf[:], deviceID)
		h.Write(buf[:m])
		deviceID = deviceID[m:]
	}
	buf[0] = 0
	h.Write(buf[:1])
	h.Write(nonce)
	copy(k[:], h.Sum(buf[:0]))
	return k
}

// hash is the index hash of a key: the home slot is taken from its low 32
// bits, the tag from its high 32 (the key is a salted SHA-256 digest, so
// both are uniform and independent).
func hash(k *nonceKey) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

// Add records the pair at now (unix ms). It returns ErrReplay if the pair
// is remembered, ErrNoncesFull if there is no room.
func (c *Nonces) Add(deviceID string, nonce []byte, now int64) error {
	k := c.key(deviceID, nonce)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if len(c.index) > nonceIndexMin && c.n*16 < len(c.index) {
		c.rebuild(indexSizeFor(c.n))
	}
	if c.find(&k) {
		return ErrReplay
	}
	if c.n >= c.capacity {
		return ErrNoncesFull
	}
	c.push(&k, now+c.retention)
	return nil
}

// Len is the number of remembered pairs.
func (c *Nonces) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// RetryAfter is how long until the oldest pair expires (ms), for the
// retry_after_ms of a full cache.
func (c *Nonces) RetryAfter(now int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return 0
	}
	return max(c.headExp-now, 1)
}

// slot is the ring slot at position pos, whose block must be allocated.
func (c *Nonces) slot(pos uint32) *nonceSlot {
	return &c.blocks[pos>>c.bshift][pos&c.bmask]
}

// push appends the pair to the ring and the index; there is room.
func (c *Nonces) push(k *nonceKey, exp int64) {
	pos := c.head + uint32(c.n)
	if pos >= c.vlen {
		pos -= c.vlen
	}
	b := int(pos >> c.bshift)
	if b == len(c.blocks) {
		c.blocks = append(c.blocks, nil)
	}
	if c.blocks[b] == nil {
		c.blocks[b] = c.newBlock()
	}
	d := int32(0)
	if c.n == 0 {
		c.headExp = exp
	} else if dd := exp - c.tailExp; dd > farDelta && dd <= math.MaxInt32 {
		d = int32(dd)
	} else {
		d = farDelta
		c.far = append(c.far, exp)
	}
	c.tailExp = exp
	c.blocks[b][pos&c.bmask] = nonceSlot{key: *k, dexp: d}
	c.n++
	if c.n*4 > len(c.index)*3 {
		c.rebuild(2 * len(c.index)) // indexes the new pair too
		return
	}
	c.insert(k, pos)
}

// expire drops the pairs at the head that expired by now; a pair that has
// not keeps the younger ones (even if already due) until it does.
func (c *Nonces) expire(now int64) {
	for c.n > 0 && c.headExp <= now {
		old := c.head
		c.remove(&c.slot(old).key, old)
		c.head++
		if c.head == c.vlen {
			c.head = 0
		}
		c.n--
		if c.head&c.bmask == 0 {
			c.freeBlock(int(old >> c.bshift))
		}
		if c.n == 0 {
			c.far = nil // every far expiry was consumed on its way to the head
			continue
		}
		if d := c.slot(c.head).dexp; d == farDelta {
			c.headExp = c.far[0]
			c.far = c.far[1:]
		} else {
			c.headExp += int64(d)
		}
	}
}

func (c *Nonces) newBlock() []nonceSlot {
	if c.nspare > 0 {
		c.nspare--
		b := c.spare[c.nspare]
		c.spare[c.nspare] = nil
		return b
	}
	return make([]nonceSlot, 1<<c.bshift)
}

func (c *Nonces) freeBlock(b int) {
	if c.nspare < nonceSpares {
		c.spare[c.nspare] = c.blocks[b]
		c.nspare++
	}
	c.blocks[b] = nil
}

// find reports whether the key is remembered.
func (c *Nonces) find(k *nonceKey) bool {
	h := hash(k)
	mask := uint32(len(c.index) - 1)
	tag := uint32(h>>32) &^ c.posMask
	for i := uint32(h) & mask; ; i = (i + 1) & mask {
		e := c.index[i]
		if e == 0 {
			return false
		}
		if e&^c.posMask == tag && c.slot(e&c.posMask-1).key == *k {
			return true
		}
	}
}

// insert indexes the pair at ring position pos.
func (c *Nonces) insert(k *nonceKey, pos uint32) {
	h := hash(k)
	mask := uint32(len(c.index) - 1)
	i := uint32(h) & mask
	for c.index[i] != 0 {
		i = (i + 1) & mask
	}
	c.index[i] = uint32(h>>32)&^c.posMask | (pos + 1)
}

// remove unindexes the pair k at ring position pos, shifting back the
// entries after it in its probe run that may move closer to their home.
func (c *Nonces) remove(k *nonceKey, pos uint32) {
	mask := uint32(len(c.index) - 1)
	i := uint32(hash(k)) & mask
	for c.index[i]&c.posMask != pos+1 {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		e := c.index[j]
		if e == 0 {
			break
		}
		// The entry at j may fill the hole at i if i lies in [home, j).
		if home := uint32(hash(&c.slot(e&c.posMask-1).key)) & mask; (j-home)&mask >= (j-i)&mask {
			c.index[i] = e
			i = j
		}
	}
	c.index[i] = 0
}

// rebuild replaces the index by one of size slots holding every
// remembered pair.
func (c *Nonces) rebuild(size int) {
	c.index = make([]uint32, size)
	pos := c.head
	for range c.n {
		c.insert(&c.slot(pos).key, pos)
		if pos++; pos == c.vlen {
			pos = 0
		}
	}
}

// indexSizeFor is the index size for n pairs after shrinking: at most 1/4
// full, so that it neither grows nor shrinks again soon.
func indexSizeFor(n int) int {
	size := nonceIndexMin
	for size < 4*n {
		size *= 2
	}
	return size
}
