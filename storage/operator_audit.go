package storage

// The operator audit: one record per state-changing admin API request
// (who, from where, what, on which ids, with what result), committed
// before the answer is sent. It is apart from the service-control audit
// (audit.go), whose records are shaped by CONTROL and indexed by device,
// service and request_id; operator records are few (people's actions),
// so they are kept in one seq-ordered list and filtered by a scan.

import (
	"context"
	"fmt"
	"strings"
)

// Operator audit bounds.
const (
	// DefaultOperatorKeep is how many operator records a store keeps when
	// not told otherwise: the oldest beyond it are deleted by the append
	// that passes it. At ~300 bytes a record that is about 30 MB.
	DefaultOperatorKeep = 100_000
	// MaxOperatorTargets bounds the target ids one record keeps; a bulk
	// request over more keeps the first ones and TargetCount.
	MaxOperatorTargets = 50
	// maxOperatorField bounds each text field of a record, in bytes
	// (longer ones are truncated at a UTF-8 boundary).
	maxOperatorField = 1024
	// maxOperatorScan bounds how many records one ListOperator call looks
	// at, so a filter that matches little cannot walk the whole log in
	// one request: the page ends early and its cursor resumes the scan.
	maxOperatorScan = 20_000
)

// OperatorRecord is one state-changing admin API request and its result.
type OperatorRecord struct {
	// Seq orders records; the store assigns it (increasing across
	// restarts). Zero on records passed to AppendOperator.
	Seq uint64 `json:"seq"`
	// At is the unix ms the answer was decided.
	At int64 `json:"at_ms"`
	// Operator and Scope are the admin token's name and scope.
	Operator string `json:"operator"`
	Scope    string `json:"scope"`
	// Remote is the client's address (for the console: the browser's).
	Remote string `json:"remote,omitempty"`
	// Method and Path are the request's; Route is the API's pattern
	// ("POST /v1/devices/{id}/block"), empty when none matched.
	Method string `json:"method"`
	Path   string `json:"path"`
	Route  string `json:"route,omitempty"`
	// Targets are the ids the request acted on (path ids, a bulk
	// request's devices), at most MaxOperatorTargets of TargetCount.
	Targets     []string `json:"targets,omitempty"`
	TargetCount int      `json:"target_count,omitempty"`
	// Status is the HTTP status answered; Message the error text of a
	// refusal (empty on success).
	Status  int    `json:"status"`
	Message string `json:"message,omitempty"`
}

// OperatorFilter selects operator records, newest first. Empty fields
// match everything.
type OperatorFilter struct {
	// Operator, Method and Target match exactly (Target: any of Targets).
	Operator string
	Method   string
	Target   string
	// PathPrefix keeps records whose Path starts with it.
	PathPrefix string
	// Failed keeps only records with Status >= 400 when set to true, only
	// the others when false.
	Failed *bool
	// Since and Until keep records with Since <= At < Until (0: no bound).
	Since, Until int64
	// Before keeps records with Seq < Before (paging).
	Before uint64
	// Limit is the page size; <= 0 means DefaultListLimit, capped at
	// MaxListLimit.
	Limit int
}

// OperatorAudit is the durable operator audit.
type OperatorAudit interface {
	// AppendOperator assigns rec.Seq, stores rec durably before returning
	// (in the write-ahead log: it survives kill -9) and deletes the oldest
	// records beyond the store's retention. It returns the Seq.
	AppendOperator(ctx context.Context, rec OperatorRecord) (uint64, error)
	// ListOperator returns records matching f, newest first, and the
	// cursor (a Before) of the next page, 0 when there are no more. A
	// page may be short, even empty, with a cursor when its scan reached
	// maxOperatorScan records.
	ListOperator(ctx context.Context, f OperatorFilter) (recs []OperatorRecord, next uint64, err error)
}

// normalizeOperator validates rec and brings it to the stored form.
func normalizeOperator(rec *OperatorRecord) error {
	if rec.Method == "" || rec.Path == "" {
		return fmt.Errorf("%w: operator record without method or path", ErrInvalid)
	}
	rec.Seq = 0
	for _, f := range []*string{&rec.Operator, &rec.Scope, &rec.Remote, &rec.Method, &rec.Path, &rec.Route, &rec.Message} {
		*f = truncateUTF8(validUTF8(*f), maxOperatorField)
	}
	if rec.TargetCount < len(rec.Targets) {
		rec.TargetCount = len(rec.Targets)
	}
	if len(rec.Targets) == 0 {
		rec.Targets, rec.TargetCount = nil, 0
		return nil
	}
	ts := make([]string, 0, min(len(rec.Targets), MaxOperatorTargets))
	for _, t := range rec.Targets[:min(len(rec.Targets), MaxOperatorTargets)] {
		ts = append(ts, truncateUTF8(validUTF8(t), maxOperatorField))
	}
	rec.Targets = ts
	return nil
}

// matches reports whether r is selected by f (Before excepted).
func (f *OperatorFilter) matches(r *OperatorRecord) bool {
	switch {
	case f.Operator != "" && r.Operator != f.Operator,
		f.Method != "" && r.Method != f.Method,
		f.PathPrefix != "" && !strings.HasPrefix(r.Path, f.PathPrefix),
		f.Failed != nil && (r.Status >= 400) != *f.Failed,
		f.Since != 0 && r.At < f.Since,
		f.Until != 0 && r.At >= f.Until:
		return false
	}
	if f.Target == "" {
		return true
	}
	for _, t := range r.Targets {
		if t == f.Target {
			return true
		}
	}
	return false
}

func cloneOperator(r *OperatorRecord) OperatorRecord {
	c := *r
	if r.Targets != nil {
		c.Targets = append([]string(nil), r.Targets...)
	}
	return c
}
