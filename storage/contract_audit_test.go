package storage

// This file is the Audit half of the Store contract, run against every
// implementation like runRegistryContract, plus the Badger-only audit
// tests (seq across reopen, index keys on disk, corrupt values).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
)

func TestAuditContractMemory(t *testing.T)         { runAuditContract(t, openMemory) }
func TestAuditContractBadgerInMemory(t *testing.T) { runAuditContract(t, openBadgerInMemory) }
func TestAuditContractBadgerDir(t *testing.T)      { runAuditContract(t, openBadgerDir) }

// runAuditContract runs the shared Audit contract against open, which
// returns a fresh, empty store per call.
func runAuditContract(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"AppendList", contractAuditAppendList},
		{"Filters", contractAuditFilters},
		{"Paging", contractAuditPaging},
		{"LimitsAndBigPrune", contractAuditLimitsAndBigPrune},
		{"ByRequest", contractAuditByRequest},
		{"Prune", contractAuditPrune},
		{"PruneStopsAtFirstKept", contractAuditPruneStops},
		{"Truncation", contractAuditTruncation},
		{"Invalid", contractAuditInvalid},
		{"Copies", contractAuditCopies},
		{"Concurrent", contractAuditConcurrent},
		{"Context", contractAuditContext},
		{"Closed", contractAuditClosed},
		{"RepeatNotIndexed", contractAuditRepeatNotIndexed},
		{"RefusalCoalesced", contractAuditRefusalCoalesced},
		{"RefusalPruned", contractAuditRefusalPruned},
		{"Trim", contractAuditTrim},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// auditRec returns a full record for device dev and service svc at at.
func auditRec(dev, svc string, at int64) AuditRecord {
	r := AuditRecord{
		At: at, DurationMs: 12, Source: SourceTerminal, DeviceID: dev, SessionID: 7,
		Remote: "10.0.0.1:4000", Service: svc, Op: "start", Args: []string{"a", "b c"},
		Status: 0, State: "running", PID: 4242, ExitCode: 0, SinceMs: at - 5, Output: "ok\n",
	}
	if dev == "" {
		r.Source, r.SessionID, r.Args = SourceOperator, 0, nil
	}
	return r
}

// appendAudit appends r and returns it as the store should return it.
func appendAudit(t *testing.T, s Audit, r AuditRecord) AuditRecord {
	t.Helper()
	seq, err := s.AppendAudit(context.Background(), r)
	if err != nil {
		t.Fatalf("AppendAudit(%+v): %v", r, err)
	}
	r.Seq = seq
	return r
}

// listAudit returns one page, failing the test on error.
func listAudit(t *testing.T, s Audit, f AuditFilter) []AuditRecord {
	t.Helper()
	recs, err := s.ListAudit(context.Background(), f)
	if err != nil {
		t.Fatalf("ListAudit(%+v): %v", f, err)
	}
	if recs == nil {
		t.Fatalf("ListAudit(%+v) returned nil, want a non-nil slice", f)
	}
	return recs
}

// listAuditAll walks every page of f with Before and checks page
// invariants on the way.
func listAuditAll(t *testing.T, s Audit, f AuditFilter) []AuditRecord {
	t.Helper()
	var all []AuditRecord
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatal("ListAudit paging does not terminate")
		}
		recs := listAudit(t, s, f)
		if len(recs) > listLimit(f.Limit) {
			t.Fatalf("page of %d over limit %d", len(recs), f.Limit)
		}
		for i, r := range recs {
			if f.Before != 0 && r.Seq >= f.Before {
				t.Fatalf("seq %d not before %d", r.Seq, f.Before)
			}
			if i > 0 && r.Seq >= recs[i-1].Seq {
				t.Fatalf("page not newest first: seq %d after %d", r.Seq, recs[i-1].Seq)
			}
			if (f.DeviceID != "" && r.DeviceID != f.DeviceID) || (f.Service != "" && r.Service != f.Service) {
				t.Fatalf("filter %+v returned %+v", f, r)
			}
		}
		all = append(all, recs...)
		if len(recs) < listLimit(f.Limit) {
			return all
		}
		f.Before = recs[len(recs)-1].Seq
	}
}

// newestFirst returns recs reversed, keeping those keep accepts.
func newestFirst(recs []AuditRecord, keep func(r *AuditRecord) bool) []AuditRecord {
	out := []AuditRecord{}
	for i := len(recs) - 1; i >= 0; i-- {
		if keep == nil || keep(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	return out
}

func wantAudit(t *testing.T, what string, got, want []AuditRecord) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: %d records, want %d\n got %+v\nwant %+v", what, len(got), len(want), got, want)
	}
}

func contractAuditAppendList(t *testing.T, s Store) {
	wantAudit(t, "empty store", listAudit(t, s, AuditFilter{}), nil)
	var want []AuditRecord
	var last uint64
	for i := range 5 {
		r := auditRec(fmt.Sprintf("pos-%d", i%2), "spooler", int64(1000+i))
		r.Seq = 999 // ignored: the store assigns it
		if i == 3 {
			r = auditRec("", "spooler", 1003) // an operator request: no device
			r.Status, r.Message, r.ExitCode = 13, "timed out", -1
		}
		got := appendAudit(t, s, r)
		if got.Seq <= last {
			t.Fatalf("seq %d after %d", got.Seq, last)
		}
		last = got.Seq
		want = append(want, got)
	}
	wantAudit(t, "list", listAudit(t, s, AuditFilter{}), newestFirst(want, nil))
	// Empty Args come back nil.
	r := auditRec("pos-0", "spooler", 2000)
	r.Args = []string{}
	got := appendAudit(t, s, r)
	got.Args = nil
	if recs := listAudit(t, s, AuditFilter{Limit: 1}); !reflect.DeepEqual(recs, []AuditRecord{got}) {
		t.Fatalf("empty args: %+v", recs)
	}
}

func contractAuditFilters(t *testing.T, s Store) {
	// Names that are prefixes of one another must not mix.
	devs := []string{"pos", "pos1", "pos-1", ""}
	svcs := []string{"echo", "echo2", "e"}
	var all []AuditRecord
	at := int64(1)
	for round := range 3 {
		for _, d := range devs {
			for _, sv := range svcs {
				if (round+len(d)+len(sv))%4 == 0 {
					continue // uneven counts
				}
				all = append(all, appendAudit(t, s, auditRec(d, sv, at)))
				at++
			}
		}
	}
	for _, d := range append(devs, "nope") {
		for _, sv := range append(svcs, "", "nope") {
			f := AuditFilter{DeviceID: d, Service: sv, Limit: MaxListLimit}
			want := newestFirst(all, func(r *AuditRecord) bool {
				return (d == "" || r.DeviceID == d) && (sv == "" || r.Service == sv)
			})
			wantAudit(t, fmt.Sprintf("filter %q/%q", d, sv), listAudit(t, s, f), want)
		}
	}
	// Filter values no record can have select nothing.
	for _, f := range []AuditFilter{
		{DeviceID: "pos\x00"}, {Service: "echo\x00"}, {DeviceID: "pos", Service: "\x00"},
		{Service: strings.Repeat("e", MaxAuditService+1)}, {DeviceID: strings.Repeat("p", MaxIDLen+1)},
	} {
		wantAudit(t, fmt.Sprintf("unmatchable filter %+v", f), listAudit(t, s, f), nil)
	}
}

func contractAuditPaging(t *testing.T, s Store) {
	var all []AuditRecord
	for i := range 23 {
		all = append(all, appendAudit(t, s, auditRec(fmt.Sprintf("d%d", i%3), fmt.Sprintf("s%d", i%2), int64(i))))
	}
	for _, limit := range []int{1, 2, 5, 7, 22, 23, 24, 0} {
		for _, f := range []AuditFilter{{}, {DeviceID: "d1"}, {Service: "s0"}, {DeviceID: "d2", Service: "s1"}} {
			f.Limit = limit
			want := newestFirst(all, func(r *AuditRecord) bool {
				return (f.DeviceID == "" || r.DeviceID == f.DeviceID) && (f.Service == "" || r.Service == f.Service)
			})
			wantAudit(t, fmt.Sprintf("paged %+v", f), listAuditAll(t, s, f), want)
		}
	}
	// Before in the middle, on a gap, past the end, and 1 (nothing older).
	mid := all[10].Seq
	wantAudit(t, "before mid", listAudit(t, s, AuditFilter{Before: mid}), newestFirst(all[:10], nil))
	wantAudit(t, "before mid, d1", listAudit(t, s, AuditFilter{Before: mid, DeviceID: "d1"}),
		newestFirst(all[:10], func(r *AuditRecord) bool { return r.DeviceID == "d1" }))
	wantAudit(t, "before past the end", listAudit(t, s, AuditFilter{Before: all[22].Seq + 100}), newestFirst(all, nil))
	wantAudit(t, "before 1", listAudit(t, s, AuditFilter{Before: 1}), nil)
	wantAudit(t, "before first", listAudit(t, s, AuditFilter{Before: all[0].Seq, Service: "s0"}), nil)
}

func contractAuditLimitsAndBigPrune(t *testing.T, s Store) {
	const n = MaxListLimit + 300 // more than one prune chunk too
	var all []AuditRecord
	for i := range n {
		all = append(all, appendAudit(t, s, auditRec("big", "svc", int64(i))))
	}
	for _, c := range []struct{ limit, want int }{
		{0, DefaultListLimit}, {-1, DefaultListLimit}, {1, 1}, {MaxListLimit, MaxListLimit}, {MaxListLimit + 1, MaxListLimit}, {1 << 30, MaxListLimit},
	} {
		for _, f := range []AuditFilter{{Limit: c.limit}, {Limit: c.limit, DeviceID: "big"}, {Limit: c.limit, Service: "svc"}} {
			recs := listAudit(t, s, f)
			wantAudit(t, fmt.Sprintf("limit %d", c.limit), recs, newestFirst(all, nil)[:c.want])
		}
	}
	// Prune all but the newest 100, in more than one chunk.
	got, err := s.PruneAudit(context.Background(), int64(n-100))
	if err != nil || got != n-100 {
		t.Fatalf("PruneAudit = %d, %v; want %d", got, err, n-100)
	}
	for _, f := range []AuditFilter{{}, {DeviceID: "big"}, {Service: "svc"}} {
		f.Limit = MaxListLimit
		wantAudit(t, fmt.Sprintf("after prune %+v", f), listAudit(t, s, f), newestFirst(all[n-100:], nil))
	}
}

func contractAuditByRequest(t *testing.T, s Store) {
	ctx := context.Background()
	withReq := func(dev, svc string, at int64, id uint64) AuditRecord {
		r := auditRec(dev, svc, at)
		r.RequestID, r.HasRequestID = id, true
		return r
	}
	first := appendAudit(t, s, withReq("pos-1", "echo", 100, 5))
	appendAudit(t, s, withReq("pos-2", "echo", 110, 5))
	noID := auditRec("pos-1", "echo", 120)
	noID.RequestID = 6 // not indexed without HasRequestID
	appendAudit(t, s, noID)
	got, err := s.AuditByRequest(ctx, "pos-1", 5, 0)
	if err != nil || !reflect.DeepEqual(got, first) {
		t.Fatalf("AuditByRequest = %+v, %v; want %+v", got, err, first)
	}
	// The newest record of a (device, request id) wins.
	again := withReq("pos-1", "stop-it", 130, 5)
	again.Op = "stop"
	again = appendAudit(t, s, again)
	if got, err := s.AuditByRequest(ctx, "pos-1", 5, 0); err != nil || !reflect.DeepEqual(got, again) {
		t.Fatalf("AuditByRequest after repeat = %+v, %v; want %+v", got, err, again)
	}
	// since cuts off by At, inclusively.
	if got, err := s.AuditByRequest(ctx, "pos-1", 5, 130); err != nil || got.Seq != again.Seq {
		t.Fatalf("since == At: %+v, %v", got, err)
	}
	if _, err := s.AuditByRequest(ctx, "pos-1", 5, 131); !errors.Is(err, ErrNotFound) {
		t.Fatalf("since past At: %v", err)
	}
	for _, c := range []struct {
		dev string
		id  uint64
	}{{"pos-1", 6}, {"pos-3", 5}, {"pos", 5}, {"", 5}, {"pos-1\x00", 5}, {strings.Repeat("x", MaxIDLen+1), 5}} {
		if _, err := s.AuditByRequest(ctx, c.dev, c.id, 0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("AuditByRequest(%q, %d) = %v, want ErrNotFound", c.dev, c.id, err)
		}
	}
	// A request id of a record without a device (not sent by terminals,
	// but allowed) is indexed under "".
	op := withReq("", "echo", 140, 9)
	op = appendAudit(t, s, op)
	if got, err := s.AuditByRequest(ctx, "", 9, 0); err != nil || !reflect.DeepEqual(got, op) {
		t.Fatalf("AuditByRequest of deviceless record = %+v, %v", got, err)
	}
}

func contractAuditPrune(t *testing.T, s Store) {
	ctx := context.Background()
	withReq := func(dev string, at int64, id uint64) AuditRecord {
		r := auditRec(dev, "svc-"+dev, at)
		r.RequestID, r.HasRequestID = id, true
		return r
	}
	if n, err := s.PruneAudit(ctx, 1<<40); err != nil || n != 0 {
		t.Fatalf("prune of empty audit = %d, %v", n, err)
	}
	appendAudit(t, s, withReq("a", 10, 1))          // pruned, its request id later reused
	old := appendAudit(t, s, withReq("b", 20, 2))   // pruned with its request id
	appendAudit(t, s, auditRec("", "x", 30))        // pruned, no device
	keep1 := appendAudit(t, s, withReq("a", 40, 1)) // takes over (a, 1)
	keep2 := appendAudit(t, s, withReq("b", 50, 3))
	keep3 := appendAudit(t, s, auditRec("", "x", 60))
	n, err := s.PruneAudit(ctx, 40)
	if err != nil || n != 3 {
		t.Fatalf("PruneAudit(40) = %d, %v; want 3", n, err)
	}
	kept := []AuditRecord{keep1, keep2, keep3}
	wantAudit(t, "after prune", listAudit(t, s, AuditFilter{}), newestFirst(kept, nil))
	wantAudit(t, "device a", listAudit(t, s, AuditFilter{DeviceID: "a"}), []AuditRecord{keep1})
	wantAudit(t, "device b", listAudit(t, s, AuditFilter{DeviceID: "b"}), []AuditRecord{keep2})
	wantAudit(t, "service x", listAudit(t, s, AuditFilter{Service: "x"}), []AuditRecord{keep3})
	wantAudit(t, "device b service svc-b, before", listAudit(t, s, AuditFilter{DeviceID: "b", Service: "svc-b", Before: keep2.Seq}), nil)
	if _, err := s.AuditByRequest(ctx, "b", old.RequestID, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AuditByRequest of a pruned record: %v", err)
	}
	// (a, 1) pointed at the newer record, so pruning the older kept it.
	if got, err := s.AuditByRequest(ctx, "a", 1, 0); err != nil || !reflect.DeepEqual(got, keep1) {
		t.Fatalf("AuditByRequest after pruning an older repeat = %+v, %v", got, err)
	}
	// Pruning again deletes nothing; pruning everything leaves nothing, and
	// seqs go on after it.
	if n, err := s.PruneAudit(ctx, 40); err != nil || n != 0 {
		t.Fatalf("second PruneAudit(40) = %d, %v", n, err)
	}
	if n, err := s.PruneAudit(ctx, 61); err != nil || n != 3 {
		t.Fatalf("PruneAudit(61) = %d, %v", n, err)
	}
	wantAudit(t, "all pruned", listAudit(t, s, AuditFilter{}), nil)
	for _, f := range []AuditFilter{{DeviceID: "a"}, {DeviceID: "b"}, {Service: "x"}, {Service: "svc-a"}} {
		wantAudit(t, fmt.Sprintf("all pruned %+v", f), listAudit(t, s, f), nil)
	}
	if _, err := s.AuditByRequest(ctx, "a", 1, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AuditByRequest after pruning all: %v", err)
	}
	if r := appendAudit(t, s, auditRec("a", "x", 70)); r.Seq <= keep3.Seq {
		t.Fatalf("seq %d after prune, want > %d", r.Seq, keep3.Seq)
	}
}

func contractAuditPruneStops(t *testing.T, s Store) {
	// A slow operation's record is appended after quicker later ones, so
	// At is not quite in seq order. Prune stops at the first record it
	// keeps; the older one behind it waits for a later prune.
	appendAudit(t, s, auditRec("d", "s", 10))
	b := appendAudit(t, s, auditRec("d", "s", 30))
	c := appendAudit(t, s, auditRec("d", "s", 20))
	if n, err := pruneAudit(s, 25); err != nil || n != 1 {
		t.Fatalf("PruneAudit(25) = %d, %v; want 1", n, err)
	}
	wantAudit(t, "after prune", listAudit(t, s, AuditFilter{}), []AuditRecord{c, b})
	if n, err := pruneAudit(s, 31); err != nil || n != 2 {
		t.Fatalf("PruneAudit(31) = %d, %v; want 2", n, err)
	}
}

// pruneAudit calls PruneAudit with a background context.
func pruneAudit(s Audit, before int64) (int, error) {
	return s.PruneAudit(context.Background(), before)
}

func contractAuditTruncation(t *testing.T, s Store) {
	// "é" is 2 bytes and "€" 3: with an odd or a non-multiple-of-3 prefix
	// the 1024-byte cut falls inside a rune.
	for _, c := range []struct {
		name, text string
		wantLen    int
	}{
		{"ascii", strings.Repeat("x", 2000), 1024},
		{"2-byte", "x" + strings.Repeat("é", 1000), 1023},
		{"3-byte", "x" + strings.Repeat("€", 1000), 1024},
		{"3-byte-shifted", strings.Repeat("€", 1000), 1023},
		{"exact", strings.Repeat("x", 1024), 1024},
		{"short", "ok", 2},
	} {
		r := auditRec("pos", "svc", 1)
		r.Output, r.Message = c.text, c.text
		got := appendAudit(t, s, r)
		stored := listAudit(t, s, AuditFilter{Limit: 1})[0]
		for what, v := range map[string]string{"output": stored.Output, "message": stored.Message} {
			if len(v) != c.wantLen || !utf8.ValidString(v) || !strings.HasPrefix(c.text, v) {
				t.Fatalf("%s %s: %d bytes (valid %v), want a %d-byte prefix", c.name, what, len(v), utf8.ValidString(v), c.wantLen)
			}
		}
		if stored.Seq != got.Seq {
			t.Fatalf("%s: listed seq %d, appended %d", c.name, stored.Seq, got.Seq)
		}
	}
	// Invalid UTF-8 in free text becomes U+FFFD (and the cap still holds).
	r := auditRec("pos", "svc", 1)
	r.Output = strings.Repeat("\xff", 2000)
	r.Message = "bad \xc3 byte"
	r.Args = []string{"\xfe"}
	appendAudit(t, s, r)
	stored := listAudit(t, s, AuditFilter{Limit: 1})[0]
	if stored.Output != "\uFFFD" || stored.Message != "bad \uFFFD byte" || !reflect.DeepEqual(stored.Args, []string{"\uFFFD"}) {
		t.Fatalf("invalid UTF-8 stored as %q, %q, %q", stored.Output, stored.Message, stored.Args)
	}
}

func contractAuditInvalid(t *testing.T, s Store) {
	ctx := context.Background()
	ok := auditRec("pos", "svc", 1)
	for name, mod := range map[string]func(r *AuditRecord){
		"empty service":      func(r *AuditRecord) { r.Service = "" },
		"empty op":           func(r *AuditRecord) { r.Op = "" },
		"long service":       func(r *AuditRecord) { r.Service = strings.Repeat("s", MaxAuditService+1) },
		"long device":        func(r *AuditRecord) { r.DeviceID = strings.Repeat("d", MaxIDLen+1) },
		"NUL in service":     func(r *AuditRecord) { r.Service = "s\x00" },
		"NUL in device":      func(r *AuditRecord) { r.DeviceID = "\x00pos" },
		"non-UTF-8 service":  func(r *AuditRecord) { r.Service = "s\xff" },
		"non-UTF-8 device":   func(r *AuditRecord) { r.DeviceID = "p\xff" },
		"oversized args":     func(r *AuditRecord) { r.Args = []string{strings.Repeat("a", maxAuditText)} },
		"NUL device with id": func(r *AuditRecord) { r.DeviceID, r.HasRequestID = "a\x00b", true },
	} {
		r := ok
		mod(&r)
		if _, err := s.AppendAudit(ctx, r); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", name, err)
		}
	}
	wantAudit(t, "after invalid appends", listAudit(t, s, AuditFilter{}), nil)
	// The longest valid names work.
	r := ok
	r.DeviceID, r.Service = strings.Repeat("d", MaxIDLen), strings.Repeat("s", MaxAuditService)
	r = appendAudit(t, s, r)
	wantAudit(t, "longest names", listAudit(t, s, AuditFilter{DeviceID: r.DeviceID, Service: r.Service}), []AuditRecord{r})
}

func contractAuditCopies(t *testing.T, s Store) {
	ctx := context.Background()
	r := auditRec("pos", "svc", 1)
	r.HasRequestID, r.RequestID = true, 1
	args := []string{"one", "two"}
	r.Args = args
	appendAudit(t, s, r)
	args[0] = "changed" // the caller's slice is copied in
	recs := listAudit(t, s, AuditFilter{})
	if recs[0].Args[0] != "one" {
		t.Fatal("store kept the caller's args")
	}
	recs[0].Args[1] = "changed" // and copied out
	if got, err := s.AuditByRequest(ctx, "pos", 1, 0); err != nil || !reflect.DeepEqual(got.Args, []string{"one", "two"}) {
		t.Fatalf("after mutating a listed record: %+v, %v", got, err)
	}
	got, _ := s.AuditByRequest(ctx, "pos", 1, 0)
	got.Args[0] = "changed"
	if recs := listAudit(t, s, AuditFilter{}); !reflect.DeepEqual(recs[0].Args, []string{"one", "two"}) {
		t.Fatalf("after mutating a looked-up record: %q", recs[0].Args)
	}
}

func contractAuditConcurrent(t *testing.T, s Store) {
	const writers, each = 8, 40
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs = make(map[uint64]bool)
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := auditRec(fmt.Sprintf("w%d", w), "svc", int64(i))
				r.HasRequestID, r.RequestID = true, uint64(i)
				seq, err := s.AppendAudit(context.Background(), r)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seqs[seq] {
					t.Errorf("seq %d assigned twice", seq)
				}
				seqs[seq] = true
				mu.Unlock()
				if i%10 == 0 {
					if _, err := s.ListAudit(context.Background(), AuditFilter{DeviceID: fmt.Sprintf("w%d", w)}); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	// Concurrent prunes (of nothing: every At >= 0) interleave with appends.
	wg.Go(func() {
		for range 20 {
			if _, err := s.PruneAudit(context.Background(), -1); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	all := listAuditAll(t, s, AuditFilter{Limit: 77})
	if len(all) != writers*each || len(seqs) != writers*each {
		t.Fatalf("%d records listed, %d seqs, want %d", len(all), len(seqs), writers*each)
	}
	for w := range writers {
		if got := listAuditAll(t, s, AuditFilter{DeviceID: fmt.Sprintf("w%d", w), Limit: 9}); len(got) != each {
			t.Fatalf("writer %d: %d records", w, len(got))
		}
	}
}

func contractAuditContext(t *testing.T, s Store) {
	appendAudit(t, s, auditRec("pos", "svc", 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AppendAudit(ctx, auditRec("pos", "svc", 2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendAudit with a cancelled context: %v", err)
	}
	if _, err := s.ListAudit(ctx, AuditFilter{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListAudit with a cancelled context: %v", err)
	}
	if _, err := s.AuditByRequest(ctx, "pos", 1, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("AuditByRequest with a cancelled context: %v", err)
	}
	if _, err := s.PruneAudit(ctx, 100); !errors.Is(err, context.Canceled) {
		t.Fatalf("PruneAudit with a cancelled context: %v", err)
	}
	if recs := listAudit(t, s, AuditFilter{}); len(recs) != 1 {
		t.Fatalf("%d records after cancelled calls, want 1", len(recs))
	}
}

func contractAuditClosed(t *testing.T, s Store) {
	ctx := context.Background()
	appendAudit(t, s, auditRec("pos", "svc", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, auditRec("pos", "svc", 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendAudit after Close: %v", err)
	}
	if _, err := s.ListAudit(ctx, AuditFilter{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListAudit after Close: %v", err)
	}
	if _, err := s.AuditByRequest(ctx, "pos", 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("AuditByRequest after Close: %v", err)
	}
	if _, err := s.PruneAudit(ctx, 100); !errors.Is(err, ErrClosed) {
		t.Fatalf("PruneAudit after Close: %v", err)
	}
}

// Badger-only audit tests.

func TestBadgerAuditSeqSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *Badger {
		b, err := OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open()
	var want []AuditRecord
	for i := range 3 {
		want = append(want, appendAudit(t, b, auditRec("pos", "svc", int64(i))))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = open()
	r := appendAudit(t, b, auditRec("pos", "svc", 3))
	if r.Seq <= want[2].Seq {
		t.Fatalf("seq after reopen %d, want > %d", r.Seq, want[2].Seq)
	}
	want = append(want, r)
	wantAudit(t, "after reopen", listAudit(t, b, AuditFilter{DeviceID: "pos"}), newestFirst(want, nil))
	// Prune everything: the counter key still carries the seq on.
	if n, err := b.PruneAudit(ctx, 100); err != nil || n != 4 {
		t.Fatalf("PruneAudit = %d, %v", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = open()
	defer b.Close()
	if r2 := appendAudit(t, b, auditRec("pos", "svc", 5)); r2.Seq <= r.Seq {
		t.Fatalf("seq after prune-all and reopen %d, want > %d", r2.Seq, r.Seq)
	}
}

// auditKeyCounts counts the keys under each audit prefix.
func auditKeyCounts(t *testing.T, b *Badger) map[string]int {
	t.Helper()
	counts := map[string]int{}
	err := b.DB().View(func(txn *badger.Txn) error {
		for _, p := range [][]byte{auditPrefix, auditDevPrefix, auditSvcPrefix, auditReqPrefix, auditRefPrefix} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
			for it.Rewind(); it.Valid(); it.Next() {
				counts[string(p)]++
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func TestBadgerAuditIndexKeys(t *testing.T) {
	b := openBadgerInMemory(t).(*Badger)
	for i := range 10 {
		r := auditRec(fmt.Sprintf("d%d", i%2), "svc", int64(i))
		if i%5 == 0 {
			r.DeviceID = "" // no "ad/" key
		}
		r.HasRequestID, r.RequestID = i%2 == 0, uint64(i%4) // d0: ids 0 and 2 repeat
		appendAudit(t, b, r)
	}
	// 10 records, 8 with a device (i = 0 and 5 have none), 10 service
	// keys; request ids of even i: ("", 0), ("d0", 2), ("d0", 0),
	// ("d0", 2), ("d0", 0) → 3 distinct keys, the newest record winning.
	want := map[string]int{"a/": 10, "ad/": 8, "as/": 10, "ar/": 3}
	if got := auditKeyCounts(t, b); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if n, err := b.PruneAudit(context.Background(), 10); err != nil || n != 10 {
		t.Fatalf("PruneAudit = %d, %v", n, err)
	}
	if got := auditKeyCounts(t, b); len(got) != 0 {
		t.Fatalf("keys left after pruning everything: %v", got)
	}
}

func TestBadgerAuditCorruptAndDangling(t *testing.T) {
	ctx := context.Background()
	b := openBadgerInMemory(t).(*Badger)
	r := auditRec("pos", "svc", 1)
	r.HasRequestID, r.RequestID = true, 1
	bad := appendAudit(t, b, r)
	r.RequestID = 2
	gone := appendAudit(t, b, r)
	// A record whose value does not decode, and one whose record is gone
	// but whose index keys remain (an interrupted prune).
	err := b.DB().Update(func(txn *badger.Txn) error {
		if err := txn.Set(auditKey(bad.Seq), []byte{auditV1, '{'}); err != nil {
			return err
		}
		return txn.Delete(auditKey(gone.Seq))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AuditByRequest(ctx, "pos", 2, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AuditByRequest of a dangling index key: %v", err)
	}
	if _, err := b.AuditByRequest(ctx, "pos", 1, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("AuditByRequest of a corrupt record: %v", err)
	}
	for _, f := range []AuditFilter{{}, {DeviceID: "pos"}, {Service: "svc"}} {
		if _, err := b.ListAudit(ctx, f); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ListAudit(%+v) over a corrupt record: %v", f, err)
		}
	}
	if _, err := b.PruneAudit(ctx, 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("PruneAudit over a corrupt record: %v", err)
	}
	err = b.DB().Update(func(txn *badger.Txn) error { return txn.Set(auditKey(bad.Seq), []byte{9}) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ListAudit(ctx, AuditFilter{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ListAudit over an unknown encoding: %v", err)
	}
	// The dangling index keys are skipped once the corrupt one is gone.
	err = b.DB().Update(func(txn *badger.Txn) error { return txn.Delete(auditKey(bad.Seq)) })
	if err != nil {
		t.Fatal(err)
	}
	wantAudit(t, "dangling only", listAudit(t, b, AuditFilter{DeviceID: "pos"}), nil)
}

func TestBadgerAuditBackupRestore(t *testing.T) {
	ctx := context.Background()
	src, dst := openBadgerInMemory(t).(*Badger), openBadgerInMemory(t).(*Badger)
	var want []AuditRecord
	for i := range 3 {
		r := auditRec("pos", "svc", int64(i))
		r.HasRequestID, r.RequestID = true, uint64(i)
		want = append(want, appendAudit(t, src, r))
	}
	var buf bytes.Buffer
	if _, err := src.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	wantAudit(t, "restored", listAudit(t, dst, AuditFilter{DeviceID: "pos"}), newestFirst(want, nil))
	if got, err := dst.AuditByRequest(ctx, "pos", 1, 0); err != nil || !reflect.DeepEqual(got, want[1]) {
		t.Fatalf("restored AuditByRequest = %+v, %v", got, err)
	}
	if r := appendAudit(t, dst, auditRec("pos", "svc", 9)); r.Seq <= want[2].Seq {
		t.Fatalf("seq after restore %d, want > %d", r.Seq, want[2].Seq)
	}
}

// Kill -9 plumbing: helperWrite calls helperAppendAudit last, and
// TestBadgerSurvivesKill9 checks with checkHelperAudit.

// helperAuditRecords is how many audit records the kill -9 child appends.
const helperAuditRecords = 200

// helperAuditRec is the child's i-th audit record.
func helperAuditRec(i int) AuditRecord {
	r := auditRec(fmt.Sprintf("k9-%03d", i%7), fmt.Sprintf("svc-%d", i%3), int64(10000+i))
	r.HasRequestID, r.RequestID = true, uint64(i)
	r.Output = strings.Repeat("o", i)
	return r
}

// helperAppendAudit appends the child's audit records one by one; the
// parent kills the child as soon as the last AppendAudit has returned.
func helperAppendAudit(b *Badger) error {
	for i := range helperAuditRecords {
		if _, err := b.AppendAudit(context.Background(), helperAuditRec(i)); err != nil {
			return err
		}
	}
	return nil
}

// checkHelperAudit checks that every record the child appended survived.
func checkHelperAudit(t *testing.T, b *Badger) {
	t.Helper()
	got := listAuditAll(t, b, AuditFilter{Limit: 64})
	if len(got) != helperAuditRecords {
		t.Fatalf("%d audit records after kill -9, want %d", len(got), helperAuditRecords)
	}
	for j, r := range got {
		i := helperAuditRecords - 1 - j
		want := helperAuditRec(i)
		want.Seq = r.Seq
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("audit record %d after kill -9:\n got %+v\nwant %+v", i, r, want)
		}
		if byReq, err := b.AuditByRequest(context.Background(), want.DeviceID, want.RequestID, 0); err != nil || byReq.Seq != r.Seq {
			t.Fatalf("AuditByRequest of record %d after kill -9: %+v, %v", i, byReq, err)
		}
	}
	if r := appendAudit(t, b, auditRec("pos", "svc", 1)); r.Seq <= got[0].Seq {
		t.Fatalf("seq after kill -9 %d, want > %d", r.Seq, got[0].Seq)
	}
}
