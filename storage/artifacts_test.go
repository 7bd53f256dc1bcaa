package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
)

func openTestArtifacts(t *testing.T, g *SpaceGuard) (*Artifacts, string) {
	t.Helper()
	dir := t.TempDir()
	a, err := OpenArtifacts(dir, g)
	if err != nil {
		t.Fatal(err)
	}
	return a, dir
}

// tmpEntries lists what uploads left in the temporary directory.
func tmpEntries(t *testing.T, a *Artifacts) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(a.Dir(), artifactTmpDir))
	if err != nil {
		t.Fatal(err)
	}
	return ents
}

// An artifact is stored under its digest with exactly its bytes, listed,
// stat'ed, opened, stored once when uploaded twice, and removed.
func TestArtifactsPutListRemove(t *testing.T) {
	a, _ := openTestArtifacts(t, nil)
	body := bytes.Repeat([]byte("firmware!"), 100000)
	want := sha256.Sum256(body)
	info, err := a.Put(context.Background(), bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA256 != want || info.Size != int64(len(body)) {
		t.Fatalf("Put = %x %d", info.SHA256, info.Size)
	}
	got, err := os.ReadFile(filepath.Join(a.Dir(), hex.EncodeToString(want[:])))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("stored file: %v", err)
	}
	// Same bytes again, size undeclared: the same artifact.
	if again, err := a.Put(context.Background(), bytes.NewReader(body), -1); err != nil || again.SHA256 != want || !again.Existed {
		t.Fatalf("second Put: %v", err)
	}
	other, err := a.Put(context.Background(), bytes.NewReader([]byte("other")), 5)
	if err != nil {
		t.Fatal(err)
	}
	list, err := a.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	if st, err := a.Stat(want); err != nil || st.Size != int64(len(body)) {
		t.Fatalf("Stat = %v, %v", st, err)
	}
	f, st, err := a.Open(other.SHA256)
	if err != nil || st.Size != 5 {
		t.Fatal(err)
	}
	if err := a.Remove(other.SHA256); err != nil {
		t.Fatal(err)
	}
	// Removed while open: the open reader still gets its bytes.
	if b, _ := io.ReadAll(f); string(b) != "other" {
		t.Errorf("open artifact after Remove read %q", b)
	}
	f.Close()
	for name, err := range map[string]error{
		"Remove again": a.Remove(other.SHA256),
		"Stat":         func() error { _, err := a.Stat(other.SHA256); return err }(),
		"Open":         func() error { _, _, err := a.Open(other.SHA256); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a removed artifact: %v", name, err)
		}
	}
	if len(tmpEntries(t, a)) != 0 {
		t.Error("temporary files left")
	}
}

// An upload shorter or longer than declared, or cancelled, stores nothing.
func TestArtifactsRefusedUploadLeavesNothing(t *testing.T) {
	a, _ := openTestArtifacts(t, nil)
	if _, err := a.Put(context.Background(), bytes.NewReader([]byte("abc")), 4); !errors.Is(err, ErrInvalid) {
		t.Errorf("short upload: %v", err)
	}
	if _, err := a.Put(context.Background(), bytes.NewReader([]byte("abcde")), 4); !errors.Is(err, ErrInvalid) {
		t.Errorf("long upload: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Put(ctx, bytes.NewReader([]byte("abc")), -1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled upload: %v", err)
	}
	if l, _ := a.List(); len(l) != 0 {
		t.Errorf("refused uploads stored %v", l)
	}
	if len(tmpEntries(t, a)) != 0 {
		t.Error("temporary files left")
	}
}

// A crash's unfinished upload is removed when the store opens again.
func TestArtifactsOpenRemovesLeftovers(t *testing.T) {
	a, dir := openTestArtifacts(t, nil)
	os.WriteFile(filepath.Join(a.Dir(), artifactTmpDir, "upload-123"), []byte("half"), 0o600)
	a, err := OpenArtifacts(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpEntries(t, a)) != 0 {
		t.Error("leftover upload kept")
	}
}

// The disk guard refuses an upload whose declared size would cross the
// reserve before writing, stops an undeclared one when it would, and
// stops any upload once free space falls below the reserve meanwhile.
func TestArtifactsDiskGuard(t *testing.T) {
	const mib = 1 << 20
	var free atomic.Uint64
	free.Store(12 * mib)
	var changes []bool
	g := fakeSpace(t, 8*mib, &free, &changes)
	a, _ := openTestArtifacts(t, g)

	big := make([]byte, 5*mib)
	if _, err := a.Put(context.Background(), bytes.NewReader(big), int64(len(big))); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("declared 5 MiB with 4 above the reserve: %v", err)
	}
	if _, err := a.Put(context.Background(), bytes.NewReader(big), -1); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("undeclared 5 MiB with 4 above the reserve: %v", err)
	}
	if _, err := a.Put(context.Background(), bytes.NewReader(big[:3*mib]), 3*mib); err != nil {
		t.Fatalf("3 MiB with 4 above the reserve: %v", err)
	}
	// Free space drops below the reserve during an upload.
	free.Store(100 * mib)
	r := &dropAfter{r: bytes.NewReader(make([]byte, 10*mib)), after: 2 * mib, drop: func() { free.Store(7 * mib) }}
	if _, err := a.Put(context.Background(), r, -1); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("upload while the disk fills: %v", err)
	}
	if l, _ := a.List(); len(l) != 1 {
		t.Errorf("stored %d artifacts, want the 3 MiB one", len(l))
	}
	if len(tmpEntries(t, a)) != 0 {
		t.Error("temporary files left")
	}
}

// dropAfter reads r and calls drop once after bytes have been read.
type dropAfter struct {
	r     io.Reader
	after int
	n     int
	drop  func()
}

func (d *dropAfter) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.n += n
	if d.n >= d.after && d.drop != nil {
		d.drop()
		d.drop = nil
	}
	return n, err
}

// An upload is streamed: storing 64 MiB allocates a small constant, not
// the artifact.
func TestArtifactsPutStreams(t *testing.T) {
	a, _ := openTestArtifacts(t, nil)
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := a.Put(context.Background(), io.LimitReader(zeros{}, size), size); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("Put of 64 MiB allocated %d bytes", alloc)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestParseSHA256(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	h := hex.EncodeToString(sum[:])
	if d, ok := ParseSHA256(h); !ok || d != sum {
		t.Error("lower-case hex")
	}
	if d, ok := ParseSHA256(string(bytes.ToUpper([]byte(h)))); !ok || d != sum {
		t.Error("upper-case hex")
	}
	for _, bad := range []string{"", h[:63], h + "0", "zz" + h[2:], "../" + h[3:]} {
		if _, ok := ParseSHA256(bad); ok {
			t.Errorf("ParseSHA256(%q) accepted", bad)
		}
	}
}
