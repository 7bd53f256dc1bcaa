package groups

import (
	"sync"

	"github.com/termd/termd/storage"
)

// idemCache holds the GROUP_CHANGE answers of the last window in memory,
// in arrival order so the oldest expire first; the store holds the same
// answers (written with their change) for restarts. A device has at most
// perDevice answers remembered: past that it is refused RATE_LIMITED
// until its oldest expires, never served unprotected.
type idemCache struct {
	mu        sync.Mutex
	m         map[idemKey]*storage.GroupIdem
	perDev    map[string]int
	fifo      []*storage.GroupIdem
	head      int
	window    int64
	perDevice int
}

type idemKey struct {
	dev string
	rid uint64
}

func newIdemCache(windowMs int64, perDevice int) *idemCache {
	return &idemCache{m: map[idemKey]*storage.GroupIdem{}, perDev: map[string]int{}, window: windowMs, perDevice: perDevice}
}

// get returns the remembered answer of (dev, rid) at now.
func (c *idemCache) get(dev string, rid uint64, now int64) (*storage.GroupIdem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
	e, ok := c.m[idemKey{dev, rid}]
	return e, ok
}

// full returns, when dev has its quota of answers, the ms until its
// oldest expires; 0 otherwise.
func (c *idemCache) full(dev string, now int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.perDev[dev] < c.perDevice {
		return 0
	}
	for _, e := range c.fifo[c.head:] {
		if e.DeviceID == dev {
			return max(1, e.AtMs+c.window-now)
		}
	}
	return c.window
}

// put remembers e (answers arrive in time order).
func (c *idemCache) put(e storage.GroupIdem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := idemKey{e.DeviceID, e.RequestID}
	if _, ok := c.m[k]; ok {
		return
	}
	c.m[k] = &e
	c.perDev[e.DeviceID]++
	c.fifo = append(c.fifo, &e)
}

func (c *idemCache) expire(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked(now)
}

func (c *idemCache) expireLocked(now int64) {
	for c.head < len(c.fifo) && c.fifo[c.head].AtMs+c.window <= now {
		e := c.fifo[c.head]
		c.fifo[c.head] = nil
		c.head++
		k := idemKey{e.DeviceID, e.RequestID}
		if c.m[k] == e {
			delete(c.m, k)
		}
		if c.perDev[e.DeviceID]--; c.perDev[e.DeviceID] <= 0 {
			delete(c.perDev, e.DeviceID)
		}
	}
	if c.head > 1024 && c.head*2 > len(c.fifo) {
		c.fifo = append([]*storage.GroupIdem(nil), c.fifo[c.head:]...)
		c.head = 0
	}
}
