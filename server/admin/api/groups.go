package api

// Group is a device group (docs/groups.md).
type Group struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Policy is "operator" (only operators change members; the
	// default), "open" (any device may join) or "allowlist".
	Policy string `json:"policy"`
	// Allow is the allowlist: "device:GLOB" or "model:GLOB" entries.
	Allow []string `json:"allow,omitempty"`
	// Filter selects a "dynamic" group's members.
	Filter *GroupFilter `json:"filter,omitempty"`
	// Limit is the member limit; 0: none.
	Limit   int `json:"limit,omitempty"`
	Members int `json:"members"`
	// Online is how many members are online on this node.
	Online    int    `json:"online"`
	CreatedMs int64  `json:"created_ms"`
	CreatedBy string `json:"created_by,omitempty"`
}

// GroupCreate is the body of POST /v1/groups.
type GroupCreate struct {
	ID     string       `json:"id"`
	Name   string       `json:"name,omitempty"`
	Policy string       `json:"policy,omitempty"` // "" → "operator"
	Allow  []string     `json:"allow,omitempty"`
	Filter *GroupFilter `json:"filter,omitempty"` // with policy "dynamic"
	Limit  int          `json:"limit,omitempty"`
}

// GroupFilter is a dynamic group's saved filter: glob lists on what a
// device sent in HELLO; every list that is set must match.
type GroupFilter struct {
	Devices []string `json:"devices,omitempty"`
	Models  []string `json:"models,omitempty"`
	FW      []string `json:"fw,omitempty"`
}

// GroupList is GET /v1/groups.
type GroupList struct {
	Groups []Group `json:"groups"`
}

// GroupMember is one member of a group.
type GroupMember struct {
	DeviceID string `json:"device_id"`
	Role     string `json:"role"`
	// By is who made the membership: "device" or "operator:<token name>".
	By     string `json:"by"`
	AtMs   int64  `json:"at_ms"`
	Online bool   `json:"online"`
}

// GroupMembers is GET /v1/groups/{id}/members.
type GroupMembers struct {
	Group   string        `json:"group"`
	Members []GroupMember `json:"members"`
	// Next is the after= of the next page when limit= cut the list.
	Next string `json:"next,omitempty"`
}

// GroupMemberPut is the optional body of PUT
// /v1/groups/{id}/members/{device}.
type GroupMemberPut struct {
	Role string `json:"role,omitempty"` // "member" (default) or "moderator"
}

// DeviceGroups is a device's memberships after a change.
type DeviceGroups struct {
	DeviceID     string        `json:"device_id"`
	GroupVersion uint64        `json:"group_version"`
	Groups       []GroupMember `json:"groups"`
}

// GroupSend is the body of POST /v1/groups/{id}/send: text (UTF-8) or
// payload (base64 in JSON), at most 1024 bytes.
type GroupSend struct {
	Text    string `json:"text,omitempty"`
	Payload []byte `json:"payload,omitempty"`
}

// GroupSent answers GroupSend.
type GroupSent struct {
	Delivered int    `json:"delivered"`
	MsgID     uint64 `json:"msg_id"`
}

// GroupKey answers POST /v1/group-keys/rotate.
type GroupKey struct {
	KeyID uint32 `json:"key_id"`
}
