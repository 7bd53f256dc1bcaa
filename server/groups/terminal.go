package groups

import (
	"context"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/storage"
)

// serveAuth answers GROUP_AUTH: a grant for the device in the group, if
// the group's policy lets the device join by itself (spec §7).
func (s *Service) serveAuth(_ context.Context, req *server.Request) (protocol.Message, error) {
	m := req.Msg.(*protocol.GroupAuth)
	s.mu.RLock()
	g := s.groups[m.GroupID]
	if g == nil || g.def.ID == "" {
		s.mu.RUnlock()
		s.m.auth(resultOf(errUnknownGroup))
		return nil, errUnknownGroup
	}
	def := g.def
	role, member := g.members[req.DeviceID]
	n := len(g.members)
	s.mu.RUnlock()
	if !allows(&def, req.DeviceID, req.Model) {
		err := errOperatorOnly
		if def.Policy == storage.PolicyDynamic {
			err = errDynamic
		} else if def.Policy == storage.PolicyAllowlist {
			err = &protocol.Error{Code: protocol.Forbidden, Message: "the group's allowlist does not include this device"}
		}
		s.m.auth(resultOf(err))
		return nil, err
	}
	if !member {
		role = storage.RoleMember
	}
	now := s.nowMs()
	exp := now + s.ttlMs
	s.m.auth("ok")
	return &protocol.GroupAuthAck{
		Grant: s.keys.Issue(req.DeviceID, m.GroupID, role, now, exp), ExpiresMs: uint64(exp),
		Role: role, Name: def.Name, Members: uint64(n),
	}, nil
}

// serveChange answers GROUP_CHANGE: a repeat of a remembered request_id
// gets the first answer; otherwise the grant is verified and the change
// committed before the answer (spec §7).
func (s *Service) serveChange(ctx context.Context, req *server.Request) (protocol.Message, error) {
	ch := req.Msg.(*protocol.GroupChange)
	op := opName(ch.Op)
	ack, err := s.change(ctx, req.DeviceID, ch)
	s.m.change(op, resultOf(err))
	return ack, err
}

func (s *Service) change(ctx context.Context, device string, ch *protocol.GroupChange) (protocol.Message, error) {
	if ch.Op == protocol.GroupSwitch && ch.From == ch.To {
		return nil, &protocol.Error{Code: protocol.BadRequest, Message: "from and to are the same group"}
	}
	unlock := s.lockDevice(device)
	defer unlock()
	now := s.nowMs()
	if e, ok := s.idem.get(device, ch.RequestID, now); ok {
		if e.Op != ch.Op || e.From != ch.From || e.To != ch.To {
			return nil, &protocol.Error{Code: protocol.Conflict, Message: "request_id already used for another change"}
		}
		s.m.repeats.Inc()
		return &protocol.GroupChangeAck{GroupVersion: e.Version, Groups: membershipsOf(e.Members)}, nil
	}
	if retry := s.idem.full(device, now); retry > 0 {
		return nil, &protocol.Error{Code: protocol.RateLimited, Message: "too many group changes to remember", RetryAfterMs: uint64(retry)}
	}
	var g grant
	if ch.To != "" {
		var err error
		if g, err = s.keys.Verify(ch.Grant, device, ch.To, now); err != nil {
			return nil, err
		}
	}
	idem := &storage.GroupIdem{DeviceID: device, RequestID: ch.RequestID, Op: ch.Op, From: ch.From, To: ch.To, AtMs: now}
	d, err := s.commitDevice(ctx, device, s.terminalChange(device, ch, g, now), idem)
	if err != nil {
		return nil, err
	}
	if d == nil {
		d = &storage.DeviceGroups{}
	}
	// A no-op change (a join of a group the device is in) was not
	// committed; it is remembered in memory only, with the same answer.
	idem.Version, idem.Members = d.Version, d.Members
	s.idem.put(*idem)
	return &protocol.GroupChangeAck{GroupVersion: d.Version, Groups: memberships(d)}, nil
}

// serveList answers GROUP_LIST with the device's memberships.
func (s *Service) serveList(_ context.Context, req *server.Request) (protocol.Message, error) {
	unlock := s.lockDevice(req.DeviceID) // never a change that may still be undone
	defer unlock()
	s.mu.RLock()
	d := s.devs[req.DeviceID]
	ack := &protocol.GroupListAck{Groups: memberships(d)}
	if d != nil {
		ack.GroupVersion = d.Version
	}
	s.mu.RUnlock()
	return ack, nil
}

func membershipsOf(ms []storage.GroupMember) []protocol.Membership {
	return memberships(&storage.DeviceGroups{Members: ms})
}

func opName(op uint8) string {
	switch op {
	case protocol.GroupJoin:
		return "join"
	case protocol.GroupLeave:
		return "leave"
	default:
		return "switch"
	}
}

// resultOf is a refusal's metric label: the status name, "ok" for nil.
func resultOf(err error) string {
	if err == nil {
		return "ok"
	}
	return server.AsError(err).Code.String()
}
