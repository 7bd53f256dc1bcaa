package server

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/storage"
)

// DeviceView is a device as operators see it: the durable registry record
// with the live session, if any, laid over it (the registry's presence
// fields are written behind and may trail by a flush interval).
type DeviceView struct {
	storage.Device
	// Live is true when the device has a session on this node now.
	Live bool
}

// Errors of the operator operations.
var (
	// ErrBadKey: a per-device key must be 32 bytes.
	ErrBadKey = &protocol.Error{Code: protocol.BadRequest, Message: "per-device key must be 32 bytes"}
	// ErrDeviceNotFound: the device was never seen.
	ErrDeviceNotFound = &protocol.Error{Code: protocol.NotFound, Message: "device not found"}
)

// badDeviceID is the refusal of an operation on an invalid device id.
func badDeviceID(id string) error {
	return protocol.Errorf(protocol.BadRequest, "invalid device id %q", id)
}

// Stats returns a snapshot of the node.
func (s *Server) Stats() api.Stats {
	return api.Stats{
		Online: s.Presence.Online(), Connections: s.conns.Load(), PendingHello: s.pending.Load(),
		Sessions: s.sessions.Load(), MaxConnections: s.maxConns, MaxSessions: s.maxSessions,
		NonceCache: s.nonces.Len(), WorkQueue: s.work.depth(), WriteBehind: s.Presence.Pending(),
		EventSubscribers: s.Bus.Subscribers(), EventsDropped: s.Bus.Dropped(),
		BootEpoch: uint32(s.epoch >> 32), StartedMs: s.startMs,
		HBIntervalS: s.hbIntervalSeconds(), MissFactor: s.cfg.Heartbeat.MissFactor,
	}
}

// Cooldowns returns up to limit devices in a duplicate-device cool-down
// (spec §3.4; when more are cooling down, which ones is unspecified),
// the longest running first, and how many there are in all.
func (s *Server) Cooldowns(limit int) ([]api.Cooldown, int) {
	now := s.nowMs()
	cs, total := s.dups.CoolingDownAll(now, limit)
	out := make([]api.Cooldown, 0, len(cs))
	for _, c := range cs {
		out = append(out, api.Cooldown{DeviceID: c.DeviceID, StartedMs: c.Until - s.dups.CooldownMs(), UntilMs: c.Until})
	}
	slices.SortFunc(out, func(a, b api.Cooldown) int {
		return cmp.Or(cmp.Compare(a.StartedMs, b.StartedMs), cmp.Compare(a.DeviceID, b.DeviceID))
	})
	return out, total
}

// Store is the node's store (for backups and the admin API).
func (s *Server) Store() storage.Store { return s.store }

// overlay lays a live session over a registry record.
func overlay(d storage.Device, e *presence.Entry) DeviceView {
	v := DeviceView{Device: d}
	if e == nil {
		return v
	}
	v.Live, v.Online = true, true
	v.ID = e.DeviceID
	v.SessionID, v.LastOnline, v.LastSeen = e.SessionID, e.Since, max(d.LastSeen, e.LastSeen())
	v.RemoteAddr, v.FW, v.Model = e.RemoteAddr(), e.FW, e.Model
	if e.Attrs != "" {
		v.Attrs = []byte(e.Attrs)
	}
	if st := e.Status(); st != nil {
		v.Status = st
	}
	if v.FirstSeen == 0 {
		v.FirstSeen = e.Since
	}
	return v
}

// Device returns one device; ErrDeviceNotFound if it was never seen.
func (s *Server) Device(ctx context.Context, id string) (DeviceView, error) {
	e := s.Presence.Get(id)
	d, err := s.store.Get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		if e == nil {
			return DeviceView{}, ErrDeviceNotFound
		}
		d, err = storage.Device{ID: id}, nil // online, not flushed yet
	}
	if err != nil {
		return DeviceView{}, err
	}
	return overlay(d, e), nil
}

// Devices lists devices in id order after cursor. online=true lists the
// live sessions; otherwise the registry, with live sessions laid over it
// (online=false keeps only devices with no live session).
func (s *Server) Devices(ctx context.Context, online *bool, limit int, cursor string) ([]DeviceView, string, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	if online != nil && *online {
		entries := s.Presence.Page(cursor, limit+1)
		next := ""
		if len(entries) > limit {
			entries = entries[:limit]
			next = entries[limit-1].DeviceID
		}
		out := make([]DeviceView, 0, len(entries))
		for _, e := range entries {
			d, err := s.store.Get(ctx, e.DeviceID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return nil, "", err
			}
			out = append(out, overlay(d, e))
		}
		return out, next, nil
	}
	var out []DeviceView
	for {
		devs, next, err := s.store.List(ctx, storage.ListOptions{Limit: limit, Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		for _, d := range devs {
			v := overlay(d, s.Presence.Get(d.ID))
			if online != nil && v.Online {
				continue
			}
			out = append(out, v)
			if len(out) == limit {
				// The next page may turn out empty; the cursor is still
				// the right place to resume.
				return out, v.ID, nil
			}
		}
		if next == "" {
			return out, "", nil
		}
		cursor = next
	}
}

// Disconnect ends the device's session with GOAWAY [7, ...]; offline
// reason `disconnected`. It reports whether the device was online.
func (s *Server) Disconnect(id string) bool {
	e := s.Presence.Get(id)
	if e == nil {
		return false
	}
	e.Owner.Kick(e.SessionID, uint8(protocol.Unavailable), "disconnected by operator", presence.ReasonDisconnected)
	return true
}

// Block blocks a device: durably first, then in the HELLO index, then its
// live session ends with GOAWAY [3, ...], offline reason `blocked`.
func (s *Server) Block(ctx context.Context, id string) error {
	if !protocol.ValidDeviceID(id) {
		return badDeviceID(id)
	}
	if err := s.store.SetBlocked(ctx, id, true); err != nil {
		return err
	}
	s.creds.SetBlocked(id, true)
	if e := s.Presence.Get(id); e != nil {
		e.Owner.Kick(e.SessionID, uint8(protocol.Forbidden), "device blocked", presence.ReasonBlocked)
	}
	return nil
}

// Unblock lets a blocked device connect again.
func (s *Server) Unblock(ctx context.Context, id string) error {
	if !protocol.ValidDeviceID(id) {
		return badDeviceID(id)
	}
	if err := s.store.SetBlocked(ctx, id, false); err != nil {
		return err
	}
	s.creds.SetBlocked(id, false)
	return nil
}

// SetKey provisions (32 bytes) or, with nil, removes a per-device key. A
// live session keeps running on the key it authenticated with; the new
// key applies from the next HELLO.
func (s *Server) SetKey(ctx context.Context, id string, key []byte) error {
	if !protocol.ValidDeviceID(id) {
		return badDeviceID(id)
	}
	if key != nil && len(key) != len(protocol.Key{}) {
		return ErrBadKey
	}
	if err := s.store.SetKey(ctx, id, key); err != nil {
		return err
	}
	s.creds.SetKey(id, key)
	return nil
}
