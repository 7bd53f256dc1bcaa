package storage

// This file is Badger's Meta (keys under "m/") and its backup and restore.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"
)

// NextBootEpoch increments and returns the boot epoch, durable before
// return (see updateDevice for what durable means). While writes are
// refused for lack of space it returns the next epoch unpersisted, with
// ErrDiskFull: a node that starts on a full disk still gets session ids
// above every stored one, and the next start may take the same epoch
// again, which is harmless because that run could persist nothing.
func (b *Badger) NextBootEpoch(ctx context.Context) (uint32, error) {
	if err := b.enterWrite(); err != nil {
		if !errors.Is(err, ErrDiskFull) {
			return 0, err
		}
		if err := b.enter(); err != nil {
			return 0, err
		}
		defer b.leave()
		var epoch uint32
		if err := b.db.View(func(txn *badger.Txn) error { return readBootEpoch(txn, &epoch) }); err != nil {
			return 0, fmt.Errorf("storage: read boot epoch: %w", err)
		}
		return epoch + 1, ErrDiskFull
	}
	defer b.leave()
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	var epoch uint32
	err := b.db.Update(func(txn *badger.Txn) error {
		if err := readBootEpoch(txn, &epoch); err != nil {
			return err
		}
		if epoch == ^uint32(0) {
			return errors.New("boot epoch exhausted")
		}
		epoch++
		return txn.Set(keyBootEpoch, binary.BigEndian.AppendUint32(nil, epoch))
	})
	if err != nil {
		return 0, fmt.Errorf("storage: next boot epoch: %w", err)
	}
	return epoch, nil
}

// readBootEpoch reads the stored boot epoch into epoch (0 if none).
func readBootEpoch(txn *badger.Txn, epoch *uint32) error {
	item, err := txn.Get(keyBootEpoch)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil
	case err != nil:
		return err
	}
	return item.Value(func(v []byte) error {
		if len(v) != 4 {
			return fmt.Errorf("%w: boot epoch of %d bytes", ErrCorrupt, len(v))
		}
		*epoch = binary.BigEndian.Uint32(v)
		return nil
	})
}

// SetAliveMark records the alive mark.
func (b *Badger) SetAliveMark(ctx context.Context, at int64) error {
	if err := b.enterWrite(); err != nil {
		return err
	}
	defer b.leave()
	err := b.db.Update(func(txn *badger.Txn) error {
		return txn.Set(keyAliveMark, binary.BigEndian.AppendUint64(nil, uint64(at)))
	})
	if err != nil {
		return fmt.Errorf("storage: set alive mark: %w", err)
	}
	return nil
}

// AliveMark returns the alive mark, 0 if none.
func (b *Badger) AliveMark(ctx context.Context) (int64, error) {
	if err := b.enter(); err != nil {
		return 0, err
	}
	defer b.leave()
	var at int64
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyAliveMark)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("%w: alive mark of %d bytes", ErrCorrupt, len(v))
			}
			at = int64(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("storage: alive mark: %w", err)
	}
	return at, nil
}

// Restore loads a backup written by Backup. Other writes wait meanwhile,
// as Badger's Load requires.
func (b *Badger) Restore(r io.Reader) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.metaMu.Lock()
	defer b.metaMu.Unlock()
	b.auditMu.Lock()
	defer b.auditMu.Unlock()
	// The backup may hold audit records past the seqs known so far.
	b.auditSeqLoaded = false
	if err := b.db.Load(r, restorePendingWrites); err != nil {
		return fmt.Errorf("storage: restore: %w", err)
	}
	return nil
}
