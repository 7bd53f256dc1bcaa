package storage

// This file is Badger's Upgrades. Ids never contain NUL (checkUpgradeID),
// so NUL ends each id and one id's keys never share a prefix with
// another's; attempts are uint64 big-endian, so byte order is attempt
// order:
//
//	ul/ release                         → upgradeV1 + JSON Release
//	ua/ release NUL device              → upgradeV1 + JSON UpgradeAssignment
//	up/ release NUL device NUL attempt  → upgradeV1 + JSON UpgradeReport
//	ud/ device NUL release NUL attempt  → empty (a device's reports)
//	uf/ device NUL app                  → upgradeV1 + JSON UpgradeFailureMark
//	uv/ device NUL app                  → upgradeV1 + JSON AppVersion
//	uo/ release                         → upgradeV1 + JSON RolloutState

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

var (
	upRelPrefix    = []byte("ul/")
	upAssignPrefix = []byte("ua/")
	upReportPrefix = []byte("up/")
	upDevPrefix    = []byte("ud/")
	upMarkPrefix   = []byte("uf/")
	upVerPrefix    = []byte("uv/")
	upRollPrefix   = []byte("uo/")
)

// upKey joins prefix and NUL-separated parts (joinKey, shared with the outbox).
func upKey(prefix []byte, parts ...string) []byte { return joinKey(prefix, parts...) }

func upReportKey(release, device string, attempt uint64) []byte {
	return binary.BigEndian.AppendUint64(append(upKey(upReportPrefix, release, device), 0), attempt)
}

func upDevKey(device, release string, attempt uint64) []byte {
	return binary.BigEndian.AppendUint64(append(upKey(upDevPrefix, device, release), 0), attempt)
}

// getUp reads key into v; found is false when there is no such key.
func getUp(txn *badger.Txn, key []byte, v any) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error { return decodeUpgrade(b, v) })
}

func setUp(txn *badger.Txn, key []byte, v any) error {
	b, err := encodeUpgrade(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

// scanUp calls fn with each value under prefix, in key order.
func scanUp(ctx context.Context, txn *badger.Txn, prefix []byte, fn func(v []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	n := 0
	for it.Seek(prefix); it.Valid(); it.Next() {
		if n++; n%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := it.Item().Value(fn); err != nil {
			return err
		}
	}
	return nil
}

// eachUp calls fn with each value under prefix decoded into a new T, in
// key order. Every listing of the upgrade and schedule records is this
// loop with another T, so it is written once.
func eachUp[T any](ctx context.Context, txn *badger.Txn, prefix []byte, fn func(T) error) error {
	return scanUp(ctx, txn, prefix, func(v []byte) error {
		var x T
		if err := decodeUpgrade(v, &x); err != nil {
			return err
		}
		return fn(x)
	})
}

// listUp returns every value under prefix decoded into T, in key order,
// read in one view transaction. The slice is empty, not nil, when there is
// none, as the listings have always answered.
func listUp[T any](ctx context.Context, b *Badger, prefix []byte) ([]T, error) {
	out := []T{}
	err := b.viewUp(ctx, func(txn *badger.Txn) error {
		return eachUp(ctx, txn, prefix, func(x T) error {
			out = append(out, x)
			return nil
		})
	})
	return out, err
}

// viewEachUp calls fn with each value under prefix decoded into T, in key
// order, in one view transaction.
func viewEachUp[T any](ctx context.Context, b *Badger, prefix []byte, fn func(T) error) error {
	return b.viewUp(ctx, func(txn *badger.Txn) error { return eachUp(ctx, txn, prefix, fn) })
}

// PutRelease stores r, durable before return.
func (b *Badger) PutRelease(ctx context.Context, r Release) error {
	if err := checkRelease(&r); err != nil {
		return err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return err
	}
	defer b.leave()
	if err := b.db.Update(func(txn *badger.Txn) error { return setUp(txn, upKey(upRelPrefix, r.ID), &r) }); err != nil {
		return fmt.Errorf("storage: put release: %w", err)
	}
	return nil
}

// GetRelease returns the release or ErrNotFound.
func (b *Badger) GetRelease(ctx context.Context, id string) (Release, error) {
	var r Release
	err := b.viewUp(ctx, func(txn *badger.Txn) error {
		found, err := getUp(txn, upKey(upRelPrefix, id), &r)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	return r, err
}

// ListReleases returns every release in id order.
func (b *Badger) ListReleases(ctx context.Context) ([]Release, error) {
	return listUp[Release](ctx, b, upRelPrefix)
}

func (b *Badger) viewUp(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := b.enterCtx(ctx); err != nil {
		return err
	}
	defer b.leave()
	return b.db.View(fn)
}

// UpdateUpgrades runs fn in one Badger transaction. upMu serialises them:
// Badger's conflict detection is off (see Badger.mu).
func (b *Badger) UpdateUpgrades(ctx context.Context, fn func(tx UpgradeTx) error) error {
	return b.updateSerial(ctx, &b.upMu, func(txn *badger.Txn) error { return fn(badgerUpgradeTx{txn}) })
}

// updateSerial runs fn in one Badger write transaction under mu (its
// feature's transactions are serialised: conflict detection is off), after
// the space guard allowed the write.
func (b *Badger) updateSerial(ctx context.Context, mu *sync.Mutex, fn func(txn *badger.Txn) error) error {
	if err := b.enterWriteCtx(ctx); err != nil {
		return err
	}
	defer b.leave()
	mu.Lock()
	defer mu.Unlock()
	return b.db.Update(fn)
}

type badgerUpgradeTx struct{ txn *badger.Txn }

func (t badgerUpgradeTx) Report(release, device string, attempt uint64) (UpgradeReport, bool, error) {
	var r UpgradeReport
	found, err := getUp(t.txn, upReportKey(release, device, attempt), &r)
	return r, found, err
}

func (t badgerUpgradeTx) PutReport(r *UpgradeReport) error {
	if err := checkReport(r); err != nil {
		return err
	}
	if err := setUp(t.txn, upReportKey(r.ReleaseID, r.DeviceID, r.Attempt), r); err != nil {
		return err
	}
	return t.txn.Set(upDevKey(r.DeviceID, r.ReleaseID, r.Attempt), nil)
}

func (t badgerUpgradeTx) Assignment(release, device string) (UpgradeAssignment, bool, error) {
	var a UpgradeAssignment
	found, err := getUp(t.txn, upKey(upAssignPrefix, release, device), &a)
	return a, found, err
}

func (t badgerUpgradeTx) PutAssignment(a *UpgradeAssignment) error {
	if err := checkPair(a.ReleaseID, "release id", a.DeviceID, "device id"); err != nil {
		return err
	}
	return setUp(t.txn, upKey(upAssignPrefix, a.ReleaseID, a.DeviceID), a)
}

func (t badgerUpgradeTx) FailureMark(device, app string) (UpgradeFailureMark, bool, error) {
	var m UpgradeFailureMark
	found, err := getUp(t.txn, upKey(upMarkPrefix, device, app), &m)
	return m, found, err
}

func (t badgerUpgradeTx) PutFailureMark(m *UpgradeFailureMark) error {
	if err := checkPair(m.DeviceID, "device id", m.AppID, "app id"); err != nil {
		return err
	}
	return setUp(t.txn, upKey(upMarkPrefix, m.DeviceID, m.AppID), m)
}

func (t badgerUpgradeTx) DeleteFailureMark(device, app string) error {
	return t.txn.Delete(upKey(upMarkPrefix, device, app))
}

func (t badgerUpgradeTx) PutAppVersion(v *AppVersion) error {
	if err := checkPair(v.DeviceID, "device id", v.AppID, "app id"); err != nil {
		return err
	}
	return setUp(t.txn, upKey(upVerPrefix, v.DeviceID, v.AppID), v)
}

// Assignment returns the device's assignment to the release or ErrNotFound.
func (b *Badger) Assignment(ctx context.Context, release, device string) (UpgradeAssignment, error) {
	var a UpgradeAssignment
	err := b.viewUp(ctx, func(txn *badger.Txn) error {
		found, err := getUp(txn, upKey(upAssignPrefix, release, device), &a)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	return a, err
}

// Assignments calls fn for the release's assignments in device order.
func (b *Badger) Assignments(ctx context.Context, release string, fn func(a UpgradeAssignment) error) error {
	if err := checkUpgradeID("release id", release); err != nil {
		return err
	}
	return viewEachUp(ctx, b, append(upKey(upAssignPrefix, release), 0), fn)
}

// Reports calls fn for the reports of a release ("" = all).
func (b *Badger) Reports(ctx context.Context, release string, fn func(r UpgradeReport) error) error {
	prefix := upReportPrefix
	if release != "" {
		prefix = append(upKey(upReportPrefix, release), 0)
	}
	return viewEachUp(ctx, b, prefix, fn)
}

// DeviceReports returns the device's reports in (release, attempt) order.
func (b *Badger) DeviceReports(ctx context.Context, device string) ([]UpgradeReport, error) {
	if err := checkUpgradeID("device id", device); err != nil {
		return nil, err
	}
	reps := []UpgradeReport{}
	err := b.viewUp(ctx, func(txn *badger.Txn) error {
		prefix := append(upKey(upDevPrefix, device), 0)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.Valid(); it.Next() {
			rest := it.Item().Key()[len(prefix):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 || len(rest) != i+1+8 {
				return fmt.Errorf("%w: device report index key", ErrCorrupt)
			}
			var r UpgradeReport
			found, err := getUp(txn, upReportKey(string(rest[:i]), device, binary.BigEndian.Uint64(rest[i+1:])), &r)
			if err != nil {
				return err
			}
			if found {
				reps = append(reps, r)
			}
		}
		return nil
	})
	return reps, err
}

// FailureMark returns the device's failure mark for the app or ErrNotFound.
func (b *Badger) FailureMark(ctx context.Context, device, app string) (UpgradeFailureMark, error) {
	var m UpgradeFailureMark
	err := b.viewUp(ctx, func(txn *badger.Txn) error {
		found, err := getUp(txn, upKey(upMarkPrefix, device, app), &m)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	return m, err
}

// AppVersions returns the device's known app versions ("" = all devices').
func (b *Badger) AppVersions(ctx context.Context, device string) ([]AppVersion, error) {
	prefix := upVerPrefix
	if device != "" {
		prefix = append(upKey(upVerPrefix, device), 0)
	}
	return listUp[AppVersion](ctx, b, prefix)
}

func (t badgerUpgradeTx) Rollout(release string) (RolloutState, bool, error) {
	var s RolloutState
	found, err := getUp(t.txn, upKey(upRollPrefix, release), &s)
	return s, found, err
}

func (t badgerUpgradeTx) PutRollout(s *RolloutState) error {
	if err := checkRollout(s); err != nil {
		return err
	}
	return setUp(t.txn, upKey(upRollPrefix, s.ReleaseID), s)
}

// Rollouts returns every rollout state in release id order.
func (b *Badger) Rollouts(ctx context.Context) ([]RolloutState, error) {
	return listUp[RolloutState](ctx, b, upRollPrefix)
}
