package storage

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeDevice: a device record read from disk, or from a backup an
// operator restores, is our own hand-written layout; whatever its bytes,
// decodeDevice returns a record or ErrCorrupt, never panics, and a record
// it accepts encodes back to bytes that decode to the same record.
func FuzzDecodeDevice(f *testing.F) {
	full := Device{ID: "x", FirstSeen: 1, LastSeen: 2, Online: true, SessionID: 3, LastOnline: 4, LastOffline: -5,
		OfflineReason: "timeout", RemoteAddr: "10.0.0.1:4000", FW: "2.1", Model: "P400", Attrs: []byte{0x80},
		Status: []byte{}, Key: make([]byte, KeySize), Blocked: true}
	f.Add(encodeDevice(nil, &full))
	f.Add(encodeDevice(nil, &Device{ID: "y"}))
	f.Add([]byte{recordV1, 0})
	f.Add([]byte{recordV1, flagAttrs, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDevice("id", b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if _, err := deviceOnline(b); err != nil {
			t.Fatalf("decoded, but deviceOnline refuses: %v", err)
		}
		again, err := decodeDevice("id", encodeDevice(nil, &d))
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("re-encoded record decodes to %+v (%v), want %+v", again, err, d)
		}
	})
}
