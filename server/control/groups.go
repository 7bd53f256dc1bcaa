package control

import (
	"errors"
	"fmt"
	"slices"

	"github.com/termd/termd/server/config"
)

// checkACLGroups refuses ACL rules naming groups that do not exist or
// that terminals can join by themselves (open or allowlist): such a rule
// would let a terminal grant itself the right (docs/groups.md).
func checkACLGroups(s config.Service, dir GroupDirectory) error {
	for j, r := range s.ACL {
		for _, g := range r.Groups {
			switch {
			case dir == nil:
				return errors.New("acl names groups but device groups are not running")
			case !dir.Exists(g):
				return fmt.Errorf("acl[%d]: unknown group %q (create it first: termctl group create)", j, g)
			case dir.SelfJoinable(g):
				return fmt.Errorf("acl[%d]: group %q can be joined by terminals themselves (open or allowlist policy); only operator-only groups may grant rights", j, g)
			}
		}
	}
	return nil
}

// GroupReferences names the services whose ACL names group, for the
// groups feature's delete check.
func (c *Controller) GroupReferences(group string) []string {
	var out []string
	for _, id := range c.ids {
		for _, r := range c.pols[id].acl {
			if slices.Contains(r.Groups, group) {
				out = append(out, "service "+id+" acl")
				break
			}
		}
	}
	return out
}
