package storage

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Sizes of the bounded-backup test.
const (
	backupTestStore = 192 << 20 // bytes of random values written
	backupTestValue = 64 << 10  // bytes per value
	// backupTestHeapBound is the peak heap growth allowed during the
	// backup. Measured: ~145 MB bounded (a few of Badger's 32 MB stream
	// buffers plus the decoded and re-encoded batch, and garbage not yet
	// collected), 608 MB before the bound, when the stream queued the
	// whole store ahead of a slow client.
	backupTestHeapBound = 256 << 20
	// backupTestDelayPerMB slows the writer like a client on a slow link.
	backupTestDelayPerMB = 15 * time.Millisecond
)

// slowWriter discards what it gets after a delay proportional to its size.
type slowWriter struct{ n atomic.Int64 }

func (s *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Duration(len(p)>>20) * backupTestDelayPerMB)
	s.n.Add(int64(len(p)))
	return len(p), nil
}

// TestBadgerBackupBoundedMemory reproduces issue 10 defect 8: a backup
// to a slow reader held the whole store in memory (550 MB RSS for a
// 112 MB store). It fills a store with incompressible values, backs it up
// to a slow writer and samples the Go heap meanwhile.
func TestBadgerBackupBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 192 MB")
	}
	b, err := OpenBadger(t.TempDir(), BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	val := make([]byte, backupTestValue)
	wb := b.db.NewWriteBatch()
	for i := 0; i < backupTestStore/backupTestValue; i++ {
		_, _ = rand.Read(val)
		if err := wb.Set([]byte(fmt.Sprintf("t/backup/%08d", i)), append([]byte(nil), val...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	old := debug.SetGCPercent(10)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc

	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
		}
	}()
	w := &slowWriter{}
	_, err = b.Backup(context.Background(), w)
	close(done)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	growth := int64(peak.Load()) - int64(base)
	t.Logf("backup of %d MB: %d MB written, peak heap growth %d MB", backupTestStore>>20, w.n.Load()>>20, growth>>20)
	if w.n.Load() < backupTestStore {
		t.Fatalf("backup wrote %d bytes of a %d-byte store", w.n.Load(), backupTestStore)
	}
	if growth > backupTestHeapBound {
		t.Errorf("peak heap growth %d MB during the backup; the bound is %d MB", growth>>20, backupTestHeapBound>>20)
	}
}

// TestBadgerBackupWriterFailureEnds: a writer that fails (a dropped
// client) ends the backup at once with its error, also while the producer
// waits for the writer.
func TestBadgerBackupWriterFailureEnds(t *testing.T) {
	b, err := OpenBadger(t.TempDir(), BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	val := make([]byte, backupTestValue)
	err = b.db.Update(func(txn *badger.Txn) error {
		for i := 0; i < 64; i++ {
			if err := txn.Set([]byte(fmt.Sprintf("t/backup/%08d", i)), val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Backup(ctx, failWriter{}); err == nil || ctx.Err() != nil {
		t.Fatalf("backup to a failing writer: err %v, ctx %v", err, ctx.Err())
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, io.ErrClosedPipe }
