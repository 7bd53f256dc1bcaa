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

// Takeover is asked when a HELLO is about to take over a session of the
// device that is still live (not closed, heard from lately): it returns
// 0 if allowed, or the cool-down in ms when the device already has limit
// replacements in the window, in which case this call starts a cool-down
// (started reports that it did, so operators are told once). It records
// nothing: a replacement counts only once Record confirms it.
func (r *Replacements) Takeover(deviceID string, now int64) (retryMs int64, started bool) {
	s := r.shard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[deviceID]
	if st == nil {
		return 0, false
	}
	if st.until > now {
		return st.until - now, false
	}
	st.times = r.inWindow(st.times, now)
	if len(st.times) >= r.limit {
		st.until = now + r.cooldown
		st.times = st.times[:0]
		return r.cooldown, true
	}
	return 0, false
}

// Record counts one replacement of a live session of the device at now.
// It keeps the newest limit replacements: no more are ever needed.
func (r *Replacements) Record(deviceID string, now int64) {
	s := r.shard(deviceID)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[deviceID]
	if st == nil {
		st = &dupState{}
		s.m[deviceID] = st
	}
	if st.until > now {
		return // cooling down already; the count restarts after it
	}
	st.times = r.inWindow(st.times, now)
	if len(st.times) >= r.limit {
		st.times = append(st.times[:0], st.times[1:]...)
	}
	st.times = append(st.times, now)
}

// inWindow drops the replacement times a whole window old.
func (r *Replacements) inWindow(times []int64, now int64) []int64 {
	i := 0
	for i < len(times) && times[i] <= now-r.window {
		i++
	}
	return times[i:]
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

// Cooldown is a device in a duplicate-device cool-down.
type Cooldown struct {
	DeviceID string
	// Until is when the cool-down ends, unix ms.
	Until int64
}

// CoolingDownAll returns up to limit devices whose cool-down runs at now
// (in no particular order) and how many there are in all. It takes each
// shard's lock once; only devices replaced recently have state, so the
// walk is short.
func (r *Replacements) CoolingDownAll(now int64, limit int) ([]Cooldown, int) {
	var out []Cooldown
	total := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for id, st := range s.m {
			if st.until > now {
				total++
				if len(out) < limit {
					out = append(out, Cooldown{DeviceID: id, Until: st.until})
				}
			}
		}
		s.mu.Unlock()
	}
	return out, total
}

// CooldownMs is the length of a cool-down, in ms.
func (r *Replacements) CooldownMs() int64 { return r.cooldown }
