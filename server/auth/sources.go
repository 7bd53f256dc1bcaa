package auth

import (
	"hash/maphash"
	"net/netip"
	"sync"
)

const sourceShards = 64

// ipv6SourceBits is the prefix length one IPv6 source is counted under:
// a host is given a whole /64, so counting single addresses would let one
// host pose as 2^64 sources.
const ipv6SourceBits = 64

// Sources holds the per-source-address limits on connections that have
// not completed HELLO: how many may be open at once, and how fast HELLOs
// may arrive (a token bucket). They keep one address from filling the
// node-wide pre-HELLO cap or from spending its CPU on MAC checks. Only
// addresses with a connection in HELLO or a bucket not yet full have
// state here; Sweep drops the rest. Safe from any goroutine: every
// method takes one shard's lock for a few instructions.
type Sources struct {
	maxPending int32   // 0: unlimited
	rate       float64 // HELLOs per ms; 0: unlimited
	burst      float64
	seed       maphash.Seed
	shards     [sourceShards]sourceShard
}

type sourceShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*sourceState
}

type sourceState struct {
	pending int32
	tokens  float64
	lastMs  int64 // last refill of tokens
}

// NewSources returns the limits: at most maxPending connections in HELLO
// per source, ratePerSec HELLOs a second with bursts of burst. A zero
// limit disables that check.
func NewSources(maxPending int, ratePerSec float64, burst int) *Sources {
	s := &Sources{maxPending: int32(maxPending), rate: ratePerSec / 1000, burst: float64(burst), seed: maphash.MakeSeed()}
	if s.burst < 1 {
		s.burst = 1
	}
	for i := range s.shards {
		s.shards[i].m = make(map[netip.Addr]*sourceState)
	}
	return s
}

// SourceKey is the address a peer is counted under: IPv4 as is (an
// IPv4-mapped IPv6 address as its IPv4 form), IPv6 by its /64.
func SourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(ipv6SourceBits)
		return p.Addr()
	}
	return a
}

func (s *Sources) shard(a netip.Addr) *sourceShard {
	b := a.As16()
	return &s.shards[maphash.Bytes(s.seed, b[:])%sourceShards]
}

// state returns a's state, creating it (caller holds the shard lock).
func (s *Sources) state(sh *sourceShard, a netip.Addr, now int64) *sourceState {
	st := sh.m[a]
	if st == nil {
		st = &sourceState{tokens: s.burst, lastMs: now}
		sh.m[a] = st
	}
	return st
}

// Open counts a new connection from a (a SourceKey; the zero Addr is
// never limited) and reports false, counting nothing, when a already has
// the maximum in HELLO.
func (s *Sources) Open(a netip.Addr, now int64) bool {
	if !a.IsValid() || s.maxPending <= 0 {
		return true
	}
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := s.state(sh, a, now)
	if st.pending >= s.maxPending {
		return false
	}
	st.pending++
	return true
}

// Done uncounts a connection Open counted: it completed HELLO or closed.
func (s *Sources) Done(a netip.Addr) {
	if !a.IsValid() || s.maxPending <= 0 {
		return
	}
	sh := s.shard(a)
	sh.mu.Lock()
	if st := sh.m[a]; st != nil && st.pending > 0 {
		st.pending--
	}
	sh.mu.Unlock()
}

// Hello takes one HELLO from a's bucket at now (unix ms). It returns 0
// when allowed, or the ms until the bucket holds a token again.
func (s *Sources) Hello(a netip.Addr, now int64) (retryMs int64) {
	if !a.IsValid() || s.rate <= 0 {
		return 0
	}
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := s.state(sh, a, now)
	s.refill(st, now)
	if st.tokens < 1 {
		return int64((1-st.tokens)/s.rate) + 1
	}
	st.tokens--
	return 0
}

func (s *Sources) refill(st *sourceState, now int64) {
	if d := now - st.lastMs; d > 0 {
		st.tokens = min(st.tokens+float64(d)*s.rate, s.burst)
		st.lastMs = now
	}
}

// Pending is the number of a's connections in HELLO (tests, operators).
func (s *Sources) Pending(a netip.Addr) int {
	sh := s.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st := sh.m[a]; st != nil {
		return int(st.pending)
	}
	return 0
}

// Len is the number of sources with state.
func (s *Sources) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Sweep drops the sources with nothing in HELLO and a full bucket: they
// are as if never seen.
func (s *Sources) Sweep(now int64) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for a, st := range sh.m {
			if s.rate > 0 {
				s.refill(st, now)
			}
			if st.pending == 0 && (s.rate <= 0 || st.tokens >= s.burst) {
				delete(sh.m, a)
			}
		}
		sh.mu.Unlock()
	}
}
