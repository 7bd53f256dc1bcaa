package storage

// Badger's DeviceFilters: "df/" + name → JSON of the filter. Saves are
// people's actions, a few a day: each is its own transaction, serialised
// by dfMu so the count bound and the kept creation pair are exact.

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

var devFilterPrefix = []byte("df/")

func devFilterKey(name string) []byte {
	return append(append([]byte(nil), devFilterPrefix...), name...)
}

// PutDeviceFilter implements DeviceFilters.
func (b *Badger) PutDeviceFilter(ctx context.Context, f DeviceFilter) (DeviceFilter, bool, error) {
	if err := checkDeviceFilter(&f); err != nil {
		return DeviceFilter{}, false, err
	}
	var found bool
	err := b.updateSerial(ctx, &b.dfMu, func(txn *badger.Txn) error {
		var old DeviceFilter
		var err error
		found, err = getUp(txn, devFilterKey(f.Name), &old)
		if err != nil {
			return err
		}
		if !found {
			n := 0
			it := txn.NewIterator(badger.IteratorOptions{Prefix: devFilterPrefix})
			for it.Rewind(); it.Valid(); it.Next() {
				n++
			}
			it.Close()
			if n >= MaxDeviceFilters {
				return fmt.Errorf("%w: %d saved filters kept at most", ErrTooMany, MaxDeviceFilters)
			}
		}
		f = mergeDeviceFilter(f, old, found)
		return setUp(txn, devFilterKey(f.Name), &f)
	})
	if err != nil {
		return DeviceFilter{}, false, fmt.Errorf("storage: put device filter: %w", err)
	}
	return f, !found, nil
}

// DeleteDeviceFilter implements DeviceFilters.
func (b *Badger) DeleteDeviceFilter(ctx context.Context, name string) error {
	if err := CheckDeviceFilterName(name); err != nil {
		return err
	}
	err := b.updateSerial(ctx, &b.dfMu, func(txn *badger.Txn) error {
		if _, err := txn.Get(devFilterKey(name)); err != nil {
			if err == badger.ErrKeyNotFound {
				return ErrNotFound
			}
			return err
		}
		return txn.Delete(devFilterKey(name))
	})
	if err != nil {
		return fmt.Errorf("storage: delete device filter: %w", err)
	}
	return nil
}

// DeviceFilter implements DeviceFilters.
func (b *Badger) DeviceFilter(ctx context.Context, name string) (DeviceFilter, error) {
	if err := CheckDeviceFilterName(name); err != nil {
		return DeviceFilter{}, err
	}
	var f DeviceFilter
	err := b.viewUp(ctx, func(txn *badger.Txn) error {
		found, err := getUp(txn, devFilterKey(name), &f)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	return f, err
}

// ListDeviceFilters implements DeviceFilters.
func (b *Badger) ListDeviceFilters(ctx context.Context) ([]DeviceFilter, error) {
	return listUp[DeviceFilter](ctx, b, devFilterPrefix)
}
