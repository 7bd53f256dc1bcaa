package protocol

// GroupAuth is GROUP_AUTH 0x08: ask for a grant to join group_id
// (spec §7).
type GroupAuth struct{ GroupID string }

// Type implements Message.
func (m *GroupAuth) Type() byte { return TypeGroupAuth }

// Encode implements Message.
func (m *GroupAuth) Encode(w *Writer) {
	w.Array(1)
	w.Str(m.GroupID)
}

// Decode implements Message.
func (m *GroupAuth) Decode(r *Reader) error {
	*m = GroupAuth{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 1 {
		return Missing("group_id")
	}
	if m.GroupID, err = r.Str(MaxID, "group_id"); err != nil {
		return err
	}
	return r.SkipRest(1, n)
}

// GroupAuthAck is GROUP_AUTH_ACK 0x88: a grant the device presents in
// GROUP_CHANGE, valid at most 300 s.
type GroupAuthAck struct {
	Grant     []byte // ≤ MaxGrant bytes, opaque to the terminal
	ExpiresMs uint64 // unix ms
	Role      string
	Name      string // the group's display name
	Members   uint64
}

// Type implements Message.
func (m *GroupAuthAck) Type() byte { return Response(TypeGroupAuth) }

// Encode implements Message.
func (m *GroupAuthAck) Encode(w *Writer) {
	w.Array(6)
	w.Uint(0)
	w.Bin(m.Grant)
	w.Uint(m.ExpiresMs)
	w.Str(m.Role)
	w.Str(m.Name)
	w.Uint(m.Members)
}

// Decode implements Message.
func (m *GroupAuthAck) Decode(r *Reader) error {
	*m = GroupAuthAck{}
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	if n < 6 {
		return Missing("group_auth_ack fields")
	}
	if m.Grant, err = r.binOwn(MaxGrant, "grant"); err != nil {
		return err
	}
	if m.ExpiresMs, err = r.Uint("expires_ms"); err != nil {
		return err
	}
	if m.Role, err = r.Str(MaxRole, "role"); err != nil {
		return err
	}
	if m.Name, err = r.Str(MaxName, "name"); err != nil {
		return err
	}
	if m.Members, err = r.Uint("members"); err != nil {
		return err
	}
	return r.SkipRest(6, n)
}

// GROUP_CHANGE ops (spec §7).
const (
	GroupJoin   uint8 = 1 // to, grant
	GroupLeave  uint8 = 2 // from
	GroupSwitch uint8 = 3 // from, to, grant
)

// GroupChange is GROUP_CHANGE 0x09: join, leave or atomically switch
// groups. Fields the op does not use are "" / nil (nil on the wire), and
// a decoded change that sets one is refused, so two requests with the
// same op, from and to are the same request (idempotency, spec §7).
type GroupChange struct {
	RequestID uint64
	Op        uint8 // GroupJoin, GroupLeave or GroupSwitch
	From      string
	To        string
	Grant     []byte // ≤ MaxGrant bytes, from GROUP_AUTH_ACK
}

// Type implements Message.
func (m *GroupChange) Type() byte { return TypeGroupChange }

// Encode implements Message.
func (m *GroupChange) Encode(w *Writer) {
	w.Array(5)
	w.Uint(m.RequestID)
	w.Uint(uint64(m.Op))
	w.optStr(m.From)
	w.optStr(m.To)
	w.optBin(m.Grant)
}

// Decode implements Message.
func (m *GroupChange) Decode(r *Reader) error {
	*m = GroupChange{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 5 {
		return Missing("group_change fields")
	}
	if m.RequestID, err = r.Uint("request_id"); err != nil {
		return err
	}
	if m.Op, err = r.enum(GroupJoin, GroupSwitch, "op"); err != nil {
		return err
	}
	if m.From, err = r.OptStr(MaxID, "from"); err != nil {
		return err
	}
	if m.To, err = r.OptStr(MaxID, "to"); err != nil {
		return err
	}
	if !r.Nil() {
		if m.Grant, err = r.binOwn(MaxGrant, "grant"); err != nil {
			return err
		}
	}
	// Which of from, to and grant each op needs.
	needFrom := m.Op != GroupJoin
	needTo := m.Op != GroupLeave
	switch {
	case needFrom && m.From == "":
		return Missing("from")
	case needTo && m.To == "":
		return Missing("to")
	case needTo && len(m.Grant) == 0:
		return Missing("grant")
	case !needFrom && m.From != "":
		return bad("from: not used by join")
	case !needTo && (m.To != "" || len(m.Grant) != 0):
		return bad("to, grant: not used by leave")
	}
	return r.SkipRest(5, n)
}

// Membership is one of a device's groups and its role there.
type Membership struct {
	GroupID string
	Role    string
}

const membershipFields = 2

// encodeGroups writes group_version and the groups array.
func encodeGroups(w *Writer, version uint64, groups []Membership) {
	w.Uint(version)
	w.Array(len(groups))
	for _, g := range groups {
		w.Array(membershipFields)
		w.Str(g.GroupID)
		w.Str(g.Role)
	}
}

// decodeGroups reads group_version and the groups array (≤ MaxGroups
// entries, nil when empty).
func (r *Reader) decodeGroups(version *uint64, groups *[]Membership) error {
	var err error
	if *version, err = r.Uint("group_version"); err != nil {
		return err
	}
	k, err := r.list(MaxGroups, "groups")
	if err != nil || k == 0 {
		return err
	}
	gs := make([]Membership, k)
	for i := range gs {
		n, err := r.list(r.Left(), "membership")
		if err != nil {
			return err
		}
		if n < membershipFields {
			return Missing("membership fields")
		}
		if gs[i].GroupID, err = r.Str(MaxID, "membership group_id"); err != nil {
			return err
		}
		if gs[i].Role, err = r.Str(MaxRole, "membership role"); err != nil {
			return err
		}
		// A membership's elements sit at level 4: body, groups, membership.
		if err = r.skipFields(membershipFields, n, 4); err != nil {
			return err
		}
	}
	*groups = gs
	return nil
}

// GroupChangeAck is GROUP_CHANGE_ACK 0x89: the device's memberships after
// the change.
type GroupChangeAck struct {
	// GroupVersion increases with every change of the device's memberships.
	GroupVersion uint64
	Groups       []Membership // ≤ MaxGroups, nil when none
}

// Type implements Message.
func (m *GroupChangeAck) Type() byte { return Response(TypeGroupChange) }

// Encode implements Message.
func (m *GroupChangeAck) Encode(w *Writer) {
	w.Array(3)
	w.Uint(0)
	encodeGroups(w, m.GroupVersion, m.Groups)
}

// Decode implements Message.
func (m *GroupChangeAck) Decode(r *Reader) error {
	*m = GroupChangeAck{}
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	if n < 3 {
		return Missing("group_change_ack fields")
	}
	if err = r.decodeGroups(&m.GroupVersion, &m.Groups); err != nil {
		return err
	}
	return r.SkipRest(3, n)
}

// GroupList is GROUP_LIST 0x0A: [], ask for the device's memberships.
type GroupList struct{}

// Type implements Message.
func (m *GroupList) Type() byte { return TypeGroupList }

// Encode implements Message.
func (m *GroupList) Encode(w *Writer) { w.Array(0) }

// Decode implements Message.
func (m *GroupList) Decode(r *Reader) error {
	n, err := r.Array()
	if err != nil {
		return err
	}
	return r.SkipRest(0, n)
}

// GroupListAck is GROUP_LIST_ACK 0x8A.
type GroupListAck struct {
	GroupVersion uint64
	Groups       []Membership // ≤ MaxGroups, nil when none
}

// Type implements Message.
func (m *GroupListAck) Type() byte { return Response(TypeGroupList) }

// Encode implements Message.
func (m *GroupListAck) Encode(w *Writer) {
	w.Array(3)
	w.Uint(0)
	encodeGroups(w, m.GroupVersion, m.Groups)
}

// Decode implements Message.
func (m *GroupListAck) Decode(r *Reader) error {
	*m = GroupListAck{}
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	if n < 3 {
		return Missing("group_list_ack fields")
	}
	if err = r.decodeGroups(&m.GroupVersion, &m.Groups); err != nil {
		return err
	}
	return r.SkipRest(3, n)
}

// GroupSync is the GROUP_SYNC push 0x42, sent when an operator changes the
// device's memberships. The terminal acks it with
// Ack{AckType: Response(TypeGroupSync)}.
type GroupSync struct {
	GroupVersion uint64
	Groups       []Membership // ≤ MaxGroups, nil when none
}

// Type implements Message.
func (m *GroupSync) Type() byte { return TypeGroupSync }

// Encode implements Message.
func (m *GroupSync) Encode(w *Writer) {
	w.Array(2)
	encodeGroups(w, m.GroupVersion, m.Groups)
}

// Decode implements Message.
func (m *GroupSync) Decode(r *Reader) error {
	*m = GroupSync{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 2 {
		return Missing("group_sync fields")
	}
	if err = r.decodeGroups(&m.GroupVersion, &m.Groups); err != nil {
		return err
	}
	return r.SkipRest(2, n)
}

// GroupSend is GROUP_SEND 0x0B: send payload to the group's other online
// members.
type GroupSend struct {
	GroupID string
	Payload []byte // ≤ MaxPayload bytes, nil when empty
}

// Type implements Message.
func (m *GroupSend) Type() byte { return TypeGroupSend }

// Encode implements Message.
func (m *GroupSend) Encode(w *Writer) {
	w.Array(2)
	w.Str(m.GroupID)
	w.Bin(m.Payload)
}

// Decode implements Message.
func (m *GroupSend) Decode(r *Reader) error {
	*m = GroupSend{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 2 {
		return Missing("group_id and payload")
	}
	if m.GroupID, err = r.Str(MaxID, "group_id"); err != nil {
		return err
	}
	if m.Payload, err = r.binOwn(MaxPayload, "payload"); err != nil {
		return err
	}
	return r.SkipRest(2, n)
}

// GroupSendAck is GROUP_SEND_ACK 0x8B. Over budget the server refuses
// with RATE_LIMITED and retry_after_ms.
type GroupSendAck struct {
	Delivered uint64 // online members the message was queued for
}

// Type implements Message.
func (m *GroupSendAck) Type() byte { return Response(TypeGroupSend) }

// Encode implements Message.
func (m *GroupSendAck) Encode(w *Writer) {
	w.Array(2)
	w.Uint(0)
	w.Uint(m.Delivered)
}

// Decode implements Message.
func (m *GroupSendAck) Decode(r *Reader) error {
	*m = GroupSendAck{}
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	if n < 2 {
		return Missing("delivered")
	}
	if m.Delivered, err = r.Uint("delivered"); err != nil {
		return err
	}
	return r.SkipRest(2, n)
}

// GroupMessage is the GROUP_MESSAGE push 0x43 (not acked): a member's
// GROUP_SEND, delivered at most once.
type GroupMessage struct {
	GroupID string
	From    string // the sender's device_id
	MsgID   uint64
	Payload []byte // ≤ MaxPayload bytes, nil when empty
}

// Type implements Message.
func (m *GroupMessage) Type() byte { return TypeGroupMessage }

// Encode implements Message.
func (m *GroupMessage) Encode(w *Writer) {
	w.Array(4)
	w.Str(m.GroupID)
	w.Str(m.From)
	w.Uint(m.MsgID)
	w.Bin(m.Payload)
}

// Decode implements Message.
func (m *GroupMessage) Decode(r *Reader) error {
	*m = GroupMessage{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 4 {
		return Missing("group_message fields")
	}
	if m.GroupID, err = r.Str(MaxID, "group_id"); err != nil {
		return err
	}
	if m.From, err = r.Str(MaxID, "from"); err != nil {
		return err
	}
	if m.MsgID, err = r.Uint("msg_id"); err != nil {
		return err
	}
	if m.Payload, err = r.binOwn(MaxPayload, "payload"); err != nil {
		return err
	}
	return r.SkipRest(4, n)
}
