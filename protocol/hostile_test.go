package protocol

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hostileBody is a body built to make a decoder allocate or work in
// proportion to what it claims rather than what it holds.
type hostileBody struct {
	name string
	msg  Message
	body []byte
	why  string // a substring of the error, when the attack has one reason
}

// Elements that claim far more than the 4 KiB a frame can hold.
var hostileElements = []struct{ name, hex string }{
	{"str32 claiming 4 GiB", "dbffffffff 41"},
	{"bin32 claiming 4 GiB", "c6ffffffff 41"},
	{"array32 claiming 4 GiB", "ddffffffff 90"},
	{"map32 claiming 4 GiB", "dfffffffff a0 90"},
	{"ext32 claiming 4 GiB", "c9ffffffff 01 41"},
	{"ext16 claiming 64 KiB", "c8ffff 01 41"},
	{"ext8 claiming 255 bytes", "c7ff 01 41"},
	{"str16 claiming 64 KiB", "daffff 41"},
	{"map16 claiming 64 Ki entries", "deffff a0 90"},
}

// Field-level attacks, aimed at the decoders that read a container or a
// long field themselves rather than skipping it.
var hostileFields = []hostileBody{
	{"hello attrs map32", &Hello{}, goldenHex("97 a6542d30303031 00 c410 00*16 c420 00*32 a0 a0 dfffffffff a0 a0"), "truncated"},
	{"hello nonce bin32", &Hello{}, goldenHex("96 a6542d30303031 00 c6ffffffff 00*16"), "truncated"},
	{"heartbeat status map32", &Heartbeat{}, goldenHex("92 00 dfffffffff a0 a0"), "truncated"},
	{"heartbeat status map of 1000 nested maps", &Heartbeat{}, goldenHex("92 00 " + repeatHex("81a0", 1000) + "80"), "status value: wrong type"},
	{"control args array32", &Control{}, goldenHex("93 a473736864 01 ddffffffff a0"), "truncated"},
	{"control arg str32", &Control{}, goldenHex("93 a473736864 01 91 dbffffffff 41"), "truncated"},
	{"control args of 1000 nested arrays", &Control{}, goldenHex("93 a473736864 01 91*1000 90"), "arg: not a string"},
	{"upgrade_query_ack offer array32", &UpgradeQueryAck{}, goldenHex("94 00 ddffffffff c0 c0"), "truncated"},
	{"upgrade_query_ack offer notes str32", &UpgradeQueryAck{}, goldenHex("94 00 98 a0 a0 a0 c420 00*32 00 c2 dbffffffff 41"), "truncated"},
	{"upgrade_query_ack offer extra of 1000 nested arrays", &UpgradeQueryAck{}, goldenHex("94 00 99 a0 a0 a0 c420 00*32 00 c2 a0 c400 91*1000 90 c0 c0"), "deeper than 8"},
	{"group_change_ack groups array32", &GroupChangeAck{}, goldenHex("93 00 07 ddffffffff 92 a0 a0"), "truncated"},
	{"group_sync membership array32", &GroupSync{}, goldenHex("92 07 91 ddffffffff a0"), "truncated"},
	{"group_list_ack membership extra of 1000 nested arrays", &GroupListAck{}, goldenHex("93 00 07 91 93 a0 a0 91*1000 90"), "deeper than 8"},
	{"group_send payload bin32", &GroupSend{}, goldenHex("92 a56c6f626279 c6ffffffff 41"), "truncated"},
	{"group_change grant bin32", &GroupChange{}, goldenHex("95 01 01 c0 a56c6f626279 c6ffffffff 41"), "truncated"},
	{"upgrade_check_ack release_sig bin32", &UpgradeCheckAck{}, goldenHex("98 00 02 00 a0 c400 00 a0 c6ffffffff 41"), "truncated"},
	{"schedule_request system_id str32", &ScheduleRequest{}, goldenHex("95 a0 a0 c0 c0 dbffffffff 41"), "truncated"},
	{"refusal message str32", &Refusal{RespType: Response(TypeControl)}, goldenHex("92 05 dbffffffff 41"), "truncated"},
	{"control_ack timeout state str32", &ControlAck{}, goldenHex("96 0d a0 dbffffffff 41 00 00 00"), "truncated"},
}

func repeatHex(h string, n int) string { return string(bytes.Repeat([]byte(h), n)) }

// hostileBodies returns, for every decoder, its canonical golden body with
// each hostile element appended as an extra trailing element (skipped by
// SkipRest, or read as an optional field), a body whose array header claims
// 4 GiB elements, a trailing element nested 1000 levels, a 4096-byte body
// that is nothing but nested arrays, and the field-level attacks.
func hostileBodies() []hostileBody {
	var out []hostileBody
	for _, tmpl := range fuzzTargets {
		name := typeName(tmpl)
		// The canonical body with the most elements, so that what is
		// appended lands past every optional field and is skipped.
		var canon []byte
		for _, c := range goldenCases {
			if b := goldenHex(c.body); c.canon && typeName(c.msg) == name && (canon == nil || b[0] > canon[0]) {
				canon = b
			}
		}
		n := int(canon[0] & 0x0F) // every canonical body has a fixarray header
		with := func(elem []byte) []byte {
			b := append([]byte{0x90 | byte(n+1)}, canon[1:]...)
			return append(b, elem...)
		}
		for _, e := range hostileElements {
			out = append(out, hostileBody{name + " + " + e.name, tmpl, with(goldenHex(e.hex)), "truncated"})
		}
		out = append(out,
			hostileBody{name + " + 1000 nested arrays", tmpl, with(goldenHex("91*999 90")), "deeper than 8"},
			hostileBody{name + " + 1000 nested maps", tmpl, with(goldenHex(repeatHex("81a0", 999) + "80")), "deeper than 8"},
			hostileBody{name + " header claiming 4 GiB elements", tmpl, append([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, canon[1:]...), "truncated"},
			hostileBody{name + " as 4096 bytes of nested arrays", tmpl, goldenHex("91*4095 90"), ""},
		)
	}
	return append(out, hostileFields...)
}

// Hostile bodies are refused BAD_REQUEST, fast, without allocating what
// they claim: under 10 allocations each and 64 KiB for the whole set.
func TestHostileBodies(t *testing.T) {
	const (
		maxAllocs     = 10
		maxTotalBytes = 64 << 10
		maxPassTime   = 2 * time.Second // the whole set, generous for -race
	)
	bodies := hostileBodies()
	r := NewReader(nil)
	msgs := make([]Message, len(bodies))
	for i, h := range bodies {
		msgs[i] = fresh(h.msg)
	}
	// Warm the Reader's scratch buffers so they are not counted.
	for i, h := range bodies {
		_ = DecodeBody(r, h.body, msgs[i])
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	errs := make([]error, len(bodies))
	start := time.Now()
	for i, h := range bodies {
		errs[i] = DecodeBody(r, h.body, msgs[i])
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	for i, h := range bodies {
		if err := errs[i]; StatusOf(err) != BadRequest {
			t.Errorf("%s: %v, want BAD_REQUEST", h.name, err)
		} else if !strings.Contains(err.Error(), h.why) {
			t.Errorf("%s: %v, want it to say %q", h.name, err, h.why)
		}
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > maxTotalBytes {
		t.Errorf("%d hostile bodies allocated %d bytes, want < %d", len(bodies), d, maxTotalBytes)
	}
	if elapsed > maxPassTime {
		t.Errorf("%d hostile bodies took %v", len(bodies), elapsed)
	}
	for i, h := range bodies {
		if len(h.body) > 4096 {
			t.Errorf("%s: %d bytes, more than a frame holds", h.name, len(h.body))
		}
		allocs := testing.AllocsPerRun(20, func() { _ = DecodeBody(r, h.body, msgs[i]) })
		if allocs >= maxAllocs {
			t.Errorf("%s: %.0f allocations, want < %d", h.name, allocs, maxAllocs)
		}
	}
	t.Logf("%d hostile bodies: %d bytes allocated, %v", len(bodies), after.TotalAlloc-before.TotalAlloc, elapsed)
}

func BenchmarkHostileBodies(b *testing.B) {
	bodies := hostileBodies()
	r := NewReader(nil)
	msgs := make([]Message, len(bodies))
	for i, h := range bodies {
		msgs[i] = fresh(h.msg)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k := i % len(bodies)
		_ = DecodeBody(r, bodies[k].body, msgs[k])
	}
}
