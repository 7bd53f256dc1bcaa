package auth

import (
	"sync"

	"github.com/termd/termd/protocol"
)

// Credential is what HELLO needs to know about a device beyond the fleet
// secret.
type Credential struct {
	Key     *protocol.Key // per-device key; nil = derive from the fleet secret
	Blocked bool
}

// Credentials indexes per-device keys and blocked flags in memory so HELLO
// never waits on storage. Only devices with a key or a block are in it.
// Writers (operators) are rare; readers take a read lock.
type Credentials struct {
	mu sync.RWMutex
	m  map[string]Credential
}

// NewCredentials returns an empty index.
func NewCredentials() *Credentials { return &Credentials{m: make(map[string]Credential)} }

// Get returns the device's credential (zero value if none).
func (c *Credentials) Get(deviceID string) Credential {
	c.mu.RLock()
	cr := c.m[deviceID]
	c.mu.RUnlock()
	return cr
}

// SetKey sets or (nil) clears a per-device key.
func (c *Credentials) SetKey(deviceID string, key []byte) {
	c.update(deviceID, func(cr *Credential) {
		cr.Key = nil
		if len(key) == len(protocol.Key{}) {
			var k protocol.Key
			copy(k[:], key)
			cr.Key = &k
		}
	})
}

// SetBlocked sets the blocked flag.
func (c *Credentials) SetBlocked(deviceID string, blocked bool) {
	c.update(deviceID, func(cr *Credential) { cr.Blocked = blocked })
}

func (c *Credentials) update(deviceID string, fn func(*Credential)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cr := c.m[deviceID]
	fn(&cr)
	if cr.Key == nil && !cr.Blocked {
		delete(c.m, deviceID)
		return
	}
	c.m[deviceID] = cr
}

// Len is the number of indexed devices.
func (c *Credentials) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
