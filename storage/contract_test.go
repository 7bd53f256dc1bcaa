package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"
)

// This file is the contract every Store must pass. Each implementation
// runs it through runRegistryContract with its own constructor.

// testGCInterval makes value-log GC run during on-disk tests.
const testGCInterval = 50 * time.Millisecond

func openMemory(t *testing.T) Store {
	m := NewMemory()
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openBadgerInMemory(t *testing.T) Store {
	b, err := OpenBadger("", BadgerOptions{InMemory: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func openBadgerDir(t *testing.T) Store {
	b, err := OpenBadger(t.TempDir(), BadgerOptions{Logger: testLogger(t), GCInterval: testGCInterval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestContractMemory(t *testing.T)         { runRegistryContract(t, openMemory) }
func TestContractBadgerInMemory(t *testing.T) { runRegistryContract(t, openBadgerInMemory) }
func TestContractBadgerDir(t *testing.T)      { runRegistryContract(t, openBadgerDir) }

// runRegistryContract runs the shared Store contract against open, which
// returns a fresh, empty store per call.
func runRegistryContract(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"GetMissing", contractGetMissing},
		{"Online", contractOnline},
		{"Seen", contractSeen},
		{"OfflineSessionGuard", contractOfflineGuard},
		{"BatchOrder", contractBatchOrder},
		{"InvalidBatchAppliesNothing", contractInvalidBatch},
		{"OperatorFieldsSeparate", contractOperatorFieldsSeparate},
		{"SetKeyValidation", contractSetKeyValidation},
		{"ListPaging", contractListPaging},
		{"ListLimits", contractListLimits},
		{"ConcurrentOperatorAndPresence", contractConcurrent},
		{"Credentials", contractCredentials},
		{"MarkOnlineOffline", contractMarkOnlineOffline},
		{"Meta", contractMeta},
		{"BinarySafeBytes", contractBinarySafe},
		{"BackupRestore", func(t *testing.T, s Store) { contractBackupRestore(t, s, open(t)) }},
		{"Closed", contractClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// apply applies updates one ApplyPresence call, failing the test on error.
func apply(t *testing.T, s Registry, us ...PresenceUpdate) {
	t.Helper()
	if err := s.ApplyPresence(context.Background(), us); err != nil {
		t.Fatalf("ApplyPresence: %v", err)
	}
}

// mustGet returns id's record, failing the test if it is missing.
func mustGet(t *testing.T, s Registry, id string) Device {
	t.Helper()
	d, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return d
}

// wantDevice compares a whole record, so a stray field change fails too.
func wantDevice(t *testing.T, got, want Device) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("device %q:\n got %+v\nwant %+v", want.ID, got, want)
	}
}

func online(id string, at int64, sid uint64) PresenceUpdate {
	return PresenceUpdate{Kind: PresenceOnline, ID: id, At: at, SessionID: sid,
		RemoteAddr: fmt.Sprintf("10.0.0.%d:4000", sid%250), FW: "1.2.3", Model: "pos-x"}
}

func seen(id string, at int64, status []byte) PresenceUpdate {
	return PresenceUpdate{Kind: PresenceSeen, ID: id, At: at, Status: status}
}

func offline(id string, at int64, sid uint64, reason string) PresenceUpdate {
	return PresenceUpdate{Kind: PresenceOffline, ID: id, At: at, SessionID: sid, Reason: reason}
}

func contractGetMissing(t *testing.T, s Store) {
	for _, id := range []string{"nope", ""} {
		if _, err := s.Get(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func contractOnline(t *testing.T, s Store) {
	u := online("a", 1000, 7)
	u.Attrs = []byte{0x81, 0xa1, 'k', 0x01}
	apply(t, s, u)
	wantDevice(t, mustGet(t, s, "a"), Device{
		ID: "a", FirstSeen: 1000, LastSeen: 1000, Online: true, SessionID: 7, LastOnline: 1000,
		RemoteAddr: "10.0.0.7:4000", FW: "1.2.3", Model: "pos-x", Attrs: u.Attrs,
	})
	// A later session: FirstSeen stays, LastSeen is set outright (even
	// below the previous one), and nil Attrs clears them.
	apply(t, s, seen("a", 5000, nil))
	u2 := online("a", 3000, 8)
	u2.FW = "2.0.0"
	apply(t, s, u2)
	wantDevice(t, mustGet(t, s, "a"), Device{
		ID: "a", FirstSeen: 1000, LastSeen: 3000, Online: true, SessionID: 8, LastOnline: 3000,
		RemoteAddr: "10.0.0.8:4000", FW: "2.0.0", Model: "pos-x",
	})
}

func contractSeen(t *testing.T, s Store) {
	// Seen creates an absent record without marking it online or seen-first.
	apply(t, s, seen("b", 200, []byte{1}))
	wantDevice(t, mustGet(t, s, "b"), Device{ID: "b", LastSeen: 200, Status: []byte{1}})
	// LastSeen never goes back; nil Status keeps the old one.
	apply(t, s, seen("b", 100, nil))
	wantDevice(t, mustGet(t, s, "b"), Device{ID: "b", LastSeen: 200, Status: []byte{1}})
	apply(t, s, seen("b", 300, []byte{2, 3}))
	wantDevice(t, mustGet(t, s, "b"), Device{ID: "b", LastSeen: 300, Status: []byte{2, 3}})
	// An older frame still carries the newest status (status replaces, time maxes).
	apply(t, s, seen("b", 250, []byte{4}))
	wantDevice(t, mustGet(t, s, "b"), Device{ID: "b", LastSeen: 300, Status: []byte{4}})
}

func contractOfflineGuard(t *testing.T, s Store) {
	apply(t, s, online("c", 100, 1), seen("c", 150, nil), online("c", 200, 2), seen("c", 250, nil))
	// The old session's offline arrives late: ignored.
	apply(t, s, offline("c", 260, 1, "timeout"))
	d := mustGet(t, s, "c")
	if !d.Online || d.SessionID != 2 || d.LastOffline != 0 || d.OfflineReason != "" {
		t.Fatalf("late offline of old session applied: %+v", d)
	}
	// The current session's offline applies; LastSeen is untouched.
	apply(t, s, offline("c", 300, 2, "bye"))
	d = mustGet(t, s, "c")
	if d.Online || d.LastOffline != 300 || d.OfflineReason != "bye" || d.LastSeen != 250 || d.SessionID != 2 {
		t.Fatalf("offline of current session: %+v", d)
	}
	// Session 0 applies whatever the record holds.
	apply(t, s, online("c", 400, 3), offline("c", 500, 0, "shutdown"))
	d = mustGet(t, s, "c")
	if d.Online || d.LastOffline != 500 || d.OfflineReason != "shutdown" || d.LastOnline != 400 {
		t.Fatalf("session-less offline: %+v", d)
	}
	// An offline never creates a record.
	apply(t, s, offline("ghost", 1, 0, "closed"), offline("ghost2", 1, 9, "closed"))
	for _, id := range []string{"ghost", "ghost2"} {
		if _, err := s.Get(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("offline created %q: %v", id, err)
		}
	}
}

func contractBatchOrder(t *testing.T, s Store) {
	// One batch, applied in order: offline then reconnect leaves the
	// offline recorded and the device online in the new session.
	apply(t, s,
		online("e", 10, 1), seen("e", 20, []byte{9}), offline("e", 30, 1, "timeout"),
		online("e", 40, 2), offline("e", 45, 1, "closed"), seen("e", 50, nil),
		online("f", 10, 5), offline("f", 11, 5, "bad_tag"))
	wantDevice(t, mustGet(t, s, "e"), Device{
		ID: "e", FirstSeen: 10, LastSeen: 50, Online: true, SessionID: 2, LastOnline: 40,
		LastOffline: 30, OfflineReason: "timeout", RemoteAddr: "10.0.0.2:4000", FW: "1.2.3",
		Model: "pos-x", Status: []byte{9},
	})
	d := mustGet(t, s, "f")
	if d.Online || d.OfflineReason != "bad_tag" {
		t.Fatalf("f: %+v", d)
	}
}

func contractInvalidBatch(t *testing.T, s Store) {
	bad := [][]PresenceUpdate{
		{online("ok", 1, 1), online("", 2, 1)},
		{online("ok", 1, 1), {Kind: 0, ID: "x"}},
		{online("ok", 1, 1), {Kind: PresenceOffline + 1, ID: "x"}},
		{online("ok", 1, 1), seen(string(make([]byte, MaxIDLen+1)), 1, nil)},
	}
	for i, batch := range bad {
		if err := s.ApplyPresence(context.Background(), batch); !errors.Is(err, ErrInvalid) {
			t.Fatalf("batch %d: err %v, want ErrInvalid", i, err)
		}
	}
	if _, err := s.Get(context.Background(), "ok"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("invalid batch partly applied: %v", err)
	}
	// The longest valid id works.
	long := string(bytes.Repeat([]byte{'x'}, MaxIDLen))
	apply(t, s, seen(long, 1, nil))
	mustGet(t, s, long)
}

func contractOperatorFieldsSeparate(t *testing.T, s Store) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{0xab}, KeySize)
	// Operator writes create the record and leave presence alone.
	if err := s.SetKey(ctx, "g", key); err != nil {
		t.Fatal(err)
	}
	if err := s.SetBlocked(ctx, "h", true); err != nil {
		t.Fatal(err)
	}
	wantDevice(t, mustGet(t, s, "g"), Device{ID: "g", Key: key})
	wantDevice(t, mustGet(t, s, "h"), Device{ID: "h", Blocked: true})
	// Presence leaves operator fields alone.
	apply(t, s, online("g", 10, 1), seen("g", 20, []byte{1}), offline("g", 30, 1, "bye"), online("h", 5, 2))
	d := mustGet(t, s, "g")
	if !bytes.Equal(d.Key, key) || d.Blocked || d.FirstSeen != 10 || d.OfflineReason != "bye" {
		t.Fatalf("g after presence: %+v", d)
	}
	if d := mustGet(t, s, "h"); !d.Blocked || d.Key != nil || !d.Online {
		t.Fatalf("h after presence: %+v", d)
	}
	// And operator writes leave presence alone.
	before := mustGet(t, s, "g")
	if err := s.SetBlocked(ctx, "g", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey(ctx, "g", nil); err != nil {
		t.Fatal(err)
	}
	before.Blocked, before.Key = true, nil
	wantDevice(t, mustGet(t, s, "g"), before)
	// An empty non-nil key clears too.
	if err := s.SetKey(ctx, "h", key); err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey(ctx, "h", []byte{}); err != nil {
		t.Fatal(err)
	}
	if d := mustGet(t, s, "h"); d.Key != nil {
		t.Fatalf("empty key did not clear: %x", d.Key)
	}
}

func contractSetKeyValidation(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.SetKey(ctx, "k", make([]byte, KeySize-1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
	if err := s.SetKey(ctx, "", make([]byte, KeySize)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
	if err := s.SetBlocked(ctx, "", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rejected key created a record: %v", err)
	}
	// The caller's buffer is copied.
	key := bytes.Repeat([]byte{1}, KeySize)
	if err := s.SetKey(ctx, "k", key); err != nil {
		t.Fatal(err)
	}
	key[0] = 99
	if d := mustGet(t, s, "k"); d.Key[0] != 1 {
		t.Fatal("store kept the caller's key buffer")
	}
}
