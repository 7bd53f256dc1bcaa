package storage

import (
	"context"
	"errors"
	"testing"
)

// A cancelled release with a deadline round-trips in every
// implementation; a negative deadline is refused.
func TestReleaseCancelledAndDeadline(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) Store{
		"memory": openMemory, "badger in memory": openBadgerInMemory, "badger dir": openBadgerDir,
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			r := testRelease("r1")
			r.State, r.CancelledMs, r.DeadlineMs = ReleaseCancelled, 42, 1767139200000
			if err := s.PutRelease(ctx, r); err != nil {
				t.Fatalf("PutRelease cancelled: %v", err)
			}
			got, err := s.GetRelease(ctx, "r1")
			if err != nil || got.State != ReleaseCancelled || got.CancelledMs != 42 || got.DeadlineMs != 1767139200000 {
				t.Fatalf("GetRelease = %+v, %v", got, err)
			}
			bad := testRelease("r2")
			bad.DeadlineMs = -1
			if err := s.PutRelease(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Fatalf("PutRelease with a negative deadline: %v", err)
			}
		})
	}
}
