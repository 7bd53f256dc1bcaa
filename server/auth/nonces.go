// Package auth holds the in-memory state HELLO is checked against without
// blocking an event loop: the nonce replay cache, the index of per-device
// keys and blocked flags, and the duplicate-device replacement tracker.
package auth

import (
	"crypto/sha256"
	"errors"
	"sync"
)

// ErrReplay: the (device_id, nonce) pair was seen within the retention.
var ErrReplay = errors.New("auth: nonce replay")

// ErrNoncesFull: the cache is at capacity with nothing old enough to drop.
var ErrNoncesFull = errors.New("auth: nonce cache full")

type nonceKey [16]byte

type nonceRec struct {
	key     nonceKey
	expires int64 // unix ms
}

// Nonces remembers (device_id, nonce) pairs for a fixed retention in a
// cache of fixed capacity. Entries expire in insertion order (the
// retention is constant), so a FIFO ring expires them in O(1) and the
// memory bound is exact: capacity × ~80 bytes at most. The ring grows on
// demand up to the capacity, so an idle node does not hold (or make the
// garbage collector budget for) the whole bound. When the ring is full of
// unexpired pairs the cache refuses new ones instead of evicting early,
// which would reopen a replay window.
type Nonces struct {
	mu        sync.Mutex
	seen      map[nonceKey]struct{}
	ring      []nonceRec
	head, n   int
	capacity  int
	retention int64 // ms
}

// nonceRingStart is the ring's first size; it doubles up to the capacity.
const nonceRingStart = 1024

// NewNonces returns a cache for capacity pairs kept retentionMs each.
func NewNonces(capacity int, retentionMs int64) *Nonces {
	return &Nonces{
		seen:      make(map[nonceKey]struct{}),
		ring:      make([]nonceRec, min(capacity, nonceRingStart)),
		capacity:  capacity,
		retention: retentionMs,
	}
}

// grow doubles the ring (up to the capacity), keeping FIFO order.
func (c *Nonces) grow() {
	next := make([]nonceRec, min(2*len(c.ring), c.capacity))
	for i := 0; i < c.n; i++ {
		next[i] = c.ring[(c.head+i)%len(c.ring)]
	}
	c.ring, c.head = next, 0
}

// key hashes the pair: a 128-bit digest makes accidental collisions
// (false replays) negligible while keeping entries small.
func key(deviceID string, nonce []byte) (k nonceKey) {
	h := sha256.New()
	h.Write([]byte(deviceID))
	h.Write([]byte{0})
	h.Write(nonce)
	var sum [sha256.Size]byte
	copy(k[:], h.Sum(sum[:0]))
	return k
}

// Add records the pair at now (unix ms). It returns ErrReplay if the pair
// is remembered, ErrNoncesFull if there is no room.
func (c *Nonces) Add(deviceID string, nonce []byte, now int64) error {
	k := key(deviceID, nonce)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if _, ok := c.seen[k]; ok {
		return ErrReplay
	}
	if c.n == len(c.ring) {
		if len(c.ring) == c.capacity {
			return ErrNoncesFull
		}
		c.grow()
	}
	c.ring[(c.head+c.n)%len(c.ring)] = nonceRec{key: k, expires: now + c.retention}
	c.n++
	c.seen[k] = struct{}{}
	return nil
}

func (c *Nonces) expire(now int64) {
	for c.n > 0 && c.ring[c.head].expires <= now {
		delete(c.seen, c.ring[c.head].key)
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
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
	return max(c.ring[c.head].expires-now, 1)
}
