package server

import (
	"context"

	"github.com/termd/termd/protocol"
)

// registerDefaultRoutes installs what a node with nothing configured for a
// feature answers: they are the correct answers for an empty service list,
// release catalogue, campaign set and group directory (spec §5–§7), and
// each feature replaces its routes when it is installed (termd always
// installs service control, upgrades and groups; embedders and tests
// that leave one out keep these answers). Every request is still
// decoded and checked on the loop and answered from a worker, the path
// real handlers take.
func (s *Server) registerDefaultRoutes() {
	refuse := func(code protocol.Code, msg string) func(context.Context, *Request) (protocol.Message, error) {
		return func(context.Context, *Request) (protocol.Message, error) {
			return nil, &protocol.Error{Code: code, Message: msg}
		}
	}
	s.Handle(protocol.TypeControl, &Route{
		New:   func() protocol.Message { return &protocol.Control{} },
		Serve: refuse(protocol.NotFound, "unknown service"),
	})
	s.Handle(protocol.TypeUpgradeQuery, &Route{
		New: func() protocol.Message { return &protocol.UpgradeQuery{} },
		Serve: func(context.Context, *Request) (protocol.Message, error) {
			return &protocol.UpgradeQueryAck{}, nil // no offer, no failure, no campaign
		},
	})
	s.Handle(protocol.TypeUpgradeReport, &Route{
		New:   func() protocol.Message { return &protocol.UpgradeReport{} },
		Serve: refuse(protocol.NotFound, "unknown release"),
	})
	s.Handle(protocol.TypeScheduleReq, &Route{
		New:   func() protocol.Message { return &protocol.ScheduleRequest{} },
		Serve: refuse(protocol.NotFound, "device is not in the campaign"),
	})
	s.Handle(protocol.TypeUpgradeCheck, &Route{
		New:   func() protocol.Message { return &protocol.UpgradeCheck{} },
		Serve: refuse(protocol.NotFound, "unknown reservation"),
	})
	s.Handle(protocol.TypeGroupAuth, &Route{
		New:   func() protocol.Message { return &protocol.GroupAuth{} },
		Serve: refuse(protocol.NotFound, "unknown group"),
	})
	s.Handle(protocol.TypeGroupChange, &Route{
		New: func() protocol.Message { return &protocol.GroupChange{} },
		Serve: func(_ context.Context, req *Request) (protocol.Message, error) {
			if req.Msg.(*protocol.GroupChange).Op == protocol.GroupLeave {
				return nil, &protocol.Error{Code: protocol.Conflict, Message: "not a member"}
			}
			// No group exists, so no grant can be valid.
			return nil, &protocol.Error{Code: protocol.Unauthenticated, Message: "grant not valid"}
		},
	})
	s.Handle(protocol.TypeGroupList, &Route{
		New: func() protocol.Message { return &protocol.GroupList{} },
		Serve: func(context.Context, *Request) (protocol.Message, error) {
			return &protocol.GroupListAck{Groups: []protocol.Membership{}}, nil
		},
	})
	s.Handle(protocol.TypeGroupSend, &Route{
		New:   func() protocol.Message { return &protocol.GroupSend{} },
		Serve: refuse(protocol.NotFound, "unknown group"),
	})
}
