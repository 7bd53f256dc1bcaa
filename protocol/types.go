package protocol

// Frame types of TGP/1 (spec §1.1). Requests are 0x01–0x3F, their
// responses type|0x80, pushes 0x40–0x5F and their acks type|0x80.
const (
	TypeHello         byte = 0x01
	TypeHeartbeat     byte = 0x02
	TypeControl       byte = 0x03
	TypeUpgradeQuery  byte = 0x04
	TypeUpgradeReport byte = 0x05
	TypeScheduleReq   byte = 0x06
	TypeUpgradeCheck  byte = 0x07
	TypeGroupAuth     byte = 0x08
	TypeGroupChange   byte = 0x09
	TypeGroupList     byte = 0x0A
	TypeGroupSend     byte = 0x0B
	TypeBye           byte = 0x0C

	TypeUpgradeNotice byte = 0x41
	TypeGroupSync     byte = 0x42
	TypeGroupMessage  byte = 0x43
	TypeGoaway        byte = 0x44

	TypeError byte = 0xFF

	// ResponseBit turns a request or push type into its response or ack.
	ResponseBit byte = 0x80
)

// Response returns the response type of request (or push) type t.
func Response(t byte) byte { return t | ResponseBit }

// IsRequest reports whether a terminal may send t as a request.
func IsRequest(t byte) bool { return t >= 0x01 && t <= 0x3F }

// IsPushAck reports whether t is a terminal's ack of a push (0xC0–0xDF).
func IsPushAck(t byte) bool { return t >= 0xC0 && t <= 0xDF }

// KnownRequest reports whether t is a request type TGP/1 defines.
func KnownRequest(t byte) bool { return t >= TypeHello && t <= TypeBye }

// PushNeedsAck reports whether push type t must be acknowledged.
func PushNeedsAck(t byte) bool { return t == TypeUpgradeNotice || t == TypeGroupSync }

var typeNames = map[byte]string{
	TypeHello: "hello", TypeHeartbeat: "heartbeat", TypeControl: "control",
	TypeUpgradeQuery: "upgrade_query", TypeUpgradeReport: "upgrade_report",
	TypeScheduleReq: "schedule_request", TypeUpgradeCheck: "upgrade_check",
	TypeGroupAuth: "group_auth", TypeGroupChange: "group_change",
	TypeGroupList: "group_list", TypeGroupSend: "group_send", TypeBye: "bye",
	TypeUpgradeNotice: "upgrade_notice", TypeGroupSync: "group_sync",
	TypeGroupMessage: "group_message", TypeGoaway: "goaway", TypeError: "error",
}

// TypeName names a frame type for logs and metric labels; responses and
// acks get an "_ack" suffix and unknown types "unknown".
func TypeName(t byte) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	if t&ResponseBit != 0 {
		if n, ok := typeNames[t&^ResponseBit]; ok {
			return n + "_ack"
		}
	}
	return "unknown"
}

// Bounds on strings and collections (spec §1, §3, §4).
const (
	MaxID         = 64   // device, service, app, release, campaign, reservation, group, node, system ids
	MaxVersion    = 32   // version strings
	MaxFW         = 32   // fw and model
	MaxURL        = 256  // url, token, notes
	MaxRole       = 16   // group role
	MaxName       = 64   // group name
	MaxOutput     = 1024 // control output
	MaxPayload    = 1024 // group payload
	MaxMapItems   = 16   // attrs and status entries
	MaxMapKey     = 32   // attrs and status key bytes
	MaxMapStr     = 64   // attrs and status string value bytes
	MaxArgs       = 8    // control args
	MaxArg        = 256  // one control arg
	MaxGroups     = 32   // memberships per device
	MaxDepth      = 8    // MessagePack nesting, the body array is level 1
	NonceSize     = 16   // HELLO nonce and clock challenge
	MACSize       = 32   // HMAC-SHA256 output
	SHA256Size    = 32   // release digest
	MaxInFlight   = 16   // outstanding requests per connection
	MaxReleaseSig = 64   // r ‖ s of an ECDSA P-256 signature
)
