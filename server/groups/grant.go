package groups

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/termd/termd/protocol"
)

// Grants (spec §7). A grant is
//
//	version(1)=1 | key_id(4) | issued_ms(8) | expires_ms(8) | role_len(1) role | mac(32)
//
// mac is HMAC-SHA256 under the key named by key_id over the same bytes
// before it plus device_id NUL group_id: the device and group are bound
// without being carried (the verifier knows both), so a grant is useless
// to another device or for another group. At most 4+8+8+1+16+33 = 71
// bytes, well inside protocol.MaxGrant.

const (
	grantV1      = 1
	grantHeader  = 1 + 4 + 8 + 8 + 1
	grantMACSize = sha256.Size
	// maxKeys bounds the key ring: the current key and those retired
	// less than one grant lifetime ago.
	maxKeys = 4
)

// grantKey is one signing key.
type grantKey struct {
	ID        uint32 `json:"id"`
	Key       []byte `json:"key"`
	CreatedMs int64  `json:"created_ms"`
	// RetiredMs is when a newer key replaced it (0: current). A retired
	// key still verifies grants until RetiredMs + the grant lifetime.
	RetiredMs int64 `json:"retired_ms,omitempty"`
}

// keyRing holds the grant keys, persisted in a file under the data dir
// (mode 0600) so grants stay valid across restarts; "" keeps them in
// memory only.
type keyRing struct {
	mu    sync.RWMutex
	path  string
	ttlMs int64
	keys  []grantKey // oldest first; the last one signs
}

type keyFile struct {
	Keys []grantKey `json:"keys"`
}

// openKeyRing loads the ring at path, creating its first key if none.
func openKeyRing(path string, ttlMs, nowMs int64) (*keyRing, error) {
	r := &keyRing{path: path, ttlMs: ttlMs}
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			var f keyFile
			if err := json.Unmarshal(b, &f); err != nil {
				return nil, fmt.Errorf("group grant keys %s: %w", path, err)
			}
			for _, k := range f.Keys {
				if len(k.Key) != 32 {
					return nil, fmt.Errorf("group grant keys %s: key %d is %d bytes", path, k.ID, len(k.Key))
				}
			}
			r.keys = f.Keys
		}
	}
	if len(r.keys) == 0 {
		if err := r.Rotate(nowMs); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Rotate makes a new key the signing key. The previous one keeps
// verifying the grants it signed until they expire; keys retired longer
// ago than a grant lifetime are dropped.
func (r *keyRing) Rotate(nowMs int64) error {
	k := grantKey{Key: make([]byte, 32), CreatedMs: nowMs}
	if _, err := rand.Read(k.Key); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]grantKey, 0, len(r.keys)+1)
	for _, old := range r.keys {
		if old.RetiredMs == 0 {
			old.RetiredMs = nowMs
		}
		if nowMs-old.RetiredMs <= r.ttlMs {
			keys = append(keys, old)
		}
		k.ID = max(k.ID, old.ID)
	}
	k.ID++
	keys = append(keys, k)
	if len(keys) > maxKeys {
		keys = keys[len(keys)-maxKeys:]
	}
	if err := r.save(keys); err != nil {
		return err
	}
	r.keys = keys
	return nil
}

// save writes keys to the file atomically (temp file, fsync, rename).
func (r *keyRing) save(keys []grantKey) error {
	if r.path == "" {
		return nil
	}
	b, err := json.Marshal(keyFile{Keys: keys})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, r.path)
}

// CurrentID is the signing key's id.
func (r *keyRing) CurrentID() uint32 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys[len(r.keys)-1].ID
}

// grant is a decoded, verified grant.
type grant struct {
	Role      string
	IssuedMs  int64
	ExpiresMs int64
	KeyID     uint32
}

func grantMAC(key []byte, head []byte, device, group string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(head)
	m.Write([]byte(device))
	m.Write([]byte{0})
	m.Write([]byte(group))
	return m.Sum(nil)
}

// Issue signs a grant for device in group with role.
func (r *keyRing) Issue(device, group, role string, issuedMs, expiresMs int64) []byte {
	r.mu.RLock()
	k := r.keys[len(r.keys)-1]
	r.mu.RUnlock()
	b := make([]byte, 0, grantHeader+len(role)+grantMACSize)
	b = append(b, grantV1)
	b = binary.BigEndian.AppendUint32(b, k.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(issuedMs))
	b = binary.BigEndian.AppendUint64(b, uint64(expiresMs))
	b = append(b, byte(len(role)))
	b = append(b, role...)
	return append(b, grantMAC(k.Key, b, device, group)...)
}

// errGrant is the answer to a grant that is not valid for this device
// and group (spec §7: UNAUTHENTICATED).
var errGrant = &protocol.Error{Code: protocol.Unauthenticated, Message: "grant not valid for this device and group"}

// Verify checks b for device and group at nowMs: a malformed grant, an
// unknown or long-retired key or a wrong MAC is UNAUTHENTICATED; a valid
// one past its expiry is EXPIRED.
func (r *keyRing) Verify(b []byte, device, group string, nowMs int64) (grant, error) {
	if len(b) < grantHeader+grantMACSize || b[0] != grantV1 {
		return grant{}, errGrant
	}
	roleLen := int(b[grantHeader-1])
	if roleLen > protocol.MaxRole || len(b) != grantHeader+roleLen+grantMACSize {
		return grant{}, errGrant
	}
	g := grant{
		KeyID:     binary.BigEndian.Uint32(b[1:5]),
		IssuedMs:  int64(binary.BigEndian.Uint64(b[5:13])),
		ExpiresMs: int64(binary.BigEndian.Uint64(b[13:21])),
		Role:      string(b[grantHeader : grantHeader+roleLen]),
	}
	head, mac := b[:grantHeader+roleLen], b[grantHeader+roleLen:]
	r.mu.RLock()
	var key []byte
	for _, k := range r.keys {
		if k.ID == g.KeyID && (k.RetiredMs == 0 || nowMs-k.RetiredMs <= r.ttlMs) {
			key = k.Key
		}
	}
	r.mu.RUnlock()
	if key == nil || !hmac.Equal(mac, grantMAC(key, head, device, group)) {
		return grant{}, errGrant
	}
	if g.ExpiresMs-g.IssuedMs > r.ttlMs || g.IssuedMs < 0 {
		return grant{}, errGrant
	}
	if nowMs > g.ExpiresMs {
		return grant{}, &protocol.Error{Code: protocol.Expired, Message: "grant expired"}
	}
	return g, nil
}
