package storage

// The DeviceFilters half of the Store contract, run against every
// implementation, plus a Badger reopen test.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestDeviceFiltersContractMemory(t *testing.T) { runDeviceFiltersContract(t, openMemory) }
func TestDeviceFiltersContractBadgerInMemory(t *testing.T) {
	runDeviceFiltersContract(t, openBadgerInMemory)
}
func TestDeviceFiltersContractBadgerDir(t *testing.T) { runDeviceFiltersContract(t, openBadgerDir) }

func runDeviceFiltersContract(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"PutGetList", contractDFPutGetList},
		{"Replace", contractDFReplace},
		{"Delete", contractDFDelete},
		{"Invalid", contractDFInvalid},
		{"Bound", contractDFBound},
		{"Concurrent", contractDFConcurrent},
		{"Closed", contractDFClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func contractDFPutGetList(t *testing.T, s Store) {
	ctx := context.Background()
	if l, err := s.ListDeviceFilters(ctx); err != nil || l == nil || len(l) != 0 {
		t.Fatalf("empty list: %#v %v", l, err)
	}
	in := DeviceFilter{Name: "P400 offline", Query: "model=P400&online=false", CreatedBy: "alice", CreatedMs: 10, UpdatedBy: "alice", UpdatedMs: 10}
	got, created, err := s.PutDeviceFilter(ctx, in)
	if err != nil || got != in || !created {
		t.Fatalf("put: %+v %v %v", got, created, err)
	}
	if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "Ärger", Query: "fw=2.1", CreatedMs: 11, UpdatedMs: 11}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "Alpha", Query: ""}); err != nil {
		t.Fatal(err) // an empty query is every device: allowed
	}
	if f, err := s.DeviceFilter(ctx, "P400 offline"); err != nil || f != in {
		t.Fatalf("get: %+v %v", f, err)
	}
	if _, err := s.DeviceFilter(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	l, err := s.ListDeviceFilters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range l {
		names = append(names, f.Name)
	}
	if strings.Join(names, "|") != "Alpha|P400 offline|Ärger" {
		t.Fatalf("names in order: %q", names)
	}
}

// A save over a name replaces the query and keeps who made it, and when.
func contractDFReplace(t *testing.T, s Store) {
	ctx := context.Background()
	if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "f", Query: "model=A", CreatedBy: "alice", CreatedMs: 1, UpdatedBy: "alice", UpdatedMs: 1}); err != nil {
		t.Fatal(err)
	}
	got, created, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "f", Query: "model=B", CreatedBy: "bob", CreatedMs: 5, UpdatedBy: "bob", UpdatedMs: 5})
	want := DeviceFilter{Name: "f", Query: "model=B", CreatedBy: "alice", CreatedMs: 1, UpdatedBy: "bob", UpdatedMs: 5}
	if err != nil || got != want || created {
		t.Fatalf("replace answered %+v %v %v, want %+v", got, created, err, want)
	}
	if f, _ := s.DeviceFilter(ctx, "f"); f != want {
		t.Fatalf("stored %+v, want %+v", f, want)
	}
	if l, _ := s.ListDeviceFilters(ctx); len(l) != 1 {
		t.Fatalf("a replace added a filter: %+v", l)
	}
}

func contractDFDelete(t *testing.T, s Store) {
	ctx := context.Background()
	if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "gone", Query: "fw=1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDeviceFilter(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDeviceFilter(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := s.DeviceFilter(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if l, _ := s.ListDeviceFilters(ctx); len(l) != 0 {
		t.Fatalf("list after delete: %+v", l)
	}
}

func contractDFInvalid(t *testing.T, s Store) {
	ctx := context.Background()
	for _, f := range []DeviceFilter{
		{Name: ""},
		{Name: strings.Repeat("n", MaxDeviceFilterName+1)},
		{Name: " lead"},
		{Name: "trail "},
		{Name: "tab\there"},
		{Name: "bad\xff"},
		{Name: "q", Query: strings.Repeat("x", MaxDeviceFilterQuery+1)},
		{Name: "q", Query: "id=\xff"},
	} {
		if _, _, err := s.PutDeviceFilter(ctx, f); !errors.Is(err, ErrInvalid) {
			t.Errorf("put %q (query %d bytes): %v, want ErrInvalid", f.Name, len(f.Query), err)
		}
	}
	if err := s.DeleteDeviceFilter(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("delete empty name: %v", err)
	}
	if _, err := s.DeviceFilter(ctx, strings.Repeat("n", MaxDeviceFilterName+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("get long name: %v", err)
	}
	// The longest name and query are kept whole; a space inside a name is fine.
	long := DeviceFilter{Name: strings.Repeat("é", MaxDeviceFilterName/2), Query: strings.Repeat("x", MaxDeviceFilterQuery)}
	if got, _, err := s.PutDeviceFilter(ctx, long); err != nil || got.Name != long.Name || got.Query != long.Query {
		t.Fatalf("longest: %v", err)
	}
	if l, _ := s.ListDeviceFilters(ctx); len(l) != 1 {
		t.Fatalf("a refused put stored something: %d filters", len(l))
	}
}

// At most MaxDeviceFilters: one more new name is ErrTooMany, a save over
// an existing one is still fine, and a delete makes room.
func contractDFBound(t *testing.T, s Store) {
	ctx := context.Background()
	for i := range MaxDeviceFilters {
		if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: fmt.Sprintf("f%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "one more"}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("beyond the bound: %v", err)
	}
	if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "f000", Query: "fw=2"}); err != nil {
		t.Fatalf("replace at the bound: %v", err)
	}
	if err := s.DeleteDeviceFilter(ctx, "f001"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "one more"}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
}

// Saves racing for the last free places never pass the bound.
func contractDFConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	for i := range MaxDeviceFilters - 5 {
		if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: fmt.Sprintf("f%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { _, _, _ = s.PutDeviceFilter(ctx, DeviceFilter{Name: fmt.Sprintf("race%02d", i)}) })
	}
	wg.Wait()
	if l, _ := s.ListDeviceFilters(ctx); len(l) != MaxDeviceFilters {
		t.Fatalf("%d filters after the race, want %d", len(l), MaxDeviceFilters)
	}
}

func contractDFClosed(t *testing.T, s Store) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := s.PutDeviceFilter(ctx, DeviceFilter{Name: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}
	if _, err := s.ListDeviceFilters(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("list after close: %v", err)
	}
	if err := s.DeleteDeviceFilter(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("delete after close: %v", err)
	}
}

// TestDeviceFiltersBadgerReopen: saved filters survive a reopen.
func TestDeviceFiltersBadgerReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	in := DeviceFilter{Name: "kept", Query: "offline_for=24h", CreatedBy: "alice", CreatedMs: 7, UpdatedMs: 7}
	if _, _, err := b.PutDeviceFilter(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if f, err := b.DeviceFilter(ctx, "kept"); err != nil || f != in {
		t.Fatalf("after reopen: %+v %v", f, err)
	}
}
