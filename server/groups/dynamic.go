package groups

import (
	"path"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/storage"
)

// Dynamic groups: a saved filter on what devices sent in HELLO (device
// id, model, fw), evaluated by the server against the online sessions
// whenever it is asked (a selector, a listing, an operator's message).
// They are never memberships: no group_version change, no GROUP_SYNC, no
// 32-membership cap, and terminals cannot join, leave or send to them.

var errDynamic = &protocol.Error{Code: protocol.Forbidden, Message: "a dynamic group's members are the devices matching its filter"}

func isDynamic(g *group) bool { return g.def.Policy == storage.PolicyDynamic }

// matchList: an empty list matches anything, else one glob must match.
func matchList(globs []string, v string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, p := range globs {
		if ok, _ := path.Match(p, v); ok {
			return true
		}
	}
	return false
}

// matches reports whether the online session e matches g's filter.
func matches(g *group, e *presence.Entry) bool {
	f := g.def.Filter
	return f != nil && e != nil && matchList(f.Devices, e.DeviceID) && matchList(f.Models, e.Model) && matchList(f.FW, e.FW)
}

// dynamicMembers returns the online devices matching g's filter.
func (s *Service) dynamicMembers(g *group) []string {
	var out []string
	if s.srv == nil {
		return out
	}
	s.srv.Presence.Each(func(e *presence.Entry) bool {
		if matches(g, e) {
			out = append(out, e.DeviceID)
		}
		return true
	})
	return out
}
