package groups

import (
	"context"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/storage"
)

// startSend serves GROUP_SEND: the sender must be a member, groups above
// the size limit take messages from moderators (and operators) only, and
// each sender has a budget; the message goes to the group's other online
// members and the answer counts those it was written to (spec §7).
func (s *Service) startSend(req *server.Request, reply func(protocol.Message, error)) {
	m := req.Msg.(*protocol.GroupSend)
	s.mu.RLock()
	g := s.groups[m.GroupID]
	if g == nil || g.def.ID == "" {
		s.mu.RUnlock()
		s.m.send("NOT_FOUND")
		reply(nil, errUnknownGroup)
		return
	}
	role, member := g.members[req.DeviceID]
	size := len(g.members)
	s.mu.RUnlock()
	switch {
	case !member:
		s.m.send("FORBIDDEN")
		reply(nil, &protocol.Error{Code: protocol.Forbidden, Message: "not a member of the group"})
		return
	case size > s.opt.SendSizeLimit && role != storage.RoleModerator:
		s.m.send("FORBIDDEN")
		reply(nil, &protocol.Error{Code: protocol.Forbidden, Message: "group too large: only moderators and operators send to it"})
		return
	}
	if ok, retry := s.budget.take(req.DeviceID, s.now()); !ok {
		s.m.send("RATE_LIMITED")
		reply(nil, &protocol.Error{Code: protocol.RateLimited, Message: "group message budget spent", RetryAfterMs: uint64(max(1, retry.Milliseconds()))})
		return
	}
	err := s.fanout(g, req.DeviceID, m.Payload, func(n int) {
		s.m.send("ok")
		reply(&protocol.GroupSendAck{Delivered: uint64(n)}, nil)
	})
	if err != nil {
		s.m.send("INTERNAL")
		reply(nil, err)
	}
}

// fanout sends payload to g's online members except from, once each;
// done gets the number of connections it was written to.
func (s *Service) fanout(g *group, from string, payload []byte, done func(int)) error {
	if s.srv == nil {
		done(0)
		return nil
	}
	var ids []string
	if isDynamic(g) {
		ids = s.dynamicMembers(g)
	} else {
		s.mu.RLock()
		ids = make([]string, 0, len(g.members))
		for id := range g.members {
			if id != from {
				ids = append(ids, id)
			}
		}
		s.mu.RUnlock()
	}
	msg := &protocol.GroupMessage{GroupID: g.def.ID, From: from, MsgID: g.msgID.Add(1), Payload: payload}
	start := time.Now()
	return s.srv.Fanout(ids, msg, func(n int) {
		s.m.fanoutSize.Update(float64(n))
		s.m.fanoutDuration.UpdateDuration(start)
		s.m.delivered.Add(n)
		done(n)
	})
}

// Send is an operator's message to the group's online members (from ""):
// no budget and no size rule. It returns the delivered count and msg_id.
func (s *Service) Send(ctx context.Context, id string, payload []byte) (delivered int, msgID uint64, err error) {
	if len(payload) > protocol.MaxPayload {
		return 0, 0, &protocol.Error{Code: protocol.BadRequest, Message: "payload longer than 1024 bytes"}
	}
	s.mu.RLock()
	g := s.groups[id]
	s.mu.RUnlock()
	if g == nil || g.def.ID == "" {
		return 0, 0, errUnknownGroup
	}
	ch := make(chan int, 1)
	if err := s.fanout(g, "", payload, func(n int) { ch <- n }); err != nil {
		return 0, 0, err
	}
	select {
	case n := <-ch:
		s.m.send("operator")
		return n, g.msgID.Load(), nil
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
}
