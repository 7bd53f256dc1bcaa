package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/storage"
)

// Changes. Every change of a device's memberships, from a terminal or an
// operator, runs under the device's stripe lock and takes these steps:
//
//  1. under s.mu: decide from memory (limits, the 32-membership cap,
//     policies) and apply the result to memory at once, so a concurrent
//     change of another device already counts it (a member limit holds
//     under any concurrency);
//  2. commit the device's new record (and the request_id answer) to the
//     store in one transaction;
//  3. on failure, put the device's old record and memberships back under
//     s.mu (nothing else changed this device meanwhile: its lock is held)
//     and refuse; on success, copy the new group_version into presence.
//
// A switch is one record write: the device is in `to` and not in `from`
// or, after a failure, exactly where it was.

// decide computes a device's new record from its current one (nil when
// it has none); it runs under s.mu and must not block. It returns nil,
// nil when nothing changes.
type decide func(old *storage.DeviceGroups) (*storage.DeviceGroups, error)

var errFull = errors.New("group full")

// commitDevice runs one change of device (whose lock the caller holds)
// and returns the device's record afterwards.
func (s *Service) commitDevice(ctx context.Context, device string, fn decide, idem *storage.GroupIdem) (*storage.DeviceGroups, error) {
	s.mu.Lock()
	old := s.devs[device]
	nd, err := fn(old)
	if err != nil || nd == nil {
		s.mu.Unlock()
		if nd == nil && err == nil {
			return old, nil
		}
		return nil, err
	}
	s.applyLocked(device, old, nd)
	s.mu.Unlock()

	w := storage.GroupWrite{Devices: []storage.DeviceGroups{*nd}}
	if idem != nil {
		idem.Version = nd.Version
		idem.Members = nd.Members
		w.Idem = []storage.GroupIdem{*idem}
	}
	if err := s.store.ApplyGroups(ctx, w); err != nil {
		s.mu.Lock()
		s.applyLocked(device, nd, old)
		s.mu.Unlock()
		s.log.Warn("commit group change", "device", device, "err", err)
		if errors.Is(err, storage.ErrDiskFull) {
			return nil, &protocol.Error{Code: protocol.Unavailable, Message: "storage full", RetryAfterMs: 5000}
		}
		return nil, &protocol.Error{Code: protocol.Internal, Message: "the change could not be stored; nothing changed"}
	}
	if s.srv != nil {
		s.srv.Presence.SetGroupVersion(device, nd.Version)
	}
	return nd, nil
}

// applyLocked makes to the device's record in memory, moving its
// memberships in the groups' member maps from from's. Caller holds s.mu.
func (s *Service) applyLocked(device string, from, to *storage.DeviceGroups) {
	if from != nil {
		for _, m := range from.Members {
			if g := s.groups[m.GroupID]; g != nil {
				delete(g.members, device)
			}
		}
	}
	if to == nil {
		delete(s.devs, device)
		return
	}
	for _, m := range to.Members {
		if g := s.groups[m.GroupID]; g != nil {
			g.members[device] = m.Role
		}
	}
	s.devs[device] = to
}

// next returns a copy of old (or a fresh record) with the version bumped
// and the operator marks older than a grant's life dropped.
func (s *Service) next(device string, old *storage.DeviceGroups, nowMs int64) *storage.DeviceGroups {
	nd := &storage.DeviceGroups{DeviceID: device, Version: 1}
	if old != nil {
		nd.Version = old.Version + 1
		nd.Members = slices.Clone(old.Members)
		for _, mk := range old.Marks {
			if nowMs-mk.AtMs <= s.ttlMs {
				nd.Marks = append(nd.Marks, mk)
			}
		}
	}
	return nd
}

func memberIndex(d *storage.DeviceGroups, id string) int {
	if d == nil {
		return -1
	}
	return slices.IndexFunc(d.Members, func(m storage.GroupMember) bool { return m.GroupID == id })
}

// operatorChangedSince reports whether an operator changed the device's
// membership of group at or after ms.
func operatorChangedSince(d *storage.DeviceGroups, group string, ms int64) bool {
	if d == nil {
		return false
	}
	for _, mk := range d.Marks {
		if mk.GroupID == group && mk.AtMs >= ms {
			return true
		}
	}
	return false
}

// Refusals of GROUP_CHANGE (spec §7).
var (
	errOperatorOnly = &protocol.Error{Code: protocol.Forbidden, Message: "only operators change this group's members"}
	errNotMember    = &protocol.Error{Code: protocol.Conflict, Message: "not a member"}
	errTooMany      = &protocol.Error{Code: protocol.Conflict, Message: fmt.Sprintf("already in %d groups", storage.MaxMemberships)}
	errGroupFull    = &protocol.Error{Code: protocol.Unavailable, Message: "group full", RetryAfterMs: 5000}
	errUnknownGroup = &protocol.Error{Code: protocol.NotFound, Message: "unknown group"}
	errOpChanged    = &protocol.Error{Code: protocol.Forbidden, Message: "an operator changed this membership after the grant was issued"}
)

// terminalChange decides a terminal's JOIN, LEAVE or SWITCH (grant
// already verified for ch.To, issued at issuedMs).
func (s *Service) terminalChange(device string, ch *protocol.GroupChange, g grant, nowMs int64) decide {
	return func(old *storage.DeviceGroups) (*storage.DeviceGroups, error) {
		if ch.To != "" && operatorChangedSince(old, ch.To, g.IssuedMs) {
			return nil, errOpChanged
		}
		fromAt := -1
		if ch.From != "" {
			if fg := s.groups[ch.From]; fg != nil && fg.def.Policy == storage.PolicyOperator {
				return nil, errOperatorOnly
			}
			if fromAt = memberIndex(old, ch.From); fromAt < 0 {
				return nil, errNotMember
			}
		}
		nd := s.next(device, old, nowMs)
		if fromAt >= 0 {
			nd.Members = slices.Delete(nd.Members, fromAt, fromAt+1)
		}
		if ch.To != "" {
			tg := s.groups[ch.To]
			if tg == nil || tg.def.ID == "" {
				return nil, errUnknownGroup
			}
			if tg.def.Policy == storage.PolicyOperator {
				return nil, errOperatorOnly // the group is being deleted
			}
			if tg.def.Policy == storage.PolicyDynamic {
				return nil, errDynamic
			}
			if i := memberIndex(nd, ch.To); i >= 0 {
				if fromAt < 0 && nd.Members[i].Role == g.Role {
					return nil, nil // joining a group it is in: nothing changes
				}
				nd.Members[i].Role, nd.Members[i].By, nd.Members[i].AtMs = g.Role, "device", nowMs
			} else {
				if len(nd.Members) >= storage.MaxMemberships {
					return nil, errTooMany
				}
				if tg.def.Limit > 0 && len(tg.members) >= tg.def.Limit {
					return nil, errGroupFull
				}
				nd.Members = append(nd.Members, storage.GroupMember{GroupID: ch.To, Role: g.Role, By: "device", AtMs: nowMs})
			}
		}
		return nd, nil
	}
}

// operatorChange decides an operator's add (role != "") or removal of
// device in group, recording the mark that refuses older grants.
func (s *Service) operatorChange(device, groupID, role, by string, nowMs int64) decide {
	return func(old *storage.DeviceGroups) (*storage.DeviceGroups, error) {
		g := s.groups[groupID]
		if g == nil || g.def.ID == "" {
			return nil, errUnknownGroup
		}
		if isDynamic(g) {
			return nil, &protocol.Error{Code: protocol.Conflict, Message: "a dynamic group's members are the devices matching its filter; change the filter instead"}
		}
		i := memberIndex(old, groupID)
		switch {
		case role == "" && i < 0:
			return nil, nil // not a member: nothing to remove
		case role != "" && i >= 0 && old.Members[i].Role == role:
			return nil, nil
		case role != "" && i < 0 && old != nil && len(old.Members) >= storage.MaxMemberships:
			return nil, &protocol.Error{Code: protocol.Conflict, Message: fmt.Sprintf("%s is already in %d groups", device, storage.MaxMemberships)}
		case role != "" && i < 0 && g.def.Limit > 0 && len(g.members) >= g.def.Limit:
			return nil, &protocol.Error{Code: protocol.Conflict, Message: fmt.Sprintf("group %s is full (limit %d)", groupID, g.def.Limit)}
		}
		nd := s.next(device, old, nowMs)
		nd.Marks = append(nd.Marks, storage.OperatorMark{GroupID: groupID, AtMs: nowMs})
		m := storage.GroupMember{GroupID: groupID, Role: role, By: by, AtMs: nowMs}
		switch {
		case role == "":
			nd.Members = slices.Delete(nd.Members, i, i+1)
		case i >= 0:
			nd.Members[i] = m
		default:
			nd.Members = append(nd.Members, m)
		}
		return nd, nil
	}
}
