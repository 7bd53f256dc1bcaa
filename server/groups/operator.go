package groups

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// The operators' side (admin API, termctl group ...). by names the
// operator ("operator:<token name>") in the memberships they make.

// Create stores a new group (CONFLICT if the id exists).
func (s *Service) Create(ctx context.Context, in api.GroupCreate, by string) (api.Group, error) {
	g := storage.Group{ID: in.ID, Name: in.Name, Policy: in.Policy, Allow: in.Allow, Limit: in.Limit, CreatedMs: s.nowMs(), CreatedBy: by}
	if f := in.Filter; f != nil {
		g.Filter = &storage.GroupFilter{Devices: f.Devices, Models: f.Models, FW: f.FW}
	}
	if g.Policy == "" {
		g.Policy = storage.PolicyOperator
	}
	if err := storage.CheckGroup(g); err != nil {
		return api.Group{}, &protocol.Error{Code: protocol.BadRequest, Message: strings.TrimPrefix(err.Error(), "storage: invalid argument: ")}
	}
	s.mu.Lock()
	if s.groups[g.ID] != nil {
		s.mu.Unlock()
		return api.Group{}, &protocol.Error{Code: protocol.Conflict, Message: "group " + g.ID + " exists"}
	}
	// Reserved while it is committed: a concurrent create of the same id
	// is refused, and the group takes no members before it is durable
	// (GROUP_AUTH does not know it: def.ID is "" until then).
	gr := &group{members: map[string]string{}}
	gr.msgID.Store(uint64(g.CreatedMs) << 10)
	s.groups[g.ID] = gr
	s.mu.Unlock()
	if err := s.store.ApplyGroups(ctx, storage.GroupWrite{PutGroups: []storage.Group{g}}); err != nil {
		s.mu.Lock()
		delete(s.groups, g.ID)
		s.mu.Unlock()
		return api.Group{}, err
	}
	s.mu.Lock()
	gr.def = g
	s.mu.Unlock()
	s.log.Info("group created", "group", g.ID, "policy", g.Policy, "by", by)
	return s.Group(g.ID)
}

// groupView is g as operators see it. Caller holds s.mu (read).
func (s *Service) groupView(g *group) api.Group {
	v := api.Group{ID: g.def.ID, Name: g.def.Name, Policy: g.def.Policy, Allow: g.def.Allow, Limit: g.def.Limit,
		Members: len(g.members), CreatedMs: g.def.CreatedMs, CreatedBy: g.def.CreatedBy}
	if f := g.def.Filter; f != nil {
		v.Filter = &api.GroupFilter{Devices: f.Devices, Models: f.Models, FW: f.FW}
	}
	if isDynamic(g) {
		v.Members = len(s.dynamicMembers(g))
		v.Online = v.Members
		return v
	}
	if s.srv != nil {
		for id := range g.members {
			if s.srv.Presence.Get(id) != nil {
				v.Online++
			}
		}
	}
	return v
}

// Group returns one group.
func (s *Service) Group(id string) (api.Group, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[id]
	if g == nil || g.def.ID == "" {
		return api.Group{}, errUnknownGroup
	}
	return s.groupView(g), nil
}

// Groups lists every group in id order.
func (s *Service) Groups() []api.Group {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []api.Group{}
	for _, g := range s.groups {
		if g.def.ID != "" {
			out = append(out, s.groupView(g))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Members lists a group's members in device id order: those after
// after, at most limit of them (0: all), and the id to ask after next
// ("" at the end).
func (s *Service) Members(id, after string, limit int) (api.GroupMembers, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[id]
	if g == nil || g.def.ID == "" {
		return api.GroupMembers{}, errUnknownGroup
	}
	var ids []string
	if isDynamic(g) {
		ids = s.dynamicMembers(g)
	} else {
		ids = make([]string, 0, len(g.members))
		for dev := range g.members {
			ids = append(ids, dev)
		}
	}
	if after != "" {
		ids = slices.DeleteFunc(ids, func(dev string) bool { return dev <= after })
	}
	slices.Sort(ids)
	out := api.GroupMembers{Group: id}
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
		out.Next = ids[limit-1]
	}
	out.Members = make([]api.GroupMember, 0, len(ids))
	for _, dev := range ids {
		if isDynamic(g) {
			out.Members = append(out.Members, api.GroupMember{DeviceID: dev, Role: storage.RoleMember, By: "filter", Online: true})
			continue
		}
		d := s.devs[dev]
		if i := memberIndex(d, id); i >= 0 {
			m := d.Members[i]
			out.Members = append(out.Members, api.GroupMember{DeviceID: dev, Role: m.Role, By: m.By, AtMs: m.AtMs,
				Online: s.srv != nil && s.srv.Presence.Get(dev) != nil})
		}
	}
	return out, nil
}

// MemberIDs returns the group's members now (for selectors).
func (s *Service) MemberIDs(id string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[id]
	if g == nil {
		return nil
	}
	if isDynamic(g) {
		out := s.dynamicMembers(g)
		sort.Strings(out)
		return out
	}
	out := make([]string, 0, len(g.members))
	for dev := range g.members {
		out = append(out, dev)
	}
	sort.Strings(out)
	return out
}

// DeviceGroups returns a device's memberships and group_version.
func (s *Service) DeviceGroups(device string) api.DeviceGroups {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return deviceView(device, s.devs[device])
}

func deviceView(device string, d *storage.DeviceGroups) api.DeviceGroups {
	out := api.DeviceGroups{DeviceID: device, Groups: []api.GroupMember{}}
	if d == nil {
		return out
	}
	out.GroupVersion = d.Version
	for _, m := range d.Members {
		out.Groups = append(out.Groups, api.GroupMember{DeviceID: m.GroupID, Role: m.Role, By: m.By, AtMs: m.AtMs})
	}
	return out
}

// Add makes device a member of the group with role ("" → member), or
// changes its role; the device is sent GROUP_SYNC if online.
func (s *Service) Add(ctx context.Context, id, device, role, by string) (api.DeviceGroups, error) {
	if role == "" {
		role = storage.RoleMember
	}
	if role != storage.RoleMember && role != storage.RoleModerator {
		return api.DeviceGroups{}, &protocol.Error{Code: protocol.BadRequest, Message: "role must be member or moderator"}
	}
	return s.operatorOp(ctx, "add", id, device, role, by)
}

// Remove takes device out of the group; removing a non-member changes
// nothing.
func (s *Service) Remove(ctx context.Context, id, device, by string) (api.DeviceGroups, error) {
	return s.operatorOp(ctx, "remove", id, device, "", by)
}

func (s *Service) operatorOp(ctx context.Context, op, id, device, role, by string) (api.DeviceGroups, error) {
	if device == "" || len(device) > storage.MaxIDLen {
		return api.DeviceGroups{}, &protocol.Error{Code: protocol.BadRequest, Message: "device id must be 1..64 bytes"}
	}
	if !s.Exists(id) {
		return api.DeviceGroups{}, errUnknownGroup
	}
	unlock := s.lockDevice(device)
	old := s.DeviceGroups(device).GroupVersion
	d, err := s.commitDevice(ctx, device, s.operatorChange(device, id, role, by, s.nowMs()), nil)
	unlock()
	s.m.change("operator_"+op, resultOf(err))
	if err != nil {
		return api.DeviceGroups{}, err
	}
	if d != nil && d.Version != old {
		s.syncer.add(device)
		s.log.Info("group membership changed", "op", op, "group", id, "device", device, "role", role, "by", by)
	}
	return deviceView(device, d), nil
}

// Delete removes the group and its memberships (each member's
// group_version increases and it is sent GROUP_SYNC). A group that a
// selector still refers to is refused with CONFLICT naming them.
func (s *Service) Delete(ctx context.Context, id, by string) error {
	// The references are asked outside s.mu: the features that hold
	// them ask this service (IsMember) under their own locks.
	s.mu.RLock()
	refsOf := s.refs
	s.mu.RUnlock()
	if refsOf != nil {
		if refs := refsOf(id); len(refs) > 0 {
			return &protocol.Error{Code: protocol.Conflict, Message: trimMsg(fmt.Sprintf("group %s is referenced by %s", id, strings.Join(refs, ", ")))}
		}
	}
	s.mu.Lock()
	g := s.groups[id]
	if g == nil || g.def.ID == "" {
		s.mu.Unlock()
		return errUnknownGroup
	}
	// Closed to terminals' joins from now on.
	def := g.def
	g.def.Policy = storage.PolicyOperator
	members := make([]string, 0, len(g.members))
	for dev := range g.members {
		members = append(members, dev)
	}
	s.mu.Unlock()
	sort.Strings(members)
	now := s.nowMs()
	for _, dev := range members {
		unlock := s.lockDevice(dev)
		_, err := s.commitDevice(ctx, dev, s.operatorChange(dev, id, "", by, now), nil)
		unlock()
		if err != nil {
			s.mu.Lock()
			g.def = def
			s.mu.Unlock()
			return fmt.Errorf("remove %s from %s: %w", dev, id, err)
		}
	}
	if err := s.store.ApplyGroups(ctx, storage.GroupWrite{DeleteGroups: []string{id}}); err != nil {
		s.mu.Lock()
		g.def = def
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	delete(s.groups, id)
	s.mu.Unlock()
	s.syncer.add(members...)
	s.log.Info("group deleted", "group", id, "members", len(members), "by", by)
	return nil
}

func trimMsg(m string) string {
	if len(m) > protocol.MaxMessage {
		return m[:protocol.MaxMessage-3] + "..."
	}
	return m
}
