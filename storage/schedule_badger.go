package storage

// Badger's Schedules. Keys (ids never contain NUL):
//
//	sc/ campaign                  → upgradeV1 + JSON Campaign
//	sr/ reservation               → upgradeV1 + JSON Reservation
//	sd/ campaign NUL device       → reservation id (the device's latest)
//	ss/ node NUL be64(slot)       → upgradeV1 + JSON SlotUse
//	sn/ node                      → upgradeV1 + JSON NodeState
//	sl/ device                    → upgradeV1 + JSON DeviceLocation

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

var (
	schCampPrefix = []byte("sc/")
	schResvPrefix = []byte("sr/")
	schDevPrefix  = []byte("sd/")
	schSlotPrefix = []byte("ss/")
	schNodePrefix = []byte("sn/")
	schLocPrefix  = []byte("sl/")
)

func schSlotKey(node string, slot int64) []byte {
	return binary.BigEndian.AppendUint64(append(upKey(schSlotPrefix, node), 0), uint64(slot))
}

// PutCampaign stores c, durable before return.
func (b *Badger) PutCampaign(ctx context.Context, c Campaign) error {
	if err := checkCampaign(&c); err != nil {
		return err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return err
	}
	defer b.leave()
	return b.db.Update(func(txn *badger.Txn) error { return setUp(txn, upKey(schCampPrefix, c.ID), &c) })
}

// ListCampaigns returns every campaign in id order.
func (b *Badger) ListCampaigns(ctx context.Context) ([]Campaign, error) {
	return listUp[Campaign](ctx, b, schCampPrefix)
}

// UpdateSchedule runs fn in one Badger transaction; schMu serialises them.
func (b *Badger) UpdateSchedule(ctx context.Context, fn func(tx ScheduleTx) error) error {
	return b.updateSerial(ctx, &b.schMu, func(txn *badger.Txn) error { return fn(badgerScheduleTx{txn}) })
}

type badgerScheduleTx struct{ txn *badger.Txn }

func (t badgerScheduleTx) Reservation(id string) (Reservation, bool, error) {
	var r Reservation
	found, err := getUp(t.txn, upKey(schResvPrefix, id), &r)
	return r, found, err
}

func (t badgerScheduleTx) DeviceReservation(campaign, device string) (Reservation, bool, error) {
	item, err := t.txn.Get(upKey(schDevPrefix, campaign, device))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Reservation{}, false, nil
	}
	if err != nil {
		return Reservation{}, false, err
	}
	id, err := item.ValueCopy(nil)
	if err != nil {
		return Reservation{}, false, err
	}
	return t.Reservation(string(id))
}

func (t badgerScheduleTx) PutReservation(r *Reservation) error {
	if err := checkReservation(r); err != nil {
		return err
	}
	if err := setUp(t.txn, upKey(schResvPrefix, r.ID), r); err != nil {
		return err
	}
	return t.txn.Set(upKey(schDevPrefix, r.CampaignID, r.DeviceID), []byte(r.ID))
}

func (t badgerScheduleTx) SlotUse(node string, slot int64) (SlotUse, error) {
	u := SlotUse{Node: node, Slot: slot}
	_, err := getUp(t.txn, schSlotKey(node, slot), &u)
	return u, err
}

func (t badgerScheduleTx) PutSlotUse(u *SlotUse) error {
	if err := checkUpgradeID("node id", u.Node); err != nil {
		return err
	}
	if u.Count < 0 || u.Bytes < 0 {
		return ErrInvalid
	}
	if u.Count == 0 && u.Bytes == 0 {
		return t.txn.Delete(schSlotKey(u.Node, u.Slot))
	}
	return setUp(t.txn, schSlotKey(u.Node, u.Slot), u)
}

// DeviceReservation implements Schedules.
func (b *Badger) DeviceReservation(ctx context.Context, campaign, device string) (r Reservation, found bool, err error) {
	err = b.viewUp(ctx, func(txn *badger.Txn) error {
		r, found, err = badgerScheduleTx{txn}.DeviceReservation(campaign, device)
		return err
	})
	return r, found, err
}

// Reservations calls fn for the campaign's reservations ("" = all).
func (b *Badger) Reservations(ctx context.Context, campaign string, fn func(r Reservation) error) error {
	return b.viewUp(ctx, func(txn *badger.Txn) error {
		if campaign == "" {
			return eachUp(ctx, txn, schResvPrefix, fn)
		}
		prefix := append(upKey(schDevPrefix, campaign), 0)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			id, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			var r Reservation
			found, err := getUp(txn, upKey(schResvPrefix, string(id)), &r)
			if err != nil {
				return err
			}
			if found {
				if err := fn(r); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// SlotUses calls fn for every stored slot use in (node, slot) order.
func (b *Badger) SlotUses(ctx context.Context, fn func(u SlotUse) error) error {
	return viewEachUp(ctx, b, schSlotPrefix, fn)
}

// DeleteSlotUses deletes the node's slot uses before slot (past slots:
// nothing reserves in them any more), in transactions of at most
// deleteBatch keys.
func (b *Badger) DeleteSlotUses(ctx context.Context, node string, before int64) error {
	if err := checkUpgradeID("node id", node); err != nil {
		return err
	}
	prefix := append(upKey(schSlotPrefix, node), 0)
	end := schSlotKey(node, before)
	for {
		n := 0
		err := b.UpdateSchedule(ctx, func(tx ScheduleTx) error {
			txn := tx.(badgerScheduleTx).txn
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
			var keys [][]byte
			for it.Seek(prefix); it.Valid() && len(keys) < deleteBatch; it.Next() {
				k := it.Item().KeyCopy(nil)
				if bytes.Compare(k, end) >= 0 {
					break
				}
				keys = append(keys, k)
			}
			it.Close()
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		if err != nil || n < deleteBatch {
			return err
		}
	}
}

// deleteBatch bounds the keys one cleanup transaction deletes.
const deleteBatch = 5000

// PutNodeState stores an operator's node state, durable before return.
func (b *Badger) PutNodeState(ctx context.Context, s NodeState) error {
	if err := checkUpgradeID("node id", s.NodeID); err != nil {
		return err
	}
	if err := b.enterWrite(); err != nil {
		return err
	}
	defer b.leave()
	return b.db.Update(func(txn *badger.Txn) error { return setUp(txn, upKey(schNodePrefix, s.NodeID), &s) })
}

// NodeStates returns every stored node state in node order.
func (b *Badger) NodeStates(ctx context.Context) ([]NodeState, error) {
	return listUp[NodeState](ctx, b, schNodePrefix)
}

// PutDeviceLocation stores or removes a device's registered location.
func (b *Badger) PutDeviceLocation(ctx context.Context, l DeviceLocation, remove bool) error {
	if err := checkLocation(&l); err != nil {
		return err
	}
	if err := b.enterWriteCtx(ctx); err != nil {
		return err
	}
	defer b.leave()
	return b.db.Update(func(txn *badger.Txn) error {
		if remove {
			return txn.Delete(upKey(schLocPrefix, l.DeviceID))
		}
		return setUp(txn, upKey(schLocPrefix, l.DeviceID), &l)
	})
}

// DeviceLocations calls fn for every registered location, in device order.
func (b *Badger) DeviceLocations(ctx context.Context, fn func(l DeviceLocation) error) error {
	return viewEachUp(ctx, b, schLocPrefix, fn)
}
