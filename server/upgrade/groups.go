package upgrade

import (
	"slices"

	"github.com/termd/termd/server/admin/api"

	"github.com/termd/termd/storage"
)

// Group targeting (docs/groups.md): a release may target the members of
// operator-only groups. A group terminals can join by themselves (open or
// allowlist) is refused, or a terminal could grant itself a release.

// checkGroups validates a release's groups at creation.
func (s *Service) checkGroups(gs []string) error {
	if len(gs) == 0 {
		return nil
	}
	if s.groups == nil {
		return bad("group targeting needs device groups, which this node does not run")
	}
	for _, g := range gs {
		if err := checkWireID("group", g); err != nil {
			return err
		}
		switch {
		case !s.groups.Exists(g):
			return bad("unknown group %s", g)
		case s.groups.SelfJoinable(g):
			return bad("group %s can be joined by terminals themselves (open or allowlist policy); only operator-only groups may target releases", g)
		}
	}
	return nil
}

// GroupReferences names the releases (not archived or cancelled) that
// target group, for the groups feature's delete check.
func (s *Service) GroupReferences(group string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for id, r := range s.rels {
		if r.State == storage.ReleaseArchived || r.CancelledMs != 0 {
			continue
		}
		if slices.Contains(r.Groups, group) || slices.ContainsFunc(r.Phases, func(p storage.Phase) bool { return p.Group == group }) {
			out = append(out, "release "+id)
		}
	}
	slices.Sort(out)
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// phaseGroups are the groups a release's phases name.
func phaseGroups(ps []api.Phase) []string {
	var out []string
	for _, p := range ps {
		if p.Group != "" {
			out = append(out, p.Group)
		}
	}
	return out
}
