package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
)

// Memory is a Store held in process memory, for tests and throw-away
// nodes. It is safe for concurrent use. Nothing survives the process.
//
// Its Backup writes a self-describing JSON document (memoryBackupFormat)
// that Restore reads back; it is not interchangeable with Badger backups.
type Memory struct {
	mu        sync.RWMutex
	closed    bool
	devs      map[string]*Device
	ids       []string // sorted ids of devs, so List pages without sorting
	bootEpoch uint32
	alive     int64
	version   uint64 // bumped on every write; what Backup reports

	// audit holds the audit records in seq order; auditSeq is the last seq
	// assigned; auditReq maps (device, request id) to the newest record's
	// seq. Backup does not include the audit.
	audit    []AuditRecord
	auditSeq uint64
	auditReq map[auditReqKey]uint64
	// auditRef maps a refusal key to its newest refusal record's seq.
	auditRef map[auditRefKey]uint64
	// ob is the notification outbox (outbox_memory.go), made on first use.
	ob *memOutbox
	// grp is the groups store (groups_memory.go), made on first use.
	grp *memGroups

	// sch is the scheduling store (schedule_memory.go), not in Backup.
	sch memSchedules
	// up is the upgrade store (upgrade_memory.go), not in Backup.
	up memUpgrades

	// ops are the operator audit records in seq order (not in Backup);
	// opSeq is the last seq assigned, opKeep the retention (<= 0: default).
	ops []OperatorRecord
	// dfs are the saved device filters by name (not in Backup).
	dfs    map[string]DeviceFilter
	opSeq  uint64
	opKeep int

	// onlineHist is the online-history snapshot by shard
	// (online_history.go), not in Backup.
	onlineHist map[int][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	return &Memory{devs: make(map[string]*Device), auditReq: make(map[auditReqKey]uint64), auditRef: make(map[auditRefKey]uint64)}
}

// memoryBackupFormat names Memory's backup layout inside the document, so a
// reader can tell it from anything else.
const memoryBackupFormat = "termd-storage-memory-backup/1"

// memoryBackup is Memory's backup document. []byte fields encode as base64.
type memoryBackup struct {
	Format    string   `json:"format"`
	Version   uint64   `json:"version"`
	BootEpoch uint32   `json:"boot_epoch"`
	AliveMark int64    `json:"alive_mark"`
	Devices   []Device `json:"devices"`
}

// rlock takes the read lock unless the store is closed.
func (m *Memory) rlock() error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// lock takes the write lock unless the store is closed.
func (m *Memory) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// device returns id's record, creating an empty one (and indexing it) when
// absent. The caller holds the write lock.
func (m *Memory) device(id string) *Device {
	if d, ok := m.devs[id]; ok {
		return d
	}
	d := &Device{ID: id}
	m.devs[id] = d
	i, _ := slices.BinarySearch(m.ids, id)
	m.ids = slices.Insert(m.ids, i, id)
	return d
}

// Get returns the device's record or ErrNotFound.
func (m *Memory) Get(ctx context.Context, id string) (Device, error) {
	if err := m.rlock(); err != nil {
		return Device{}, err
	}
	defer m.mu.RUnlock()
	d, ok := m.devs[id]
	if !ok {
		return Device{}, ErrNotFound
	}
	return cloneDevice(d), nil
}

// List returns a page of devices ordered by id.
func (m *Memory) List(ctx context.Context, opt ListOptions) ([]Device, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := m.rlock(); err != nil {
		return nil, "", err
	}
	defer m.mu.RUnlock()
	limit := listLimit(opt.Limit)
	// First id strictly greater than the cursor.
	start := sort.Search(len(m.ids), func(i int) bool { return m.ids[i] > opt.Cursor })
	var devs []Device
	for _, id := range m.ids[start:] {
		d := m.devs[id]
		if opt.Online != nil && d.Online != *opt.Online {
			continue
		}
		if len(devs) == limit {
			// One more match exists past a full page.
			return devs, devs[len(devs)-1].ID, nil
		}
		devs = append(devs, cloneDevice(d))
	}
	return devs, "", nil
}

// ApplyPresence applies presence updates in order. The batch is validated
// first, so an invalid update leaves the registry untouched.
func (m *Memory) ApplyPresence(ctx context.Context, batch []PresenceUpdate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkBatch(batch); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for i := range batch {
		u := &batch[i]
		d, exists := m.devs[u.ID]
		if !exists {
			d = &Device{ID: u.ID}
		}
		if applyPresence(d, exists, u) {
			if !exists {
				*m.device(u.ID) = *d
			}
			m.version++
		}
	}
	return nil
}

// SetKey stores or (with an empty key) clears the device's key.
func (m *Memory) SetKey(ctx context.Context, id string, key []byte) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	d := m.device(id)
	d.Key = nil
	if len(key) != 0 {
		d.Key = cloneBytes(key)
	}
	m.version++
	return nil
}

// SetBlocked stores the device's blocked flag.
func (m *Memory) SetBlocked(ctx context.Context, id string, blocked bool) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.device(id).Blocked = blocked
	m.version++
	return nil
}

// credential is one entry of a Credentials snapshot.
type credential struct {
	id      string
	key     []byte
	blocked bool
}

// Credentials calls fn for every keyed or blocked device in id order. fn
// runs on a snapshot without the lock held, so it may call the store.
func (m *Memory) Credentials(ctx context.Context, fn func(id string, key []byte, blocked bool) error) error {
	if err := m.rlock(); err != nil {
		return err
	}
	var creds []credential
	for _, id := range m.ids {
		d := m.devs[id]
		if d.Key != nil || d.Blocked {
			creds = append(creds, credential{id: id, key: cloneBytes(d.Key), blocked: d.Blocked})
		}
	}
	m.mu.RUnlock()
	for _, c := range creds {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(c.id, c.key, c.blocked); err != nil {
			return err
		}
	}
	return nil
}

// MarkOnlineOffline turns every device persisted Online offline.
func (m *Memory) MarkOnlineOffline(ctx context.Context, reason string, at int64) (int, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	n := 0
	for _, d := range m.devs {
		if d.Online {
			d.Online = false
			d.LastOffline = at
			d.OfflineReason = reason
			n++
		}
	}
	if n > 0 {
		m.version++
	}
	return n, nil
}

// NextBootEpoch increments and returns the boot epoch.
func (m *Memory) NextBootEpoch(ctx context.Context) (uint32, error) {
	if err := m.lock(); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	if m.bootEpoch == ^uint32(0) {
		return 0, errors.New("storage: boot epoch exhausted")
	}
	m.bootEpoch++
	m.version++
	return m.bootEpoch, nil
}

// SetAliveMark records the alive mark.
func (m *Memory) SetAliveMark(ctx context.Context, at int64) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.alive = at
	m.version++
	return nil
}

// AliveMark returns the alive mark, 0 if none.
func (m *Memory) AliveMark(ctx context.Context) (int64, error) {
	if err := m.rlock(); err != nil {
		return 0, err
	}
	defer m.mu.RUnlock()
	return m.alive, nil
}

// Backup writes the whole store as a memoryBackupFormat JSON document and
// returns the store's write counter at the time of the snapshot.
func (m *Memory) Backup(ctx context.Context, w io.Writer) (uint64, error) {
	if err := m.rlock(); err != nil {
		return 0, err
	}
	doc := memoryBackup{
		Format:    memoryBackupFormat,
		Version:   m.version,
		BootEpoch: m.bootEpoch,
		AliveMark: m.alive,
		Devices:   make([]Device, 0, len(m.ids)),
	}
	for _, id := range m.ids {
		doc.Devices = append(doc.Devices, cloneDevice(m.devs[id]))
	}
	m.mu.RUnlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := json.NewEncoder(w).Encode(&doc); err != nil {
		return 0, fmt.Errorf("storage: write memory backup: %w", err)
	}
	return doc.Version, nil
}

// Restore loads a document written by Backup, replacing devices with the
// same id and the node metadata.
func (m *Memory) Restore(r io.Reader) error {
	var doc memoryBackup
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return fmt.Errorf("storage: read memory backup: %w", err)
	}
	if doc.Format != memoryBackupFormat {
		return fmt.Errorf("%w: backup format %q, want %q", ErrInvalid, doc.Format, memoryBackupFormat)
	}
	for i := range doc.Devices {
		if err := checkID(doc.Devices[i].ID); err != nil {
			return err
		}
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for i := range doc.Devices {
		*m.device(doc.Devices[i].ID) = doc.Devices[i]
	}
	m.bootEpoch = doc.BootEpoch
	m.alive = doc.AliveMark
	m.version = max(m.version, doc.Version) + 1
	return nil
}

// Close marks the store closed; later calls fail with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Writable implements Store: memory never runs out of disk.
func (m *Memory) Writable() error { return nil }
