package storage

// This file is the groups store's contract (issue 14, spec §7): the
// types, the interface Badger and Memory implement, and the checks they
// share. The groups feature (server/groups) keeps the whole directory in
// memory and decides every change there; the store only makes its
// decisions durable, each write batch in one transaction, and gives them
// back at start.
//
// Badger key layout:
//
//	gg/ group_id                → groupsV1 byte + JSON of the Group
//	gd/ device_id               → groupsV1 byte + JSON of the DeviceGroups
//	gi/ device_id NUL request_id (u64 big-endian) → groupsV1 byte + JSON of the GroupIdem

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Group limits.
const (
	// MaxGroupID bounds a group id (bytes, spec §1).
	MaxGroupID = 64
	// MaxGroupName bounds a group's display name (bytes, spec §1).
	MaxGroupName = 64
	// MaxGroupRole bounds a role (bytes, spec §1).
	MaxGroupRole = 16
	// MaxMemberships is how many groups one device may be in (spec §1).
	MaxMemberships = 32
	// MaxAllowRules bounds a group's allowlist entries.
	MaxAllowRules = 256
	// MaxGroupBatch bounds the devices of one ApplyGroups call, so a
	// batch stays inside one Badger transaction.
	MaxGroupBatch = 1000
)

// Group policies.
const (
	// PolicyOperator: only operators change the members (the default).
	PolicyOperator = "operator"
	// PolicyOpen: any device may join by itself.
	PolicyOpen = "open"
	// PolicyAllowlist: devices matching Allow may join by themselves.
	PolicyAllowlist = "allowlist"
	// PolicyDynamic: the members are the online devices matching Filter,
	// evaluated by the server; nobody joins or leaves.
	PolicyDynamic = "dynamic"
)

// GroupFilter is a dynamic group's saved filter: every list that is set
// must match (path.Match globs), on what the device sent in HELLO.
type GroupFilter struct {
	Devices []string `json:"devices,omitempty"`
	Models  []string `json:"models,omitempty"`
	FW      []string `json:"fw,omitempty"`
}

func (f *GroupFilter) empty() bool {
	return f == nil || len(f.Devices)+len(f.Models)+len(f.FW) == 0
}

// Roles.
const (
	RoleMember    = "member"
	RoleModerator = "moderator"
)

// Group is one group's definition.
type Group struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Policy is PolicyOperator, PolicyOpen or PolicyAllowlist.
	Policy string `json:"policy"`
	// Allow lists, for PolicyAllowlist, who may join: "device:GLOB"
	// (a path.Match pattern on the device id) or "model:GLOB".
	Allow []string `json:"allow,omitempty"`
	// Filter selects a dynamic group's members.
	Filter *GroupFilter `json:"filter,omitempty"`
	// Limit is the member limit; 0: none.
	Limit     int    `json:"limit,omitempty"`
	CreatedMs int64  `json:"created_ms"`
	CreatedBy string `json:"created_by,omitempty"`
}

// GroupMember is one membership of a device.
type GroupMember struct {
	GroupID string `json:"group"`
	Role    string `json:"role"`
	// By is who made it: "device" or "operator:<token name>".
	By   string `json:"by"`
	AtMs int64  `json:"at_ms"`
}

// OperatorMark records when an operator last changed a device's
// membership of a group: grants issued before it are refused (spec §7).
type OperatorMark struct {
	GroupID string `json:"group"`
	AtMs    int64  `json:"at_ms"`
}

// DeviceGroups is a device's memberships and group_version. The record
// stays when the last membership goes, so the version never goes back.
type DeviceGroups struct {
	DeviceID string        `json:"device"`
	Version  uint64        `json:"version"`
	Members  []GroupMember `json:"members,omitempty"`
	// Marks are the operator changes younger than the longest grant life.
	Marks []OperatorMark `json:"marks,omitempty"`
}

// GroupIdem is a remembered GROUP_CHANGE answer (spec §7: request_id
// idempotency for 10 minutes, keyed by device and request_id).
type GroupIdem struct {
	DeviceID  string `json:"device"`
	RequestID uint64 `json:"rid"`
	Op        uint8  `json:"op"`
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	AtMs      int64  `json:"at_ms"`
	// The answer: the version and memberships after the change.
	Version uint64        `json:"version"`
	Members []GroupMember `json:"members,omitempty"`
}

// GroupWrite is one transaction of the groups store.
type GroupWrite struct {
	PutGroups    []Group
	DeleteGroups []string
	// Devices replace the devices' records.
	Devices []DeviceGroups
	Idem    []GroupIdem
}

// Groups is the groups store.
type Groups interface {
	// ApplyGroups commits w in one transaction, durable before return.
	ApplyGroups(ctx context.Context, w GroupWrite) error
	// LoadGroups returns every group (id order) and every device record.
	LoadGroups(ctx context.Context) ([]Group, []DeviceGroups, error)
	// LoadGroupIdem returns the remembered answers at or after sinceMs.
	LoadGroupIdem(ctx context.Context, sinceMs int64) ([]GroupIdem, error)
	// PruneGroupIdem deletes the answers older than beforeMs and
	// returns how many it deleted.
	PruneGroupIdem(ctx context.Context, beforeMs int64) (int, error)
}

const groupsV1 = 1

// CheckGroup reports why g cannot be stored (ErrInvalid), or nil.
func CheckGroup(g Group) error {
	switch {
	case g.ID == "" || len(g.ID) > MaxGroupID:
		return fmt.Errorf("%w: group id must be 1..%d bytes", ErrInvalid, MaxGroupID)
	case strings.ContainsRune(g.ID, 0):
		return fmt.Errorf("%w: group id contains NUL", ErrInvalid)
	case len(g.Name) > MaxGroupName:
		return fmt.Errorf("%w: name longer than %d bytes", ErrInvalid, MaxGroupName)
	case g.Policy != PolicyOperator && g.Policy != PolicyOpen && g.Policy != PolicyAllowlist && g.Policy != PolicyDynamic:
		return fmt.Errorf("%w: policy %q (want operator, open, allowlist or dynamic)", ErrInvalid, g.Policy)
	case g.Policy == PolicyDynamic && (g.Filter.empty() || g.Limit != 0):
		return fmt.Errorf("%w: a dynamic group needs a filter and takes no limit", ErrInvalid)
	case g.Policy != PolicyDynamic && g.Filter != nil:
		return fmt.Errorf("%w: filter is only for the dynamic policy", ErrInvalid)
	case g.Limit < 0:
		return fmt.Errorf("%w: negative member limit", ErrInvalid)
	case len(g.Allow) > MaxAllowRules:
		return fmt.Errorf("%w: more than %d allowlist entries", ErrInvalid, MaxAllowRules)
	case g.Policy != PolicyAllowlist && len(g.Allow) > 0:
		return fmt.Errorf("%w: allow is only for the allowlist policy", ErrInvalid)
	}
	for _, a := range g.Allow {
		if !strings.HasPrefix(a, "device:") && !strings.HasPrefix(a, "model:") {
			return fmt.Errorf("%w: allow entry %q (want device:GLOB or model:GLOB)", ErrInvalid, a)
		}
	}
	if f := g.Filter; f != nil {
		if len(f.Devices)+len(f.Models)+len(f.FW) > MaxAllowRules {
			return fmt.Errorf("%w: more than %d filter patterns", ErrInvalid, MaxAllowRules)
		}
		for _, p := range append(append(slices.Clone(f.Devices), f.Models...), f.FW...) {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				return fmt.Errorf("%w: bad filter pattern %q", ErrInvalid, p)
			}
		}
	}
	return nil
}

func checkGroupWrite(w GroupWrite) error {
	if len(w.Devices)+len(w.Idem) > 2*MaxGroupBatch {
		return fmt.Errorf("%w: %d records in one group write", ErrInvalid, len(w.Devices)+len(w.Idem))
	}
	for _, g := range w.PutGroups {
		if err := CheckGroup(g); err != nil {
			return err
		}
	}
	for _, d := range w.Devices {
		if err := checkID(d.DeviceID); err != nil {
			return err
		}
		if len(d.Members) > MaxMemberships {
			return fmt.Errorf("%w: %d memberships (max %d)", ErrInvalid, len(d.Members), MaxMemberships)
		}
	}
	for _, e := range w.Idem {
		if err := checkID(e.DeviceID); err != nil {
			return err
		}
	}
	return nil
}

func encodeGroupValue(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{groupsV1}, j...), nil
}

func decodeGroupValue(b []byte, into any) error {
	if len(b) == 0 || b[0] != groupsV1 {
		return fmt.Errorf("%w: group value without version byte", ErrCorrupt)
	}
	if err := json.Unmarshal(b[1:], into); err != nil {
		return fmt.Errorf("%w: group value: %v", ErrCorrupt, err)
	}
	return nil
}

func cloneDeviceGroups(d DeviceGroups) DeviceGroups {
	d.Members = append([]GroupMember(nil), d.Members...)
	d.Marks = append([]OperatorMark(nil), d.Marks...)
	return d
}
