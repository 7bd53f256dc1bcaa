// Package storage keeps termd's durable state: the device registry that
// operators query, the service-control audit log and the node's own
// metadata (boot epoch, alive mark).
// Badger backs production nodes, Memory backs tests and throw-away nodes,
// and both pass one shared contract test suite.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// ErrNotFound is returned when a device has no registry record.
var ErrNotFound = errors.New("storage: not found")

// ErrInvalid is wrapped by errors about arguments that can never be stored
// (an empty or oversized id, a key of the wrong length, an unknown presence
// kind). Retrying such a call cannot succeed.
var ErrInvalid = errors.New("storage: invalid argument")

// ErrClosed is returned by a Store used after Close.
var ErrClosed = errors.New("storage: closed")

// ErrCorrupt is wrapped by errors about stored bytes that do not decode.
var ErrCorrupt = errors.New("storage: corrupt record")

// MaxIDLen is the longest device id, in bytes, the registry stores. Badger
// rejects keys over ~64 KiB; ids are far shorter in practice, and a bound
// well below Badger's keeps a bad id from failing a whole presence batch.
const MaxIDLen = 1024

// KeySize is the length in bytes of a per-device key.
const KeySize = 32

// Page sizes for List.
const (
	// DefaultListLimit is the page size used when ListOptions.Limit <= 0.
	DefaultListLimit = 100
	// MaxListLimit caps ListOptions.Limit so one request cannot pull the
	// whole registry into memory.
	MaxListLimit = 1000
)

// Device is one terminal's registry record as operators see it.
type Device struct {
	// ID is the device's identity as sent in HELLO.
	ID string
	// FirstSeen is the unix ms of the first successful HELLO; 0 = never connected.
	FirstSeen int64
	// LastSeen is the unix ms of the last valid frame (written behind).
	LastSeen int64
	// Online is the state as last persisted (written behind; live truth is
	// in server memory).
	Online bool
	// SessionID is the latest session's id.
	SessionID uint64
	// LastOnline is the unix ms the latest session started.
	LastOnline int64
	// LastOffline is the unix ms the latest session ended.
	LastOffline int64
	// OfflineReason is the reason of the latest offline transition
	// ("closed", "bye", "timeout", "bad_tag", "shutdown", "disconnected",
	// "blocked", "restart", ...).
	OfflineReason string
	// RemoteAddr is the peer address of the latest session.
	RemoteAddr string
	// FW is the firmware version reported in the latest HELLO.
	FW string
	// Model is the hardware model reported in the latest HELLO.
	Model string
	// Attrs is the MessagePack-encoded map exactly as received (nil = none).
	Attrs []byte
	// Status is the MessagePack-encoded latest status map (nil = none).
	Status []byte
	// Key is the per-device KeySize-byte key; nil = derive from the fleet secret.
	Key []byte
	// Blocked refuses the device's HELLO when set.
	Blocked bool
}

// PresenceKind says what a PresenceUpdate reports.
type PresenceKind uint8

const (
	// PresenceOnline reports a session that completed HELLO.
	PresenceOnline PresenceKind = iota + 1
	// PresenceSeen reports a valid frame, optionally with a new status.
	PresenceSeen
	// PresenceOffline reports the end of a session.
	PresenceOffline
)

// String returns the kind's name for logs.
func (k PresenceKind) String() string {
	switch k {
	case PresenceOnline:
		return "online"
	case PresenceSeen:
		return "seen"
	case PresenceOffline:
		return "offline"
	}
	return fmt.Sprintf("PresenceKind(%d)", uint8(k))
}

// PresenceUpdate is one write-behind presence event from the server.
type PresenceUpdate struct {
	// Kind selects which of the other fields are meaningful.
	Kind PresenceKind
	// ID is the device id; it must be non-empty and at most MaxIDLen bytes.
	ID string
	// At is the event time in unix ms.
	At int64
	// SessionID is the session that went online (Online) or ended
	// (Offline; 0 = whatever session the record holds).
	SessionID uint64
	// RemoteAddr is the peer address (Online).
	RemoteAddr string
	// FW is the firmware version (Online).
	FW string
	// Model is the hardware model (Online).
	Model string
	// Attrs is the MessagePack-encoded attribute map (Online; nil = none).
	Attrs []byte
	// Status is the new latest status (Seen; nil = unchanged).
	Status []byte
	// Reason is why the session ended (Offline).
	Reason string
}

// ListOptions selects a page of devices ordered by id.
type ListOptions struct {
	// Online, when set, keeps only devices whose persisted Online equals it.
	Online *bool
	// Limit is the page size; <= 0 means DefaultListLimit, and it is capped
	// at MaxListLimit.
	Limit int
	// Cursor makes List return only ids greater than it ("" = from the start).
	Cursor string
}

// Registry is the durable device registry.
type Registry interface {
	// Get returns the device's record or ErrNotFound.
	Get(ctx context.Context, id string) (Device, error)
	// List returns a page of devices ordered by id; next is the cursor for
	// the following page and "" when there are no more.
	List(ctx context.Context, opt ListOptions) (devs []Device, next string, err error)
	// ApplyPresence applies write-behind presence updates in order. An
	// invalid update (ErrInvalid) fails the batch before anything is
	// applied; after any other error a prefix of the batch may be applied,
	// and PresenceWriter applies the whole batch again, which converges as
	// updates carry absolute values (max LastSeen, set-once FirstSeen,
	// session-guarded offlines).
	ApplyPresence(ctx context.Context, batch []PresenceUpdate) error
	// SetKey stores the device's key, durable before return; a nil or empty
	// key clears it. It creates the record if absent.
	SetKey(ctx context.Context, id string, key []byte) error
	// SetBlocked stores the device's blocked flag, durable before return.
	// It creates the record if absent.
	SetBlocked(ctx context.Context, id string, blocked bool) error
	// Credentials calls fn for every device with a key or the blocked flag,
	// in id order (the server loads its credential index at start).
	Credentials(ctx context.Context, fn func(id string, key []byte, blocked bool) error) error
	// MarkOnlineOffline sets every device persisted Online to offline with
	// LastOffline=at and OfflineReason=reason, and returns how many changed.
	MarkOnlineOffline(ctx context.Context, reason string, at int64) (int, error)
}

// Meta is the node's own durable state.
type Meta interface {
	// NextBootEpoch persistently increments and returns the boot epoch (the
	// first call returns 1); durable before return.
	NextBootEpoch(ctx context.Context) (uint32, error)
	// SetAliveMark records that the node was alive at unix ms at; the server
	// writes it every second so a restart can tell when the node died.
	SetAliveMark(ctx context.Context, at int64) error
	// AliveMark returns the last alive mark, 0 if none.
	AliveMark(ctx context.Context) (int64, error)
}

// Store bundles what termd opens at start.
type Store interface {
	Registry
	Meta
	Audit
	OperatorAudit
	DeviceFilters
	Upgrades
	// Backup writes a full backup to w and returns the version it covers.
	Backup(ctx context.Context, w io.Writer) (uint64, error)
	// Writable reports, cheaply enough for an event loop, whether writes
	// are refused for lack of disk space (ErrDiskFull) or accepted (nil).
	Writable() error
	// Close releases the store; later calls fail with ErrClosed.
	Close() error
}

// checkID rejects ids that can never be stored.
func checkID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty device id", ErrInvalid)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: device id of %d bytes exceeds %d", ErrInvalid, len(id), MaxIDLen)
	}
	return nil
}

// checkKey rejects keys of the wrong length; an empty key means "clear".
func checkKey(key []byte) error {
	if len(key) != 0 && len(key) != KeySize {
		return fmt.Errorf("%w: key of %d bytes, want %d", ErrInvalid, len(key), KeySize)
	}
	return nil
}

// checkBatch validates a whole presence batch before anything is applied,
// so a bad update fails the batch without leaving half of it written.
func checkBatch(batch []PresenceUpdate) error {
	for i := range batch {
		if err := checkUpdate(&batch[i]); err != nil {
			return fmt.Errorf("presence update %d: %w", i, err)
		}
	}
	return nil
}

// checkUpdate validates one presence update.
func checkUpdate(u *PresenceUpdate) error {
	if u.Kind < PresenceOnline || u.Kind > PresenceOffline {
		return fmt.Errorf("%w: unknown presence kind %d", ErrInvalid, u.Kind)
	}
	return checkID(u.ID)
}

// listLimit applies ListOptions.Limit's default and cap.
func listLimit(limit int) int {
	if limit <= 0 {
		return DefaultListLimit
	}
	return min(limit, MaxListLimit)
}
