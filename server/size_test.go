package server

import (
	"testing"
	"unsafe"
)

// TestConnSize guards the per-terminal footprint: conn (with the presence
// entry inside it) is one allocation per connection, and 288 bytes is a
// Go size class; one field more moves every terminal to the 320 class.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 288 {
		t.Fatalf("conn is %d bytes, over the 288-byte size class (docs/performance.md, memory per terminal)", n)
	}
}

// TestWheelEntrySize: every connection has one timer-wheel entry (a
// pointer and a generation), 16 bytes in its slot's slice.
func TestWheelEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(wheelEntry{}); n > 16 {
		t.Fatalf("wheelEntry is %d bytes, over 16 (docs/performance.md, memory per terminal)", n)
	}
}
