package schedule

import (
	"testing"

	"github.com/termd/termd/protocol"
)

func TestAttrsLocation(t *testing.T) {
	enc := func(kv ...any) string {
		w := protocol.NewWriter()
		w.Map(len(kv) / 2)
		for i := 0; i < len(kv); i += 2 {
			w.Str(kv[i].(string))
			switch v := kv[i+1].(type) {
			case string:
				w.Str(v)
			case int:
				w.Int(int64(v))
			case bool:
				w.Bool(v)
			}
		}
		return string(w.Bytes())
	}
	for _, tc := range []struct {
		attrs string
		ok    bool
		want  location
	}{
		{enc("site", "shop 12", "lat", "52.2297", "lon", "21.0122", "kiosk", true), true, location{52.2297, 21.0122}},
		{enc("lat", "52.2", "n", 7), false, location{}},       // no lon
		{enc("lat", 52, "lon", 21), false, location{}},        // ints: not degrees
		{enc("lat", "95", "lon", "21"), false, location{}},    // out of range
		{enc("lat", "north", "lon", "21"), false, location{}}, // not a number
		{"", false, location{}},
		{"\x81", false, location{}}, // truncated
	} {
		got, ok := attrsLocation(tc.attrs)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%x: %v %v, want %v %v", tc.attrs, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzAttrsLocation(f *testing.F) {
	f.Add("\x82\xa3lat\xa252\xa3lon\xa221")
	f.Fuzz(func(t *testing.T, attrs string) {
		if l, ok := attrsLocation(attrs); ok && (l.lat < -90 || l.lat > 90 || l.lon < -180 || l.lon > 180) {
			t.Fatalf("out of range %v", l)
		}
	})
}
