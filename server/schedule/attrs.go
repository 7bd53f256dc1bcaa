package schedule

// The last resort of placement without coordinates (issue 13): the
// `lat` and `lon` the terminal sent in HELLO's attrs, as decimal-degree
// strings (attrs values are str, int or bool, spec §3.1). They are not
// covered by the HELLO MAC, so they are used only when neither the
// request nor an operator gave a location.

import (
	"strconv"

	"github.com/termd/termd/protocol"
)

// attrsLocation reads lat/lon from a HELLO attrs map (already validated
// by the HELLO decoder), or reports false.
func attrsLocation(attrs string) (location, bool) {
	if attrs == "" {
		return location{}, false
	}
	r := protocol.NewReader([]byte(attrs))
	n, err := r.Map(protocol.MaxMapItems, "attrs")
	if err != nil {
		return location{}, false
	}
	var lat, lon string
	for range n {
		k, err := r.Str(protocol.MaxMapKey, "attrs key")
		if err != nil {
			return location{}, false
		}
		if k == "lat" || k == "lon" {
			v, err := r.Str(protocol.MaxMapStr, "attrs value")
			if err != nil {
				return location{}, false // not a string: no location
			}
			if k == "lat" {
				lat = v
			} else {
				lon = v
			}
			continue
		}
		if err := r.Skip(2); err != nil {
			return location{}, false
		}
	}
	la, err1 := strconv.ParseFloat(lat, 64)
	lo, err2 := strconv.ParseFloat(lon, 64)
	if err1 != nil || err2 != nil || la < -90 || la > 90 || lo < -180 || lo > 180 {
		return location{}, false
	}
	return location{la, lo}, true
}
