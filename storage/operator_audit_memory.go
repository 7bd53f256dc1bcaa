package storage

import (
	"context"
	"math"
)

// SetOperatorKeep sets how many operator records the store keeps (<= 0:
// DefaultOperatorKeep).
func (m *Memory) SetOperatorKeep(n int) {
	m.mu.Lock()
	m.opKeep = n
	m.mu.Unlock()
}

// AppendOperator appends rec and drops the oldest beyond the retention.
func (m *Memory) AppendOperator(ctx context.Context, rec OperatorRecord) (uint64, error) {
	if err := normalizeOperator(&rec); err != nil {
		return 0, err
	}
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	keep := DefaultOperatorKeep
	if m.opKeep > 0 {
		keep = m.opKeep
	}
	m.opSeq++
	rec.Seq = m.opSeq
	m.ops = append(m.ops, cloneOperator(&rec))
	if n := len(m.ops) - keep; n > 0 {
		m.ops = append(m.ops[:0:0], m.ops[n:]...)
	}
	return rec.Seq, nil
}

// ListOperator returns matching records newest first.
func (m *Memory) ListOperator(ctx context.Context, f OperatorFilter) ([]OperatorRecord, uint64, error) {
	if err := m.rlock(); err != nil {
		return nil, 0, err
	}
	defer m.mu.RUnlock()
	limit := listLimit(f.Limit)
	before := f.Before
	if before == 0 {
		before = math.MaxUint64
	}
	var out []OperatorRecord
	scanned := 0
	for i := len(m.ops) - 1; i >= 0; i-- {
		r := &m.ops[i]
		if r.Seq >= before {
			continue
		}
		if len(out) == limit || scanned == maxOperatorScan {
			return out, r.Seq + 1, nil
		}
		scanned++
		if f.matches(r) {
			out = append(out, cloneOperator(r))
		}
	}
	return out, 0, nil
}
