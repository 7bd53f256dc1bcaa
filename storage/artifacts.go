package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Artifact store layout and tuning.
const (
	// ArtifactsDir is the store's directory under storage.dir.
	ArtifactsDir = "artifacts"
	// artifactTmpDir holds uploads in progress; whatever is in it at open
	// is a leftover of a crash and is removed.
	artifactTmpDir = "tmp"
	// artifactCheckBytes is how many bytes an upload writes between two
	// free-space readings (one statfs per MiB).
	artifactCheckBytes = 1 << 20
	// artifactBufBytes is the copy buffer of an upload: the only memory
	// an upload holds, whatever the artifact's size.
	artifactBufBytes = 256 << 10
)

// ArtifactInfo describes one stored artifact.
type ArtifactInfo struct {
	SHA256  [sha256.Size]byte
	Size    int64 // bytes
	Created time.Time
	// Existed (from Put) is true when the same bytes were already stored.
	Existed bool
}

// Artifacts is a content-addressed file store: each artifact is the file
// artifacts/<sha256 hex> under the data directory, named by the SHA-256
// of its bytes. Firmware images are too large for Badger's value log and
// are served with sendfile and Range requests, so they live as plain
// files; a file only appears under its name once it is complete, synced
// and its digest known (uploads go to tmp/ and are renamed). Safe for
// concurrent use.
type Artifacts struct {
	dir   string
	space *SpaceGuard // nil: unguarded
}

// OpenArtifacts opens (creating) the store under dataDir/artifacts and
// removes uploads a crash left unfinished. Writes are refused with
// ErrDiskFull when space says so (nil: never).
func OpenArtifacts(dataDir string, space *SpaceGuard) (*Artifacts, error) {
	a := &Artifacts{dir: filepath.Join(dataDir, ArtifactsDir), space: space}
	tmp := filepath.Join(a.dir, artifactTmpDir)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("storage: artifacts: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("storage: artifacts: %w", err)
	}
	return a, nil
}

// Dir is the directory holding the artifacts.
func (a *Artifacts) Dir() string { return a.dir }

// Path is where the artifact sha is (or would be) stored.
func (a *Artifacts) Path(sha [sha256.Size]byte) string {
	return filepath.Join(a.dir, hex.EncodeToString(sha[:]))
}

// Put stores the bytes of r, streaming: the SHA-256 is computed while
// they are written to a temporary file, which is synced and renamed to
// its digest's name, so a crash leaves either the whole artifact or
// nothing. declared is the size the uploader announced (-1: unknown); an
// upload that would leave less than the disk reserve is refused before a
// byte is written, and any upload stops with ErrDiskFull as soon as it
// would (the reserve keeps Badger's memory-mapped files safe). An
// artifact already stored is kept as it is (same bytes, same name).
func (a *Artifacts) Put(ctx context.Context, r io.Reader, declared int64) (ArtifactInfo, error) {
	budget := int64(-1) // bytes the disk can take above the reserve; -1: unguarded
	if a.space != nil {
		free, err := a.space.Refresh()
		if err != nil {
			free = a.space.Free()
		}
		if err := a.space.Allow(); err != nil {
			return ArtifactInfo{}, err
		}
		budget = int64(free) - int64(a.space.MinFree())
		if budget < 0 || (declared >= 0 && declared > budget) {
			return ArtifactInfo{}, fmt.Errorf("%w (upload of %d bytes, %d free above the reserve)", ErrDiskFull, declared, max(budget, 0))
		}
	}
	f, err := os.CreateTemp(filepath.Join(a.dir, artifactTmpDir), "upload-*")
	if err != nil {
		return ArtifactInfo{}, err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := &guardedWriter{ctx: ctx, f: f, h: sha256.New(), space: a.space, budget: budget}
	n, err := io.CopyBuffer(w, r, make([]byte, artifactBufBytes))
	if err != nil {
		return ArtifactInfo{}, err
	}
	if declared >= 0 && n != declared {
		return ArtifactInfo{}, fmt.Errorf("%w: upload ended after %d of %d declared bytes", ErrInvalid, n, declared)
	}
	if err := f.Sync(); err != nil {
		return ArtifactInfo{}, err
	}
	if err := f.Close(); err != nil {
		return ArtifactInfo{}, err
	}
	var info ArtifactInfo
	w.h.Sum(info.SHA256[:0])
	info.Size = n
	dst := a.Path(info.SHA256)
	if st, err := os.Stat(dst); err == nil && st.Size() == n {
		os.Remove(tmp)
		ok = true
		info.Created = st.ModTime()
		info.Existed = true
		return info, nil
	}
	if err := os.Rename(tmp, dst); err != nil {
		return ArtifactInfo{}, err
	}
	ok = true
	if err := syncDir(a.dir); err != nil {
		return ArtifactInfo{}, err
	}
	info.Created = time.Now()
	return info, nil
}

// guardedWriter writes an upload to its file and its hash, stopping when
// the context ends, the disk guard trips, or the bytes would exceed what
// the disk had above the reserve when the upload began (statfs is read
// once per artifactCheckBytes, so the budget covers the bytes between).
type guardedWriter struct {
	ctx       context.Context
	f         *os.File
	h         hash.Hash
	space     *SpaceGuard
	budget    int64 // -1: unguarded
	written   int64
	lastCheck int64
}

func (w *guardedWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.space != nil {
		if w.written+int64(len(p)) > w.budget {
			return 0, fmt.Errorf("%w (upload stopped after %d bytes)", ErrDiskFull, w.written)
		}
		if w.written-w.lastCheck >= artifactCheckBytes {
			w.lastCheck = w.written
			_, _ = w.space.Refresh()
			if err := w.space.Allow(); err != nil {
				return 0, fmt.Errorf("%w (upload stopped after %d bytes)", err, w.written)
			}
		}
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.written += int64(n)
	return n, err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Stat reports the artifact sha, or ErrNotFound.
func (a *Artifacts) Stat(sha [sha256.Size]byte) (ArtifactInfo, error) {
	st, err := os.Stat(a.Path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return ArtifactInfo{}, fmt.Errorf("%w: artifact %x", ErrNotFound, sha)
	}
	if err != nil {
		return ArtifactInfo{}, err
	}
	return ArtifactInfo{SHA256: sha, Size: st.Size(), Created: st.ModTime()}, nil
}

// Open opens the artifact sha for reading, or ErrNotFound. A file removed
// while open stays readable until closed, so a download in progress
// finishes even if the artifact is deleted meanwhile.
func (a *Artifacts) Open(sha [sha256.Size]byte) (*os.File, ArtifactInfo, error) {
	f, err := os.Open(a.Path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ArtifactInfo{}, fmt.Errorf("%w: artifact %x", ErrNotFound, sha)
	}
	if err != nil {
		return nil, ArtifactInfo{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, ArtifactInfo{}, err
	}
	return f, ArtifactInfo{SHA256: sha, Size: st.Size(), Created: st.ModTime()}, nil
}

// List returns every stored artifact, newest first.
func (a *Artifacts) List() ([]ArtifactInfo, error) {
	ents, err := os.ReadDir(a.dir)
	if err != nil {
		return nil, err
	}
	var out []ArtifactInfo
	for _, e := range ents {
		sha, ok := ParseSHA256(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		st, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, ArtifactInfo{SHA256: sha, Size: st.Size(), Created: st.ModTime()})
	}
	slices.SortFunc(out, func(x, y ArtifactInfo) int { return y.Created.Compare(x.Created) })
	return out, nil
}

// Remove deletes the artifact sha, or returns ErrNotFound. Downloads
// already open finish; new ones get 404.
func (a *Artifacts) Remove(sha [sha256.Size]byte) error {
	err := os.Remove(a.Path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: artifact %x", ErrNotFound, sha)
	}
	if err != nil {
		return err
	}
	return syncDir(a.dir)
}

// ParseSHA256 reads 64 hex digits (either case) as a SHA-256 digest.
func ParseSHA256(s string) ([sha256.Size]byte, bool) {
	var d [sha256.Size]byte
	if len(s) != 2*sha256.Size {
		return d, false
	}
	if _, err := hex.Decode(d[:], []byte(strings.ToLower(s))); err != nil {
		return d, false
	}
	return d, true
}
