package auth

import (
	"hash/maphash"
	"sync"
)

const dupShards = 16

// Replacements enforces spec §3.4's duplicate-device rule: at most limit
// replacements of a device's session in any window; the HELLO that would
// exceed it starts a cool-down in which every HELLO of the device is
// refused. Only devices replaced recently have state here, and Sweep
// drops the stale ones.
type Replacements struct {
	limit    int
	window   int64 // ms
	cooldown int64 // ms
	seed     maphash.Seed
	shards   [dupShards]dupShard
}

type dupShard struct {
	mu sync.Mutex
	m  map[string]*dupState
}

type dupState struct {
	times []int64 // replacement times, oldest first, at most limit
	until int64   // cool-down end, unix ms
}

// NewReplacements returns a tracker.
func NewReplacements(limit int, windowMs, cooldownMs int64) *Replacements {
	r := &Replacements{limit: limit, window: windowMs, cooldown: cooldownMs, seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[string]*dupState)
	}
	return r
}

func (r *Replacements) shard(id string) *dupShard {
	return &r.shards[maphash.String(r.seed, id)%dupShards]
}

// CoolingDown returns the ms left of the device's cool-down, 0 if none.
func (r *Replacements) CoolingDown(deviceID string, now int64) int64 {
	s := r.shard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.m[deviceID]; st != nil && st.until > now {
		return st.until - now
	}
	return 0
}

// Replace records that a HELLO is about to replace the device's live
// session. It returns 0 if allowed, or the cool-down length in ms if this
// replacement would exceed the limit and starts a cool-down (started
// reports that this call began it, so operators are told once).
func (r *Replacements) Replace(deviceID string, now int64) (retryMs int64, started bool) {
	s := r.shard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[deviceID]
	if st == nil {
		st = &dupState{}
		s.m[deviceID] = st
	}
	if st.until > now {
		return st.until - now, false
	}
	i := 0
	for i < len(st.times) && st.times[i] <= now-r.window {
		i++
	}
	st.times = st.times[i:]
	if len(st.times) >= r.limit {
		st.until = now + r.cooldown
		st.times = st.times[:0]
		return r.cooldown, true
	}
	st.times = append(st.times, now)
	return 0, false
}

// Sweep drops state that no longer matters.
func (r *Replacements) Sweep(now int64) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for id, st := range s.m {
			if st.until <= now && (len(st.times) == 0 || st.times[len(st.times)-1] <= now-r.window) {
				delete(s.m, id)
			}
		}
		s.mu.Unlock()
	}
}
