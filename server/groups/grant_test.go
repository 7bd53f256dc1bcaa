package groups

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/termd/termd/protocol"
)

// A grant verifies for its device and group only, until it expires; any
// change of a byte is refused; the key file survives a reopen.
func TestGrantFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	r, err := openKeyRing(path, 300_000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	g := r.Issue("T1", "A", "moderator", 1000, 301_000)
	if len(g) > protocol.MaxGrant {
		t.Fatalf("grant of %d bytes", len(g))
	}
	if v, err := r.Verify(g, "T1", "A", 2000); err != nil || v.Role != "moderator" || v.IssuedMs != 1000 {
		t.Fatalf("verify: %+v %v", v, err)
	}
	for i := range g {
		b := bytes.Clone(g)
		b[i] ^= 0x40
		if _, err := r.Verify(b, "T1", "A", 2000); protocol.StatusOf(err) != protocol.Unauthenticated {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	for _, c := range []struct{ dev, group string }{{"T2", "A"}, {"T1", "B"}, {"T1\x00A", ""}} {
		if _, err := r.Verify(g, c.dev, c.group, 2000); protocol.StatusOf(err) != protocol.Unauthenticated {
			t.Fatalf("%q/%q: %v", c.dev, c.group, err)
		}
	}
	if _, err := r.Verify(g, "T1", "A", 301_001); protocol.StatusOf(err) != protocol.Expired {
		t.Fatalf("expired: %v", err)
	}
	// A grant claiming a life above the ring's is not one of ours.
	if _, err := r.Verify(r.Issue("T1", "A", "member", 0, 400_000), "T1", "A", 1); protocol.StatusOf(err) != protocol.Unauthenticated {
		t.Fatalf("long-lived grant: %v", err)
	}
	r2, err := openKeyRing(path, 300_000, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Verify(g, "T1", "A", 2000); err != nil {
		t.Fatalf("after reopening the key file: %v", err)
	}
}

// FuzzVerifyGrant: any bytes in GROUP_CHANGE's grant are refused with a
// status (never a panic) unless they are a grant the ring issued.
func FuzzVerifyGrant(f *testing.F) {
	r, err := openKeyRing("", 300_000, 1000)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(r.Issue("T1", "A", "member", 1000, 2000))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 80))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := r.Verify(b, "T1", "A", 1500)
		if err != nil {
			if c := protocol.StatusOf(err); c != protocol.Unauthenticated && c != protocol.Expired {
				t.Fatalf("status %v", c)
			}
		}
	})
}
