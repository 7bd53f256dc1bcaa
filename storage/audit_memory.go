package storage

// This file is Memory's Audit: records in a slice in seq order and a map
// for AuditByRequest, under Memory.mu.

import (
	"context"
	"errors"
	"math"
	"sort"
)

// AppendAudit stores a copy of rec under the next seq.
func (m *Memory) AppendAudit(ctx context.Context, rec AuditRecord) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := normalizeAudit(&rec); err != nil {
		return 0, err
	}
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	if m.auditSeq == math.MaxUint64 {
		return 0, errors.New("storage: append audit: audit seq exhausted")
	}
	m.auditSeq++
	rec.Seq = m.auditSeq
	m.audit = append(m.audit, rec) // normalizeAudit copied Args
	if rec.HasRequestID && !rec.Repeat {
		m.auditReq[auditReqKey{rec.DeviceID, rec.RequestID}] = rec.Seq
	}
	m.version++
	return rec.Seq, nil
}

// auditIndex returns the index in m.audit of the first record with
// Seq >= seq. The caller holds the lock.
func (m *Memory) auditIndex(seq uint64) int {
	return sort.Search(len(m.audit), func(i int) bool { return m.audit[i].Seq >= seq })
}

// ListAudit returns copies of the records matching f, newest first.
func (m *Memory) ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.rlock(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	limit := listLimit(f.Limit)
	end := len(m.audit)
	if f.Before != 0 {
		end = m.auditIndex(f.Before)
	}
	recs := []AuditRecord{}
	for i := end - 1; i >= 0 && len(recs) < limit; i-- {
		r := &m.audit[i]
		if (f.DeviceID != "" && r.DeviceID != f.DeviceID) || (f.Service != "" && r.Service != f.Service) {
			continue
		}
		recs = append(recs, cloneAudit(r))
	}
	return recs, nil
}

// AuditByRequest returns a copy of the newest record of (deviceID,
// requestID) when its At >= since.
func (m *Memory) AuditByRequest(ctx context.Context, deviceID string, requestID uint64, since int64) (AuditRecord, error) {
	if err := ctx.Err(); err != nil {
		return AuditRecord{}, err
	}
	if err := m.rlock(); err != nil {
		return AuditRecord{}, err
	}
	defer m.mu.RUnlock()
	seq, ok := m.auditReq[auditReqKey{deviceID, requestID}]
	if !ok {
		return AuditRecord{}, ErrNotFound
	}
	i := m.auditIndex(seq)
	if i == len(m.audit) || m.audit[i].Seq != seq || m.audit[i].At < since {
		return AuditRecord{}, ErrNotFound
	}
	return cloneAudit(&m.audit[i]), nil
}

// AppendRefusal stores rec as a refusal, coalesced with the newest one
// of its key when within window.
func (m *Memory) AppendRefusal(ctx context.Context, rec AuditRecord, window int64) (uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	asRefusal(&rec)
	if err := normalizeAudit(&rec); err != nil {
		return 0, false, err
	}
	if err := m.lock(); err != nil {
		return 0, false, err
	}
	defer m.mu.Unlock()
	key := refKeyOf(&rec)
	if seq, ok := m.auditRef[key]; ok {
		if i := m.auditIndex(seq); i < len(m.audit) && m.audit[i].Seq == seq && coalesces(&m.audit[i], rec.At, window) {
			r := &m.audit[i]
			r.Count++
			r.LastAt = max(r.LastAt, rec.At)
			m.version++
			return seq, true, nil
		}
	}
	if m.auditSeq == math.MaxUint64 {
		return 0, false, errors.New("storage: append refusal: audit seq exhausted")
	}
	m.auditSeq++
	rec.Seq = m.auditSeq
	m.audit = append(m.audit, rec)
	m.auditRef[key] = rec.Seq
	m.version++
	return rec.Seq, false, nil
}

// PruneAudit deletes records with At < before from the oldest on,
// stopping at the first with At >= before, as Badger's does.
func (m *Memory) PruneAudit(ctx context.Context, before int64) (int, error) {
	return m.pruneAudit(ctx, func(i int, r *AuditRecord) bool { return r.At < before })
}

// TrimAudit deletes the oldest records beyond the newest keep.
func (m *Memory) TrimAudit(ctx context.Context, keep int) (int, error) {
	return m.pruneAudit(ctx, func(i int, r *AuditRecord) bool { return len(m.audit)-i > max(keep, 0) })
}

// pruneAudit deletes records from the oldest on while due says so.
func (m *Memory) pruneAudit(ctx context.Context, due func(i int, r *AuditRecord) bool) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	n := 0
	for n < len(m.audit) && due(n, &m.audit[n]) {
		r := &m.audit[n]
		if r.HasRequestID {
			k := auditReqKey{r.DeviceID, r.RequestID}
			if m.auditReq[k] == r.Seq {
				delete(m.auditReq, k)
			}
		}
		if r.Count > 0 {
			if k := refKeyOf(r); m.auditRef[k] == r.Seq {
				delete(m.auditRef, k)
			}
		}
		n++
	}
	if n > 0 {
		// Copy the rest so the pruned records' memory is released.
		m.audit = append([]AuditRecord(nil), m.audit[n:]...)
		m.version++
	}
	return n, nil
}
