package storage

// This file holds what both Audit implementations share: validation and
// normalisation of appended records, and Badger's value encoding.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Audit record bounds.
const (
	// MaxAuditService is the longest Service, in bytes, AppendAudit takes.
	MaxAuditService = 64
	// MaxAuditOutput and MaxAuditMessage cap Output and Message; longer
	// ones are truncated (at a UTF-8 boundary), not refused.
	MaxAuditOutput  = 1024
	MaxAuditMessage = 1024
	// maxAuditText bounds the total bytes of a record's strings, so a
	// record stays small (the protocol's own limits keep real ones under
	// a few KiB).
	maxAuditText = 16 << 10
)

// auditV1 is the leading version byte of the audit value encoding (JSON
// of AuditRecord after it). A future layout gets a new byte and
// decodeAudit keeps reading old ones.
const auditV1 byte = 1

// auditReqKey is what AuditByRequest looks a record up by.
type auditReqKey struct {
	device string
	id     uint64
}

// auditRefKey is what AppendRefusal coalesces refusals by.
type auditRefKey struct {
	device, service, op string
	status              uint8
}

func refKeyOf(r *AuditRecord) auditRefKey {
	return auditRefKey{r.DeviceID, r.Service, r.Op, r.Status}
}

// argsDigestHex is how many hex digits of the args' SHA-256 a refusal
// keeps: 64 bits tell payloads apart without storing them.
const argsDigestHex = 16

// asRefusal turns rec into the first record of a coalesced refusal: its
// args replaced by their count and digest, Count 1, not indexed by
// request_id.
func asRefusal(rec *AuditRecord) {
	if len(rec.Args) > 0 {
		h := sha256.New()
		for _, a := range rec.Args {
			h.Write([]byte(a))
			h.Write([]byte{0})
		}
		rec.ArgCount = len(rec.Args)
		rec.ArgsDigest = hex.EncodeToString(h.Sum(nil))[:argsDigestHex]
	}
	rec.Args = nil
	rec.Count = 1
	rec.LastAt = rec.At
	rec.Repeat = true
}

// coalesces reports whether a refusal at at joins r, the newest refusal
// record of its key, under window (ms).
func coalesces(r *AuditRecord, at, window int64) bool {
	return r.Count > 0 && r.At > at-window
}

// normalizeAudit validates rec for AppendAudit and brings it to the form
// both stores keep: Seq zero, text fields valid UTF-8 (invalid bytes
// become U+FFFD, as a JSON round trip would make them), Output and
// Message truncated, Args copied and nil when empty.
func normalizeAudit(rec *AuditRecord) error {
	if err := checkAuditName("service", rec.Service, MaxAuditService); err != nil {
		return err
	}
	if rec.Service == "" {
		return fmt.Errorf("%w: empty audit service", ErrInvalid)
	}
	if err := checkAuditName("device id", rec.DeviceID, MaxIDLen); err != nil {
		return err
	}
	if rec.Op == "" {
		return fmt.Errorf("%w: empty audit op", ErrInvalid)
	}
	rec.Seq = 0
	rec.ArgsDigest = validUTF8(truncateUTF8(rec.ArgsDigest, argsDigestHex))
	rec.Op = validUTF8(rec.Op)
	rec.Source = validUTF8(rec.Source)
	rec.Remote = validUTF8(rec.Remote)
	rec.Operator = validUTF8(rec.Operator)
	rec.State = validUTF8(rec.State)
	rec.Message = truncateUTF8(validUTF8(rec.Message), MaxAuditMessage)
	rec.Output = truncateUTF8(validUTF8(rec.Output), MaxAuditOutput)
	if len(rec.Args) == 0 {
		rec.Args = nil
	} else {
		args := make([]string, len(rec.Args))
		for i, a := range rec.Args {
			args[i] = validUTF8(a)
		}
		rec.Args = args
	}
	n := len(rec.Source) + len(rec.DeviceID) + len(rec.Remote) + len(rec.Operator) + len(rec.Service) + len(rec.Op) +
		len(rec.Message) + len(rec.State) + len(rec.Output)
	for _, a := range rec.Args {
		n += len(a)
	}
	if n > maxAuditText {
		return fmt.Errorf("%w: audit record of %d text bytes exceeds %d", ErrInvalid, n, maxAuditText)
	}
	return nil
}

// checkAuditName rejects a device id or service that cannot be an index
// key: over max bytes, containing NUL (the key separator) or not UTF-8
// (JSON would not keep it as is).
func checkAuditName(what, s string, max int) error {
	switch {
	case len(s) > max:
		return fmt.Errorf("%w: audit %s of %d bytes exceeds %d", ErrInvalid, what, len(s), max)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: audit %s contains NUL", ErrInvalid, what)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: audit %s is not UTF-8", ErrInvalid, what)
	}
	return nil
}

// auditNameMatchable reports whether a filter value can match any stored
// record (checkAuditName would accept it); one that cannot selects nothing.
func auditNameMatchable(s string, max int) bool {
	return len(s) <= max && strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// validUTF8 replaces invalid UTF-8 runs with U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// truncateUTF8 cuts valid UTF-8 s to at most n bytes without splitting a
// rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n]
}

// cloneAudit returns a copy of r that shares no memory with it.
func cloneAudit(r *AuditRecord) AuditRecord {
	c := *r
	if r.Args != nil {
		c.Args = append([]string(nil), r.Args...)
	}
	return c
}

// encodeAudit returns the Badger value of rec.
func encodeAudit(rec *AuditRecord) ([]byte, error) {
	j, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	v := make([]byte, 0, 1+len(j))
	return append(append(v, auditV1), j...), nil
}

// decodeAudit decodes the Badger value of the record with seq. v may be
// reused after it returns.
func decodeAudit(seq uint64, v []byte) (AuditRecord, error) {
	if len(v) == 0 || v[0] != auditV1 {
		return AuditRecord{}, fmt.Errorf("%w: audit record %d: unknown encoding", ErrCorrupt, seq)
	}
	var r AuditRecord
	if err := json.Unmarshal(v[1:], &r); err != nil {
		return AuditRecord{}, fmt.Errorf("%w: audit record %d: %v", ErrCorrupt, seq, err)
	}
	r.Seq = seq // the key is authoritative
	return r, nil
}
