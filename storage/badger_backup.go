package storage

// This file is Badger's backup, streamed with bounded memory.

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// Bounds of a backup stream. Badger's Stream fills 32 MB buffers per
// producer goroutine and queues up to 32 of them ahead of a slow writer
// (issue 10: a 112 MB store peaked at ~550 MB RSS, stalled clients held
// 1.6 GB). One producer, no merging of batches, and a producer that waits
// while it is more than backupAhead bytes ahead of what the writer has
// taken keep a backup at roughly 4 × Badger's 16 MB batch whatever the
// store's size or the client's speed (docs/operations.md, "Backups").
const (
	// backupProducers is the Stream's NumGo: one iterator goroutine.
	backupProducers = 1
	// backupMaxBatch is the Stream's MaxSize, in bytes: a batch is sent
	// as produced rather than merged with the queued ones.
	backupMaxBatch = 1
	// backupAhead is how many bytes (key + value estimate) the producer
	// may read ahead of the writer. It must exceed Badger's batch (16 MB),
	// which is handed on only once full.
	backupAhead = 24 << 20
	// backupKeyOverhead is added to each key's estimate (key + value) for
	// the version, meta and framing bytes a backup entry carries; kept
	// below the real overhead so the estimate never outruns the bytes
	// Badger has actually batched (which would stall the stream).
	backupKeyOverhead = 8
)

// Backup writes a full Badger backup (every version since 0) to w and
// returns the version it covers. Restore reads it back. Memory stays
// bounded (see backupAhead) however slowly w takes the bytes; a write
// error or ctx's end aborts the stream.
func (b *Badger) Backup(ctx context.Context, w io.Writer) (uint64, error) {
	if err := b.enter(); err != nil {
		return 0, err
	}
	defer b.leave()
	fw := &flowWriter{ctx: ctx, w: w}
	fw.cond = sync.NewCond(&fw.mu)
	stop := context.AfterFunc(ctx, fw.wake)
	defer stop()
	st := b.db.NewStream()
	st.LogPrefix = "termd backup"
	st.NumGo = backupProducers
	st.MaxSize = backupMaxBatch
	st.ChooseKey = func(item *badger.Item) bool {
		// Never false: Badger's producer does not advance past a refused
		// key. Waiting here is the stream's back-pressure.
		fw.produced(item.EstimatedSize() + backupKeyOverhead)
		return true
	}
	v, err := st.Backup(fw, 0)
	if err != nil {
		return 0, fmt.Errorf("storage: backup: %w", err)
	}
	return v, nil
}

// flowWriter passes writes to w and lets the producer run at most
// backupAhead bytes ahead of them.
type flowWriter struct {
	ctx     context.Context
	w       io.Writer
	mu      sync.Mutex
	cond    *sync.Cond
	ahead   int64 // estimated bytes produced minus bytes written
	stopped bool  // a write failed or ctx ended: nobody waits any more
}

func (f *flowWriter) Write(p []byte) (int, error) {
	if err := f.ctx.Err(); err != nil {
		f.wake()
		return 0, err
	}
	n, err := f.w.Write(p)
	f.mu.Lock()
	f.ahead -= int64(n)
	if err != nil {
		f.stopped = true
	}
	f.cond.Broadcast()
	f.mu.Unlock()
	return n, err
}

// produced accounts for n bytes read and waits while the producer is too
// far ahead of the writer.
func (f *flowWriter) produced(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ahead += n
	for f.ahead > backupAhead && !f.stopped {
		f.cond.Wait()
	}
}

// wake releases a waiting producer for good (the stream is ending).
func (f *flowWriter) wake() {
	f.mu.Lock()
	f.stopped = true
	f.cond.Broadcast()
	f.mu.Unlock()
}
