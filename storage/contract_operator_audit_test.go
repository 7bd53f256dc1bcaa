package storage

// The OperatorAudit half of the Store contract, run against every
// implementation, plus a Badger reopen test (seq and records survive).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestOperatorAuditContractMemory(t *testing.T) { runOperatorAuditContract(t, openMemory) }
func TestOperatorAuditContractBadgerInMemory(t *testing.T) {
	runOperatorAuditContract(t, openBadgerInMemory)
}
func TestOperatorAuditContractBadgerDir(t *testing.T) { runOperatorAuditContract(t, openBadgerDir) }

func runOperatorAuditContract(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"AppendList", contractOpAppendList},
		{"Filters", contractOpFilters},
		{"Paging", contractOpPaging},
		{"Retention", contractOpRetention},
		{"Invalid", contractOpInvalid},
		{"Concurrent", contractOpConcurrent},
		{"Closed", contractOpClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func opRec(op, method, path string, status int, at int64, targets ...string) OperatorRecord {
	return OperatorRecord{At: at, Operator: op, Scope: "operator", Remote: "10.0.0.9:5555", Method: method, Path: path,
		Route: method + " " + path, Targets: targets, Status: status}
}

func appendOps(t *testing.T, s Store, recs ...OperatorRecord) {
	t.Helper()
	for _, r := range recs {
		if _, err := s.AppendOperator(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func contractOpAppendList(t *testing.T, s Store) {
	ctx := context.Background()
	in := opRec("alice", "POST", "/v1/devices/d1/block", 204, 1000, "d1")
	in.Seq = 99 // ignored
	seq1, err := s.AppendOperator(ctx, in)
	if err != nil || seq1 == 0 {
		t.Fatalf("append: %d %v", seq1, err)
	}
	seq2, _ := s.AppendOperator(ctx, opRec("bob", "PUT", "/v1/devices/d2/key", 400, 2000, "d2"))
	if seq2 <= seq1 {
		t.Fatalf("seq %d after %d", seq2, seq1)
	}
	got, next, err := s.ListOperator(ctx, OperatorFilter{})
	if err != nil || next != 0 || len(got) != 2 {
		t.Fatalf("list: %v next %d err %v", got, next, err)
	}
	if got[0].Seq != seq2 || got[1].Seq != seq1 || got[1].Operator != "alice" || got[1].Targets[0] != "d1" ||
		got[1].Status != 204 || got[1].Remote != "10.0.0.9:5555" || got[1].At != 1000 || got[1].Scope != "operator" {
		t.Fatalf("records: %+v", got)
	}
	got[1].Targets[0] = "changed"
	again, _, _ := s.ListOperator(ctx, OperatorFilter{})
	if again[1].Targets[0] != "d1" {
		t.Fatal("a listed record shares memory with the store")
	}
}

func contractOpFilters(t *testing.T, s Store) {
	ctx := context.Background()
	appendOps(t, s,
		opRec("alice", "POST", "/v1/devices/d1/block", 204, 1000, "d1"),
		opRec("bob", "POST", "/v1/services/spool/restart", 200, 2000, "spool"),
		opRec("alice", "PUT", "/v1/devices/d2/key", 400, 3000, "d2"),
		opRec("alice", "POST", "/v1/devices/bulk", 200, 4000, "d1", "d2", "d3"),
	)
	yes, no := true, false
	for _, tc := range []struct {
		f    OperatorFilter
		want []int64 // At of the records, newest first
	}{
		{OperatorFilter{Operator: "alice"}, []int64{4000, 3000, 1000}},
		{OperatorFilter{Method: "PUT"}, []int64{3000}},
		{OperatorFilter{Target: "d1"}, []int64{4000, 1000}},
		{OperatorFilter{Target: "d"}, nil},
		{OperatorFilter{PathPrefix: "/v1/services/"}, []int64{2000}},
		{OperatorFilter{Failed: &yes}, []int64{3000}},
		{OperatorFilter{Failed: &no, Operator: "alice"}, []int64{4000, 1000}},
		{OperatorFilter{Since: 2000, Until: 4000}, []int64{3000, 2000}},
		{OperatorFilter{Operator: "nobody"}, nil},
	} {
		got, _, err := s.ListOperator(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var at []int64
		for _, r := range got {
			at = append(at, r.At)
		}
		if fmt.Sprint(at) != fmt.Sprint(tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.f, at, tc.want)
		}
	}
}

func contractOpPaging(t *testing.T, s Store) {
	ctx := context.Background()
	for i := range 25 {
		op := "alice"
		if i%2 == 1 {
			op = "bob"
		}
		appendOps(t, s, opRec(op, "POST", fmt.Sprintf("/v1/devices/d%d/block", i), 204, int64(i)))
	}
	var seen []int64
	f := OperatorFilter{Operator: "alice", Limit: 5}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		got, next, err := s.ListOperator(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			seen = append(seen, r.At)
		}
		if next == 0 {
			break
		}
		f.Before = next
	}
	if len(seen) != 13 || seen[0] != 24 || seen[12] != 0 {
		t.Fatalf("paged alice's records: %v", seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("not newest first or repeated: %v", seen)
		}
	}
}

func contractOpRetention(t *testing.T, s Store) {
	ctx := context.Background()
	s.(interface{ SetOperatorKeep(int) }).SetOperatorKeep(10)
	var last uint64
	for i := range 25 {
		seq, err := s.AppendOperator(ctx, opRec("alice", "POST", "/v1/x", 200, int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	got, _, _ := s.ListOperator(ctx, OperatorFilter{Limit: 100})
	if len(got) != 10 || got[0].Seq != last || got[9].At != 15 {
		t.Fatalf("after 25 appends with keep 10: %d records, newest %+v", len(got), got[0])
	}
	// Shrinking the retention takes effect at the next append.
	s.(interface{ SetOperatorKeep(int) }).SetOperatorKeep(3)
	appendOps(t, s, opRec("alice", "POST", "/v1/x", 200, 25))
	got, _, _ = s.ListOperator(ctx, OperatorFilter{Limit: 100})
	if len(got) != 3 || got[2].At != 23 {
		t.Fatalf("after shrinking to 3: %d records, oldest %+v", len(got), got[len(got)-1])
	}
}

func contractOpInvalid(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.AppendOperator(ctx, OperatorRecord{Path: "/v1/x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no method: %v", err)
	}
	long := opRec(strings.Repeat("é", 2000), "POST", "/v1/x", 200, 1)
	for i := range MaxOperatorTargets + 10 {
		long.Targets = append(long.Targets, fmt.Sprint("t", i))
	}
	long.Message = "bad \xff byte"
	if _, err := s.AppendOperator(ctx, long); err != nil {
		t.Fatal(err)
	}
	got, _, _ := s.ListOperator(ctx, OperatorFilter{})
	r := got[0]
	if len(r.Operator) > maxOperatorField || len(r.Targets) != MaxOperatorTargets || r.TargetCount != MaxOperatorTargets+10 ||
		r.Message != "bad \uFFFD byte" {
		t.Fatalf("normalised: operator %d bytes, %d targets of %d, message %q", len(r.Operator), len(r.Targets), r.TargetCount, r.Message)
	}
}

func contractOpConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	seqs := make(chan uint64, 80)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				seq, err := s.AppendOperator(ctx, opRec(fmt.Sprint("w", w), "POST", "/v1/x", 200, int64(i)))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d assigned twice", s)
		}
		seen[s] = true
	}
	got, _, _ := s.ListOperator(ctx, OperatorFilter{Limit: 1000})
	if len(got) != 80 {
		t.Fatalf("%d records, want 80", len(got))
	}
}

func contractOpClosed(t *testing.T, s Store) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOperator(context.Background(), opRec("a", "POST", "/v1/x", 200, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, _, err := s.ListOperator(context.Background(), OperatorFilter{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("list after close: %v", err)
	}
}

// TestOperatorAuditBadgerReopen: records and the seq survive a reopen.
func TestOperatorAuditBadgerReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := b.AppendOperator(ctx, opRec("alice", "POST", "/v1/a", 200, 1))
	second, _ := b.AppendOperator(ctx, opRec("alice", "POST", "/v1/b", 200, 2))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	third, err := b.AppendOperator(ctx, opRec("bob", "POST", "/v1/c", 200, 3))
	if err != nil || third != second+1 || second != first+1 {
		t.Fatalf("seqs %d %d %d err %v", first, second, third, err)
	}
	got, _, _ := b.ListOperator(ctx, OperatorFilter{})
	if len(got) != 3 || got[2].Path != "/v1/a" {
		t.Fatalf("after reopen: %+v", got)
	}
}
