// Package presence keeps which terminals are online. The Tracker is the
// one place a session starts, is seen or ends: it keeps the sharded
// in-memory table (one Entry per live session), writes the transitions
// behind to the registry, publishes them on the event bus and counts them.
// It also holds the heartbeat flags features set per device.
package presence

import (
	"hash/maphash"
	"net"
	"sort"
	"sync"
	"sync/atomic"
)

// shardCount spreads devices over independent locks so two event loops
// registering different devices rarely meet on one mutex.
const shardCount = 64

// Owner is the connection that holds a session. Its methods must be safe
// to call from any goroutine and must not block.
type Owner interface {
	// Kick ends the session: GOAWAY with code and message, then close,
	// recording reason as the offline reason (ReasonReplaced: no offline
	// transition).
	Kick(sessionID uint64, code uint8, message string, reason Reason)
	// SetFlags makes flags the session's heartbeat flags.
	SetFlags(sessionID uint64, flags uint32)
	// SetGroupVersion makes v the device's group_version the session
	// compares HEARTBEAT's with (GROUP_STALE, spec §4).
	SetGroupVersion(sessionID uint64, v uint64)
}

// Entry is one online device's session. Fields set at registration never
// change; LastSeen and Status are updated atomically by the owning loop.
type Entry struct {
	DeviceID  string
	SessionID uint64
	Since     int64    // unix ms of HELLO_OK
	Remote    net.Addr // the peer's address (never changed once set)
	FW, Model string
	Attrs     string // MessagePack attrs map, "" if none
	Owner     Owner

	lastSeen atomic.Int64           // unix ms of the last valid frame
	status   atomic.Pointer[[]byte] // latest MessagePack status map
}

// RemoteAddr is the peer's address as text ("" if unknown).
func (e *Entry) RemoteAddr() string {
	if e.Remote == nil {
		return ""
	}
	return e.Remote.String()
}

// LastSeen is the unix ms of the last valid frame of the session.
func (e *Entry) LastSeen() int64 { return e.lastSeen.Load() }

// Touch records a valid frame at ms.
func (e *Entry) Touch(ms int64) { e.lastSeen.Store(ms) }

// Status is the latest status map, or nil.
func (e *Entry) Status() []byte {
	if p := e.status.Load(); p != nil {
		return *p
	}
	return nil
}

// SetStatus stores a new status map (the caller gives up b).
func (e *Entry) SetStatus(b []byte) { e.status.Store(&b) }

type shard struct {
	mu sync.Mutex
	m  map[string]*Entry
}

// Table is the sharded map of online devices.
type Table struct {
	seed   maphash.Seed
	shards [shardCount]shard
	online atomic.Int64
}

// NewTable returns an empty Table.
func NewTable() *Table {
	t := &Table{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*Entry)
	}
	return t
}

func (t *Table) shard(id string) *shard {
	return &t.shards[maphash.String(t.seed, id)%shardCount]
}

// Register makes e the device's session and returns the session it
// replaces, if any (newest login wins, spec §3.4). A replacement is not an
// offline transition: the device stays online throughout.
func (t *Table) Register(e *Entry) (old *Entry) {
	e.lastSeen.Store(e.Since)
	s := t.shard(e.DeviceID)
	s.mu.Lock()
	old = s.m[e.DeviceID]
	s.m[e.DeviceID] = e
	s.mu.Unlock()
	if old == nil {
		t.online.Add(1)
	}
	return old
}

// Unregister removes the device's session if it is still sessionID and
// reports whether it did. A session that was replaced is not removed, so
// its late close cannot take the new session offline.
func (t *Table) Unregister(deviceID string, sessionID uint64) bool {
	s := t.shard(deviceID)
	s.mu.Lock()
	e := s.m[deviceID]
	ok := e != nil && e.SessionID == sessionID
	if ok {
		delete(s.m, deviceID)
	}
	s.mu.Unlock()
	if ok {
		t.online.Add(-1)
	}
	return ok
}

// Get returns the device's live session, or nil when it is offline.
func (t *Table) Get(deviceID string) *Entry {
	s := t.shard(deviceID)
	s.mu.Lock()
	e := s.m[deviceID]
	s.mu.Unlock()
	return e
}

// Online is the number of devices online.
func (t *Table) Online() int { return int(t.online.Load()) }

// Page returns up to limit online entries with device ids greater than
// after, in id order, for the admin API. It copies each shard's ids under
// its lock, so it costs O(online) and is meant for operators, not loops.
func (t *Table) Page(after string, limit int) []*Entry {
	var all []*Entry
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for id, e := range s.m {
			if id > after {
				all = append(all, e)
			}
		}
		s.mu.Unlock()
	}
	sort.Slice(all, func(i, j int) bool { return all[i].DeviceID < all[j].DeviceID })
	if limit < 0 {
		limit = 0
	}
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}

// Each calls fn for every online entry until fn returns false.
func (t *Table) Each(fn func(*Entry) bool) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		entries := make([]*Entry, 0, len(s.m))
		for _, e := range s.m {
			entries = append(entries, e)
		}
		s.mu.Unlock()
		for _, e := range entries {
			if !fn(e) {
				return
			}
		}
	}
}
