package client

import (
	"fmt"
	"maps"
	"slices"

	"github.com/termd/termd/protocol"
)

// EncodeAttrs encodes HELLO's attrs map (spec §3.1): str → str | int |
// bool, ≤ 16 entries, keys ≤ 32 bytes, str values ≤ 64 bytes. Keys are
// written in sorted order so equal maps encode equally.
func EncodeAttrs(attrs map[string]any) ([]byte, error) { return encodeSmallMap(attrs, false) }

// EncodeStatus encodes a heartbeat's status map (spec §4): like attrs, and
// float values are allowed too.
func EncodeStatus(status map[string]any) ([]byte, error) { return encodeSmallMap(status, true) }

func encodeSmallMap(m map[string]any, floats bool) ([]byte, error) {
	if len(m) > protocol.MaxMapItems {
		return nil, fmt.Errorf("client: %d entries, at most %d", len(m), protocol.MaxMapItems)
	}
	w := protocol.NewWriter()
	w.Map(len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if len(k) > protocol.MaxMapKey {
			return nil, fmt.Errorf("client: key %q longer than %d bytes", k, protocol.MaxMapKey)
		}
		w.Str(k)
		switch v := m[k].(type) {
		case string:
			if len(v) > protocol.MaxMapStr {
				return nil, fmt.Errorf("client: value of %q longer than %d bytes", k, protocol.MaxMapStr)
			}
			w.Str(v)
		case bool:
			w.Bool(v)
		case int:
			w.Int(int64(v))
		case int8:
			w.Int(int64(v))
		case int16:
			w.Int(int64(v))
		case int32:
			w.Int(int64(v))
		case int64:
			w.Int(v)
		case uint:
			w.Uint(uint64(v))
		case uint8:
			w.Uint(uint64(v))
		case uint16:
			w.Uint(uint64(v))
		case uint32:
			w.Uint(uint64(v))
		case uint64:
			w.Uint(v)
		case float32:
			if !floats {
				return nil, fmt.Errorf("client: value of %q: float not allowed", k)
			}
			w.Float(float64(v))
		case float64:
			if !floats {
				return nil, fmt.Errorf("client: value of %q: float not allowed", k)
			}
			w.Float(v)
		default:
			return nil, fmt.Errorf("client: value of %q: unsupported type %T", k, v)
		}
	}
	return w.Bytes(), nil
}
