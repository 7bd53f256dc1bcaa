package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrDiskFull is returned by every write while the store's filesystem has
// less free space than the reserve (storage.min_free). The write had no
// effect. Badger's value log and memtables are memory-mapped, so a write
// into a full filesystem is not an error but SIGBUS, which kills the
// process; the guard refuses writes while there is still room for what
// Badger has already accepted (flushes, compactions).
var ErrDiskFull = errors.New("storage: free disk space is below the reserve; durable writes refused")

// Space guard tuning.
const (
	// spaceMaxAge is how old a free-space reading may be when a write is
	// allowed: writes refresh it at most this often, so a burst of writes
	// costs one statfs per interval, and at most a burst's worth of bytes
	// is written on a stale reading.
	spaceMaxAge = 100 * time.Millisecond
	// spaceResumeDiv sets the hysteresis: writes resume once free space is
	// back above min_free + min_free/spaceResumeDiv, so a filesystem
	// hovering at the reserve does not flap.
	spaceResumeDiv = 4
	// BallastName is the file, in the data directory, whose space is
	// released when termd starts on a full disk (see SpaceGuard).
	BallastName = "ballast"
)

// SpaceGuard watches the free space of the filesystem holding a store and
// refuses writes below a reserve. It is safe for concurrent use: Writable
// is an atomic load for event loops; Allow, for the goroutines that write,
// also refreshes a stale reading.
type SpaceGuard struct {
	dir     string
	minFree uint64
	resume  uint64
	statfs  func(dir string) (uint64, error)

	mu        sync.Mutex // serialises refreshes
	checkedAt atomic.Int64
	free      atomic.Uint64
	low       atomic.Bool
	refused   atomic.Uint64
	onChange  func(low bool, free uint64)
}

// NewSpaceGuard returns a guard for the filesystem of dir with a reserve
// of minFree bytes. onChange, if set, is called (from the goroutine that
// noticed) each time writes stop or resume. It reads the free space once.
func NewSpaceGuard(dir string, minFree uint64, onChange func(low bool, free uint64)) (*SpaceGuard, error) {
	g := &SpaceGuard{dir: dir, minFree: minFree, resume: minFree + minFree/spaceResumeDiv, statfs: FreeBytes, onChange: onChange}
	if _, err := g.Refresh(); err != nil {
		return nil, err
	}
	return g, nil
}

// FreeBytes returns the bytes available to an unprivileged writer on the
// filesystem of dir.
func FreeBytes(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("storage: statfs %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Refresh reads the free space now and updates the guard's state.
func (g *SpaceGuard) Refresh() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	free, err := g.statfs(g.dir)
	if err != nil {
		return 0, err
	}
	g.free.Store(free)
	g.checkedAt.Store(time.Now().UnixNano())
	wasLow := g.low.Load()
	low := free < g.minFree || (wasLow && free < g.resume)
	if low != wasLow {
		g.low.Store(low)
		if g.onChange != nil {
			g.onChange(low, free)
		}
	}
	return free, nil
}

// Allow is called before a write: ErrDiskFull while free space is below
// the reserve. A reading older than spaceMaxAge is refreshed first; a
// failed statfs keeps the last reading.
func (g *SpaceGuard) Allow() error {
	if time.Now().UnixNano()-g.checkedAt.Load() > int64(spaceMaxAge) {
		_, _ = g.Refresh()
	}
	if g.low.Load() {
		g.refused.Add(1)
		return ErrDiskFull
	}
	return nil
}

// Writable reports the last reading without a system call (for event
// loops): ErrDiskFull while writes are refused.
func (g *SpaceGuard) Writable() error {
	if g.low.Load() {
		return ErrDiskFull
	}
	return nil
}

// Free is the last reading of free bytes.
func (g *SpaceGuard) Free() uint64 { return g.free.Load() }

// MinFree is the reserve in bytes.
func (g *SpaceGuard) MinFree() uint64 { return g.minFree }

// Refused is how many writes the guard has refused.
func (g *SpaceGuard) Refused() uint64 { return g.refused.Load() }

// Run refreshes the reading every interval until stop is closed, so
// probes and metrics follow the disk even when nothing writes, and keeps
// the ballast of dir at ballast bytes while there is room for it.
func (g *SpaceGuard) Run(stop <-chan struct{}, interval time.Duration, ballast uint64) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if free, err := g.Refresh(); err == nil && ballast > 0 && free >= g.resume+ballast {
			_ = EnsureBallast(g.dir, ballast)
		}
	}
}

// EnsureBallast makes dir/ballast a file of size bytes with its blocks
// allocated (not sparse). Its space is what ReleaseBallast gives back
// when termd starts on a full disk, so that Badger can open (replaying
// its log needs a few pages) and termd can run with writes refused.
func EnsureBallast(dir string, size uint64) error {
	path := filepath.Join(dir, BallastName)
	if st, err := os.Stat(path); err == nil && uint64(st.Size()) == size {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(size)); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("storage: allocate ballast: %w", err)
	}
	return f.Sync()
}

// ReleaseBallast removes dir/ballast and reports the bytes it held.
func ReleaseBallast(dir string) (uint64, error) {
	path := filepath.Join(dir, BallastName)
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if err := os.Remove(path); err != nil {
		return 0, err
	}
	return uint64(st.Size()), nil
}
