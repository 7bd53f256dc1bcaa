package storage

import "context"

// Audit record sources.
const (
	SourceTerminal = "terminal" // a CONTROL request over TGP
	SourceOperator = "operator" // the admin API / termctl
	SourceTermd    = "termd"    // termd itself (autostart, restart policy, adoption, shutdown)
)

// AuditRecord is one service-control request and its outcome: what was
// asked, by whom, and what came of it. Every control request is recorded,
// refused ones included, committed before the answer is sent.
type AuditRecord struct {
	// Seq orders records; the store assigns it (increasing, unique per
	// node, also across restarts). Zero on records passed to AppendAudit.
	Seq uint64 `json:"seq"`
	// At is the unix ms the request arrived.
	At int64 `json:"at_ms"`
	// DurationMs is how long the operation took until answered.
	DurationMs int64 `json:"duration_ms"`
	// Source is SourceTerminal, SourceOperator or SourceTermd.
	Source string `json:"source"`
	// DeviceID and SessionID identify the terminal (empty/0 otherwise).
	DeviceID  string `json:"device_id,omitempty"`
	SessionID uint64 `json:"session_id,omitempty"`
	// Remote is the operator's or terminal's address, if known.
	Remote string `json:"remote,omitempty"`
	// Operator is the name of the admin token an operator record was
	// made with (config admin.tokens; "admin" for admin.token).
	Operator string `json:"operator,omitempty"`
	// RequestID is the CONTROL request_id, when HasRequestID.
	RequestID    uint64 `json:"request_id,omitempty"`
	HasRequestID bool   `json:"has_request_id,omitempty"`
	// Repeat marks a record that answers a request without owning its
	// request_id (a repeat answered with the original's outcome): it is
	// stored but not indexed, so AuditByRequest keeps finding the record
	// of the request that owns the id.
	Repeat bool `json:"repeat,omitempty"`
	// Service and Op ("start", "stop", "restart", "status") are what was
	// asked; Args the terminal's args.
	Service string   `json:"service"`
	Op      string   `json:"op"`
	Args    []string `json:"args,omitempty"`
	// Status is the protocol status code of the answer (0 OK, 13 TIMEOUT,
	// ...), Message its text when not OK.
	Status  uint8  `json:"status"`
	Message string `json:"message,omitempty"`
	// State, PID, ExitCode, SinceMs and Output are the CONTROL_ACK fields
	// (what was known, for TIMEOUT). Output is at most 1024 bytes.
	State    string `json:"state,omitempty"`
	PID      int    `json:"pid,omitempty"`
	ExitCode int    `json:"exit_code"`
	SinceMs  int64  `json:"since_ms,omitempty"`
	Output   string `json:"output,omitempty"`
	// Count is how many refused requests a record of AppendRefusal
	// stands for (0 on other records); LastAt is the unix ms of the
	// newest of them.
	Count  uint64 `json:"count,omitempty"`
	LastAt int64  `json:"last_at_ms,omitempty"`
	// ArgCount and ArgsDigest describe args that were not stored (a
	// refusal keeps no args): how many there were and the first 16 hex
	// digits of the SHA-256 of them (each arg followed by NUL), enough to
	// tell one repeated payload from many.
	ArgCount   int    `json:"arg_count,omitempty"`
	ArgsDigest string `json:"args_sha256,omitempty"`
}

// AuditFilter selects audit records, newest first.
type AuditFilter struct {
	// DeviceID and Service, when set, keep only matching records.
	DeviceID string
	Service  string
	// Before, when not 0, keeps only records with Seq < Before (paging:
	// pass the last Seq of the previous page).
	Before uint64
	// Limit is the page size; <= 0 means DefaultListLimit, capped at
	// MaxListLimit.
	Limit int
}

// Audit is the durable service-control audit log.
type Audit interface {
	// AppendAudit assigns rec.Seq, stores rec durably before returning
	// (see Registry.SetKey for what durable means) and returns the Seq.
	// When rec.HasRequestID and not rec.Repeat it also indexes the record
	// by (DeviceID, RequestID) for AuditByRequest.
	AppendAudit(ctx context.Context, rec AuditRecord) (uint64, error)
	// AppendRefusal stores durably a request that ran nothing (a refusal,
	// or a repeat answered with an earlier outcome), coalesced: when the
	// newest refusal record of the same (DeviceID, Service, Op, Status)
	// has At > rec.At - window, that record's Count grows by one and its
	// LastAt becomes rec.At; otherwise rec is appended with Count 1. Args
	// are never stored (ArgCount and ArgsDigest are set from them) and the
	// request_id is not indexed. It returns the record's Seq and whether
	// it was coalesced into an existing one.
	AppendRefusal(ctx context.Context, rec AuditRecord, window int64) (seq uint64, coalesced bool, err error)
	// ListAudit returns records matching f, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
	// AuditByRequest returns the newest record of (deviceID, requestID)
	// with At >= since, or ErrNotFound.
	AuditByRequest(ctx context.Context, deviceID string, requestID uint64, since int64) (AuditRecord, error)
	// PruneAudit deletes records with At < before and returns how many.
	PruneAudit(ctx context.Context, before int64) (int, error)
	// TrimAudit deletes the oldest records until at most keep remain and
	// returns how many it deleted.
	TrimAudit(ctx context.Context, keep int) (int, error)
}
