package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeSpace is a guard over a free-space reading the test sets.
func fakeSpace(t *testing.T, minFree uint64, free *atomic.Uint64, changes *[]bool) *SpaceGuard {
	t.Helper()
	g := &SpaceGuard{dir: t.TempDir(), minFree: minFree, resume: minFree + minFree/spaceResumeDiv,
		statfs:   func(string) (uint64, error) { return free.Load(), nil },
		onChange: func(low bool, _ uint64) { *changes = append(*changes, low) }}
	if _, err := g.Refresh(); err != nil {
		t.Fatal(err)
	}
	return g
}

// Writes stop below the reserve and resume only above it plus the
// hysteresis, each change reported once.
func TestSpaceGuardHysteresis(t *testing.T) {
	var free atomic.Uint64
	free.Store(1000)
	var changes []bool
	g := fakeSpace(t, 400, &free, &changes)
	steps := []struct {
		free uint64
		low  bool
	}{{500, false}, {399, true}, {450, true}, {499, true}, {500, false}, {401, false}, {100, true}, {2000, false}}
	for _, s := range steps {
		free.Store(s.free)
		if _, err := g.Refresh(); err != nil {
			t.Fatal(err)
		}
		if got := g.Writable() != nil; got != s.low {
			t.Fatalf("free %d: low %v, want %v", s.free, got, s.low)
		}
	}
	want := []bool{true, false, true, false}
	if len(changes) != len(want) {
		t.Fatalf("changes %v, want %v", changes, want)
	}
	// Allow refreshes a stale reading before it answers.
	free.Store(10)
	g.checkedAt.Store(time.Now().Add(-time.Second).UnixNano())
	if err := g.Allow(); !errors.Is(err, ErrDiskFull) || g.Refused() != 1 {
		t.Fatalf("Allow on a full disk: %v, refused %d", err, g.Refused())
	}
}

// A Badger store below its reserve refuses every write with ErrDiskFull
// (nothing is written) and still serves reads; NextBootEpoch hands out
// the next epoch without storing it.
func TestBadgerRefusesWritesBelowReserve(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	var changes []bool
	g := fakeSpace(t, 64<<20, &free, &changes)
	b, err := OpenBadger(filepath.Join(t.TempDir(), "db"), BadgerOptions{Space: g})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.SetBlocked(ctx, "D1", true); err != nil {
		t.Fatal(err)
	}
	e1, err := b.NextBootEpoch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	free.Store(1 << 20)
	g.checkedAt.Store(0)
	writes := map[string]error{
		"SetBlocked":    b.SetBlocked(ctx, "D2", true),
		"SetKey":        b.SetKey(ctx, "D1", make([]byte, KeySize)),
		"SetAliveMark":  b.SetAliveMark(ctx, 1),
		"ApplyPresence": b.ApplyPresence(ctx, []PresenceUpdate{{Kind: PresenceSeen, ID: "D1", At: 5}}),
	}
	_, writes["AppendAudit"] = b.AppendAudit(ctx, AuditRecord{At: 1, Source: SourceTerminal, DeviceID: "D1", Service: "s", Op: "status"})
	_, writes["MarkOnlineOffline"] = b.MarkOnlineOffline(ctx, "restart", 1)
	_, writes["PruneAudit"] = b.PruneAudit(ctx, 1<<62)
	for name, err := range writes {
		if !errors.Is(err, ErrDiskFull) {
			t.Errorf("%s below the reserve: %v, want ErrDiskFull", name, err)
		}
	}
	if b.Writable() == nil {
		t.Fatal("Writable below the reserve")
	}
	e2, err := b.NextBootEpoch(ctx)
	if !errors.Is(err, ErrDiskFull) || e2 != e1+1 {
		t.Fatalf("NextBootEpoch below the reserve: %d, %v (after %d)", e2, err, e1)
	}
	if d, err := b.Get(ctx, "D1"); err != nil || !d.Blocked || d.Key != nil {
		t.Fatalf("read below the reserve: %+v %v", d, err)
	}
	if _, err := b.Get(ctx, "D2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused write was stored: %v", err)
	}
	// Room again: writes go through, and the unstored epoch is handed out again.
	free.Store(1 << 30)
	g.checkedAt.Store(0)
	if err := b.SetBlocked(ctx, "D2", true); err != nil {
		t.Fatal(err)
	}
	if e3, err := b.NextBootEpoch(ctx); err != nil || e3 != e1+1 {
		t.Fatalf("NextBootEpoch with room: %d %v", e3, err)
	}
}

// The ballast is a real allocation and is given back on release.
func TestBallast(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureBallast(dir, 1<<20); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, BallastName))
	if err != nil {
		t.Fatal(err)
	}
	// Allocated, not sparse: its blocks are what a full disk gets back.
	if blocks := st.Sys().(*syscall.Stat_t).Blocks * 512; st.Size() != 1<<20 || blocks < 1<<20 {
		t.Fatalf("ballast of %d bytes in %d allocated", st.Size(), blocks)
	}
	n, err := ReleaseBallast(dir)
	if err != nil || n != 1<<20 {
		t.Fatalf("release: %d %v", n, err)
	}
	if n, err := ReleaseBallast(dir); err != nil || n != 0 {
		t.Fatalf("second release: %d %v", n, err)
	}
}
