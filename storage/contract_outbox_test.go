package storage

// This file is the Outbox contract, run against every implementation,
// plus Badger's reopen and kill -9 tests of it.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestOutboxContractMemory(t *testing.T)         { runOutboxContract(t, openMemory) }
func TestOutboxContractBadgerInMemory(t *testing.T) { runOutboxContract(t, openBadgerInMemory) }
func TestOutboxContractBadgerDir(t *testing.T)      { runOutboxContract(t, openBadgerDir) }

func runOutboxContract(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Outbox)
	}{
		{"EnqueueIdempotent", contractOutboxEnqueue},
		{"NotDueYet", contractOutboxNotDue},
		{"DigestByGroup", contractOutboxDigest},
		{"RetryKeepsBatch", contractOutboxRetry},
		{"DeliveredAndFailed", contractOutboxSettle},
		{"ChannelsIndependent", contractOutboxChannels},
		{"BatchBounded", contractOutboxBounded},
		{"FullBatch", contractOutboxFullBatch},
		{"Paging", contractOutboxPaging},
		{"Prune", contractOutboxPrune},
		{"Invalid", contractOutboxInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t).(Outbox)) })
	}
	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		_ = s.Close()
		if _, err := s.(Outbox).EnqueueOutbox(context.Background(), obEntry("x", "", "c"), 0); !errors.Is(err, ErrClosed) {
			t.Fatalf("EnqueueOutbox after Close: %v", err)
		}
	})
}

// obEntry is an entry of group g for channels chs, enqueued at 100.
func obEntry(id, g string, chs ...string) OutboxEntry {
	return OutboxEntry{ID: id, Group: g, Kind: "upgrade_failed", At: 100, Channels: chs, Payload: []byte(fmt.Sprintf(`{"device":%q}`, id))}
}

func enqueue(t *testing.T, s Outbox, e OutboxEntry, firstAt int64) bool {
	t.Helper()
	added, err := s.EnqueueOutbox(context.Background(), e, firstAt)
	if err != nil {
		t.Fatalf("EnqueueOutbox(%q): %v", e.ID, err)
	}
	return added
}

func claim(t *testing.T, s Outbox, ch string, now int64, max int) (OutboxClaim, bool) {
	t.Helper()
	c, ok, err := s.ClaimOutbox(context.Background(), ch, now, max)
	if err != nil {
		t.Fatalf("ClaimOutbox(%q, %d): %v", ch, now, err)
	}
	if ok && (len(c.Deliveries) != len(c.Entries) || c.Batch == "") {
		t.Fatalf("claim %+v: deliveries and entries differ or no batch id", c)
	}
	return c, ok
}

func settle(t *testing.T, s Outbox, ch, batch string, r OutboxResult) int {
	t.Helper()
	n, err := s.SettleOutbox(context.Background(), ch, batch, r)
	if err != nil {
		t.Fatalf("SettleOutbox(%q, %q): %v", ch, batch, err)
	}
	return n
}

func entryIDs(c OutboxClaim) string {
	ids := make([]string, len(c.Entries))
	for i, e := range c.Entries {
		ids[i] = e.ID
		if c.Deliveries[i].EntryID != e.ID || c.Deliveries[i].Batch != c.Batch {
			panic(fmt.Sprintf("claim member %d: delivery %+v, entry %q", i, c.Deliveries[i], e.ID))
		}
	}
	return strings.Join(ids, ",")
}

func listAllOutbox(t *testing.T, s Outbox, f OutboxFilter) []OutboxDelivery {
	t.Helper()
	var all []OutboxDelivery
	for range 1000 {
		ds, next, err := s.ListOutbox(context.Background(), f)
		if err != nil {
			t.Fatalf("ListOutbox(%+v): %v", f, err)
		}
		all = append(all, ds...)
		if next == "" {
			return all
		}
		f.Cursor = next
	}
	t.Fatal("ListOutbox paging does not end")
	return nil
}

func contractOutboxEnqueue(t *testing.T, s Outbox) {
	ctx := context.Background()
	if !enqueue(t, s, obEntry("e1", "r1", "webhook:a", "smtp", "webhook:a"), 150) {
		t.Fatal("first enqueue not added")
	}
	again := obEntry("e1", "r2", "event")
	if enqueue(t, s, again, 999) {
		t.Fatal("second enqueue of the same id added")
	}
	e, err := s.GetOutboxEntry(ctx, "e1")
	if err != nil {
		t.Fatal(err)
	}
	if e.Group != "r1" || strings.Join(e.Channels, ",") != "smtp,webhook:a" || string(e.Payload) != `{"device":"e1"}` || e.At != 100 {
		t.Fatalf("entry = %+v", e)
	}
	if _, err := s.GetOutboxEntry(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetOutboxEntry(nope): %v", err)
	}
	ds := listAllOutbox(t, s, OutboxFilter{State: OutboxPending})
	if len(ds) != 2 || ds[0].Channel != "smtp" || ds[1].Channel != "webhook:a" || ds[0].NextAt != 150 || ds[0].State != OutboxPending || ds[0].CreatedAt != 100 {
		t.Fatalf("pending = %+v", ds)
	}
	counts, err := s.OutboxCounts(ctx)
	if err != nil || counts["smtp"].Pending != 1 || counts["webhook:a"].Pending != 1 || counts["event"].Pending != 0 {
		t.Fatalf("counts = %v, %v", counts, err)
	}
}

func contractOutboxNotDue(t *testing.T, s Outbox) {
	enqueue(t, s, obEntry("e1", "", "c"), 500)
	if _, ok := claim(t, s, "c", 499, 0); ok {
		t.Fatal("claimed before due")
	}
	at, ok, err := s.NextOutbox(context.Background(), "c")
	if err != nil || !ok || at != 500 {
		t.Fatalf("NextOutbox = %d, %v, %v; want 500", at, ok, err)
	}
	if _, ok, _ := s.NextOutbox(context.Background(), "other"); ok {
		t.Fatal("NextOutbox of an empty channel says ok")
	}
	c, ok := claim(t, s, "c", 500, 0)
	if !ok || entryIDs(c) != "e1" {
		t.Fatalf("claim at due time = %+v, %v", c, ok)
	}
}

func contractOutboxDigest(t *testing.T, s Outbox) {
	for i := range 5 {
		enqueue(t, s, obEntry(fmt.Sprintf("r1-%d", i), "r1", "c"), int64(200+i))
	}
	enqueue(t, s, obEntry("r2-0", "r2", "c"), 150)
	enqueue(t, s, obEntry("solo", "", "c"), 100)
	c, _ := claim(t, s, "c", 1000, 0)
	if entryIDs(c) != "solo" {
		t.Fatalf("first claim = %s, want solo (due first)", entryIDs(c))
	}
	if again, _ := claim(t, s, "c", 1000, 0); again.Batch != c.Batch {
		t.Fatalf("an unsettled batch is not claimed again: %s", entryIDs(again))
	}
	settle(t, s, "c", c.Batch, OutboxResult{At: 1000, Delivered: true})
	c, _ = claim(t, s, "c", 1000, 0)
	settle(t, s, "c", c.Batch, OutboxResult{At: 1000, Delivered: true})
	if entryIDs(c) != "r2-0" {
		t.Fatalf("second claim = %s", entryIDs(c))
	}
	// The group's members are claimed together, also one not yet due.
	c, _ = claim(t, s, "c", 200, 0)
	if entryIDs(c) != "r1-0,r1-1,r1-2,r1-3,r1-4" {
		t.Fatalf("group claim = %s", entryIDs(c))
	}
	if want := outboxBatchID("c", []string{"r1-0", "r1-1", "r1-2", "r1-3", "r1-4"}); c.Batch != want {
		t.Fatalf("batch id %q, want %q", c.Batch, want)
	}
	if string(c.Entries[2].Payload) != `{"device":"r1-2"}` {
		t.Fatalf("payload = %s", c.Entries[2].Payload)
	}
}

func contractOutboxRetry(t *testing.T, s Outbox) {
	enqueue(t, s, obEntry("a", "r1", "c"), 100)
	enqueue(t, s, obEntry("b", "r1", "c"), 100)
	c1, _ := claim(t, s, "c", 100, 0)
	if n := settle(t, s, "c", c1.Batch, OutboxResult{At: 110, Error: "HTTP 500", NextAt: 300}); n != 2 {
		t.Fatalf("settled %d, want 2", n)
	}
	// A new failure of the same release arriving meanwhile gets its own
	// batch: the retried one keeps its members and id.
	enqueue(t, s, obEntry("c", "r1", "c"), 200)
	c2, _ := claim(t, s, "c", 250, 0)
	if entryIDs(c2) != "c" || c2.Batch == c1.Batch {
		t.Fatalf("claim of the newcomer = %s (batch %q vs %q)", entryIDs(c2), c2.Batch, c1.Batch)
	}
	settle(t, s, "c", c2.Batch, OutboxResult{At: 250, Delivered: true})
	if _, ok := claim(t, s, "c", 299, 0); ok {
		t.Fatal("retry claimed before its next attempt")
	}
	c3, _ := claim(t, s, "c", 300, 0)
	if c3.Batch != c1.Batch || entryIDs(c3) != "a,b" {
		t.Fatalf("retry = %s batch %q, want a,b batch %q", entryIDs(c3), c3.Batch, c1.Batch)
	}
	d := c3.Deliveries[0]
	if d.Attempts != 1 || d.LastError != "HTTP 500" || d.LastAttemptAt != 110 || d.NextAt != 300 {
		t.Fatalf("delivery after one failed attempt = %+v", d)
	}
}

func contractOutboxSettle(t *testing.T, s Outbox) {
	ctx := context.Background()
	enqueue(t, s, obEntry("ok", "", "c"), 100)
	enqueue(t, s, obEntry("bad", "", "c"), 100)
	c, _ := claim(t, s, "c", 100, 0)
	settle(t, s, "c", c.Batch, OutboxResult{At: 120, Delivered: true})
	c2, _ := claim(t, s, "c", 100, 0)
	long := strings.Repeat("é", MaxOutboxError) + "\xff"
	settle(t, s, "c", c2.Batch, OutboxResult{At: 130, Error: long})
	if _, ok := claim(t, s, "c", 1<<40, 0); ok {
		t.Fatal("claimed after every delivery was settled for good")
	}
	if n := settle(t, s, "c", c.Batch, OutboxResult{At: 140, Error: "late"}); n != 0 {
		t.Fatalf("settling a delivered batch again changed %d", n)
	}
	pend := listAllOutbox(t, s, OutboxFilter{State: OutboxPending})
	failed := listAllOutbox(t, s, OutboxFilter{State: OutboxFailed})
	deliv := listAllOutbox(t, s, OutboxFilter{State: OutboxDelivered})
	open := listAllOutbox(t, s, OutboxFilter{})
	if len(pend) != 0 || len(failed) != 1 || len(deliv) != 1 || len(open) != 1 {
		t.Fatalf("pending %d failed %d delivered %d open %d", len(pend), len(failed), len(deliv), len(open))
	}
	f := failed[0]
	if f.EntryID != c2.Entries[0].ID || f.State != OutboxFailed || f.DoneAt != 130 || f.Attempts != 1 || len(f.LastError) > MaxOutboxError || !strings.HasPrefix(f.LastError, "é") {
		t.Fatalf("failed delivery = %+v", f)
	}
	if d := deliv[0]; d.DoneAt != 120 || d.LastError != "" || d.Attempts != 1 {
		t.Fatalf("delivered = %+v", d)
	}
	counts, _ := s.OutboxCounts(ctx)
	if counts["c"] != (OutboxCount{Failed: 1}) {
		t.Fatalf("counts = %v", counts)
	}
}

func contractOutboxChannels(t *testing.T, s Outbox) {
	enqueue(t, s, obEntry("e", "r", "a", "b"), 100)
	ca, _ := claim(t, s, "a", 100, 0)
	cb, _ := claim(t, s, "b", 100, 0)
	if ca.Batch == cb.Batch {
		t.Fatal("two channels share a batch id")
	}
	settle(t, s, "a", ca.Batch, OutboxResult{At: 101, Delivered: true})
	settle(t, s, "b", cb.Batch, OutboxResult{At: 101, Error: "down", NextAt: 500})
	if _, ok := claim(t, s, "a", 1000, 0); ok {
		t.Fatal("channel a delivered again")
	}
	if c, ok := claim(t, s, "b", 500, 0); !ok || c.Batch != cb.Batch {
		t.Fatalf("channel b retry = %+v, %v", c, ok)
	}
}

func contractOutboxBounded(t *testing.T, s Outbox) {
	for i := range 10 {
		enqueue(t, s, obEntry(fmt.Sprintf("e%d", i), "r", "c"), int64(100+10-i)) // e9 due first
	}
	c, _ := claim(t, s, "c", 200, 4)
	if len(c.Entries) != 4 || !strings.Contains(entryIDs(c), "e9") {
		t.Fatalf("bounded claim = %s; want 4 including the first due, e9", entryIDs(c))
	}
	seen := map[string]bool{}
	for _, e := range c.Entries {
		seen[e.ID] = true
	}
	settle(t, s, "c", c.Batch, OutboxResult{At: 200, Delivered: true})
	for range 3 {
		c, ok := claim(t, s, "c", 200, 4)
		if !ok {
			break
		}
		for _, e := range c.Entries {
			if seen[e.ID] {
				t.Fatalf("%s claimed twice", e.ID)
			}
			seen[e.ID] = true
		}
		settle(t, s, "c", c.Batch, OutboxResult{At: 200, Delivered: true})
	}
	if len(seen) != 10 {
		t.Fatalf("claimed %d of 10", len(seen))
	}
}

// contractOutboxFullBatch claims, fails, retries and delivers a batch of
// MaxOutboxBatch realistic entries: Badger once refused it as one
// transaction (ErrTxnTooBig).
func contractOutboxFullBatch(t *testing.T, s Outbox) {
	rel := strings.Repeat("r", 36)
	for i := range MaxOutboxBatch + 10 {
		e := obEntry(fmt.Sprintf("report/%s/POS-%06d/1/7", rel, i), rel, "webhook:ops")
		e.Payload = []byte(fmt.Sprintf(`{"id":"report/%s/POS-%06d/1/7","kind":"upgrade_failed","release_id":%q,"device_id":"POS-%06d","model":"P400","message":%q}`,
			rel, i, rel, i, strings.Repeat("m", 200)))
		enqueue(t, s, e, 100)
	}
	c, ok := claim(t, s, "webhook:ops", 100, 0)
	if !ok || len(c.Entries) != MaxOutboxBatch {
		t.Fatalf("claimed %d, want %d", len(c.Entries), MaxOutboxBatch)
	}
	if n := settle(t, s, "webhook:ops", c.Batch, OutboxResult{At: 100, Error: strings.Repeat("e", MaxOutboxError), NextAt: 200}); n != MaxOutboxBatch {
		t.Fatalf("settled %d", n)
	}
	delivered := 0
	for range 5 {
		c, ok := claim(t, s, "webhook:ops", 200, 0)
		if !ok {
			break
		}
		delivered += settle(t, s, "webhook:ops", c.Batch, OutboxResult{At: 300, Delivered: true})
	}
	if delivered != MaxOutboxBatch+10 {
		t.Fatalf("delivered %d, want %d", delivered, MaxOutboxBatch+10)
	}
	if n, err := s.PruneOutbox(context.Background(), 1000); err != nil || n != MaxOutboxBatch+10 {
		t.Fatalf("pruned %d, %v", n, err)
	}
}

func contractOutboxPaging(t *testing.T, s Outbox) {
	for i := range 23 {
		enqueue(t, s, obEntry(fmt.Sprintf("e%02d", i), "", "a", "b"), int64(1000-i))
	}
	for _, st := range []string{OutboxPending, ""} {
		all := listAllOutbox(t, s, OutboxFilter{State: st, Limit: 5})
		if len(all) != 46 {
			t.Fatalf("state %q: %d deliveries, want 46", st, len(all))
		}
		seen := map[string]bool{}
		for _, d := range all {
			k := d.Channel + "/" + d.EntryID
			if seen[k] {
				t.Fatalf("state %q: %s listed twice", st, k)
			}
			seen[k] = true
		}
		if st == OutboxPending && (all[0].EntryID != "e22" || all[0].Channel != "a") {
			t.Fatalf("pending not in due order: first %+v", all[0])
		}
	}
	b := listAllOutbox(t, s, OutboxFilter{Channel: "b", Limit: 7})
	if len(b) != 23 || b[0].Channel != "b" || b[0].EntryID != "e00" {
		t.Fatalf("channel b: %d, first %+v", len(b), b[0])
	}
}

func contractOutboxPrune(t *testing.T, s Outbox) {
	ctx := context.Background()
	enqueue(t, s, obEntry("old", "", "a", "b"), 100)
	enqueue(t, s, obEntry("half", "", "a", "b"), 101)
	enqueue(t, s, obEntry("new", "", "a"), 102)
	for _, at := range []int64{200, 200, 900} { // "new" is done late
		c, _ := claim(t, s, "a", 200, 0)
		settle(t, s, "a", c.Batch, OutboxResult{At: at, Delivered: true})
	}
	c, _ := claim(t, s, "b", 200, 0)
	settle(t, s, "b", c.Batch, OutboxResult{At: 200, Error: "gone"}) // "old" on b: failed for good
	if n, err := s.PruneOutbox(ctx, 500); err != nil || n != 1 {
		t.Fatalf("PruneOutbox = %d, %v; want 1 (the entry done everywhere before 500)", n, err)
	}
	pruned := "old"
	for _, id := range []string{"old", "half", "new"} {
		_, err := s.GetOutboxEntry(ctx, id)
		if (id == pruned) != errors.Is(err, ErrNotFound) {
			t.Fatalf("after prune, %s: %v (pruned %s)", id, err, pruned)
		}
	}
	all := listAllOutbox(t, s, OutboxFilter{State: OutboxDelivered})
	for _, d := range all {
		if d.EntryID == pruned {
			t.Fatalf("pruned entry's delivery still listed: %+v", d)
		}
	}
	if n, _ := s.PruneOutbox(ctx, 1000); n != 1 {
		t.Fatalf("prune with half pending on b = %d, want 1 (new)", n)
	}
	c, _ = claim(t, s, "b", 200, 0)
	settle(t, s, "b", c.Batch, OutboxResult{At: 300, Delivered: true})
	if n, _ := s.PruneOutbox(ctx, 1000); n != 1 {
		t.Fatalf("second prune = %d, want 2", n)
	}
	counts, _ := s.OutboxCounts(ctx)
	if len(counts) != 0 {
		t.Fatalf("counts after pruning everything = %v", counts)
	}
}

func contractOutboxInvalid(t *testing.T, s Outbox) {
	ctx := context.Background()
	bad := []OutboxEntry{
		obEntry("", "", "c"),
		obEntry("a\x00b", "", "c"),
		obEntry(strings.Repeat("x", MaxOutboxID+1), "", "c"),
		obEntry("id", "g\x00", "c"),
		obEntry("id", "", "c\x00d"),
		obEntry("id", ""),
		{ID: "id", Kind: "k", Channels: []string{"c"}, Payload: []byte("{not json")},
		{ID: "id", Kind: "k", Channels: []string{"c"}, Payload: bytes.Repeat([]byte(" "), MaxOutboxPayload+1)},
	}
	for i, e := range bad {
		if _, err := s.EnqueueOutbox(ctx, e, 0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad entry %d: %v, want ErrInvalid", i, err)
		}
	}
	if _, _, err := s.ListOutbox(ctx, OutboxFilter{State: "lost"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad state: %v", err)
	}
	if _, _, err := s.ListOutbox(ctx, OutboxFilter{Cursor: "zz"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, _, err := s.ClaimOutbox(ctx, "", 0, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("claim of empty channel: %v", err)
	}
}

func TestOutboxBatchSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, b, obEntry("a", "r", "c"), 100)
	enqueue(t, b, obEntry("b", "r", "c"), 100)
	c, _ := claim(t, b, "c", 100, 0)
	_ = b.Close()
	b, err = OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	enqueue(t, b, obEntry("z", "r", "c"), 100)
	c2, _ := claim(t, b, "c", 100, 0)
	if c2.Batch != c.Batch || entryIDs(c2) != "a,b" {
		t.Fatalf("after reopen claim = %s %q, want a,b %q", entryIDs(c2), c2.Batch, c.Batch)
	}
}

// Outbox kill -9 plumbing: the child enqueues, claims one batch and is
// killed; the parent finds every entry pending and the batch intact.
const (
	outboxHelperEnv     = "TERMD_OUTBOX_HELPER_DIR"
	outboxHelperEntries = 200
)

// TestOutboxHelperProcess is the child of TestOutboxSurvivesKill9.
func TestOutboxHelperProcess(t *testing.T) {
	dir := os.Getenv(outboxHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestOutboxSurvivesKill9")
	}
	b, err := OpenBadger(dir, BadgerOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for i := range outboxHelperEntries {
		if _, err := b.EnqueueOutbox(ctx, obEntry(fmt.Sprintf("k9-%03d", i), fmt.Sprintf("r%d", i%2), "webhook:a", "smtp"), 100); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
	}
	c, _, err := b.ClaimOutbox(ctx, "smtp", 100, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	fmt.Println("ready", c.Batch)
	time.Sleep(helperLinger) // killed here; the store is never closed
	os.Exit(0)
}

func TestOutboxSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), outboxHelperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "ready" {
				ready <- f[1]
				return
			}
		}
		close(ready)
	}()
	var batch string
	select {
	case b, ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("helper exited before ready: %s", stderr.String())
		}
		batch = b
	case <-time.After(helperStartTimeout):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper not ready: %s", stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	b, err := OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer b.Close()
	counts, err := b.OutboxCounts(context.Background())
	if err != nil || counts["smtp"].Pending != outboxHelperEntries || counts["webhook:a"].Pending != outboxHelperEntries {
		t.Fatalf("after kill -9 counts = %v, %v", counts, err)
	}
	c, ok := claim(t, b, "smtp", 100, 0)
	if !ok || c.Batch != batch || len(c.Entries) != outboxHelperEntries/2 {
		t.Fatalf("after kill -9 claim: batch %q (%d entries), want the child's %q", c.Batch, len(c.Entries), batch)
	}
}
