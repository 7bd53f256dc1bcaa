package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Badger tuning for a small footprint: termd's registry is a few hundred
// bytes per device, so Badger's defaults (64 MiB memtables, 256 MiB block
// cache, 1 GiB value logs) would dwarf the data.
const (
	badgerMemTableSize = 4 << 20 // bytes per memtable on disk; its arena and WAL pages are resident
	// badgerInMemoryMemTableSize keeps InMemory mode's batches above its
	// 1 MiB value threshold (a batch may be at most ~15% of a memtable).
	badgerInMemoryMemTableSize = 8 << 20
	badgerNumMemtables         = 2        // memtables kept before writes stall
	badgerValueThreshold       = 1 << 10  // bytes; larger values go to the value log
	badgerBaseTableSize        = 2 << 20  // bytes per L0/L1 SSTable
	badgerValueLogFileSize     = 64 << 20 // bytes per value log file
	badgerNumLevelZeroTables   = 2        // L0 tables that trigger compaction
	badgerLevelZeroStall       = 4        // L0 tables that stall writes
	badgerNumCompactors        = 2        // the minimum Badger accepts
	// badgerInMemoryValueThreshold replaces badgerValueThreshold in
	// InMemory mode: Badger keeps every value in the LSM tree there but still
	// rejects values over the configured threshold, so raise it to Badger's
	// maximum (1 MiB), which is then the largest record an InMemory store takes.
	badgerInMemoryValueThreshold = 1 << 20
	// With compression off Badger needs no block cache; index cache 0 keeps
	// the (small) table indices in memory instead of re-reading them.
	badgerBlockCacheSize = 0
	badgerIndexCacheSize = 0
)

// Value-log GC and bulk-write tuning.
const (
	// DefaultGCInterval is how often value-log GC runs when
	// BadgerOptions.GCInterval is 0.
	DefaultGCInterval = 5 * time.Minute
	// gcDiscardRatio rewrites a value log file once half of it is stale.
	gcDiscardRatio = 0.5
	// presenceChunk is how many updates ApplyPresence applies under one
	// hold of the device mutex, so operator writes interleave with a big
	// write-behind batch instead of waiting for all of it.
	presenceChunk = 1024
	// restorePendingWrites bounds Restore's in-flight write batches.
	restorePendingWrites = 256
	// ctxCheckEvery is how many records a scan reads between ctx checks.
	ctxCheckEvery = 256
)

// Key layout. Device records live under devPrefix so a prefix scan walks
// them in id order; node metadata lives under "m/".
//
// The audit log (audit_badger.go) lives under "a…/"; seq is a uint64
// big-endian, so byte order is seq order, and NUL separates a name from
// what follows (device ids and services never contain NUL: AppendAudit
// rejects them), so one name's keys never share a prefix with another's:
//
//	a/  seq                      → auditV1 byte + JSON of the AuditRecord
//	ad/ device NUL seq           → empty (records of a device; none for "")
//	as/ service NUL seq          → empty (records of a service)
//	ar/ device NUL request_id    → seq (newest record that owns that request_id)
//	ac/ device NUL service NUL op NUL status → seq (newest coalesced refusal)
//	m/audit_seq                  → uint64 big-endian, the last seq assigned
//
// The operator audit (operator_audit_badger.go) is "op/" seq → JSON.
//
// A record and its index keys are written in one transaction; PruneAudit
// deletes the index keys before the record, so an interrupted prune
// leaves at worst a record whose index keys are gone, which the next
// prune deletes.
var (
	devPrefix    = []byte("d/")
	keyBootEpoch = []byte("m/boot_epoch") // uint32 big-endian
	keyAliveMark = []byte("m/alive_mark") // int64 big-endian, unix ms

	auditPrefix    = []byte("a/")
	auditDevPrefix = []byte("ad/")
	auditSvcPrefix = []byte("as/")
	auditReqPrefix = []byte("ar/")
	auditRefPrefix = []byte("ac/")
	keyAuditSeq    = []byte("m/audit_seq") // uint64 big-endian
)

// BadgerOptions configures OpenBadger.
type BadgerOptions struct {
	// InMemory keeps everything in memory (tests); dir is then ignored.
	InMemory bool
	// SyncWrites fsyncs every write before it is acknowledged (Badger's own
	// SyncWrites option, passed through). Without it acknowledged writes
	// survive kill -9 (they are in the OS page cache) but not power loss.
	// Default false.
	SyncWrites bool
	// Logger receives Badger's warnings and errors; nil = slog.Default().
	Logger *slog.Logger
	// GCInterval is how often value-log GC runs; 0 = DefaultGCInterval.
	GCInterval time.Duration
	// Space, if set, refuses writes while the filesystem is below its
	// reserve (ErrDiskFull); nil: no guard (in-memory stores, tests).
	Space *SpaceGuard
}

// Badger is a Store on a Badger database. It is safe for concurrent use.
type Badger struct {
	db    *badger.DB
	log   *slog.Logger
	space *SpaceGuard

	// life guards closed: every call holds it for reading, Close for writing.
	life   sync.RWMutex
	closed bool

	// mu serialises read-merge-write of device records, so presence and
	// operator writes to one device never lose each other's fields. Badger's
	// own conflict detection is off because of it.
	mu sync.Mutex
	// metaMu serialises read-modify-write of node metadata.
	metaMu sync.Mutex
	// auditMu serialises audit appends (seq assignment, the "ar/" index)
	// with each other and with prune chunks. auditSeq is the last seq
	// known assigned; auditSeqLoaded says the last stored record's seq has
	// been folded into it since open (or Restore).
	auditMu        sync.Mutex
	auditSeq       uint64
	auditSeqLoaded bool
	// outboxMu serialises outbox writes (outbox_badger.go).
	outboxMu sync.Mutex
	// upMu serialises upgrade transactions (UpdateUpgrades), whose
	// read-merge-writes Badger's disabled conflict detection would not
	// catch.
	upMu sync.Mutex
	// schMu serialises scheduling transactions (UpdateSchedule) the same way.
	schMu sync.Mutex
	// opMu serialises operator audit appends (seq assignment, retention);
	// opKeep is the retention, <= 0 for DefaultOperatorKeep.
	opMu   sync.Mutex
	opKeep int
	// dfMu serialises saved device filter writes (the count bound).
	dfMu sync.Mutex

	stop chan struct{}
	wg   sync.WaitGroup
}

var _ Store = (*Badger)(nil)

// OpenBadger opens (creating if needed) a Badger store in dir and starts
// value-log GC in the background until Close.
func OpenBadger(dir string, opt BadgerOptions) (*Badger, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "badger")
	threshold, memtable := int64(badgerValueThreshold), int64(badgerMemTableSize)
	if opt.InMemory {
		dir = ""
		threshold, memtable = badgerInMemoryValueThreshold, badgerInMemoryMemTableSize
	}
	o := badger.DefaultOptions(dir).
		WithInMemory(opt.InMemory).
		WithSyncWrites(opt.SyncWrites).
		WithLogger(badgerLogger{log}).
		WithMemTableSize(memtable).
		WithNumMemtables(badgerNumMemtables).
		WithValueThreshold(threshold).
		WithBaseTableSize(badgerBaseTableSize).
		WithValueLogFileSize(badgerValueLogFileSize).
		WithNumLevelZeroTables(badgerNumLevelZeroTables).
		WithNumLevelZeroTablesStall(badgerLevelZeroStall).
		WithNumCompactors(badgerNumCompactors).
		WithCompression(options.None).
		WithBlockCacheSize(badgerBlockCacheSize).
		WithIndexCacheSize(badgerIndexCacheSize).
		WithDetectConflicts(false)
	db, err := badger.Open(o)
	if err != nil {
		return nil, fmt.Errorf("storage: open badger %q: %w", dir, err)
	}
	b := &Badger{db: db, log: log, space: opt.Space, stop: make(chan struct{})}
	if !opt.InMemory {
		interval := opt.GCInterval
		if interval <= 0 {
			interval = DefaultGCInterval
		}
		b.wg.Add(1)
		go b.runGC(interval)
	}
	return b, nil
}

// runGC rewrites value-log files until none is worth it, every interval.
func (b *Badger) runGC(interval time.Duration) {
	defer b.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		// GC writes a new value log file before it deletes the old one:
		// not while the filesystem is below its reserve.
		if b.Writable() != nil {
			continue
		}
		for {
			err := b.db.RunValueLogGC(gcDiscardRatio)
			if err == nil {
				select {
				case <-b.stop:
					return
				default:
					continue // a file was rewritten: another may be due
				}
			}
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				b.log.Warn("value log GC failed", "err", err)
			}
			break
		}
	}
}

// enter holds the store open for one call; the caller must call leave.
func (b *Badger) enter() error {
	b.life.RLock()
	if b.closed {
		b.life.RUnlock()
		return ErrClosed
	}
	return nil
}

func (b *Badger) leave() { b.life.RUnlock() }

// enterWrite is enter for a call that writes: it also refuses with
// ErrDiskFull while the space guard says the filesystem is below its
// reserve, before Badger touches a memory-mapped page that has no disk
// block behind it (SIGBUS).
func (b *Badger) enterWrite() error {
	if err := b.enter(); err != nil {
		return err
	}
	if b.space != nil {
		if err := b.space.Allow(); err != nil {
			b.leave()
			return err
		}
	}
	return nil
}

// enterCtx is enter for a call that also gives up when ctx is done by the
// time the store holds it open, before any work is started; the caller
// must call leave when it returns nil.
func (b *Badger) enterCtx(ctx context.Context) error {
	return b.checkCtx(ctx, b.enter())
}

// enterWriteCtx is enterWrite with enterCtx's ctx check.
func (b *Badger) enterWriteCtx(ctx context.Context) error {
	return b.checkCtx(ctx, b.enterWrite())
}

// checkCtx completes enterCtx and enterWriteCtx: err is the entering's
// answer, and a ctx found done leaves the store again so that the caller
// holds it only on nil.
func (b *Badger) checkCtx(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		b.leave()
		return err
	}
	return nil
}

// Space is the store's space guard (nil for an in-memory store).
func (b *Badger) Space() *SpaceGuard { return b.space }

// Writable reports, without a system call, whether writes are refused
// for lack of disk space (ErrDiskFull) or accepted (nil).
func (b *Badger) Writable() error {
	if b.space == nil {
		return nil
	}
	return b.space.Writable()
}

// Sizes returns the on-disk sizes in bytes of the LSM tree and the value
// log, for metrics. Badger refreshes them about once a minute.
func (b *Badger) Sizes() (lsm, vlog int64) {
	if err := b.enter(); err != nil {
		return 0, 0
	}
	defer b.leave()
	return b.db.Size()
}

// DB returns the underlying Badger database, for tools and metrics. Writes
// through it bypass the store's serialisation of device records.
func (b *Badger) DB() *badger.DB { return b.db }

// Close stops value-log GC and closes the database. It waits for calls in
// progress; later calls fail with ErrClosed.
func (b *Badger) Close() error {
	b.life.Lock()
	defer b.life.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	close(b.stop)
	b.wg.Wait()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("storage: close badger: %w", err)
	}
	return nil
}

// badgerLogger adapts Badger's printf logger to slog at warning level:
// Badger logs every compaction and flush at info, which would drown
// termd's own logs.
type badgerLogger struct{ l *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)))
}

func (l badgerLogger) Warningf(f string, a ...any) {
	l.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)))
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
