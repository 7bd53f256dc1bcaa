package storage

// This file holds the contract cases over many devices and the node
// metadata; runRegistryContract in contract_test.go runs them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
)

// listAll walks every page and checks page invariants on the way.
func listAll(t *testing.T, s Registry, opt ListOptions) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("List does not terminate")
		}
		devs, next, err := s.List(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) > listLimit(opt.Limit) {
			t.Fatalf("page of %d over limit %d", len(devs), opt.Limit)
		}
		for _, d := range devs {
			if d.ID <= opt.Cursor {
				t.Fatalf("id %q not after cursor %q", d.ID, opt.Cursor)
			}
			if opt.Online != nil && d.Online != *opt.Online {
				t.Fatalf("filter online=%v returned %+v", *opt.Online, d)
			}
			ids = append(ids, d.ID)
		}
		if next == "" {
			return ids
		}
		if len(devs) == 0 || next != devs[len(devs)-1].ID {
			t.Fatalf("next %q is not the page's last id (page %d long)", next, len(devs))
		}
		opt.Cursor = next
	}
}

func contractListPaging(t *testing.T, s Store) {
	const n = 25
	var all, on, off []string
	var batch []PresenceUpdate
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		id := fmt.Sprintf("dev-%03d", i)
		if i%3 == 0 {
			batch = append(batch, online(id, int64(i), 1))
		} else {
			batch = append(batch, seen(id, int64(i), nil))
		}
	}
	apply(t, s, batch...)
	for i := range n {
		id := fmt.Sprintf("dev-%03d", i)
		all = append(all, id)
		if i%3 == 0 {
			on = append(on, id)
		} else {
			off = append(off, id)
		}
	}
	yes, no := true, false
	for _, limit := range []int{1, 3, 9, 10, 25, 26, 0} {
		for _, c := range []struct {
			filter *bool
			want   []string
		}{{nil, all}, {&yes, on}, {&no, off}} {
			got := listAll(t, s, ListOptions{Limit: limit, Online: c.filter})
			if !slices.Equal(got, c.want) {
				t.Fatalf("limit %d filter %v:\n got %v\nwant %v", limit, c.filter, got, c.want)
			}
		}
	}
	// A full last page says there is no more, and the cursor need not exist.
	devs, next, err := s.List(context.Background(), ListOptions{Limit: 5, Cursor: "dev-019x"})
	if err != nil || next != "" || len(devs) != 5 || devs[0].ID != "dev-020" {
		t.Fatalf("page after dev-019x: %d devs, next %q, err %v", len(devs), next, err)
	}
	devs, next, err = s.List(context.Background(), ListOptions{Cursor: "dev-024"})
	if err != nil || next != "" || len(devs) != 0 {
		t.Fatalf("page past the end: %v %q %v", devs, next, err)
	}
	// Pages carry whole records.
	devs, _, _ = s.List(context.Background(), ListOptions{Limit: 1})
	wantDevice(t, devs[0], mustGet(t, s, "dev-000"))
}

func contractListLimits(t *testing.T, s Store) {
	const n = MaxListLimit + 50
	batch := make([]PresenceUpdate, 0, n)
	for i := range n {
		batch = append(batch, seen(fmt.Sprintf("d%05d", i), 1, nil))
	}
	apply(t, s, batch...)
	for _, c := range []struct{ limit, want int }{
		{0, DefaultListLimit}, {-5, DefaultListLimit}, {MaxListLimit * 5, MaxListLimit}, {7, 7},
	} {
		devs, next, err := s.List(context.Background(), ListOptions{Limit: c.limit})
		if err != nil || len(devs) != c.want || next != devs[len(devs)-1].ID {
			t.Fatalf("limit %d: %d devs (want %d), next %q, err %v", c.limit, len(devs), c.want, next, err)
		}
	}
	if got := listAll(t, s, ListOptions{Limit: MaxListLimit * 5}); len(got) != n {
		t.Fatalf("listed %d of %d", len(got), n)
	}
}

func contractConcurrent(t *testing.T, s Store) {
	const (
		devices = 40
		rounds  = 30
	)
	ctx := context.Background()
	id := func(i int) string { return fmt.Sprintf("cc-%02d", i) }
	keyOf := func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, KeySize) }
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() {
		for r := range rounds {
			batch := make([]PresenceUpdate, 0, 3*devices)
			for i := range devices {
				at := int64(r*10 + 1)
				batch = append(batch, online(id(i), at, uint64(r+1)), seen(id(i), at+1, []byte{byte(r)}),
					offline(id(i), at+2, uint64(r+1), "closed"))
			}
			if err := s.ApplyPresence(ctx, batch); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for range 3 {
			for i := range devices {
				if err := s.SetKey(ctx, id(i), keyOf(i)); err != nil {
					errs <- err
					return
				}
			}
		}
	})
	wg.Go(func() {
		for _, blocked := range []bool{true, false, true} {
			for i := range devices {
				if err := s.SetBlocked(ctx, id(i), blocked && i%2 == 0); err != nil {
					errs <- err
					return
				}
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	last := int64((rounds-1)*10 + 1)
	for i := range devices {
		wantDevice(t, mustGet(t, s, id(i)), Device{
			ID: id(i), FirstSeen: 1, LastSeen: last + 1, SessionID: rounds, LastOnline: last,
			LastOffline: last + 2, OfflineReason: "closed", RemoteAddr: online("", 0, rounds).RemoteAddr,
			FW: "1.2.3", Model: "pos-x", Status: []byte{rounds - 1}, Key: keyOf(i), Blocked: i%2 == 0,
		})
	}
}

func contractCredentials(t *testing.T, s Store) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, KeySize)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	apply(t, s, online("plain", 1, 1), online("keyed", 1, 1))
	must(s.SetKey(ctx, "keyed", key))
	must(s.SetBlocked(ctx, "blocked", true))
	must(s.SetKey(ctx, "both", key))
	must(s.SetBlocked(ctx, "both", true))
	must(s.SetKey(ctx, "cleared", key))
	must(s.SetKey(ctx, "cleared", nil))
	must(s.SetBlocked(ctx, "unblocked", true))
	must(s.SetBlocked(ctx, "unblocked", false))
	type cred struct {
		id      string
		key     []byte
		blocked bool
	}
	var got []cred
	must(s.Credentials(ctx, func(id string, k []byte, blocked bool) error {
		got = append(got, cred{id, k, blocked})
		return nil
	}))
	want := []cred{{"blocked", nil, true}, {"both", key, true}, {"keyed", key, false}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("credentials:\n got %+v\nwant %+v", got, want)
	}
	stop := errors.New("stop")
	calls := 0
	err := s.Credentials(ctx, func(string, []byte, bool) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("fn error: %v after %d calls", err, calls)
	}
}

func contractMarkOnlineOffline(t *testing.T, s Store) {
	ctx := context.Background()
	apply(t, s, online("m1", 1, 1), online("m2", 1, 1), online("m3", 1, 1), offline("m3", 2, 1, "bye"),
		seen("m4", 1, nil), online("m5", 1, 1))
	if err := s.SetKey(ctx, "m5", bytes.Repeat([]byte{5}, KeySize)); err != nil {
		t.Fatal(err)
	}
	n, err := s.MarkOnlineOffline(ctx, "restart", 99)
	if err != nil || n != 3 {
		t.Fatalf("MarkOnlineOffline = %d, %v; want 3", n, err)
	}
	for _, id := range []string{"m1", "m2", "m5"} {
		d := mustGet(t, s, id)
		if d.Online || d.LastOffline != 99 || d.OfflineReason != "restart" || d.LastSeen != 1 || d.SessionID != 1 {
			t.Fatalf("%s: %+v", id, d)
		}
	}
	if d := mustGet(t, s, "m5"); d.Key == nil {
		t.Fatal("MarkOnlineOffline lost the key")
	}
	if d := mustGet(t, s, "m3"); d.OfflineReason != "bye" || d.LastOffline != 2 {
		t.Fatalf("offline device changed: %+v", d)
	}
	if n, err := s.MarkOnlineOffline(ctx, "restart", 100); err != nil || n != 0 {
		t.Fatalf("second MarkOnlineOffline = %d, %v", n, err)
	}
}

func contractMeta(t *testing.T, s Store) {
	ctx := context.Background()
	for want := uint32(1); want <= 3; want++ {
		got, err := s.NextBootEpoch(ctx)
		if err != nil || got != want {
			t.Fatalf("NextBootEpoch = %d, %v; want %d", got, err, want)
		}
	}
	if at, err := s.AliveMark(ctx); err != nil || at != 0 {
		t.Fatalf("AliveMark before any = %d, %v", at, err)
	}
	for _, at := range []int64{1_700_000_000_000, 1_700_000_001_000, -1} {
		if err := s.SetAliveMark(ctx, at); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AliveMark(ctx); err != nil || got != at {
			t.Fatalf("AliveMark = %d, %v; want %d", got, err, at)
		}
	}
}

func contractBinarySafe(t *testing.T, s Store) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []struct {
		id            string
		attrs, status []byte
	}{
		{"bin-all", all, append([]byte{0, 0xff, 0xc0, 0x80}, all...)},
		{"bin-empty", []byte{}, []byte{}},
		{"bin-nil", nil, nil},
		{"bin-big", bytes.Repeat([]byte{0, 1, 0xfe}, 3000), bytes.Repeat([]byte{0xff}, 5000)},
		{"bin-\x00\xff-id", []byte{0}, []byte{0}},
	}
	for _, c := range cases {
		attrs, status := cloneBytes(c.attrs), cloneBytes(c.status)
		u := online(c.id, 1, 1)
		u.Attrs = attrs
		apply(t, s, u, seen(c.id, 2, status))
		// The store must not keep the caller's buffers.
		for i := range attrs {
			attrs[i] ^= 0x55
		}
		for i := range status {
			status[i] ^= 0x55
		}
		d := mustGet(t, s, c.id)
		if !bytes.Equal(d.Attrs, c.attrs) || !bytes.Equal(d.Status, c.status) {
			t.Fatalf("%q: bytes changed", c.id)
		}
		if (d.Attrs == nil) != (c.attrs == nil) || (d.Status == nil) != (c.status == nil) {
			t.Fatalf("%q: nil-ness changed: attrs %v status %v", c.id, d.Attrs == nil, d.Status == nil)
		}
		// Returned records are copies.
		if len(d.Attrs) > 0 {
			d.Attrs[0] ^= 1
			if mustGet(t, s, c.id).Attrs[0] != c.attrs[0] {
				t.Fatalf("%q: Get returned the store's buffer", c.id)
			}
		}
	}
}

// restorer is implemented by stores whose Backup output can be read back.
type restorer interface {
	Restore(r io.Reader) error
}

func contractBackupRestore(t *testing.T, src, dst Store) {
	ctx := context.Background()
	apply(t, src, online("r1", 1, 1), seen("r1", 2, []byte{1, 2}), online("r2", 3, 4), offline("r2", 4, 4, "bye"))
	if err := src.SetKey(ctx, "r3", bytes.Repeat([]byte{3}, KeySize)); err != nil {
		t.Fatal(err)
	}
	if _, err := src.NextBootEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.SetAliveMark(ctx, 12345); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := src.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := src.Backup(cancelled, io.Discard); err == nil {
		t.Fatal("Backup ignored a cancelled context")
	}
	r, ok := dst.(restorer)
	if !ok {
		t.Skip("store cannot restore")
	}
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	want, _, err := src.List(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := dst.List(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || len(got) != 3 {
		t.Fatalf("restored devices:\n got %+v\nwant %+v", got, want)
	}
	if at, err := dst.AliveMark(ctx); err != nil || at != 12345 {
		t.Fatalf("restored alive mark %d, %v", at, err)
	}
	if e, err := dst.NextBootEpoch(ctx); err != nil || e != 2 {
		t.Fatalf("boot epoch after restore = %d, %v; want 2", e, err)
	}
}

func contractClosed(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Get(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.ApplyPresence(ctx, []PresenceUpdate{seen("x", 1, nil)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("ApplyPresence after Close: %v", err)
	}
	if err := s.SetKey(ctx, "x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetKey after Close: %v", err)
	}
	if _, err := s.NextBootEpoch(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("NextBootEpoch after Close: %v", err)
	}
}
