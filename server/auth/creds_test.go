package auth

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/termd/termd/protocol"
)

func key32(b byte) []byte { return bytes.Repeat([]byte{b}, len(protocol.Key{})) }

func TestCredentials(t *testing.T) {
	type op func(c *Credentials)
	setKey := func(id string, k []byte) op { return func(c *Credentials) { c.SetKey(id, k) } }
	block := func(id string, b bool) op { return func(c *Credentials) { c.SetBlocked(id, b) } }
	tests := []struct {
		name      string
		ops       []op
		id        string
		wantKey   []byte // nil = no key
		wantBlock bool
		wantLen   int
	}{
		{name: "unknown device is the zero value", id: "T-1"},
		{name: "key set", ops: []op{setKey("T-1", key32(7))}, id: "T-1", wantKey: key32(7), wantLen: 1},
		{name: "key replaced", ops: []op{setKey("T-1", key32(7)), setKey("T-1", key32(8))}, id: "T-1", wantKey: key32(8), wantLen: 1},
		{name: "key cleared with nil removes the entry", ops: []op{setKey("T-1", key32(7)), setKey("T-1", nil)}, id: "T-1"},
		{name: "a key of the wrong length is never installed", ops: []op{setKey("T-1", key32(7)[:31])}, id: "T-1"},
		{name: "blocked", ops: []op{block("T-1", true)}, id: "T-1", wantBlock: true, wantLen: 1},
		{name: "unblocked removes the entry", ops: []op{block("T-1", true), block("T-1", false)}, id: "T-1"},
		{name: "unblocking an unknown device adds nothing", ops: []op{block("T-1", false), setKey("T-2", nil)}, id: "T-1"},
		{
			name: "key kept when unblocked",
			ops:  []op{setKey("T-1", key32(1)), block("T-1", true), block("T-1", false)},
			id:   "T-1", wantKey: key32(1), wantLen: 1,
		},
		{
			name: "block kept when key cleared",
			ops:  []op{setKey("T-1", key32(1)), block("T-1", true), setKey("T-1", nil)},
			id:   "T-1", wantBlock: true, wantLen: 1,
		},
		{
			name: "both cleared removes the entry",
			ops:  []op{setKey("T-1", key32(1)), block("T-1", true), setKey("T-1", nil), block("T-1", false)},
			id:   "T-1",
		},
		{
			name: "devices are independent",
			ops:  []op{setKey("T-1", key32(1)), block("T-2", true), setKey("T-3", key32(3))},
			id:   "T-2", wantBlock: true, wantLen: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCredentials()
			for _, o := range tt.ops {
				o(c)
			}
			got := c.Get(tt.id)
			switch {
			case tt.wantKey == nil && got.Key != nil:
				t.Errorf("Key = %x, want nil", got.Key[:])
			case tt.wantKey != nil && (got.Key == nil || !bytes.Equal(got.Key[:], tt.wantKey)):
				t.Errorf("Key = %v, want %x", got.Key, tt.wantKey)
			}
			if got.Blocked != tt.wantBlock {
				t.Errorf("Blocked = %v, want %v", got.Blocked, tt.wantBlock)
			}
			if c.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", c.Len(), tt.wantLen)
			}
		})
	}
}

func TestCredentialsKeyIsCopied(t *testing.T) {
	c := NewCredentials()
	k := key32(5)
	c.SetKey("T-1", k)
	k[0] = 0xFF
	if got := c.Get("T-1").Key; got == nil || got[0] != 5 {
		t.Fatalf("stored key changed with the caller's slice: %v", got)
	}
}

func TestCredentialsConcurrent(t *testing.T) {
	c := NewCredentials()
	const devices, rounds = 32, 500
	var wg sync.WaitGroup
	for d := range devices {
		id := fmt.Sprintf("T-%d", d)
		wg.Go(func() {
			for i := range rounds {
				c.SetKey(id, key32(byte(i)))
				c.SetBlocked(id, i%2 == 0)
				if i%3 == 0 {
					c.SetKey(id, nil)
				}
			}
			// Leave an odd device with a key, an even one with nothing.
			c.SetBlocked(id, false)
			if d%2 == 1 {
				c.SetKey(id, key32(byte(d)))
			} else {
				c.SetKey(id, nil)
			}
		})
		wg.Go(func() {
			for range rounds {
				cr := c.Get(id)
				if cr.Key != nil {
					_ = cr.Key[0]
				}
				_ = c.Len()
			}
		})
	}
	wg.Wait()
	if c.Len() != devices/2 {
		t.Fatalf("Len = %d, want %d", c.Len(), devices/2)
	}
	for d := range devices {
		cr := c.Get(fmt.Sprintf("T-%d", d))
		if (cr.Key != nil) != (d%2 == 1) || cr.Blocked {
			t.Fatalf("T-%d: %+v", d, cr)
		}
	}
}
