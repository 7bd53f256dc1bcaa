package storage

// This file is the part of the Audit contract about what keeps the audit
// small and its request_id index right: repeats that do not take over a
// request_id, coalesced refusals without args, and the record cap.

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// A record marked Repeat is stored but never becomes what AuditByRequest
// returns: the request that owns the request_id keeps it.
func contractAuditRepeatNotIndexed(t *testing.T, s Store) {
	ctx := context.Background()
	orig := auditRec("pos-1", "echo", 100)
	orig.RequestID, orig.HasRequestID = 5, true
	orig = appendAudit(t, s, orig)
	rep := auditRec("pos-1", "other", 110)
	rep.RequestID, rep.HasRequestID, rep.Repeat = 5, true, true
	rep = appendAudit(t, s, rep)
	got, err := s.AuditByRequest(ctx, "pos-1", 5, 0)
	if err != nil || !reflect.DeepEqual(got, orig) {
		t.Fatalf("AuditByRequest after a repeat = %+v, %v; want the original %+v", got, err, orig)
	}
	if recs := listAudit(t, s, AuditFilter{DeviceID: "pos-1"}); len(recs) != 2 || !recs[0].Repeat || !reflect.DeepEqual(recs[0], rep) {
		t.Fatalf("repeat not stored as given: %+v", recs)
	}
	// A refusal with the same request_id is not indexed either.
	ref := auditRec("pos-1", "other", 120)
	ref.RequestID, ref.HasRequestID, ref.Status = 5, true, 6
	if _, _, err := s.AppendRefusal(ctx, ref, 1000); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AuditByRequest(ctx, "pos-1", 5, 0); err != nil || got.Seq != orig.Seq {
		t.Fatalf("AuditByRequest after a refusal = %+v, %v; want seq %d", got, err, orig.Seq)
	}
}

// Refusals keep no args, only their count and digest; repeats of one
// (device, service, op, status) within the window grow one record's
// Count; another key, or the same key after the window, gets a new one.
func contractAuditRefusalCoalesced(t *testing.T, s Store) {
	ctx := context.Background()
	ref := func(dev, svc string, status uint8, at int64, args ...string) (uint64, bool) {
		t.Helper()
		r := auditRec(dev, svc, at)
		r.Status, r.Message, r.Args, r.State, r.PID, r.Output = status, "not allowed", args, "", 0, ""
		seq, coalesced, err := s.AppendRefusal(ctx, r, 1000)
		if err != nil {
			t.Fatalf("AppendRefusal: %v", err)
		}
		return seq, coalesced
	}
	big := make([]string, 8)
	for i := range big {
		big[i] = string(make([]byte, 250))
	}
	first, c := ref("pos-1", "svc", 3, 100, big...)
	if c {
		t.Fatal("the first refusal reported coalesced")
	}
	for i := int64(1); i < 50; i++ {
		seq, c := ref("pos-1", "svc", 3, 100+i*10, "x")
		if seq != first || !c {
			t.Fatalf("refusal %d: seq %d coalesced %v, want %d true", i, seq, c, first)
		}
	}
	other, c := ref("pos-1", "svc", 6, 200) // another status
	if other == first || c {
		t.Fatalf("another status joined the record: %d %v", other, c)
	}
	later, c := ref("pos-1", "svc", 3, 1100) // 1000 ms after the first: a new window
	if later == first || c {
		t.Fatalf("refusal after the window joined the record: %d %v", later, c)
	}
	if again, c := ref("pos-1", "svc", 3, 1500); again != later || !c {
		t.Fatalf("refusal in the new window: %d %v, want %d true", again, c, later)
	}
	if seq, c := ref("pos-2", "svc", 3, 1500); seq == later || c {
		t.Fatalf("another device joined the record: %d %v", seq, c)
	}
	recs := listAudit(t, s, AuditFilter{DeviceID: "pos-1", Service: "svc"})
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3: %+v", len(recs), recs)
	}
	r := recs[2]
	if r.Seq != first || r.Count != 50 || r.At != 100 || r.LastAt != 590 || r.Args != nil ||
		r.ArgCount != 8 || len(r.ArgsDigest) != argsDigestHex || r.HasRequestID && !r.Repeat {
		t.Fatalf("coalesced record: %+v", r)
	}
	if recs[0].Count != 2 || recs[1].Count != 1 || recs[1].ArgCount != 0 || recs[1].ArgsDigest != "" {
		t.Fatalf("later records: %+v", recs[:2])
	}
	// An invalid refusal is refused like an invalid record.
	bad := auditRec("pos-1", "", 10)
	if _, _, err := s.AppendRefusal(ctx, bad, 1000); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty service: %v", err)
	}
}

// A pruned refusal record is not coalesced into: the next refusal of its
// key starts a new record.
func contractAuditRefusalPruned(t *testing.T, s Store) {
	ctx := context.Background()
	r := auditRec("pos-1", "svc", 100)
	r.Status = 3
	seq, _, err := s.AppendRefusal(ctx, r, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneAudit(ctx, 101); n != 1 || err != nil {
		t.Fatalf("prune = %d, %v", n, err)
	}
	r.At = 200
	seq2, c, err := s.AppendRefusal(ctx, r, 1<<40)
	if err != nil || c || seq2 == seq {
		t.Fatalf("refusal after prune: %d %v %v (pruned %d)", seq2, c, err, seq)
	}
	if recs := listAudit(t, s, AuditFilter{}); len(recs) != 1 || recs[0].Count != 1 {
		t.Fatalf("after prune: %+v", recs)
	}
}

// TrimAudit keeps the newest keep records, deleting oldest first, with
// their index keys.
func contractAuditTrim(t *testing.T, s Store) {
	ctx := context.Background()
	if n, err := s.TrimAudit(ctx, 5); n != 0 || err != nil {
		t.Fatalf("trim of empty audit = %d, %v", n, err)
	}
	var all []AuditRecord
	for i := range 12 {
		r := auditRec("pos-1", "svc", int64(100+i))
		r.RequestID, r.HasRequestID = uint64(i), true
		all = append(all, appendAudit(t, s, r))
	}
	if n, err := s.TrimAudit(ctx, 20); n != 0 || err != nil {
		t.Fatalf("trim under the cap = %d, %v", n, err)
	}
	if n, err := s.TrimAudit(ctx, 5); n != 7 || err != nil {
		t.Fatalf("trim to 5 = %d, %v", n, err)
	}
	recs := listAudit(t, s, AuditFilter{DeviceID: "pos-1"})
	if len(recs) != 5 || recs[0].Seq != all[11].Seq || recs[4].Seq != all[7].Seq {
		t.Fatalf("after trim: %+v", recs)
	}
	if _, err := s.AuditByRequest(ctx, "pos-1", 6, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("trimmed record still found by request: %v", err)
	}
	if got, err := s.AuditByRequest(ctx, "pos-1", 7, 0); err != nil || got.Seq != all[7].Seq {
		t.Fatalf("kept record by request: %+v, %v", got, err)
	}
	if n, err := s.TrimAudit(ctx, 0); n != 5 || err != nil {
		t.Fatalf("trim to 0 = %d, %v", n, err)
	}
	if recs := listAudit(t, s, AuditFilter{}); len(recs) != 0 {
		t.Fatalf("after trim to 0: %+v", recs)
	}
}

// Pruning a refusal record deletes its "ac/" key with it, so refusal keys
// of devices that stopped refusing do not pile up.
func TestBadgerRefusalKeyPruned(t *testing.T) {
	b := openBadgerDir(t).(*Badger)
	ctx := context.Background()
	for i, dev := range []string{"pos-1", "pos-2", "pos-3"} {
		r := auditRec(dev, "svc", int64(100+i))
		r.Status = 3
		if _, _, err := b.AppendRefusal(ctx, r, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if got := auditKeyCounts(t, b)["ac/"]; got != 3 {
		t.Fatalf("%d refusal keys, want 3", got)
	}
	if n, err := b.TrimAudit(ctx, 1); n != 2 || err != nil {
		t.Fatalf("trim = %d, %v", n, err)
	}
	if got := auditKeyCounts(t, b); got["ac/"] != 1 || got["a/"] != 1 || got["ad/"] != 1 {
		t.Fatalf("keys after trim: %v", got)
	}
}
