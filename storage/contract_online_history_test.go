package storage

// This file is the OnlineHistoryStore contract, run against every
// implementation, plus Badger's reopen and disk-guard tests of it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func TestOnlineHistoryContractMemory(t *testing.T) { runOnlineHistoryContract(t, openMemory) }
func TestOnlineHistoryContractBadgerInMemory(t *testing.T) {
	runOnlineHistoryContract(t, openBadgerInMemory)
}
func TestOnlineHistoryContractBadgerDir(t *testing.T) { runOnlineHistoryContract(t, openBadgerDir) }

func runOnlineHistoryContract(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s OnlineHistoryStore)
	}{
		{"Empty", contractOHEmpty},
		{"SaveReplaces", contractOHReplace},
		{"ShardOrder", contractOHOrder},
		{"Invalid", contractOHInvalid},
		{"FnErrorStops", contractOHFnError},
		{"NotAliased", contractOHAliasing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t).(OnlineHistoryStore)) })
	}
	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		_ = s.Close()
		oh := s.(OnlineHistoryStore)
		if err := oh.SaveOnlineHistory(context.Background(), 1, []byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("SaveOnlineHistory after Close: %v", err)
		}
		if err := oh.LoadOnlineHistory(context.Background(), func(int, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Fatalf("LoadOnlineHistory after Close: %v", err)
		}
	})
}

// loadOH returns every stored blob by shard, in the order seen.
func loadOH(t *testing.T, s OnlineHistoryStore) (map[int][]byte, []int) {
	t.Helper()
	got := map[int][]byte{}
	var order []int
	if err := s.LoadOnlineHistory(context.Background(), func(shard int, blob []byte) error {
		got[shard] = bytes.Clone(blob)
		order = append(order, shard)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got, order
}

func saveOH(t *testing.T, s OnlineHistoryStore, shard int, blob string) {
	t.Helper()
	if err := s.SaveOnlineHistory(context.Background(), shard, []byte(blob)); err != nil {
		t.Fatalf("SaveOnlineHistory(%d): %v", shard, err)
	}
}

func contractOHEmpty(t *testing.T, s OnlineHistoryStore) {
	if got, _ := loadOH(t, s); len(got) != 0 {
		t.Fatalf("empty store loaded %v", got)
	}
}

func contractOHReplace(t *testing.T, s OnlineHistoryStore) {
	saveOH(t, s, 3, "first")
	saveOH(t, s, 3, "second")
	saveOH(t, s, 4, "")
	got, _ := loadOH(t, s)
	if len(got) != 2 || string(got[3]) != "second" || len(got[4]) != 0 {
		t.Fatalf("loaded %v", got)
	}
}

func contractOHOrder(t *testing.T, s OnlineHistoryStore) {
	for _, sh := range []int{63, 0, 256, 7, 1} {
		saveOH(t, s, sh, fmt.Sprint("blob", sh))
	}
	got, order := loadOH(t, s)
	want := []int{0, 1, 7, 63, 256}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for _, sh := range want {
		if string(got[sh]) != fmt.Sprint("blob", sh) {
			t.Fatalf("shard %d: %q", sh, got[sh])
		}
	}
}

func contractOHInvalid(t *testing.T, s OnlineHistoryStore) {
	for _, sh := range []int{-1, MaxOnlineHistoryShard} {
		if err := s.SaveOnlineHistory(context.Background(), sh, []byte("x")); !errors.Is(err, ErrInvalid) {
			t.Fatalf("shard %d: %v, want ErrInvalid", sh, err)
		}
	}
	if got, _ := loadOH(t, s); len(got) != 0 {
		t.Fatalf("an invalid save was stored: %v", got)
	}
}

func contractOHFnError(t *testing.T, s OnlineHistoryStore) {
	saveOH(t, s, 1, "a")
	saveOH(t, s, 2, "b")
	stop := errors.New("stop")
	calls := 0
	err := s.LoadOnlineHistory(context.Background(), func(int, []byte) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("fn error: %v after %d calls", err, calls)
	}
}

// The store keeps its own copy of a saved blob.
func contractOHAliasing(t *testing.T, s OnlineHistoryStore) {
	b := []byte("abc")
	if err := s.SaveOnlineHistory(context.Background(), 5, b); err != nil {
		t.Fatal(err)
	}
	b[0] = 'X'
	if got, _ := loadOH(t, s); string(got[5]) != "abc" {
		t.Fatalf("stored blob changed with the caller's slice: %q", got[5])
	}
}

// The snapshot survives a reopen of an on-disk Badger.
func TestOnlineHistoryBadgerReopen(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	saveOH(t, b, 9, "nine")
	saveOH(t, b, 10, "ten")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, _ := loadOH(t, b)
	if len(got) != 2 || string(got[9]) != "nine" || string(got[10]) != "ten" {
		t.Fatalf("after reopen: %v", got)
	}
}

// Below the disk reserve a save is refused (ErrDiskFull, nothing
// written) and loads still work.
func TestOnlineHistoryBadgerDiskGuard(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	var changes []bool
	g := fakeSpace(t, 64<<20, &free, &changes)
	b, err := OpenBadger(filepath.Join(t.TempDir(), "db"), BadgerOptions{Space: g})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	saveOH(t, b, 1, "before")
	free.Store(1 << 20)
	g.checkedAt.Store(0)
	if err := b.SaveOnlineHistory(context.Background(), 1, []byte("after")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("save below the reserve: %v, want ErrDiskFull", err)
	}
	if got, _ := loadOH(t, b); string(got[1]) != "before" {
		t.Fatalf("below the reserve: %q", got[1])
	}
}
