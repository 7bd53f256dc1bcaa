// Package api holds the admin HTTP API's request and response bodies and
// its error codes: the contract between termd's server/admin and its
// clients (termctl, Go scripts). It imports nothing of termd's, so a
// client links none of the server. docs/admin-api.md documents the same
// types field by field.
package api

import "fmt"

// ErrorCode is the stable identifier of an error, sent as the `code`
// field of every error body. Scripts match on it; the message next to it
// is for people and may change.
type ErrorCode string

// Error codes. server/admin maps each TGP status code to one of them and
// an HTTP status in one table (see docs/admin-api.md).
const (
	// CodeBadRequest (400): a malformed parameter, id, key or body.
	CodeBadRequest ErrorCode = "bad_request"
	// CodeUnauthorized (401): the bearer token is missing or wrong.
	CodeUnauthorized ErrorCode = "unauthorized"
	// CodeForbidden (403): the token may not do this.
	CodeForbidden ErrorCode = "forbidden"
	// CodeNotFound (404): no such device, service, route, or (disconnect)
	// the device is not online.
	CodeNotFound ErrorCode = "not_found"
	// CodeMethodNotAllowed (405): the route exists with other methods
	// (listed in the Allow header).
	CodeMethodNotAllowed ErrorCode = "method_not_allowed"
	// CodeConflict (409): the state does not allow it now (an operation
	// on the service is in progress).
	CodeConflict ErrorCode = "conflict"
	// CodeExpired (410): what the request refers to has expired.
	CodeExpired ErrorCode = "expired"
	// CodeRateLimited (429): too many requests; see Retry-After.
	CodeRateLimited ErrorCode = "rate_limited"
	// CodeInternal (500): the node failed; the request may be retried.
	CodeInternal ErrorCode = "internal"
	// CodeUnavailable (503): the node is not ready, is stopping, or the
	// feature is not configured on it; see Retry-After when sent.
	CodeUnavailable ErrorCode = "unavailable"
	// CodeTimeout (504): an operation did not finish in time; it may
	// still complete.
	CodeTimeout ErrorCode = "timeout"
)

// Error is the body of every error response. Status is the HTTP status
// it came with (not part of the body).
type Error struct {
	Status  int       `json:"-"`
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	// RetryAfterMs, when set, says when to try again (also sent as the
	// Retry-After header, in whole seconds).
	RetryAfterMs uint64 `json:"retry_after_ms,omitempty"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Header and event names.
const (
	// BackupVersionHeader carries a backup's version. It is an HTTP
	// trailer: the version is known only once the stream has been written.
	BackupVersionHeader = "X-Termd-Backup-Version"
	// EventDropped is the SSE event that reports that a subscriber's queue
	// overflowed and events were lost; its data is
	// {"kind":"dropped","dropped":<running total>}.
	EventDropped = "dropped"
)

// Device is a device as GET /v1/devices[/{id}] shows it. The per-device
// key is never shown, only whether there is one.
type Device struct {
	ID            string         `json:"id"`
	Online        bool           `json:"online"`
	Live          bool           `json:"live"`
	SessionID     uint64         `json:"session_id"`
	FirstSeenMs   int64          `json:"first_seen_ms"`
	LastSeenMs    int64          `json:"last_seen_ms"`
	LastOnlineMs  int64          `json:"last_online_ms"`
	LastOfflineMs int64          `json:"last_offline_ms"`
	OfflineReason string         `json:"offline_reason"`
	RemoteAddr    string         `json:"remote_addr"`
	FW            string         `json:"fw"`
	Model         string         `json:"model"`
	Attrs         map[string]any `json:"attrs"`
	Status        map[string]any `json:"status"`
	Blocked       bool           `json:"blocked"`
	HasKey        bool           `json:"has_key"`
	// Apps are the device's last known app versions (GET /v1/devices/{id}
	// only; from its upgrade queries and SUCCEEDED reports).
	Apps []AppVersion `json:"apps,omitempty"`
}

// DeviceList is one page of GET /v1/devices.
type DeviceList struct {
	Devices []Device `json:"devices"`
	// NextCursor resumes the listing; "" when this page is the last.
	NextCursor string `json:"next_cursor"`
}

// SetKey is PUT /v1/devices/{id}/key's body: 64 hex digits, or null to
// remove the key.
type SetKey struct {
	Key *string `json:"key"`
}

// Stats is GET /v1/stats: a snapshot of the node.
type Stats struct {
	Online           int    `json:"online"`
	Connections      int64  `json:"connections"`
	PendingHello     int64  `json:"pending_hello"`
	Sessions         int64  `json:"sessions"`
	MaxConnections   int    `json:"max_connections"`
	MaxSessions      int    `json:"max_sessions"`
	NonceCache       int    `json:"nonce_cache"`
	WorkQueue        int    `json:"work_queue"`
	WriteBehind      int    `json:"write_behind_pending"`
	EventSubscribers int    `json:"event_subscribers"`
	EventsDropped    uint64 `json:"events_dropped"`
	BootEpoch        uint32 `json:"boot_epoch"`
	StartedMs        int64  `json:"started_ms"`
	HBIntervalS      uint64 `json:"hb_interval_s"`
	MissFactor       int    `json:"miss_factor"`
}

// Event is one event of GET /v1/events (its SSE event name is Kind).
// Kind says which fields are set: presence events (online, offline,
// replaced, duplicate) the device, session, reason and remote address;
// service events the service, state, pid and exit code; the dropped
// event only Dropped.
type Event struct {
	Kind      string `json:"kind"`
	DeviceID  string `json:"device_id,omitempty"`
	SessionID uint64 `json:"session_id"`
	AtMs      int64  `json:"at_ms"`
	Reason    string `json:"reason,omitempty"`
	Remote    string `json:"remote,omitempty"`
	Service   string `json:"service,omitempty"`
	State     string `json:"state,omitempty"`
	PID       int    `json:"pid,omitempty"`
	ExitCode  *int   `json:"exit_code,omitempty"`
	Dropped   uint64 `json:"dropped,omitempty"`
	// Digest is set on upgrade_failure events.
	Digest *FailureDigest `json:"digest,omitempty"`
	// Release and Stage: release and upgrade events (docs/upgrades.md).
	Release string `json:"release_id,omitempty"`
	Stage   string `json:"stage,omitempty"`
}

// FailureDigest is an upgrade_failure event's digest: upgrade failures
// of one release within one notify.digest_window (docs/upgrades.md).
type FailureDigest struct {
	// ID is the delivery id, stable across retries: receivers
	// de-duplicate on it.
	ID        string         `json:"id"`
	ReleaseID string         `json:"release_id,omitempty"`
	AppID     string         `json:"app_id,omitempty"`
	Version   string         `json:"version,omitempty"`
	Failures  int            `json:"failures"`
	Devices   int            `json:"devices"`
	ByKind    map[string]int `json:"by_kind"`
	ByCode    map[string]int `json:"by_code"`
	ByModel   map[string]int `json:"by_model"`
	FirstAtMs int64          `json:"first_at_ms"`
	LastAtMs  int64          `json:"last_at_ms"`
	// Items are the first failures in detail (oldest first); Omitted is
	// how many more there are.
	Items   []FailureItem `json:"items"`
	Omitted int           `json:"omitted,omitempty"`
	// RolloutPaused is the reason the release's phased rollout paused
	// itself, when it did in this digest's window (the pause is in Items
	// and ByKind, not in Failures).
	RolloutPaused string `json:"rollout_paused,omitempty"`
}

// FailureItem is one failure of a FailureDigest.
type FailureItem struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	DeviceID    string `json:"device_id,omitempty"`
	Model       string `json:"model,omitempty"`
	FromVersion string `json:"from_version,omitempty"`
	Attempt     uint32 `json:"attempt,omitempty"`
	Stage       uint8  `json:"stage,omitempty"`
	Code        uint64 `json:"code,omitempty"`
	Message     string `json:"message,omitempty"`
	AtMs        int64  `json:"at_ms"`
}

// Service is a service as GET /v1/services[/{id}] shows it: its
// configuration summary and its live state.
type Service struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	Description string   `json:"description,omitempty"`
	Command     string   `json:"command"`
	Ops         []string `json:"ops"`
	AcceptsArgs bool     `json:"accepts_args"`
	Restart     string   `json:"restart,omitempty"`
	Autostart   bool     `json:"autostart,omitempty"`

	State    string `json:"state"`
	PID      int    `json:"pid,omitempty"`
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	SinceMs  int64  `json:"since_ms,omitempty"`
	Output   string `json:"output,omitempty"`
	Running  int    `json:"running,omitempty"`
	Restarts int    `json:"restarts,omitempty"`
	Busy     string `json:"busy,omitempty"`
	Adopted  bool   `json:"adopted,omitempty"`
}

// ServiceList is GET /v1/services.
type ServiceList struct {
	Services []Service `json:"services"`
}

// OpTimeout is the 504 body of POST /v1/services/{id}/{op}: the error,
// and the service as it was when the wait ran out.
type OpTimeout struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	Service Service   `json:"service"`
}

// AuditRecord is one service-control audit record of GET /v1/audit.
type AuditRecord struct {
	Seq        uint64 `json:"seq"`
	AtMs       int64  `json:"at_ms"`
	DurationMs int64  `json:"duration_ms"`
	Source     string `json:"source"`
	DeviceID   string `json:"device_id,omitempty"`
	SessionID  uint64 `json:"session_id,omitempty"`
	Remote     string `json:"remote,omitempty"`
	// Operator is the admin token's name of an operator's request.
	Operator     string `json:"operator,omitempty"`
	RequestID    uint64 `json:"request_id,omitempty"`
	HasRequestID bool   `json:"has_request_id,omitempty"`
	// Repeat: the record answers a repeat (or a refusal) and does not own
	// its request_id.
	Repeat   bool     `json:"repeat,omitempty"`
	Service  string   `json:"service"`
	Op       string   `json:"op"`
	Args     []string `json:"args,omitempty"`
	Status   uint8    `json:"status"`
	Message  string   `json:"message,omitempty"`
	State    string   `json:"state,omitempty"`
	PID      int      `json:"pid,omitempty"`
	ExitCode int      `json:"exit_code"`
	SinceMs  int64    `json:"since_ms,omitempty"`
	Output   string   `json:"output,omitempty"`
	// Count is how many refused requests a coalesced refusal record
	// stands for (absent on other records), LastAtMs the newest of them;
	// ArgCount and ArgsSHA256 describe the args a refusal does not keep.
	Count      uint64 `json:"count,omitempty"`
	LastAtMs   int64  `json:"last_at_ms,omitempty"`
	ArgCount   int    `json:"arg_count,omitempty"`
	ArgsSHA256 string `json:"args_sha256,omitempty"`
}

// AuditList is one page of GET /v1/audit, newest first.
type AuditList struct {
	Records []AuditRecord `json:"records"`
	// NextBefore is the `before` of the next (older) page; 0 when this
	// page is the last.
	NextBefore uint64 `json:"next_before,omitempty"`
}

// OutboxList is GET /v1/outbox: a page of notification deliveries
// (pending and failed ones unless ?state= says otherwise) and the
// pending and failed counts per channel.
type OutboxList struct {
	Deliveries []OutboxDelivery       `json:"deliveries"`
	Counts     map[string]OutboxCount `json:"counts"`
	// NextCursor is the ?cursor= of the next page; empty on the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// OutboxCount is one channel's pending and failed deliveries.
type OutboxCount struct {
	Pending int `json:"pending"`
	Failed  int `json:"failed"`
}

// OutboxDelivery is one notification's delivery state on one channel
// ("webhook:<name>", "smtp" or "event").
type OutboxDelivery struct {
	Channel   string `json:"channel"`
	EntryID   string `json:"entry_id"`
	ReleaseID string `json:"release_id,omitempty"`
	Kind      string `json:"kind"`
	// State is pending, delivered or failed (given up after
	// notify.max_age).
	State string `json:"state"`
	// DeliveryID is the digest it was claimed into (X-Termd-Delivery),
	// empty before the first attempt.
	DeliveryID      string `json:"delivery_id,omitempty"`
	Attempts        uint32 `json:"attempts"`
	CreatedAtMs     int64  `json:"created_at_ms"`
	NextAtMs        int64  `json:"next_at_ms,omitempty"`
	LastAttemptAtMs int64  `json:"last_attempt_at_ms,omitempty"`
	DoneAtMs        int64  `json:"done_at_ms,omitempty"`
	LastError       string `json:"last_error,omitempty"`
}

// OnlineHours is GET /v1/devices/{id}/online-hours: the device's hourly
// online history for the 168 UTC hours ending with the current one,
// oldest first (from the node's memory; see docs/operations.md).
type OnlineHours struct {
	DeviceID string       `json:"device_id"`
	Hours    []OnlineHour `json:"hours"`
}

// OnlineHour is one UTC hour of OnlineHours: its start in unix ms and
// whether the device had a session at any time in it.
type OnlineHour struct {
	StartMs int64 `json:"start_ms"`
	Online  bool  `json:"online"`
}
