package storage

import (
	"encoding/binary"
	"fmt"
)

// This file is the on-disk encoding of a Device record. It is our own
// trusted data, so it is a hand-written varint layout rather than a
// reflective codec: compact, allocation-light and explicit about versions.
//
// Layout of recordV1 (the device id is the key, not part of the value):
//
//	version  byte (recordV1)
//	flags    byte (flag* bits below)
//	varint   FirstSeen, LastSeen, LastOnline, LastOffline
//	uvarint  SessionID
//	string   OfflineReason, RemoteAddr, FW, Model  (uvarint length + bytes)
//	bytes    Attrs, Status, Key                    (each only if its flag is set)

// recordV1 is the leading version byte of the current record encoding. A
// future layout gets a new byte and decodeDevice keeps reading old ones.
const recordV1 byte = 1

// Record flag bits.
const (
	flagOnline byte = 1 << iota
	flagBlocked
	flagAttrs  // Attrs present (possibly empty); absent means nil
	flagStatus // Status present (possibly empty); absent means nil
	flagKey    // Key present
	flagKnown  = flagOnline | flagBlocked | flagAttrs | flagStatus | flagKey
)

// recordFixedMax is an upper bound, in bytes, of a record's fixed part:
// version, flags, four varints and one uvarint of at most 10 bytes each.
const recordFixedMax = 2 + 5*binary.MaxVarintLen64

// encodeDevice appends d's encoding to dst and returns the result.
func encodeDevice(dst []byte, d *Device) []byte {
	var flags byte
	if d.Online {
		flags |= flagOnline
	}
	if d.Blocked {
		flags |= flagBlocked
	}
	if d.Attrs != nil {
		flags |= flagAttrs
	}
	if d.Status != nil {
		flags |= flagStatus
	}
	if d.Key != nil {
		flags |= flagKey
	}
	if dst == nil {
		dst = make([]byte, 0, recordFixedMax+len(d.OfflineReason)+len(d.RemoteAddr)+
			len(d.FW)+len(d.Model)+len(d.Attrs)+len(d.Status)+len(d.Key)+7*binary.MaxVarintLen32)
	}
	dst = append(dst, recordV1, flags)
	dst = binary.AppendVarint(dst, d.FirstSeen)
	dst = binary.AppendVarint(dst, d.LastSeen)
	dst = binary.AppendVarint(dst, d.LastOnline)
	dst = binary.AppendVarint(dst, d.LastOffline)
	dst = binary.AppendUvarint(dst, d.SessionID)
	for _, s := range [...]string{d.OfflineReason, d.RemoteAddr, d.FW, d.Model} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	for _, b := range [...][]byte{d.Attrs, d.Status, d.Key} {
		if b != nil {
			dst = binary.AppendUvarint(dst, uint64(len(b)))
			dst = append(dst, b...)
		}
	}
	return dst
}

// recordReader decodes a record, remembering the first error so the decode
// reads straight through and checks once.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	r.b = nil
}

func (r *recordReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns the next length-prefixed field without copying. The
// declared length is checked against what remains before slicing.
func (r *recordReader) bytes(what string) []byte {
	n := r.uvarint(what)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// decodeDevice decodes b into a new Device with the given id. It copies
// everything it keeps, so b may be a buffer owned by Badger.
func decodeDevice(id string, b []byte) (Device, error) {
	if len(b) < 2 {
		return Device{}, fmt.Errorf("%w: device %q: %d-byte record", ErrCorrupt, id, len(b))
	}
	if b[0] != recordV1 {
		return Device{}, fmt.Errorf("%w: device %q: unknown record version %d", ErrCorrupt, id, b[0])
	}
	flags := b[1]
	if flags&^flagKnown != 0 {
		return Device{}, fmt.Errorf("%w: device %q: unknown flags %#x", ErrCorrupt, id, flags)
	}
	r := recordReader{b: b[2:]}
	d := Device{
		ID:          id,
		Online:      flags&flagOnline != 0,
		Blocked:     flags&flagBlocked != 0,
		FirstSeen:   r.varint("first_seen"),
		LastSeen:    r.varint("last_seen"),
		LastOnline:  r.varint("last_online"),
		LastOffline: r.varint("last_offline"),
		SessionID:   r.uvarint("session_id"),
	}
	d.OfflineReason = string(r.bytes("offline_reason"))
	d.RemoteAddr = string(r.bytes("remote_addr"))
	d.FW = string(r.bytes("fw"))
	d.Model = string(r.bytes("model"))
	if flags&flagAttrs != 0 {
		d.Attrs = cloneBytes(r.bytes("attrs"))
	}
	if flags&flagStatus != 0 {
		d.Status = cloneBytes(r.bytes("status"))
	}
	if flags&flagKey != 0 {
		d.Key = cloneBytes(r.bytes("key"))
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return Device{}, fmt.Errorf("device %q: %w", id, r.err)
	}
	return d, nil
}

// deviceOnline reads only the Online flag of an encoded record, so List's
// online filter can skip records without decoding them.
func deviceOnline(b []byte) (bool, error) {
	if len(b) < 2 || b[0] != recordV1 {
		return false, fmt.Errorf("%w: bad record header", ErrCorrupt)
	}
	return b[1]&flagOnline != 0, nil
}
