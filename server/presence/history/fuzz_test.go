package history

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/termd/termd/storage"
)

// FuzzDecodeShard: a shard blob read from the store (or a restored
// backup) either loads whole or is refused as corrupt without adding a
// record, never panics; a blob it accepts as version 2 encodes back to
// the same records.
func FuzzDecodeShard(f *testing.F) {
	s := &shard{m: map[uint64]rec{42: {last: 7, ring: [3]uint64{1, 2, 3}}}}
	f.Add(encodeShard(s))
	f.Add([]byte{blobVersion})
	f.Add([]byte{})
	v1 := []byte{blobVersionV1}
	v1 = binary.AppendUvarint(v1, 3)
	v1 = append(v1, "POS"...)
	v1 = append(v1, make([]byte, recordSize)...)
	f.Add(v1)
	f.Add([]byte{blobVersionV1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{9, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := map[uint64]rec{}
		err := decodeShard(0, b, func(key uint64, r rec) { got[key] = r })
		if err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			if len(got) != 0 {
				t.Fatalf("a refused blob added %d records", len(got))
			}
			return
		}
		if len(b) == 0 || b[0] != blobVersion {
			return
		}
		again := map[uint64]rec{}
		if err := decodeShard(0, encodeShard(&shard{m: got}), func(key uint64, r rec) { again[key] = r }); err != nil || len(again) != len(got) {
			t.Fatalf("re-encoded: %d records (%v), want %d", len(again), err, len(got))
		}
		for k, r := range got {
			if again[k] != r {
				t.Fatalf("record %d: %+v, want %+v", k, again[k], r)
			}
		}
	})
}
