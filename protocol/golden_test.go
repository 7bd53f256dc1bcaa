package protocol

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// goldenCase is one row of the golden table: a body, the message type
// that decodes it, and what decoding must give. A message is added to
// the protocol by adding rows here, not test functions.
type goldenCase struct {
	name string
	// msg is the decoder: a zero message of the type under test (Ack and
	// Refusal carry their frame type). Each run decodes into a copy.
	msg Message
	// body is hex, spaces ignored; a token HH*N stands for N bytes HH.
	body string
	// want is the message after Decode (nil: not compared).
	want Message
	// err is the error Decode returns for a refusal, compared with
	// reflect.DeepEqual (nil: only code and why are checked).
	err error
	// code is StatusOf(Decode's error): OK for a successful decode.
	code Code
	// why is a substring of the error text, so that a failure row fails
	// for the reason its name gives and not for an earlier one.
	why string
	// canon: encoding want gives exactly body.
	canon bool
}

// goldenHex decodes a goldenCase body.
func goldenHex(s string) []byte {
	var out []byte
	for _, tok := range strings.Fields(s) {
		if b, n, ok := strings.Cut(tok, "*"); ok {
			v, err1 := strconv.ParseUint(b, 16, 8)
			k, err2 := strconv.Atoi(n)
			if err1 != nil || err2 != nil {
				panic("bad repeat token " + tok)
			}
			out = append(out, bytes.Repeat([]byte{byte(v)}, k)...)
			continue
		}
		b, err := hex.DecodeString(tok)
		if err != nil {
			panic(err)
		}
		out = append(out, b...)
	}
	return out
}

// seqBytes returns n bytes counting up from start.
func seqBytes(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// groupsN returns memberships g00..g<n-1>, role member.
func groupsN(n int) []Membership {
	gs := make([]Membership, n)
	for i := range gs {
		gs[i] = Membership{GroupID: fmt.Sprintf("g%02d", i), Role: "member"}
	}
	return gs
}

// fresh returns a copy of the decoder template m, so rows do not share
// state.
func fresh(m Message) Message {
	v := reflect.New(reflect.TypeOf(m).Elem())
	v.Elem().Set(reflect.ValueOf(m).Elem())
	return v.Interface().(Message)
}

// detach copies the fields documented to alias the body, so a decoded
// message can outlive it.
func detach(m Message) {
	switch m := m.(type) {
	case *Hello:
		m.Attrs = bytes.Clone(m.Attrs)
	case *Heartbeat:
		m.Status = bytes.Clone(m.Status)
	}
}

func TestGolden(t *testing.T) {
	r := NewReader(nil)
	w := NewWriter()
	seen := map[string]bool{}
	for _, c := range goldenCases {
		if seen[c.name] {
			t.Errorf("duplicate row name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			body := goldenHex(c.body)
			m := fresh(c.msg)
			err := DecodeBody(r, body, m)
			if got := StatusOf(err); got != c.code {
				t.Fatalf("status %v, want %v (err %v)", got, c.code, err)
			}
			if c.why != "" && (err == nil || !strings.Contains(err.Error(), c.why)) {
				t.Fatalf("error %q does not say %q", err, c.why)
			}
			if c.err != nil && !reflect.DeepEqual(err, c.err) {
				t.Fatalf("error\n got %#v\nwant %#v", err, c.err)
			}
			if c.want == nil {
				return
			}
			// Scribble over the body: apart from detached fields, the
			// decoded message must own its bytes.
			detach(m)
			for i := range body {
				body[i] = 0xEE
			}
			if !reflect.DeepEqual(m, c.want) {
				t.Fatalf("decoded\n got %+v\nwant %+v", m, c.want)
			}
			if !c.canon {
				return
			}
			w.Reset()
			c.want.Encode(w)
			if want := goldenHex(c.body); !bytes.Equal(w.Bytes(), want) {
				t.Fatalf("encoded\n got %x\nwant %x", w.Bytes(), want)
			}
		})
	}
}

// The table must hold every kind of row for every message type.
func TestGoldenCoverage(t *testing.T) {
	kinds := map[string]map[string]bool{}
	for _, c := range goldenCases {
		typ := reflect.TypeOf(c.msg).Elem().Name()
		if kinds[typ] == nil {
			kinds[typ] = map[string]bool{}
		}
		k := kinds[typ]
		switch {
		case c.canon:
			k["canonical"] = true
		case c.code == OK && strings.Contains(c.name, "non-shortest"):
			k["non-shortest"] = true
		case c.code == OK && strings.Contains(c.name, "extra trailing"):
			k["extra"] = true
		case strings.Contains(c.why, "after the body"):
			k["after"] = true
		case strings.Contains(c.why, "truncated"):
			k["truncated"] = true
		case strings.Contains(c.why, "deeper"):
			k["deep"] = true
		}
	}
	for _, m := range fuzzTargets {
		typ := reflect.TypeOf(m).Elem().Name()
		for _, kind := range []string{"canonical", "non-shortest", "extra", "after", "truncated", "deep"} {
			if !kinds[typ][kind] {
				t.Errorf("%s: no %s row", typ, kind)
			}
		}
	}
}

var goldenCases = []goldenCase{

	// HELLO 0x01 (spec §3.1)
	{name: "hello/spec §10 body", msg: &Hello{}, body: "96 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", want: &Hello{DeviceID: "T-0001", TS: 1700000000, Nonce: vecNonce(), MAC: Key(vecMAC), FW: "1.0.0", Model: "P400"}, canon: true},
	{name: "hello/with attrs", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 84a46c616e67a2656ea2757007a26f6bc3a36e6567fb", want: &Hello{DeviceID: "T-0001", TS: 1700000000, Nonce: vecNonce(), MAC: Key(vecMAC), FW: "1.0.0", Model: "P400", Attrs: unhex("84a46c616e67a2656ea2757007a26f6bc3a36e6567fb")}, canon: true},
	{name: "hello/attrs nil", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 c0", want: &Hello{DeviceID: "T-0001", TS: 1700000000, Nonce: vecNonce(), MAC: Key(vecMAC), FW: "1.0.0", Model: "P400"}},
	{name: "hello/non-shortest ints and strs (ts uint64, str8, array16)", msg: &Hello{}, body: "dc0006 d906542d30303031 cf000000006553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e d905312e302e30 da000450343030", want: &Hello{DeviceID: "T-0001", TS: 1700000000, Nonce: vecNonce(), MAC: Key(vecMAC), FW: "1.0.0", Model: "P400"}},
	{name: "hello/ts as positive int64", msg: &Hello{}, body: "96 a6542d30303031 d3000000006553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", want: &Hello{DeviceID: "T-0001", TS: 1700000000, Nonce: vecNonce(), MAC: Key(vecMAC), FW: "1.0.0", Model: "P400"}},
	{name: "hello/bytes after the array", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 c0 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "hello/array claims one more element than remains", msg: &Hello{}, body: "98 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 c0", code: BadRequest, why: "truncated"},
	{name: "hello/array32 header claims 4 GiB elements", msg: &Hello{}, body: "ddffffffff a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 c0", code: BadRequest, why: "truncated"},
	{name: "hello/trailing element nested 9 levels", msg: &Hello{}, body: "98 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 c0 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "hello/trailing element nested exactly 8 levels", msg: &Hello{}, body: "98 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 c0 91919191919190", want: &Hello{DeviceID: "T-0001", TS: 1700000000, Nonce: vecNonce(), MAC: Key(vecMAC), FW: "1.0.0", Model: "P400"}},
	{name: "hello/extra trailing elements (str, map, ext)", msg: &Hello{}, body: "9a a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 c0 a6667574757265 81a16b9201c0 d40107", want: &Hello{DeviceID: "T-0001", TS: 1700000000, Nonce: vecNonce(), MAC: Key(vecMAC), FW: "1.0.0", Model: "P400"}},
	{name: "hello/not an array", msg: &Hello{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "hello/missing model", msg: &Hello{}, body: "95 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30", code: BadRequest, why: "missing"},
	{name: "hello/ts wrong type (str)", msg: &Hello{}, body: "96 a6542d30303031 aa31373030303030303030 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "ts: not an integer"},
	{name: "hello/ts negative", msg: &Hello{}, body: "96 a6542d30303031 ff c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "ts: negative"},
	{name: "hello/device_id 65 bytes", msg: &Hello{}, body: "96 d941 78*65 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "device_id: too long"},
	{name: "hello/device_id empty", msg: &Hello{}, body: "96 a0 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "device_id: bad characters"},
	{name: "hello/device_id bad character", msg: &Hello{}, body: "96 a6542030303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "device_id: bad characters"},
	{name: "hello/nonce 15 bytes", msg: &Hello{}, body: "96 a6542d30303031 ce6553f100 c40f000102030405060708090a0b0c0d0e c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "nonce: wrong length"},
	{name: "hello/nonce 17 bytes", msg: &Hello{}, body: "96 a6542d30303031 ce6553f100 c411000102030405060708090a0b0c0d0e0f10 c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "nonce: too long"},
	{name: "hello/nonce as str", msg: &Hello{}, body: "96 a6542d30303031 ce6553f100 b030313233343536373839616263646566 c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "nonce: not binary"},
	{name: "hello/fw 33 bytes", msg: &Hello{}, body: "96 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e d921 78*33 a450343030", code: BadRequest, why: "fw/model: too long"},
	{name: "hello/model contains 0x00", msg: &Hello{}, body: "96 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a55034003030", code: BadRequest, why: "contains 0x00"},
	{name: "hello/fw not UTF-8", msg: &Hello{}, body: "96 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a2c328 a450343030", code: BadRequest, why: "not UTF-8"},
	{name: "hello/device_id str8 claims 200 bytes", msg: &Hello{}, body: "96 d9c8542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030", code: BadRequest, why: "truncated"},
	{name: "hello/mac bin8 claims 32 bytes, 10 remain", msg: &Hello{}, body: "96 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e", code: BadRequest, why: "truncated"},
	{name: "hello/attrs 17 entries", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 de0011a26b3000a26b3101a26b3202a26b3303a26b3404a26b3505a26b3606a26b3707a26b3808a26b3909a36b31300aa36b31310ba36b31320ca36b31330da36b31340ea36b31350fa36b313610", code: BadRequest, why: "attrs: too many entries"},
	{name: "hello/attrs key 33 bytes", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 81d921 78*33 01", code: BadRequest, why: "attrs key: too long"},
	{name: "hello/attrs str value 65 bytes", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 81a16bd941 78*65", code: BadRequest, why: "attrs value: too long"},
	{name: "hello/attrs float value", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 81a16bcb3ff8000000000000", code: BadRequest, why: "attrs value: wrong type"},
	{name: "hello/attrs value is an array", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 81a16b9101", code: BadRequest, why: "attrs value: wrong type"},
	{name: "hello/attrs is an array", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 92a16b01", code: BadRequest, why: "attrs: not a map"},
	{name: "hello/attrs map32 claims 4 GiB entries", msg: &Hello{}, body: "97 a6542d30303031 ce6553f100 c410000102030405060708090a0b0c0d0e0f c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e a5312e302e30 a450343030 dfffffffff", code: BadRequest, why: "truncated"},

	// HELLO_OK 0x81
	{name: "hello_ok/spec §10 body", msg: &HelloOK{}, body: "96 00 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad", want: &HelloOK{SessionID: 42, ServerTimeMs: 1700000000123, HBInterval: 30, MaxFrame: 4096, ServerMAC: Key(vecServerMAC)}, canon: true},
	{name: "hello_ok/non-shortest ints (uint8 status, uint64 ids, int16)", msg: &HelloOK{}, body: "96 cc00 cf000000000000002a cf0000018bcfe5687b d1001e ce00001000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad", want: &HelloOK{SessionID: 42, ServerTimeMs: 1700000000123, HBInterval: 30, MaxFrame: 4096, ServerMAC: Key(vecServerMAC)}},
	{name: "hello_ok/bytes after the array", msg: &HelloOK{}, body: "96 00 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad c0", code: BadRequest, why: "bytes after the body array"},
	{name: "hello_ok/array claims one more element than remains", msg: &HelloOK{}, body: "97 00 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad", code: BadRequest, why: "truncated"},
	{name: "hello_ok/array32 header claims 4 GiB elements", msg: &HelloOK{}, body: "ddffffffff 00 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad", code: BadRequest, why: "truncated"},
	{name: "hello_ok/trailing element nested 9 levels", msg: &HelloOK{}, body: "97 00 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "hello_ok/trailing element nested exactly 8 levels", msg: &HelloOK{}, body: "97 00 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad 91919191919190", want: &HelloOK{SessionID: 42, ServerTimeMs: 1700000000123, HBInterval: 30, MaxFrame: 4096, ServerMAC: Key(vecServerMAC)}},
	{name: "hello_ok/extra trailing elements (str, map, ext)", msg: &HelloOK{}, body: "99 00 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad a6667574757265 81a16b9201c0 d40107", want: &HelloOK{SessionID: 42, ServerTimeMs: 1700000000123, HBInterval: 30, MaxFrame: 4096, ServerMAC: Key(vecServerMAC)}},
	{name: "hello_ok/not an array", msg: &HelloOK{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "hello_ok/missing server_mac", msg: &HelloOK{}, body: "95 00 2a cf0000018bcfe5687b 1e cd1000", code: BadRequest, why: "missing"},
	{name: "hello_ok/max_frame wrong type", msg: &HelloOK{}, body: "96 00 2a cf0000018bcfe5687b 1e a434303936 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad", code: BadRequest, why: "max_frame: not an integer"},
	{name: "hello_ok/server_mac 31 bytes", msg: &HelloOK{}, body: "96 00 2a cf0000018bcfe5687b 1e cd1000 c41f1b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451", code: BadRequest, why: "server_mac: wrong length"},
	{name: "hello_ok/server_mac 33 bytes", msg: &HelloOK{}, body: "96 00 2a cf0000018bcfe5687b 1e cd1000 c4211b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad00", code: BadRequest, why: "server_mac: too long"},
	{name: "hello_ok/status 256", msg: &HelloOK{}, body: "96 cd0100 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad", code: BadRequest, why: "status: out of range"},
	{name: "hello_ok/server_mac bin32 claims 4 GiB", msg: &HelloOK{}, body: "96 00 2a cf0000018bcfe5687b 1e cd1000 c6ffffffff1b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad", code: BadRequest, why: "truncated"},
	{name: "hello_ok/refused UNAUTHENTICATED", msg: &HelloOK{}, body: "92 02 a7626164206d6163", err: &Error{Code: Unauthenticated, Message: "bad mac"}, code: Unauthenticated},
	{name: "hello_ok/refused UNAVAILABLE with retry_after_ms", msg: &HelloOK{}, body: "93 07 a466756c6c cd1388", err: &Error{Code: Unavailable, Message: "full", RetryAfterMs: 5000}, code: Unavailable},
	{name: "hello_ok/refused CONFLICT duplicate device, extra element", msg: &HelloOK{}, body: "94 05 b06475706c696361746520646576696365 ce000927c0 a3657874", err: &Error{Code: Conflict, Message: "duplicate device", RetryAfterMs: 600000}, code: Conflict},
	{name: "hello_ok/EXPIRED with challenge is a *ClockChallenge", msg: &HelloOK{}, body: "94 0c a9636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f", err: &ClockChallenge{Message: "clock off", ServerTimeMs: 1700000000123, Challenge: [NonceSize]byte(seqBytes(0x40, 16))}, code: Expired},
	{name: "hello_ok/refusal message 129 bytes", msg: &HelloOK{}, body: "92 03 d981 78*129", code: BadRequest, why: "message: too long"},
	{name: "hello_ok/refusal message wrong type", msg: &HelloOK{}, body: "92 03 03", code: BadRequest, why: "message: not a string"},

	// ClockChallenge, HELLO refused EXPIRED (spec §3.2)
	{name: "clock_challenge/canonical", msg: &ClockChallenge{}, body: "94 0c a9636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f", want: &ClockChallenge{Message: "clock off", ServerTimeMs: 1700000000123, Challenge: [NonceSize]byte(seqBytes(0x40, 16))}, canon: true},
	{name: "clock_challenge/non-shortest ints", msg: &ClockChallenge{}, body: "94 d00c d909636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f", want: &ClockChallenge{Message: "clock off", ServerTimeMs: 1700000000123, Challenge: [NonceSize]byte(seqBytes(0x40, 16))}},
	{name: "clock_challenge/nil message", msg: &ClockChallenge{}, body: "94 0c c0 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f", want: &ClockChallenge{ServerTimeMs: 1700000000123, Challenge: [NonceSize]byte(seqBytes(0x40, 16))}},
	{name: "clock_challenge/bytes after the array", msg: &ClockChallenge{}, body: "94 0c a9636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f c0", code: BadRequest, why: "bytes after the body array"},
	{name: "clock_challenge/array claims one more element than remains", msg: &ClockChallenge{}, body: "95 0c a9636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "truncated"},
	{name: "clock_challenge/array32 header claims 4 GiB elements", msg: &ClockChallenge{}, body: "ddffffffff 0c a9636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "truncated"},
	{name: "clock_challenge/trailing element nested 9 levels", msg: &ClockChallenge{}, body: "95 0c a9636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "clock_challenge/trailing element nested exactly 8 levels", msg: &ClockChallenge{}, body: "95 0c a9636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f 91919191919190", want: &ClockChallenge{Message: "clock off", ServerTimeMs: 1700000000123, Challenge: [NonceSize]byte(seqBytes(0x40, 16))}},
	{name: "clock_challenge/extra trailing elements (str, map, ext)", msg: &ClockChallenge{}, body: "97 0c a9636c6f636b206f6666 cf0000018bcfe5687b c410404142434445464748494a4b4c4d4e4f a6667574757265 81a16b9201c0 d40107", want: &ClockChallenge{Message: "clock off", ServerTimeMs: 1700000000123, Challenge: [NonceSize]byte(seqBytes(0x40, 16))}},
	{name: "clock_challenge/not an array", msg: &ClockChallenge{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "clock_challenge/without challenge is a plain EXPIRED refusal", msg: &ClockChallenge{}, body: "92 0c a36f6c64", err: &Error{Code: Expired, Message: "old"}, code: Expired},
	{name: "clock_challenge/challenge wrong type", msg: &ClockChallenge{}, body: "94 0c a9636c6f636b206f6666 cf0000018bcfe5687b b030313233343536373839616263646566", code: BadRequest, why: "challenge: not binary"},
	{name: "clock_challenge/challenge 17 bytes", msg: &ClockChallenge{}, body: "94 0c a9636c6f636b206f6666 cf0000018bcfe5687b c411404142434445464748494a4b4c4d4e4f50", code: BadRequest, why: "challenge: too long"},
	{name: "clock_challenge/server_time_ms wrong type", msg: &ClockChallenge{}, body: "94 0c a9636c6f636b206f6666 c3 c410404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "server_time_ms: not an integer"},
	{name: "clock_challenge/HELLO_OK is not a challenge", msg: &ClockChallenge{}, body: "96 00 2a cf0000018bcfe5687b 1e cd1000 c4201b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad", code: BadRequest, why: "not a clock challenge"},
	{name: "clock_challenge/challenge bin8 claims 16, 4 remain", msg: &ClockChallenge{}, body: "94 0c a9636c6f636b206f6666 cf0000018bcfe5687b c41040414243", code: BadRequest, why: "truncated"},

	// HEARTBEAT 0x02 (spec §4)
	{name: "heartbeat/spec §10 body [0]", msg: &Heartbeat{}, body: "91 00", want: &Heartbeat{}, canon: true},
	{name: "heartbeat/with status", msg: &Heartbeat{}, body: "92 07 85a362617457a474656d70cb4035800000000000a36e6574a477696669a26f6bc3a3743332ca3fc00000", want: &Heartbeat{GroupVersion: 7, Status: unhex("85a362617457a474656d70cb4035800000000000a36e6574a477696669a26f6bc3a3743332ca3fc00000")}, canon: true},
	{name: "heartbeat/status nil", msg: &Heartbeat{}, body: "92 07 c0", want: &Heartbeat{GroupVersion: 7}},
	{name: "heartbeat/status empty map", msg: &Heartbeat{}, body: "92 07 80", want: &Heartbeat{GroupVersion: 7, Status: []byte{0x80}}},
	{name: "heartbeat/non-shortest group_version (uint64, array16)", msg: &Heartbeat{}, body: "dc0001 cf0000000000000000", want: &Heartbeat{}},
	{name: "heartbeat/group_version as positive int8", msg: &Heartbeat{}, body: "91 d000", want: &Heartbeat{}},
	{name: "heartbeat/bytes after the array", msg: &Heartbeat{}, body: "92 00 c0 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "heartbeat/array claims one more element than remains", msg: &Heartbeat{}, body: "93 00 c0", code: BadRequest, why: "truncated"},
	{name: "heartbeat/array32 header claims 4 GiB elements", msg: &Heartbeat{}, body: "ddffffffff 00 c0", code: BadRequest, why: "truncated"},
	{name: "heartbeat/trailing element nested 9 levels", msg: &Heartbeat{}, body: "93 00 c0 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "heartbeat/trailing element nested exactly 8 levels", msg: &Heartbeat{}, body: "93 00 c0 91919191919190", want: &Heartbeat{}},
	{name: "heartbeat/extra trailing elements (str, map, ext)", msg: &Heartbeat{}, body: "95 00 c0 a6667574757265 81a16b9201c0 d40107", want: &Heartbeat{}},
	{name: "heartbeat/not an array", msg: &Heartbeat{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "heartbeat/missing group_version", msg: &Heartbeat{}, body: "90", code: BadRequest, why: "missing group_version"},
	{name: "heartbeat/group_version wrong type", msg: &Heartbeat{}, body: "91 a130", code: BadRequest, why: "group_version: not an integer"},
	{name: "heartbeat/group_version negative fixint", msg: &Heartbeat{}, body: "91 ff", code: BadRequest, why: "group_version: negative"},
	{name: "heartbeat/status 17 entries", msg: &Heartbeat{}, body: "92 00 de0011a26b3000a26b3101a26b3202a26b3303a26b3404a26b3505a26b3606a26b3707a26b3808a26b3909a36b31300aa36b31310ba36b31320ca36b31330da36b31340ea36b31350fa36b313610", code: BadRequest, why: "status: too many entries"},
	{name: "heartbeat/status key 33 bytes", msg: &Heartbeat{}, body: "92 00 81d921 78*33 01", code: BadRequest, why: "status key: too long"},
	{name: "heartbeat/status str value 65 bytes", msg: &Heartbeat{}, body: "92 00 81a16bd941 78*65", code: BadRequest, why: "status value: too long"},
	{name: "heartbeat/status key not a string", msg: &Heartbeat{}, body: "92 00 810101", code: BadRequest, why: "status key: not a string"},
	{name: "heartbeat/status value nested map", msg: &Heartbeat{}, body: "92 00 81a16b81a16b80", code: BadRequest, why: "status value: wrong type"},
	{name: "heartbeat/status map16 claims 16 entries in a tiny body", msg: &Heartbeat{}, body: "92 00 de0010a16b", code: BadRequest, why: "truncated"},
	{name: "heartbeat/status value str32 claims 4 GiB", msg: &Heartbeat{}, body: "92 00 81a16bdbffffffff", code: BadRequest, why: "truncated"},

	// HEARTBEAT_ACK 0x82
	{name: "heartbeat_ack/spec §10 body", msg: &HeartbeatAck{}, body: "94 00 cf0000018bcfe56be8 00 1e", want: &HeartbeatAck{ServerTimeMs: 1700000001000, HBInterval: 30}, canon: true},
	{name: "heartbeat_ack/both flags", msg: &HeartbeatAck{}, body: "94 00 cf0000018bcfe56be8 03 3c", want: &HeartbeatAck{ServerTimeMs: 1700000001000, Flags: FlagGroupStale | FlagUpgradePending, HBInterval: 60}, canon: true},
	{name: "heartbeat_ack/non-shortest ints", msg: &HeartbeatAck{}, body: "94 cd0000 cf0000018bcfe56be8 d000 cf000000000000001e", want: &HeartbeatAck{ServerTimeMs: 1700000001000, HBInterval: 30}},
	{name: "heartbeat_ack/bytes after the array", msg: &HeartbeatAck{}, body: "94 00 cf0000018bcfe56be8 00 1e c0", code: BadRequest, why: "bytes after the body array"},
	{name: "heartbeat_ack/array claims one more element than remains", msg: &HeartbeatAck{}, body: "95 00 cf0000018bcfe56be8 00 1e", code: BadRequest, why: "truncated"},
	{name: "heartbeat_ack/array32 header claims 4 GiB elements", msg: &HeartbeatAck{}, body: "ddffffffff 00 cf0000018bcfe56be8 00 1e", code: BadRequest, why: "truncated"},
	{name: "heartbeat_ack/trailing element nested 9 levels", msg: &HeartbeatAck{}, body: "95 00 cf0000018bcfe56be8 00 1e 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "heartbeat_ack/trailing element nested exactly 8 levels", msg: &HeartbeatAck{}, body: "95 00 cf0000018bcfe56be8 00 1e 91919191919190", want: &HeartbeatAck{ServerTimeMs: 1700000001000, HBInterval: 30}},
	{name: "heartbeat_ack/extra trailing elements (str, map, ext)", msg: &HeartbeatAck{}, body: "97 00 cf0000018bcfe56be8 00 1e a6667574757265 81a16b9201c0 d40107", want: &HeartbeatAck{ServerTimeMs: 1700000001000, HBInterval: 30}},
	{name: "heartbeat_ack/not an array", msg: &HeartbeatAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "heartbeat_ack/missing hb_interval_s", msg: &HeartbeatAck{}, body: "93 00 cf0000018bcfe56be8 00", code: BadRequest, why: "missing"},
	{name: "heartbeat_ack/flags wrong type", msg: &HeartbeatAck{}, body: "94 00 cf0000018bcfe56be8 c2 1e", code: BadRequest, why: "flags: not an integer"},
	{name: "heartbeat_ack/server_time_ms uint64 truncated", msg: &HeartbeatAck{}, body: "94 00 cf0000018b", code: BadRequest, why: "truncated"},
	{name: "heartbeat_ack/refused RATE_LIMITED", msg: &HeartbeatAck{}, body: "93 06 a9736c6f7720646f776e cd03e8", err: &Error{Code: RateLimited, Message: "slow down", RetryAfterMs: 1000}, code: RateLimited},

	// BYE 0x0C (spec §8)
	{name: "bye/without reason", msg: &Bye{}, body: "90", want: &Bye{}, canon: true},
	{name: "bye/with reason", msg: &Bye{}, body: "91 a67265626f6f74", want: &Bye{Reason: "reboot"}, canon: true},
	{name: "bye/nil reason", msg: &Bye{}, body: "91 c0", want: &Bye{}},
	{name: "bye/non-shortest (array16, str8)", msg: &Bye{}, body: "dc0001 d9067265626f6f74", want: &Bye{Reason: "reboot"}},
	{name: "bye/bytes after the array", msg: &Bye{}, body: "91 a67265626f6f74 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "bye/array claims one more element than remains", msg: &Bye{}, body: "92 a67265626f6f74", code: BadRequest, why: "truncated"},
	{name: "bye/array32 header claims 4 GiB elements", msg: &Bye{}, body: "ddffffffff a67265626f6f74", code: BadRequest, why: "truncated"},
	{name: "bye/trailing element nested 9 levels", msg: &Bye{}, body: "92 a67265626f6f74 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "bye/trailing element nested exactly 8 levels", msg: &Bye{}, body: "92 a67265626f6f74 91919191919190", want: &Bye{Reason: "reboot"}},
	{name: "bye/extra trailing elements (str, map, ext)", msg: &Bye{}, body: "94 a67265626f6f74 a6667574757265 81a16b9201c0 d40107", want: &Bye{Reason: "reboot"}},
	{name: "bye/not an array", msg: &Bye{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "bye/reason wrong type", msg: &Bye{}, body: "91 01", code: BadRequest, why: "reason: not a string"},
	{name: "bye/reason 129 bytes", msg: &Bye{}, body: "91 d981 78*129", code: BadRequest, why: "reason: too long"},
	{name: "bye/reason str16 claims 300 bytes", msg: &Bye{}, body: "91 da012c7265626f6f74", code: BadRequest, why: "truncated"},

	// Ack: BYE_ACK 0x8C, UPGRADE_REPORT_ACK 0x85, push acks 0xC1/0xC2
	{name: "bye_ack/canonical [0]", msg: &Ack{AckType: 0x8C}, body: "91 00", want: &Ack{AckType: 0x8C}, canon: true},
	{name: "upgrade_report_ack/canonical [0]", msg: &Ack{AckType: 0x85}, body: "91 00", want: &Ack{AckType: 0x85}, canon: true},
	{name: "upgrade_notice_ack/canonical [0]", msg: &Ack{AckType: 0xC1}, body: "91 00", want: &Ack{AckType: 0xC1}, canon: true},
	{name: "group_sync_ack/canonical [0]", msg: &Ack{AckType: 0xC2}, body: "91 00", want: &Ack{AckType: 0xC2}, canon: true},
	{name: "ack/non-shortest status (uint8, int64)", msg: &Ack{AckType: 0x8C}, body: "91 cc00", want: &Ack{AckType: 0x8C}},
	{name: "ack/status as int64", msg: &Ack{AckType: 0x8C}, body: "91 d30000000000000000", want: &Ack{AckType: 0x8C}},
	{name: "ack/bytes after the array", msg: &Ack{AckType: 0x8C}, body: "91 00 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "ack/array claims one more element than remains", msg: &Ack{AckType: 0x8C}, body: "92 00", code: BadRequest, why: "truncated"},
	{name: "ack/array32 header claims 4 GiB elements", msg: &Ack{AckType: 0x8C}, body: "ddffffffff 00", code: BadRequest, why: "truncated"},
	{name: "ack/trailing element nested 9 levels", msg: &Ack{AckType: 0x8C}, body: "92 00 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "ack/trailing element nested exactly 8 levels", msg: &Ack{AckType: 0x8C}, body: "92 00 91919191919190", want: &Ack{AckType: 0x8C}},
	{name: "ack/extra trailing elements (str, map, ext)", msg: &Ack{AckType: 0x8C}, body: "94 00 a6667574757265 81a16b9201c0 d40107", want: &Ack{AckType: 0x8C}},
	{name: "ack/not an array", msg: &Ack{AckType: 0x8C}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "ack/missing status", msg: &Ack{AckType: 0x8C}, body: "90", code: BadRequest, why: "missing status"},
	{name: "ack/status wrong type", msg: &Ack{AckType: 0x8C}, body: "91 a130", code: BadRequest, why: "status: not an integer"},
	{name: "ack/status 256", msg: &Ack{AckType: 0x8C}, body: "91 cd0100", code: BadRequest, why: "status: out of range"},
	{name: "ack/refused NOT_FOUND", msg: &Ack{AckType: 0x8C}, body: "92 04 af6e6f20737563682072656c65617365", err: &Error{Code: NotFound, Message: "no such release"}, code: NotFound},
	{name: "ack/refusal with unknown third element", msg: &Ack{AckType: 0x8C}, body: "93 08 a46f6f7073 a3657874", err: &Error{Code: Internal, Message: "oops"}, code: Internal},

	// Refusal: [code, message, retry_after_ms?]
	{name: "refusal/canonical", msg: &Refusal{RespType: 0x83}, body: "92 05 ab696e2070726f6772657373", want: &Refusal{RespType: 0x83, Err: &Error{Code: Conflict, Message: "in progress"}}, canon: true},
	{name: "refusal/with retry_after_ms", msg: &Refusal{RespType: 0x83}, body: "93 07 a466756c6c cd05dc", want: &Refusal{RespType: 0x83, Err: &Error{Code: Unavailable, Message: "full", RetryAfterMs: 1500}}, canon: true},
	{name: "refusal/non-shortest ints", msg: &Refusal{RespType: 0x83}, body: "92 cf0000000000000005 d90b696e2070726f6772657373", want: &Refusal{RespType: 0x83, Err: &Error{Code: Conflict, Message: "in progress"}}},
	{name: "refusal/nil retry_after_ms", msg: &Refusal{RespType: 0x83}, body: "93 05 ab696e2070726f6772657373 c0", want: &Refusal{RespType: 0x83, Err: &Error{Code: Conflict, Message: "in progress"}}},
	{name: "refusal/bytes after the array", msg: &Refusal{RespType: 0x83}, body: "93 05 ab696e2070726f6772657373 c0 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "refusal/array claims one more element than remains", msg: &Refusal{RespType: 0x83}, body: "94 05 ab696e2070726f6772657373 c0", code: BadRequest, why: "truncated"},
	{name: "refusal/array32 header claims 4 GiB elements", msg: &Refusal{RespType: 0x83}, body: "ddffffffff 05 ab696e2070726f6772657373 c0", code: BadRequest, why: "truncated"},
	{name: "refusal/trailing element nested 9 levels", msg: &Refusal{RespType: 0x83}, body: "94 05 ab696e2070726f6772657373 c0 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "refusal/trailing element nested exactly 8 levels", msg: &Refusal{RespType: 0x83}, body: "94 05 ab696e2070726f6772657373 c0 91919191919190", want: &Refusal{RespType: 0x83, Err: &Error{Code: Conflict, Message: "in progress"}}},
	{name: "refusal/extra trailing elements (str, map, ext)", msg: &Refusal{RespType: 0x83}, body: "96 05 ab696e2070726f6772657373 c0 a6667574757265 81a16b9201c0 d40107", want: &Refusal{RespType: 0x83, Err: &Error{Code: Conflict, Message: "in progress"}}},
	{name: "refusal/not an array", msg: &Refusal{RespType: 0x83}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "refusal/missing status", msg: &Refusal{RespType: 0x83}, body: "90", code: BadRequest, why: "missing status"},
	{name: "refusal/message wrong type", msg: &Refusal{RespType: 0x83}, body: "92 05 05", code: BadRequest, why: "message: not a string"},
	{name: "refusal/message 129 bytes", msg: &Refusal{RespType: 0x83}, body: "92 05 d981 78*129", code: BadRequest, why: "message: too long"},
	{name: "refusal/status OK", msg: &Refusal{RespType: 0x83}, body: "91 00", code: BadRequest, why: "OK in a refusal"},
	{name: "refusal/retry_after_ms negative", msg: &Refusal{RespType: 0x83}, body: "93 07 a466756c6c ff", code: BadRequest, why: "retry_after_ms: negative"},

	// GOAWAY 0x44 (spec §8)
	{name: "goaway/replaced", msg: &Goaway{}, body: "92 05 a87265706c61636564", want: &Goaway{Code: Conflict, Message: "replaced"}, canon: true},
	{name: "goaway/shutdown with retry_after_ms", msg: &Goaway{}, body: "93 07 a873687574646f776e cd7530", want: &Goaway{Code: Unavailable, Message: "shutdown", RetryAfterMs: 30000}, canon: true},
	{name: "goaway/non-shortest ints", msg: &Goaway{}, body: "93 ce00000005 d9087265706c61636564 c0", want: &Goaway{Code: Conflict, Message: "replaced"}},
	{name: "goaway/bytes after the array", msg: &Goaway{}, body: "93 05 a87265706c61636564 c0 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "goaway/array claims one more element than remains", msg: &Goaway{}, body: "94 05 a87265706c61636564 c0", code: BadRequest, why: "truncated"},
	{name: "goaway/array32 header claims 4 GiB elements", msg: &Goaway{}, body: "ddffffffff 05 a87265706c61636564 c0", code: BadRequest, why: "truncated"},
	{name: "goaway/trailing element nested 9 levels", msg: &Goaway{}, body: "94 05 a87265706c61636564 c0 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "goaway/trailing element nested exactly 8 levels", msg: &Goaway{}, body: "94 05 a87265706c61636564 c0 91919191919190", want: &Goaway{Code: Conflict, Message: "replaced"}},
	{name: "goaway/extra trailing elements (str, map, ext)", msg: &Goaway{}, body: "96 05 a87265706c61636564 c0 a6667574757265 81a16b9201c0 d40107", want: &Goaway{Code: Conflict, Message: "replaced"}},
	{name: "goaway/not an array", msg: &Goaway{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "goaway/missing message", msg: &Goaway{}, body: "91 05", code: BadRequest, why: "missing"},
	{name: "goaway/retry_after_ms wrong type", msg: &Goaway{}, body: "93 07 a873687574646f776e a4736f6f6e", code: BadRequest, why: "retry_after_ms: not an integer"},
	{name: "goaway/code 256", msg: &Goaway{}, body: "92 cd0100 a178", code: BadRequest, why: "code: out of range"},
	{name: "goaway/message 129 bytes", msg: &Goaway{}, body: "92 05 d981 78*129", code: BadRequest, why: "message: too long"},

	// ERROR 0xFF (spec §2)
	{name: "error/bad version", msg: &ErrorFrame{}, body: "92 09 ac737570706f727465643a2031", want: &ErrorFrame{Code: BadVersion, Message: "supported: 1"}, canon: true},
	{name: "error/non-shortest ints", msg: &ErrorFrame{}, body: "92 cf0000000000000009 da000c737570706f727465643a2031", want: &ErrorFrame{Code: BadVersion, Message: "supported: 1"}},
	{name: "error/unknown third element of any type", msg: &ErrorFrame{}, body: "93 09 ac737570706f727465643a2031 91a178", want: &ErrorFrame{Code: BadVersion, Message: "supported: 1"}},
	{name: "error/bytes after the array", msg: &ErrorFrame{}, body: "92 09 ac737570706f727465643a2031 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "error/array claims one more element than remains", msg: &ErrorFrame{}, body: "93 09 ac737570706f727465643a2031", code: BadRequest, why: "truncated"},
	{name: "error/array32 header claims 4 GiB elements", msg: &ErrorFrame{}, body: "ddffffffff 09 ac737570706f727465643a2031", code: BadRequest, why: "truncated"},
	{name: "error/trailing element nested 9 levels", msg: &ErrorFrame{}, body: "93 09 ac737570706f727465643a2031 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "error/trailing element nested exactly 8 levels", msg: &ErrorFrame{}, body: "93 09 ac737570706f727465643a2031 91919191919190", want: &ErrorFrame{Code: BadVersion, Message: "supported: 1"}},
	{name: "error/extra trailing elements (str, map, ext)", msg: &ErrorFrame{}, body: "95 09 ac737570706f727465643a2031 a6667574757265 81a16b9201c0 d40107", want: &ErrorFrame{Code: BadVersion, Message: "supported: 1"}},
	{name: "error/not an array", msg: &ErrorFrame{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "error/missing message", msg: &ErrorFrame{}, body: "91 09", code: BadRequest, why: "missing"},
	{name: "error/code wrong type", msg: &ErrorFrame{}, body: "92 a139 a178", code: BadRequest, why: "code: not an integer"},
	{name: "error/message 129 bytes", msg: &ErrorFrame{}, body: "92 09 d981 78*129", code: BadRequest, why: "message: too long"},

	// CONTROL 0x03 (spec §5)
	{name: "control/service and op only", msg: &Control{}, body: "92 a473736864 03", want: &Control{ServiceID: "sshd", Op: OpRestart}, canon: true},
	{name: "control/all fields", msg: &Control{}, body: "95 a66261636b7570 01 92a62d2d66756c6ca22d76 cdea60 2a", want: &Control{ServiceID: "backup", Op: OpStart, Args: []string{"--full", "-v"}, TimeoutMs: 60000, RequestID: 42, HasRequestID: true}, canon: true},
	{name: "control/request_id without args and timeout", msg: &Control{}, body: "95 a473736864 04 90 c0 07", want: &Control{ServiceID: "sshd", Op: OpStatus, RequestID: 7, HasRequestID: true}, canon: true},
	{name: "control/request_id 0", msg: &Control{}, body: "95 a473736864 02 90 c0 00", want: &Control{ServiceID: "sshd", Op: OpStop, HasRequestID: true}, canon: true},
	{name: "control/timeout only", msg: &Control{}, body: "94 a473736864 02 90 cd03e8", want: &Control{ServiceID: "sshd", Op: OpStop, TimeoutMs: 1000}, canon: true},
	{name: "control/non-shortest ints and headers", msg: &Control{}, body: "dc0005 d9066261636b7570 cf0000000000000001 dc0002d9062d2d66756c6ca22d76 cf000000000000ea60 d3000000000000002a", want: &Control{ServiceID: "backup", Op: OpStart, Args: []string{"--full", "-v"}, TimeoutMs: 60000, RequestID: 42, HasRequestID: true}},
	{name: "control/all optional elements nil", msg: &Control{}, body: "95 a473736864 03 c0 c0 c0", want: &Control{ServiceID: "sshd", Op: OpRestart}},
	{name: "control/args empty array", msg: &Control{}, body: "93 a473736864 03 90", want: &Control{ServiceID: "sshd", Op: OpRestart}},
	{name: "control/8 args of 256 bytes", msg: &Control{}, body: "93 a473736864 03 98da0100 78*256 da0100 78*256 da0100 78*256 da0100 78*256 da0100 78*256 da0100 78*256 da0100 78*256 da0100 78*256", want: &Control{ServiceID: "sshd", Op: OpRestart, Args: []string{strings.Repeat("x", 256), strings.Repeat("x", 256), strings.Repeat("x", 256), strings.Repeat("x", 256), strings.Repeat("x", 256), strings.Repeat("x", 256), strings.Repeat("x", 256), strings.Repeat("x", 256)}}},
	{name: "control/bytes after the array", msg: &Control{}, body: "95 a473736864 03 90 c0 c0 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "control/array claims one more element than remains", msg: &Control{}, body: "96 a473736864 03 90 c0 c0", code: BadRequest, why: "truncated"},
	{name: "control/array32 header claims 4 GiB elements", msg: &Control{}, body: "ddffffffff a473736864 03 90 c0 c0", code: BadRequest, why: "truncated"},
	{name: "control/trailing element nested 9 levels", msg: &Control{}, body: "96 a473736864 03 90 c0 c0 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "control/trailing element nested exactly 8 levels", msg: &Control{}, body: "96 a473736864 03 90 c0 c0 91919191919190", want: &Control{ServiceID: "sshd", Op: OpRestart}},
	{name: "control/extra trailing elements (str, map, ext)", msg: &Control{}, body: "98 a473736864 03 90 c0 c0 a6667574757265 81a16b9201c0 d40107", want: &Control{ServiceID: "sshd", Op: OpRestart}},
	{name: "control/not an array", msg: &Control{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "control/missing op", msg: &Control{}, body: "91 a473736864", code: BadRequest, why: "missing service_id and op"},
	{name: "control/op wrong type", msg: &Control{}, body: "92 a473736864 a133", code: BadRequest, why: "op: not an integer"},
	{name: "control/op 0", msg: &Control{}, body: "92 a473736864 00", code: BadRequest, why: "op: out of range"},
	{name: "control/op 5", msg: &Control{}, body: "92 a473736864 05", code: BadRequest, why: "op: out of range"},
	{name: "control/op uint64 2^32+3", msg: &Control{}, body: "92 a473736864 cf0000000100000003", code: BadRequest, why: "op: out of range"},
	{name: "control/service_id 65 bytes", msg: &Control{}, body: "92 d941 78*65 03", code: BadRequest, why: "service_id: too long"},
	{name: "control/service_id wrong type", msg: &Control{}, body: "92 c40473736864 03", code: BadRequest, why: "service_id: not a string"},
	{name: "control/9 args", msg: &Control{}, body: "93 a473736864 01 99a161a161a161a161a161a161a161a161a161", code: BadRequest, why: "args: too many entries"},
	{name: "control/arg 257 bytes", msg: &Control{}, body: "93 a473736864 01 91da0101 78*257", code: BadRequest, why: "arg: too long"},
	{name: "control/arg not a string", msg: &Control{}, body: "93 a473736864 01 9101", code: BadRequest, why: "arg: not a string"},
	{name: "control/args not an array", msg: &Control{}, body: "93 a473736864 01 a22d76", code: BadRequest, why: "args: not an array"},
	{name: "control/args nested arrays", msg: &Control{}, body: "93 a473736864 01 91919191919191919190", code: BadRequest, why: "arg: not a string"},
	{name: "control/args array32 claims 4 GiB", msg: &Control{}, body: "93 a473736864 01 ddffffffff", code: BadRequest, why: "truncated"},
	{name: "control/timeout_ms wrong type", msg: &Control{}, body: "94 a473736864 01 90 a3363073", code: BadRequest, why: "timeout_ms: not an integer"},
	{name: "control/request_id negative", msg: &Control{}, body: "95 a473736864 01 90 c0 ff", code: BadRequest, why: "request_id: negative"},
	{name: "control/arg str8 claims 100 bytes, 2 remain", msg: &Control{}, body: "93 a473736864 01 91d9642d76", code: BadRequest, why: "truncated"},

	// CONTROL_ACK 0x83
	{name: "control_ack/running", msg: &ControlAck{}, body: "96 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 a0", want: &ControlAck{State: StateRunning, PID: 1234, SinceMs: 1700000000000}, canon: true},
	{name: "control_ack/exited with output and exit code -1", msg: &ControlAck{}, body: "96 00 a6657869746564 00 ff cf0000018bcfe56800 a5646f6e650a", want: &ControlAck{State: StateExited, ExitCode: -1, SinceMs: 1700000000000, Output: "done\n"}, canon: true},
	{name: "control_ack/failed with exit code -200 and 1024 bytes of output", msg: &ControlAck{}, body: "96 00 a66661696c6564 00 d1ff38 05 da0400 78*1024", want: &ControlAck{State: StateFailed, ExitCode: -200, SinceMs: 5, Output: strings.Repeat("x", 1024)}, canon: true},
	{name: "control_ack/stopped, exit code 255", msg: &ControlAck{}, body: "96 00 a773746f70706564 00 ccff 05 a0", want: &ControlAck{State: StateStopped, ExitCode: 255, SinceMs: 5}, canon: true},
	{name: "control_ack/non-shortest ints (uint64 pid, positive int8 exit code)", msg: &ControlAck{}, body: "96 cf0000000000000000 d90772756e6e696e67 cf00000000000004d2 d000 cf0000018bcfe56800 d900", want: &ControlAck{State: StateRunning, PID: 1234, SinceMs: 1700000000000}},
	{name: "control_ack/bytes after the array", msg: &ControlAck{}, body: "96 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 a0 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "control_ack/array claims one more element than remains", msg: &ControlAck{}, body: "97 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 a0", code: BadRequest, why: "truncated"},
	{name: "control_ack/array32 header claims 4 GiB elements", msg: &ControlAck{}, body: "ddffffffff 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 a0", code: BadRequest, why: "truncated"},
	{name: "control_ack/trailing element nested 9 levels", msg: &ControlAck{}, body: "97 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 a0 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "control_ack/trailing element nested exactly 8 levels", msg: &ControlAck{}, body: "97 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 a0 91919191919190", want: &ControlAck{State: StateRunning, PID: 1234, SinceMs: 1700000000000}},
	{name: "control_ack/extra trailing elements (str, map, ext)", msg: &ControlAck{}, body: "99 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 a0 a6667574757265 81a16b9201c0 d40107", want: &ControlAck{State: StateRunning, PID: 1234, SinceMs: 1700000000000}},
	{name: "control_ack/not an array", msg: &ControlAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "control_ack/missing output", msg: &ControlAck{}, body: "95 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800", code: BadRequest, why: "missing"},
	{name: "control_ack/pid wrong type", msg: &ControlAck{}, body: "96 00 a772756e6e696e67 a431323334 00 cf0000018bcfe56800 a0", code: BadRequest, why: "pid: not an integer"},
	{name: "control_ack/exit_code uint64 above int64", msg: &ControlAck{}, body: "96 00 a772756e6e696e67 cd04d2 cf8000000000000000 cf0000018bcfe56800 a0", code: BadRequest, why: "exit_code: out of range"},
	{name: "control_ack/state unknown", msg: &ControlAck{}, body: "96 00 a6706175736564 cd04d2 00 cf0000018bcfe56800 a0", code: BadRequest, why: "state: unknown"},
	{name: "control_ack/state too long", msg: &ControlAck{}, body: "96 00 a872756e6e696e6721 cd04d2 00 cf0000018bcfe56800 a0", code: BadRequest, why: "state: too long"},
	{name: "control_ack/output 1025 bytes", msg: &ControlAck{}, body: "96 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 da0401 78*1025", code: BadRequest, why: "output: too long"},
	{name: "control_ack/output str16 claims 1024 bytes, 3 remain", msg: &ControlAck{}, body: "96 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 da0400616263", code: BadRequest, why: "truncated"},
	{name: "control_ack/TIMEOUT with state fills the ack and returns *ControlTimeout", msg: &ControlAck{}, body: "96 0d a974696d6564206f7574 a772756e6e696e67 63 00 cf0000018bcfe56800", want: &ControlAck{State: StateRunning, PID: 99, SinceMs: 1700000000000}, err: &ControlTimeout{Message: "timed out", State: StateRunning, PID: 99, SinceMs: 1700000000000}, code: Timeout},
	{name: "control_ack/TIMEOUT without state is a plain refusal", msg: &ControlAck{}, body: "92 0d a974696d6564206f7574", err: &Error{Code: Timeout, Message: "timed out"}, code: Timeout},
	{name: "control_ack/TIMEOUT with part of the state", msg: &ControlAck{}, body: "94 0d a974696d6564206f7574 a772756e6e696e67 63", code: BadRequest, why: "missing timeout fields"},
	{name: "control_ack/TIMEOUT state unknown", msg: &ControlAck{}, body: "96 0d a974696d6564206f7574 a67a6f6d626965 63 00 cf0000018bcfe56800", code: BadRequest, why: "state: unknown"},
	{name: "control_ack/refused FORBIDDEN", msg: &ControlAck{}, body: "92 03 a361636c", err: &Error{Code: Forbidden, Message: "acl"}, code: Forbidden},

	// ControlTimeout, CONTROL_ACK refused TIMEOUT
	{name: "control_timeout/canonical", msg: &ControlTimeout{}, body: "96 0d a974696d6564206f7574 a772756e6e696e67 63 00 cf0000018bcfe56800", want: &ControlTimeout{Message: "timed out", State: StateRunning, PID: 99, SinceMs: 1700000000000}, canon: true},
	{name: "control_timeout/negative exit code", msg: &ControlTimeout{}, body: "96 0d a974696d6564206f7574 a6657869746564 00 f7 07", want: &ControlTimeout{Message: "timed out", State: StateExited, ExitCode: -9, SinceMs: 7}, canon: true},
	{name: "control_timeout/non-shortest ints, nil message", msg: &ControlTimeout{}, body: "96 cc0d c0 d90772756e6e696e67 ce00000063 d10000 cf0000018bcfe56800", want: &ControlTimeout{State: StateRunning, PID: 99, SinceMs: 1700000000000}},
	{name: "control_timeout/bytes after the array", msg: &ControlTimeout{}, body: "96 0d a974696d6564206f7574 a772756e6e696e67 63 00 cf0000018bcfe56800 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "control_timeout/array claims one more element than remains", msg: &ControlTimeout{}, body: "97 0d a974696d6564206f7574 a772756e6e696e67 63 00 cf0000018bcfe56800", code: BadRequest, why: "truncated"},
	{name: "control_timeout/array32 header claims 4 GiB elements", msg: &ControlTimeout{}, body: "ddffffffff 0d a974696d6564206f7574 a772756e6e696e67 63 00 cf0000018bcfe56800", code: BadRequest, why: "truncated"},
	{name: "control_timeout/trailing element nested 9 levels", msg: &ControlTimeout{}, body: "97 0d a974696d6564206f7574 a772756e6e696e67 63 00 cf0000018bcfe56800 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "control_timeout/trailing element nested exactly 8 levels", msg: &ControlTimeout{}, body: "97 0d a974696d6564206f7574 a772756e6e696e67 63 00 cf0000018bcfe56800 91919191919190", want: &ControlTimeout{Message: "timed out", State: StateRunning, PID: 99, SinceMs: 1700000000000}},
	{name: "control_timeout/extra trailing elements (str, map, ext)", msg: &ControlTimeout{}, body: "99 0d a974696d6564206f7574 a772756e6e696e67 63 00 cf0000018bcfe56800 a6667574757265 81a16b9201c0 d40107", want: &ControlTimeout{Message: "timed out", State: StateRunning, PID: 99, SinceMs: 1700000000000}},
	{name: "control_timeout/not an array", msg: &ControlTimeout{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "control_timeout/missing since_ms", msg: &ControlTimeout{}, body: "95 0d a974696d6564206f7574 a772756e6e696e67 63 00", code: BadRequest, why: "missing timeout fields"},
	{name: "control_timeout/pid wrong type", msg: &ControlTimeout{}, body: "96 0d a974696d6564206f7574 a772756e6e696e67 c2 00 cf0000018bcfe56800", code: BadRequest, why: "pid: not an integer"},
	{name: "control_timeout/message 129 bytes", msg: &ControlTimeout{}, body: "96 0d d981 78*129 a772756e6e696e67 63 00 cf0000018bcfe56800", code: BadRequest, why: "message: too long"},
	{name: "control_timeout/an OK ack is not a timeout", msg: &ControlTimeout{}, body: "96 00 a772756e6e696e67 cd04d2 00 cf0000018bcfe56800 a0", code: BadRequest, why: "not a control timeout"},
	{name: "control_timeout/another refusal is returned", msg: &ControlTimeout{}, body: "92 04 af6e6f20737563682073657276696365", err: &Error{Code: NotFound, Message: "no such service"}, code: NotFound},

	// UPGRADE_QUERY 0x04 (spec §6.1)
	{name: "upgrade_query/without launch", msg: &UpgradeQuery{}, body: "92 a7706f732d617070 a5312e322e33", want: &UpgradeQuery{AppID: "pos-app", Version: "1.2.3"}, canon: true},
	{name: "upgrade_query/launch", msg: &UpgradeQuery{}, body: "93 a7706f732d617070 a5312e322e33 c3", want: &UpgradeQuery{AppID: "pos-app", Version: "1.2.3", Launch: true}, canon: true},
	{name: "upgrade_query/launch false", msg: &UpgradeQuery{}, body: "93 a7706f732d617070 a5312e322e33 c2", want: &UpgradeQuery{AppID: "pos-app", Version: "1.2.3"}},
	{name: "upgrade_query/launch nil", msg: &UpgradeQuery{}, body: "93 a7706f732d617070 a5312e322e33 c0", want: &UpgradeQuery{AppID: "pos-app", Version: "1.2.3"}},
	{name: "upgrade_query/non-shortest (str8, array16)", msg: &UpgradeQuery{}, body: "dc0002 d907706f732d617070 d905312e322e33", want: &UpgradeQuery{AppID: "pos-app", Version: "1.2.3"}},
	{name: "upgrade_query/bytes after the array", msg: &UpgradeQuery{}, body: "93 a7706f732d617070 a5312e322e33 c0 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "upgrade_query/array claims one more element than remains", msg: &UpgradeQuery{}, body: "94 a7706f732d617070 a5312e322e33 c0", code: BadRequest, why: "truncated"},
	{name: "upgrade_query/array32 header claims 4 GiB elements", msg: &UpgradeQuery{}, body: "ddffffffff a7706f732d617070 a5312e322e33 c0", code: BadRequest, why: "truncated"},
	{name: "upgrade_query/trailing element nested 9 levels", msg: &UpgradeQuery{}, body: "94 a7706f732d617070 a5312e322e33 c0 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "upgrade_query/trailing element nested exactly 8 levels", msg: &UpgradeQuery{}, body: "94 a7706f732d617070 a5312e322e33 c0 91919191919190", want: &UpgradeQuery{AppID: "pos-app", Version: "1.2.3"}},
	{name: "upgrade_query/extra trailing elements (str, map, ext)", msg: &UpgradeQuery{}, body: "96 a7706f732d617070 a5312e322e33 c0 a6667574757265 81a16b9201c0 d40107", want: &UpgradeQuery{AppID: "pos-app", Version: "1.2.3"}},
	{name: "upgrade_query/not an array", msg: &UpgradeQuery{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "upgrade_query/missing version", msg: &UpgradeQuery{}, body: "91 a7706f732d617070", code: BadRequest, why: "missing"},
	{name: "upgrade_query/launch wrong type", msg: &UpgradeQuery{}, body: "93 a7706f732d617070 a5312e322e33 01", code: BadRequest, why: "launch: not a boolean"},
	{name: "upgrade_query/version wrong type", msg: &UpgradeQuery{}, body: "92 a7706f732d617070 01", code: BadRequest, why: "version: not a string"},
	{name: "upgrade_query/version 33 bytes", msg: &UpgradeQuery{}, body: "92 a7706f732d617070 d921 78*33", code: BadRequest, why: "version: too long"},
	{name: "upgrade_query/app_id 65 bytes", msg: &UpgradeQuery{}, body: "92 d941 78*65 a5312e322e33", code: BadRequest, why: "app_id: too long"},
	{name: "upgrade_query/app_id str32 claims 4 GiB", msg: &UpgradeQuery{}, body: "92 dbffffffff a5312e322e33", code: BadRequest, why: "truncated"},

	// UPGRADE_QUERY_ACK 0x84
	{name: "upgrade_query_ack/nothing", msg: &UpgradeQueryAck{}, body: "94 00 c0 c0 c0", want: &UpgradeQueryAck{}, canon: true},
	{name: "upgrade_query_ack/offer", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", want: &UpgradeQueryAck{Offer: &Offer{ReleaseID: "rel-9", Version: "2.0.0", URL: "https://dl.example/pos-2.0.0.bin", SHA256: [SHA256Size]byte(seqBytes(0xA0, 32)), Size: 1048576, Mandatory: true, Notes: "bug fixes", ReleaseSig: seqBytes(0x10, 64)}}, canon: true},
	{name: "upgrade_query_ack/unsigned offer", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c400 c0 c0", want: &UpgradeQueryAck{Offer: &Offer{ReleaseID: "rel-9", Version: "2.0.0", URL: "https://dl.example/pos-2.0.0.bin", SHA256: [SHA256Size]byte(seqBytes(0xA0, 32)), Size: 1048576, Mandatory: true, Notes: "bug fixes"}}, canon: true},
	{name: "upgrade_query_ack/last failure and campaign", msg: &UpgradeQueryAck{}, body: "94 00 c0 95a572656c2d38a5312e392e3011a96469736b2066756c6ccf0000018bcfe56800 95a663616d702d31a5322e302e30cf0000018bcfe56800cf0000018bd50bc400a572656c2d39", want: &UpgradeQueryAck{LastFailure: &LastFailure{ReleaseID: "rel-8", Version: "1.9.0", Code: 17, Message: "disk full", AtMs: 1700000000000}, Campaign: &Campaign{CampaignID: "camp-1", Version: "2.0.0", WindowStartMs: 1700000000000, WindowEndMs: 1700086400000, ReleaseID: "rel-9"}}, canon: true},
	{name: "upgrade_query_ack/non-shortest ints inside the parts", msg: &UpgradeQueryAck{}, body: "94 cc00 dc0008a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfcf0000000000100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f 95a572656c2d38a5312e392e30cf0000000000000011a96469736b2066756c6ccf0000018bcfe56800 95a663616d702d31a5322e302e30cf0000018bcfe56800cf0000018bd50bc400a572656c2d39", want: &UpgradeQueryAck{Offer: &Offer{ReleaseID: "rel-9", Version: "2.0.0", URL: "https://dl.example/pos-2.0.0.bin", SHA256: [SHA256Size]byte(seqBytes(0xA0, 32)), Size: 1048576, Mandatory: true, Notes: "bug fixes", ReleaseSig: seqBytes(0x10, 64)}, LastFailure: &LastFailure{ReleaseID: "rel-8", Version: "1.9.0", Code: 17, Message: "disk full", AtMs: 1700000000000}, Campaign: &Campaign{CampaignID: "camp-1", Version: "2.0.0", WindowStartMs: 1700000000000, WindowEndMs: 1700086400000, ReleaseID: "rel-9"}}},
	{name: "upgrade_query_ack/extra elements inside offer, last_failure and campaign", msg: &UpgradeQueryAck{}, body: "94 00 9aa572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4fa36578749101 96a572656c2d38a5312e392e3011a96469736b2066756c6ccf0000018bcfe56800c0 96a663616d702d31a5322e302e30cf0000018bcfe56800cf0000018bd50bc400a572656c2d3980", want: &UpgradeQueryAck{Offer: &Offer{ReleaseID: "rel-9", Version: "2.0.0", URL: "https://dl.example/pos-2.0.0.bin", SHA256: [SHA256Size]byte(seqBytes(0xA0, 32)), Size: 1048576, Mandatory: true, Notes: "bug fixes", ReleaseSig: seqBytes(0x10, 64)}, LastFailure: &LastFailure{ReleaseID: "rel-8", Version: "1.9.0", Code: 17, Message: "disk full", AtMs: 1700000000000}, Campaign: &Campaign{CampaignID: "camp-1", Version: "2.0.0", WindowStartMs: 1700000000000, WindowEndMs: 1700086400000, ReleaseID: "rel-9"}}},
	{name: "upgrade_query_ack/offer extra element nested to level 8", msg: &UpgradeQueryAck{}, body: "94 00 99a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f919191919190 c0 c0", want: &UpgradeQueryAck{Offer: &Offer{ReleaseID: "rel-9", Version: "2.0.0", URL: "https://dl.example/pos-2.0.0.bin", SHA256: [SHA256Size]byte(seqBytes(0xA0, 32)), Size: 1048576, Mandatory: true, Notes: "bug fixes", ReleaseSig: seqBytes(0x10, 64)}}},
	{name: "upgrade_query_ack/offer extra element nested to level 9", msg: &UpgradeQueryAck{}, body: "94 00 99a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f91919191919190 c0 c0", code: BadRequest, why: "deeper than 8"},
	{name: "upgrade_query_ack/campaign extra element nested to level 9", msg: &UpgradeQueryAck{}, body: "94 00 c0 c0 96a663616d702d31a5322e302e30cf0000018bcfe56800cf0000018bd50bc400a572656c2d3991919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "upgrade_query_ack/bytes after the array", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "upgrade_query_ack/array claims one more element than remains", msg: &UpgradeQueryAck{}, body: "95 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", code: BadRequest, why: "truncated"},
	{name: "upgrade_query_ack/array32 header claims 4 GiB elements", msg: &UpgradeQueryAck{}, body: "ddffffffff 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", code: BadRequest, why: "truncated"},
	{name: "upgrade_query_ack/trailing element nested 9 levels", msg: &UpgradeQueryAck{}, body: "95 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "upgrade_query_ack/trailing element nested exactly 8 levels", msg: &UpgradeQueryAck{}, body: "95 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0 91919191919190", want: &UpgradeQueryAck{Offer: &Offer{ReleaseID: "rel-9", Version: "2.0.0", URL: "https://dl.example/pos-2.0.0.bin", SHA256: [SHA256Size]byte(seqBytes(0xA0, 32)), Size: 1048576, Mandatory: true, Notes: "bug fixes", ReleaseSig: seqBytes(0x10, 64)}}},
	{name: "upgrade_query_ack/extra trailing elements (str, map, ext)", msg: &UpgradeQueryAck{}, body: "97 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0 a6667574757265 81a16b9201c0 d40107", want: &UpgradeQueryAck{Offer: &Offer{ReleaseID: "rel-9", Version: "2.0.0", URL: "https://dl.example/pos-2.0.0.bin", SHA256: [SHA256Size]byte(seqBytes(0xA0, 32)), Size: 1048576, Mandatory: true, Notes: "bug fixes", ReleaseSig: seqBytes(0x10, 64)}}},
	{name: "upgrade_query_ack/not an array", msg: &UpgradeQueryAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "upgrade_query_ack/missing campaign", msg: &UpgradeQueryAck{}, body: "93 00 c0 c0", code: BadRequest, why: "missing"},
	{name: "upgrade_query_ack/offer missing release_sig", msg: &UpgradeQueryAck{}, body: "94 00 97a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573 c0 c0", code: BadRequest, why: "missing offer fields"},
	{name: "upgrade_query_ack/last_failure missing at_ms", msg: &UpgradeQueryAck{}, body: "94 00 c0 94a572656c2d38a5312e392e3011a96469736b2066756c6c c0", code: BadRequest, why: "missing last_failure fields"},
	{name: "upgrade_query_ack/campaign missing window_end_ms", msg: &UpgradeQueryAck{}, body: "94 00 c0 c0 93a663616d702d31a5322e302e30cf0000018bcfe56800", code: BadRequest, why: "missing campaign fields"},
	{name: "upgrade_query_ack/offer wrong type", msg: &UpgradeQueryAck{}, body: "94 00 a572656c2d39 c0 c0", code: BadRequest, why: "offer: not an array"},
	{name: "upgrade_query_ack/offer empty map", msg: &UpgradeQueryAck{}, body: "94 00 80 c0 c0", code: BadRequest, why: "offer: not an array"},
	{name: "upgrade_query_ack/offer mandatory wrong type", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce0010000001a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", code: BadRequest, why: "mandatory: not a boolean"},
	{name: "upgrade_query_ack/offer sha256 31 bytes", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec41fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbece00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", code: BadRequest, why: "sha256: wrong length"},
	{name: "upgrade_query_ack/offer sha256 33 bytes", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec421a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf00ce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", code: BadRequest, why: "sha256: too long"},
	{name: "upgrade_query_ack/offer release_sig 65 bytes", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c441 ab*65 c0 c0", code: BadRequest, why: "release_sig: too long"},
	{name: "upgrade_query_ack/offer url 257 bytes", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30da0101 78*257 c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", code: BadRequest, why: "url: too long"},
	{name: "upgrade_query_ack/offer notes 257 bytes", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3da0101 78*257 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", code: BadRequest, why: "notes: too long"},
	{name: "upgrade_query_ack/offer release_id 65 bytes", msg: &UpgradeQueryAck{}, body: "94 00 98d941 78*65 a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696ec420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfce00100000c3a9627567206669786573c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0 c0", code: BadRequest, why: "release_id: too long"},
	{name: "upgrade_query_ack/last_failure message 257 bytes", msg: &UpgradeQueryAck{}, body: "94 00 c0 95a572656c2d38a5312e392e3011da0101 78*257 cf0000018bcfe56800 c0", code: BadRequest, why: "message: too long"},
	{name: "upgrade_query_ack/last_failure message 256 bytes", msg: &UpgradeQueryAck{}, body: "94 00 c0 95a572656c2d38a5312e392e3011d9ff 78*255 cf0000018bcfe56800 c0", want: &UpgradeQueryAck{LastFailure: &LastFailure{ReleaseID: "rel-8", Version: "1.9.0", Code: 17, Message: strings.Repeat("x", 255), AtMs: 1700000000000}}},
	{name: "upgrade_query_ack/campaign version 33 bytes", msg: &UpgradeQueryAck{}, body: "94 00 c0 c0 95a663616d702d31d921 78*33 cf0000018bcfe56800cf0000018bd50bc400a572656c2d39", code: BadRequest, why: "version: too long"},
	{name: "upgrade_query_ack/campaign without release_id (4 elements)", msg: &UpgradeQueryAck{}, body: "94 00 c0 c0 94a663616d702d31a5322e302e30cf0000018bcfe56800cf0000018bd50bc400", code: BadRequest, why: "missing campaign fields"},
	{name: "upgrade_query_ack/campaign release_id 65 bytes", msg: &UpgradeQueryAck{}, body: "94 00 c0 c0 95a663616d702d31a5322e302e30cf0000018bcfe56800cf0000018bd50bc400d941 78*65", code: BadRequest, why: "release_id: too long"},
	{name: "upgrade_query_ack/offer array claims 8 elements, 3 remain", msg: &UpgradeQueryAck{}, body: "94 00 98a572656c2d39a5322e302e30d92068747470733a2f2f646c2e6578616d706c652f706f732d322e302e302e62696e", code: BadRequest, why: "truncated"},
	{name: "upgrade_query_ack/offer array32 claims 4 GiB", msg: &UpgradeQueryAck{}, body: "94 00 ddffffffff c0 c0", code: BadRequest, why: "truncated"},
	{name: "upgrade_query_ack/refused FORBIDDEN", msg: &UpgradeQueryAck{}, body: "92 03 a7626c6f636b6564", err: &Error{Code: Forbidden, Message: "blocked"}, code: Forbidden},

	// UPGRADE_REPORT 0x05
	{name: "upgrade_report/downloading", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 01 28 00 ab646f776e6c6f6164696e67", want: &UpgradeReport{ReleaseID: "rel-9", Attempt: 1, Stage: StageDownloading, Progress: 40, Message: "downloading"}, canon: true},
	{name: "upgrade_report/failed", msg: &UpgradeReport{}, body: "96 a572656c2d39 03 05 64 1c ad6e6f207370616365206c656674", want: &UpgradeReport{ReleaseID: "rel-9", Attempt: 3, Stage: StageFailed, Progress: 100, Code: 28, Message: "no space left"}, canon: true},
	{name: "upgrade_report/rolled back, progress 0", msg: &UpgradeReport{}, body: "96 a572656c2d39 02 06 00 00 a0", want: &UpgradeReport{ReleaseID: "rel-9", Attempt: 2, Stage: StageRolledBack}, canon: true},
	{name: "upgrade_report/non-shortest ints", msg: &UpgradeReport{}, body: "96 a572656c2d39 cf0000000000000001 d001 cd0028 d200000000 d90b646f776e6c6f6164696e67", want: &UpgradeReport{ReleaseID: "rel-9", Attempt: 1, Stage: StageDownloading, Progress: 40, Message: "downloading"}},
	{name: "upgrade_report/bytes after the array", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 01 28 00 ab646f776e6c6f6164696e67 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "upgrade_report/array claims one more element than remains", msg: &UpgradeReport{}, body: "97 a572656c2d39 01 01 28 00 ab646f776e6c6f6164696e67", code: BadRequest, why: "truncated"},
	{name: "upgrade_report/array32 header claims 4 GiB elements", msg: &UpgradeReport{}, body: "ddffffffff a572656c2d39 01 01 28 00 ab646f776e6c6f6164696e67", code: BadRequest, why: "truncated"},
	{name: "upgrade_report/trailing element nested 9 levels", msg: &UpgradeReport{}, body: "97 a572656c2d39 01 01 28 00 ab646f776e6c6f6164696e67 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "upgrade_report/trailing element nested exactly 8 levels", msg: &UpgradeReport{}, body: "97 a572656c2d39 01 01 28 00 ab646f776e6c6f6164696e67 91919191919190", want: &UpgradeReport{ReleaseID: "rel-9", Attempt: 1, Stage: StageDownloading, Progress: 40, Message: "downloading"}},
	{name: "upgrade_report/extra trailing elements (str, map, ext)", msg: &UpgradeReport{}, body: "99 a572656c2d39 01 01 28 00 ab646f776e6c6f6164696e67 a6667574757265 81a16b9201c0 d40107", want: &UpgradeReport{ReleaseID: "rel-9", Attempt: 1, Stage: StageDownloading, Progress: 40, Message: "downloading"}},
	{name: "upgrade_report/not an array", msg: &UpgradeReport{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "upgrade_report/missing message", msg: &UpgradeReport{}, body: "95 a572656c2d39 01 01 28 00", code: BadRequest, why: "missing"},
	{name: "upgrade_report/stage wrong type", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 a131 28 00 ab646f776e6c6f6164696e67", code: BadRequest, why: "stage: not an integer"},
	{name: "upgrade_report/stage 0", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 00 28 00 ab646f776e6c6f6164696e67", code: BadRequest, why: "stage: out of range"},
	{name: "upgrade_report/stage 7", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 07 28 00 ab646f776e6c6f6164696e67", code: BadRequest, why: "stage: out of range"},
	{name: "upgrade_report/progress 101", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 01 65 00 ab646f776e6c6f6164696e67", code: BadRequest, why: "progress: out of range"},
	{name: "upgrade_report/attempt 0", msg: &UpgradeReport{}, body: "96 a572656c2d39 00 01 28 00 ab646f776e6c6f6164696e67", code: BadRequest, why: "attempt: out of range"},
	{name: "upgrade_report/message 257 bytes", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 01 28 00 da0101 78*257", code: BadRequest, why: "message: too long"},
	{name: "upgrade_report/message 256 bytes", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 05 28 00 da0100 78*256", want: &UpgradeReport{ReleaseID: "rel-9", Attempt: 1, Stage: StageFailed, Progress: 40, Message: strings.Repeat("x", 256)}},
	{name: "upgrade_report/message 200 bytes canonical", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 05 28 00 d9c8 78*200", want: &UpgradeReport{ReleaseID: "rel-9", Attempt: 1, Stage: StageFailed, Progress: 40, Message: strings.Repeat("x", 200)}, canon: true},
	{name: "upgrade_report/message nil", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 01 28 00 c0", code: BadRequest, why: "message: not a string"},
	{name: "upgrade_report/release_id 65 bytes", msg: &UpgradeReport{}, body: "96 d941 78*65 01 01 28 00 ab646f776e6c6f6164696e67", code: BadRequest, why: "release_id: too long"},
	{name: "upgrade_report/message str8 claims 11 bytes, 5 remain", msg: &UpgradeReport{}, body: "96 a572656c2d39 01 01 28 00 d90b646f776e6c", code: BadRequest, why: "truncated"},

	// UPGRADE_NOTICE 0x41 (push, acked)
	{name: "upgrade_notice/release", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 a5322e302e30 01", want: &UpgradeNotice{ID: "rel-9", AppID: "pos-app", Version: "2.0.0", Kind: NoticeRelease}, canon: true},
	{name: "upgrade_notice/campaign", msg: &UpgradeNotice{}, body: "94 a663616d702d31 a7706f732d617070 a5322e302e30 02", want: &UpgradeNotice{ID: "camp-1", AppID: "pos-app", Version: "2.0.0", Kind: NoticeCampaign}, canon: true},
	{name: "upgrade_notice/non-shortest ints", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 a5322e302e30 cf0000000000000001", want: &UpgradeNotice{ID: "rel-9", AppID: "pos-app", Version: "2.0.0", Kind: NoticeRelease}},
	{name: "upgrade_notice/bytes after the array", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 a5322e302e30 01 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "upgrade_notice/array claims one more element than remains", msg: &UpgradeNotice{}, body: "95 a572656c2d39 a7706f732d617070 a5322e302e30 01", code: BadRequest, why: "truncated"},
	{name: "upgrade_notice/array32 header claims 4 GiB elements", msg: &UpgradeNotice{}, body: "ddffffffff a572656c2d39 a7706f732d617070 a5322e302e30 01", code: BadRequest, why: "truncated"},
	{name: "upgrade_notice/trailing element nested 9 levels", msg: &UpgradeNotice{}, body: "95 a572656c2d39 a7706f732d617070 a5322e302e30 01 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "upgrade_notice/trailing element nested exactly 8 levels", msg: &UpgradeNotice{}, body: "95 a572656c2d39 a7706f732d617070 a5322e302e30 01 91919191919190", want: &UpgradeNotice{ID: "rel-9", AppID: "pos-app", Version: "2.0.0", Kind: NoticeRelease}},
	{name: "upgrade_notice/extra trailing elements (str, map, ext)", msg: &UpgradeNotice{}, body: "97 a572656c2d39 a7706f732d617070 a5322e302e30 01 a6667574757265 81a16b9201c0 d40107", want: &UpgradeNotice{ID: "rel-9", AppID: "pos-app", Version: "2.0.0", Kind: NoticeRelease}},
	{name: "upgrade_notice/not an array", msg: &UpgradeNotice{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "upgrade_notice/missing kind", msg: &UpgradeNotice{}, body: "93 a572656c2d39 a7706f732d617070 a5322e302e30", code: BadRequest, why: "missing"},
	{name: "upgrade_notice/kind wrong type", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 a5322e302e30 a772656c65617365", code: BadRequest, why: "kind: not an integer"},
	{name: "upgrade_notice/kind 0", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 a5322e302e30 00", code: BadRequest, why: "kind: out of range"},
	{name: "upgrade_notice/withdrawn", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 a5322e302e30 03", want: &UpgradeNotice{ID: "rel-9", AppID: "pos-app", Version: "2.0.0", Kind: NoticeWithdrawn}, canon: true},
	{name: "upgrade_notice/unknown kind 9 decodes (acked and ignored)", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 a5322e302e30 09", want: &UpgradeNotice{ID: "rel-9", AppID: "pos-app", Version: "2.0.0", Kind: 9}},
	{name: "upgrade_notice/kind 256", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 a5322e302e30 cd0100", code: BadRequest, why: "kind: out of range"},
	{name: "upgrade_notice/id 65 bytes", msg: &UpgradeNotice{}, body: "94 d941 78*65 a7706f732d617070 a5322e302e30 01", code: BadRequest, why: "id: too long"},
	{name: "upgrade_notice/version 33 bytes", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 d921 78*33 01", code: BadRequest, why: "version: too long"},
	{name: "upgrade_notice/version str8 claims 255 bytes", msg: &UpgradeNotice{}, body: "94 a572656c2d39 a7706f732d617070 d9ff322e302e30 01", code: BadRequest, why: "truncated"},

	// SCHEDULE_REQUEST 0x06 (spec §6.2)
	{name: "schedule_request/with location", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000 a67379732d6575", want: &ScheduleRequest{CampaignID: "camp-1", Version: "2.0.0", HasLoc: true, Lat: 52.5, Lon: 13.25, SystemID: "sys-eu"}, canon: true},
	{name: "schedule_request/without location", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 c0 c0 a67379732d6575", want: &ScheduleRequest{CampaignID: "camp-1", Version: "2.0.0", SystemID: "sys-eu"}, canon: true},
	{name: "schedule_request/corners -90, 180", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cbc056800000000000 cb4066800000000000 a67379732d6575", want: &ScheduleRequest{CampaignID: "camp-1", Version: "2.0.0", HasLoc: true, Lat: -90, Lon: 180, SystemID: "sys-eu"}, canon: true},
	{name: "schedule_request/non-shortest: float32 coordinates", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 ca42520000 ca41540000 a67379732d6575", want: &ScheduleRequest{CampaignID: "camp-1", Version: "2.0.0", HasLoc: true, Lat: 52.5, Lon: 13.25, SystemID: "sys-eu"}},
	{name: "schedule_request/non-shortest: integer coordinates (fixint, negative int8, uint64)", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 34 d09c a67379732d6575", want: &ScheduleRequest{CampaignID: "camp-1", Version: "2.0.0", HasLoc: true, Lat: 52, Lon: -100, SystemID: "sys-eu"}},
	{name: "schedule_request/non-shortest: integer coordinates as uint64 and int16", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cf000000000000005a d1ff4c a67379732d6575", want: &ScheduleRequest{CampaignID: "camp-1", Version: "2.0.0", HasLoc: true, Lat: 90, Lon: -180, SystemID: "sys-eu"}},
	{name: "schedule_request/bytes after the array", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000 a67379732d6575 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "schedule_request/array claims one more element than remains", msg: &ScheduleRequest{}, body: "96 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000 a67379732d6575", code: BadRequest, why: "truncated"},
	{name: "schedule_request/array32 header claims 4 GiB elements", msg: &ScheduleRequest{}, body: "ddffffffff a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000 a67379732d6575", code: BadRequest, why: "truncated"},
	{name: "schedule_request/trailing element nested 9 levels", msg: &ScheduleRequest{}, body: "96 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000 a67379732d6575 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "schedule_request/trailing element nested exactly 8 levels", msg: &ScheduleRequest{}, body: "96 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000 a67379732d6575 91919191919190", want: &ScheduleRequest{CampaignID: "camp-1", Version: "2.0.0", HasLoc: true, Lat: 52.5, Lon: 13.25, SystemID: "sys-eu"}},
	{name: "schedule_request/extra trailing elements (str, map, ext)", msg: &ScheduleRequest{}, body: "98 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000 a67379732d6575 a6667574757265 81a16b9201c0 d40107", want: &ScheduleRequest{CampaignID: "camp-1", Version: "2.0.0", HasLoc: true, Lat: 52.5, Lon: 13.25, SystemID: "sys-eu"}},
	{name: "schedule_request/not an array", msg: &ScheduleRequest{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "schedule_request/missing system_id", msg: &ScheduleRequest{}, body: "94 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000", code: BadRequest, why: "missing"},
	{name: "schedule_request/lat wrong type", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 a435322e35 cb402a800000000000 a67379732d6575", code: BadRequest, why: "lat: not a number"},
	{name: "schedule_request/lat 90.5", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb4056a00000000000 cb402a800000000000 a67379732d6575", code: BadRequest, why: "lat: out of range"},
	{name: "schedule_request/lat NaN", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb7ff8000000000000 cb402a800000000000 a67379732d6575", code: BadRequest, why: "lat: out of range"},
	{name: "schedule_request/lon -180.5", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb404a400000000000 cbc066900000000000 a67379732d6575", code: BadRequest, why: "lon: out of range"},
	{name: "schedule_request/lon +Inf float32", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb404a400000000000 ca7f800000 a67379732d6575", code: BadRequest, why: "lon: out of range"},
	{name: "schedule_request/lat without lon", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb404a400000000000 c0 a67379732d6575", code: BadRequest, why: "one without the other"},
	{name: "schedule_request/lon without lat", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 c0 cb402a800000000000 a67379732d6575", code: BadRequest, why: "one without the other"},
	{name: "schedule_request/system_id 65 bytes", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a800000000000 d941 78*65", code: BadRequest, why: "system_id: too long"},
	{name: "schedule_request/campaign_id wrong type", msg: &ScheduleRequest{}, body: "95 01 a5322e302e30 cb404a400000000000 cb402a800000000000 a67379732d6575", code: BadRequest, why: "campaign_id: not a string"},
	{name: "schedule_request/lon double truncated", msg: &ScheduleRequest{}, body: "95 a663616d702d31 a5322e302e30 cb404a400000000000 cb402a", code: BadRequest, why: "truncated"},

	// SCHEDULE_ACK 0x86
	{name: "schedule_ack/canonical", msg: &ScheduleAck{}, body: "97 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39", want: &ScheduleAck{ReservationID: "res-1", NodeID: "node-7", URL: "https://n7.example/dl", SlotStartMs: 1700000600000, SlotEndMs: 1700000900000, ReleaseID: "rel-9"}, canon: true},
	{name: "schedule_ack/non-shortest ints", msg: &ScheduleAck{}, body: "97 d000 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39", want: &ScheduleAck{ReservationID: "res-1", NodeID: "node-7", URL: "https://n7.example/dl", SlotStartMs: 1700000600000, SlotEndMs: 1700000900000, ReleaseID: "rel-9"}},
	{name: "schedule_ack/bytes after the array", msg: &ScheduleAck{}, body: "97 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "schedule_ack/array claims one more element than remains", msg: &ScheduleAck{}, body: "98 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39", code: BadRequest, why: "truncated"},
	{name: "schedule_ack/array32 header claims 4 GiB elements", msg: &ScheduleAck{}, body: "ddffffffff 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39", code: BadRequest, why: "truncated"},
	{name: "schedule_ack/trailing element nested 9 levels", msg: &ScheduleAck{}, body: "98 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "schedule_ack/trailing element nested exactly 8 levels", msg: &ScheduleAck{}, body: "98 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39 91919191919190", want: &ScheduleAck{ReservationID: "res-1", NodeID: "node-7", URL: "https://n7.example/dl", SlotStartMs: 1700000600000, SlotEndMs: 1700000900000, ReleaseID: "rel-9"}},
	{name: "schedule_ack/extra trailing elements (str, map, ext)", msg: &ScheduleAck{}, body: "9a 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39 a6667574757265 81a16b9201c0 d40107", want: &ScheduleAck{ReservationID: "res-1", NodeID: "node-7", URL: "https://n7.example/dl", SlotStartMs: 1700000600000, SlotEndMs: 1700000900000, ReleaseID: "rel-9"}},
	{name: "schedule_ack/not an array", msg: &ScheduleAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "schedule_ack/missing slot_end_ms", msg: &ScheduleAck{}, body: "95 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0", code: BadRequest, why: "missing"},
	{name: "schedule_ack/missing release_id (6 elements, before 2026-12-04)", msg: &ScheduleAck{}, body: "96 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0", code: BadRequest, why: "missing"},
	{name: "schedule_ack/release_id 65 bytes", msg: &ScheduleAck{}, body: "97 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 d941 78*65", code: BadRequest, why: "release_id: too long"},
	{name: "schedule_ack/slot_start_ms wrong type", msg: &ScheduleAck{}, body: "97 00 a57265732d31 a66e6f64652d37 b568747470733a2f2f6e372e6578616d706c652f646c cb3ff0000000000000 cf0000018bcff323a0 a572656c2d39", code: BadRequest, why: "slot_start_ms: not an integer"},
	{name: "schedule_ack/url 257 bytes", msg: &ScheduleAck{}, body: "97 00 a57265732d31 a66e6f64652d37 da0101 78*257 cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39", code: BadRequest, why: "url: too long"},
	{name: "schedule_ack/node_id 65 bytes", msg: &ScheduleAck{}, body: "97 00 a57265732d31 d941 78*65 b568747470733a2f2f6e372e6578616d706c652f646c cf0000018bcfee8fc0 cf0000018bcff323a0 a572656c2d39", code: BadRequest, why: "node_id: too long"},
	{name: "schedule_ack/url str16 claims 65535 bytes", msg: &ScheduleAck{}, body: "97 00 a57265732d31 a66e6f64652d37 daffff6874747073", code: BadRequest, why: "truncated"},
	{name: "schedule_ack/refused UNAVAILABLE with retry_after_ms", msg: &ScheduleAck{}, body: "93 07 ab6e6f206361706163697479 cdea60", err: &Error{Code: Unavailable, Message: "no capacity", RetryAfterMs: 60000}, code: Unavailable},
	{name: "schedule_ack/refused EXPIRED", msg: &ScheduleAck{}, body: "92 0c ad63616d706169676e206f766572", err: &Error{Code: Expired, Message: "campaign over"}, code: Expired},

	// UPGRADE_CHECK 0x07
	{name: "upgrade_check/canonical", msg: &UpgradeCheck{}, body: "92 a57265732d31 a5312e392e30", want: &UpgradeCheck{ReservationID: "res-1", Version: "1.9.0"}, canon: true},
	{name: "upgrade_check/non-shortest (str16, array16)", msg: &UpgradeCheck{}, body: "dc0002 da00057265732d31 d905312e392e30", want: &UpgradeCheck{ReservationID: "res-1", Version: "1.9.0"}},
	{name: "upgrade_check/bytes after the array", msg: &UpgradeCheck{}, body: "92 a57265732d31 a5312e392e30 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "upgrade_check/array claims one more element than remains", msg: &UpgradeCheck{}, body: "93 a57265732d31 a5312e392e30", code: BadRequest, why: "truncated"},
	{name: "upgrade_check/array32 header claims 4 GiB elements", msg: &UpgradeCheck{}, body: "ddffffffff a57265732d31 a5312e392e30", code: BadRequest, why: "truncated"},
	{name: "upgrade_check/trailing element nested 9 levels", msg: &UpgradeCheck{}, body: "93 a57265732d31 a5312e392e30 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "upgrade_check/trailing element nested exactly 8 levels", msg: &UpgradeCheck{}, body: "93 a57265732d31 a5312e392e30 91919191919190", want: &UpgradeCheck{ReservationID: "res-1", Version: "1.9.0"}},
	{name: "upgrade_check/extra trailing elements (str, map, ext)", msg: &UpgradeCheck{}, body: "95 a57265732d31 a5312e392e30 a6667574757265 81a16b9201c0 d40107", want: &UpgradeCheck{ReservationID: "res-1", Version: "1.9.0"}},
	{name: "upgrade_check/not an array", msg: &UpgradeCheck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "upgrade_check/missing version", msg: &UpgradeCheck{}, body: "91 a57265732d31", code: BadRequest, why: "missing"},
	{name: "upgrade_check/version wrong type", msg: &UpgradeCheck{}, body: "92 a57265732d31 01", code: BadRequest, why: "version: not a string"},
	{name: "upgrade_check/reservation_id 65 bytes", msg: &UpgradeCheck{}, body: "92 d941 78*65 a5312e392e30", code: BadRequest, why: "reservation_id: too long"},
	{name: "upgrade_check/version 33 bytes", msg: &UpgradeCheck{}, body: "92 a57265732d31 d921 78*33", code: BadRequest, why: "version: too long"},
	{name: "upgrade_check/version str32 claims 4 GiB", msg: &UpgradeCheck{}, body: "92 a57265732d31 dbffffffff312e39", code: BadRequest, why: "truncated"},

	// UPGRADE_CHECK_ACK 0x87
	{name: "upgrade_check_ack/proceed", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", want: &UpgradeCheckAck{Decision: DecisionProceed, URL: "https://n7.example/dl/pos-2.0.0.bin", SHA256: seqBytes(0xA0, 32), Size: 1048576, Token: "tok-abc", ReleaseSig: seqBytes(0x10, 64)}, canon: true},
	{name: "upgrade_check_ack/too early", msg: &UpgradeCheckAck{}, body: "98 00 03 ce0001d4c0 a0 c400 00 a0 c400", want: &UpgradeCheckAck{Decision: DecisionTooEarly, WaitMs: 120000}, canon: true},
	{name: "upgrade_check_ack/up to date", msg: &UpgradeCheckAck{}, body: "98 00 02 00 a0 c400 00 a0 c400", want: &UpgradeCheckAck{Decision: DecisionUpToDate}, canon: true},
	{name: "upgrade_check_ack/non-shortest ints", msg: &UpgradeCheckAck{}, body: "98 cf0000000000000000 cf0000000000000001 cf0000000000000000 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf cf0000000000100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", want: &UpgradeCheckAck{Decision: DecisionProceed, URL: "https://n7.example/dl/pos-2.0.0.bin", SHA256: seqBytes(0xA0, 32), Size: 1048576, Token: "tok-abc", ReleaseSig: seqBytes(0x10, 64)}},
	{name: "upgrade_check_ack/sha256 as bin16", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c50020a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", want: &UpgradeCheckAck{Decision: DecisionProceed, URL: "https://n7.example/dl/pos-2.0.0.bin", SHA256: seqBytes(0xA0, 32), Size: 1048576, Token: "tok-abc", ReleaseSig: seqBytes(0x10, 64)}},
	{name: "upgrade_check_ack/bytes after the array", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f c0", code: BadRequest, why: "bytes after the body array"},
	{name: "upgrade_check_ack/array claims one more element than remains", msg: &UpgradeCheckAck{}, body: "99 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "truncated"},
	{name: "upgrade_check_ack/array32 header claims 4 GiB elements", msg: &UpgradeCheckAck{}, body: "ddffffffff 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "truncated"},
	{name: "upgrade_check_ack/trailing element nested 9 levels", msg: &UpgradeCheckAck{}, body: "99 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "upgrade_check_ack/trailing element nested exactly 8 levels", msg: &UpgradeCheckAck{}, body: "99 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f 91919191919190", want: &UpgradeCheckAck{Decision: DecisionProceed, URL: "https://n7.example/dl/pos-2.0.0.bin", SHA256: seqBytes(0xA0, 32), Size: 1048576, Token: "tok-abc", ReleaseSig: seqBytes(0x10, 64)}},
	{name: "upgrade_check_ack/extra trailing elements (str, map, ext)", msg: &UpgradeCheckAck{}, body: "9b 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f a6667574757265 81a16b9201c0 d40107", want: &UpgradeCheckAck{Decision: DecisionProceed, URL: "https://n7.example/dl/pos-2.0.0.bin", SHA256: seqBytes(0xA0, 32), Size: 1048576, Token: "tok-abc", ReleaseSig: seqBytes(0x10, 64)}},
	{name: "upgrade_check_ack/not an array", msg: &UpgradeCheckAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "upgrade_check_ack/missing release_sig", msg: &UpgradeCheckAck{}, body: "97 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263", code: BadRequest, why: "missing"},
	{name: "upgrade_check_ack/decision wrong type", msg: &UpgradeCheckAck{}, body: "98 00 a770726f63656564 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "decision: not an integer"},
	{name: "upgrade_check_ack/decision 0", msg: &UpgradeCheckAck{}, body: "98 00 00 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "decision: out of range"},
	{name: "upgrade_check_ack/decision 5", msg: &UpgradeCheckAck{}, body: "98 00 05 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "decision: out of range"},
	{name: "upgrade_check_ack/proceed without sha256", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c400 ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "sha256: wrong length"},
	{name: "upgrade_check_ack/sha256 31 bytes", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c41fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbe ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "sha256: wrong length"},
	{name: "upgrade_check_ack/sha256 33 bytes", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c421a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf00 ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "sha256: too long"},
	{name: "upgrade_check_ack/sha256 as str", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e d920 78*32 ce00100000 a7746f6b2d616263 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "sha256: not binary"},
	{name: "upgrade_check_ack/token 257 bytes", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 da0101 78*257 c440101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f", code: BadRequest, why: "token: too long"},
	{name: "upgrade_check_ack/release_sig 65 bytes", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c441 ab*65", code: BadRequest, why: "release_sig: too long"},
	{name: "upgrade_check_ack/release_sig bin32 claims 4 GiB", msg: &UpgradeCheckAck{}, body: "98 00 01 00 d92368747470733a2f2f6e372e6578616d706c652f646c2f706f732d322e302e302e62696e c420a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf ce00100000 a7746f6b2d616263 c6ffffffff", code: BadRequest, why: "truncated"},
	{name: "upgrade_check_ack/refused NOT_FOUND", msg: &UpgradeCheckAck{}, body: "92 04 ae6e6f207265736572766174696f6e", err: &Error{Code: NotFound, Message: "no reservation"}, code: NotFound},

	// GROUP_AUTH 0x08 (spec §7)
	{name: "group_auth/canonical", msg: &GroupAuth{}, body: "91 a56c6f626279", want: &GroupAuth{GroupID: "lobby"}, canon: true},
	{name: "group_auth/non-shortest (str8, array32)", msg: &GroupAuth{}, body: "dd00000001 d9056c6f626279", want: &GroupAuth{GroupID: "lobby"}},
	{name: "group_auth/bytes after the array", msg: &GroupAuth{}, body: "91 a56c6f626279 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_auth/array claims one more element than remains", msg: &GroupAuth{}, body: "92 a56c6f626279", code: BadRequest, why: "truncated"},
	{name: "group_auth/array32 header claims 4 GiB elements", msg: &GroupAuth{}, body: "ddffffffff a56c6f626279", code: BadRequest, why: "truncated"},
	{name: "group_auth/trailing element nested 9 levels", msg: &GroupAuth{}, body: "92 a56c6f626279 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_auth/trailing element nested exactly 8 levels", msg: &GroupAuth{}, body: "92 a56c6f626279 91919191919190", want: &GroupAuth{GroupID: "lobby"}},
	{name: "group_auth/extra trailing elements (str, map, ext)", msg: &GroupAuth{}, body: "94 a56c6f626279 a6667574757265 81a16b9201c0 d40107", want: &GroupAuth{GroupID: "lobby"}},
	{name: "group_auth/not an array", msg: &GroupAuth{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_auth/missing group_id", msg: &GroupAuth{}, body: "90", code: BadRequest, why: "missing group_id"},
	{name: "group_auth/group_id wrong type", msg: &GroupAuth{}, body: "91 c0", code: BadRequest, why: "group_id: not a string"},
	{name: "group_auth/group_id 65 bytes", msg: &GroupAuth{}, body: "91 d941 78*65", code: BadRequest, why: "group_id: too long"},
	{name: "group_auth/group_id str8 claims 6 bytes, 5 remain", msg: &GroupAuth{}, body: "91 d9066c6f626279", code: BadRequest, why: "truncated"},

	// GROUP_AUTH_ACK 0x88
	{name: "group_auth_ack/canonical", msg: &GroupAuthAck{}, body: "96 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c", want: &GroupAuthAck{Grant: seqBytes(0x30, 40), ExpiresMs: 1700000300000, Role: "member", Name: "Lobby", Members: 12}, canon: true},
	{name: "group_auth_ack/512-byte grant", msg: &GroupAuthAck{}, body: "96 00 c50200 ab*512 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c", want: &GroupAuthAck{Grant: bytes.Repeat([]byte{0xab}, 512), ExpiresMs: 1700000300000, Role: "member", Name: "Lobby", Members: 12}, canon: true},
	{name: "group_auth_ack/non-shortest ints", msg: &GroupAuthAck{}, body: "96 cc00 c50028303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 cf000000000000000c", want: &GroupAuthAck{Grant: seqBytes(0x30, 40), ExpiresMs: 1700000300000, Role: "member", Name: "Lobby", Members: 12}},
	{name: "group_auth_ack/bytes after the array", msg: &GroupAuthAck{}, body: "96 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_auth_ack/array claims one more element than remains", msg: &GroupAuthAck{}, body: "97 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c", code: BadRequest, why: "truncated"},
	{name: "group_auth_ack/array32 header claims 4 GiB elements", msg: &GroupAuthAck{}, body: "ddffffffff 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c", code: BadRequest, why: "truncated"},
	{name: "group_auth_ack/trailing element nested 9 levels", msg: &GroupAuthAck{}, body: "97 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_auth_ack/trailing element nested exactly 8 levels", msg: &GroupAuthAck{}, body: "97 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c 91919191919190", want: &GroupAuthAck{Grant: seqBytes(0x30, 40), ExpiresMs: 1700000300000, Role: "member", Name: "Lobby", Members: 12}},
	{name: "group_auth_ack/extra trailing elements (str, map, ext)", msg: &GroupAuthAck{}, body: "99 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c a6667574757265 81a16b9201c0 d40107", want: &GroupAuthAck{Grant: seqBytes(0x30, 40), ExpiresMs: 1700000300000, Role: "member", Name: "Lobby", Members: 12}},
	{name: "group_auth_ack/not an array", msg: &GroupAuthAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_auth_ack/missing members", msg: &GroupAuthAck{}, body: "95 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279", code: BadRequest, why: "missing"},
	{name: "group_auth_ack/grant wrong type", msg: &GroupAuthAck{}, body: "96 00 a56772616e74 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c", code: BadRequest, why: "grant: not binary"},
	{name: "group_auth_ack/grant 513 bytes", msg: &GroupAuthAck{}, body: "96 00 c50201 ab*513 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 0c", code: BadRequest, why: "grant: too long"},
	{name: "group_auth_ack/role 17 bytes", msg: &GroupAuthAck{}, body: "96 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 b1 78*17 a54c6f626279 0c", code: BadRequest, why: "role: too long"},
	{name: "group_auth_ack/name 65 bytes", msg: &GroupAuthAck{}, body: "96 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 d941 78*65 0c", code: BadRequest, why: "name: too long"},
	{name: "group_auth_ack/members negative", msg: &GroupAuthAck{}, body: "96 00 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 cf0000018bcfe9fbe0 a66d656d626572 a54c6f626279 fd", code: BadRequest, why: "members: negative"},
	{name: "group_auth_ack/grant bin8 claims 200 bytes", msg: &GroupAuthAck{}, body: "96 00 c4c8303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "truncated"},
	{name: "group_auth_ack/refused NOT_FOUND", msg: &GroupAuthAck{}, body: "92 04 ad6e6f20737563682067726f7570", err: &Error{Code: NotFound, Message: "no such group"}, code: NotFound},

	// GROUP_CHANGE 0x09
	{name: "group_change/join", msg: &GroupChange{}, body: "95 01 01 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", want: &GroupChange{RequestID: 1, Op: GroupJoin, To: "lobby", Grant: seqBytes(0x30, 40)}, canon: true},
	{name: "group_change/leave", msg: &GroupChange{}, body: "95 02 02 a56c6f626279 c0 c0", want: &GroupChange{RequestID: 2, Op: GroupLeave, From: "lobby"}, canon: true},
	{name: "group_change/switch", msg: &GroupChange{}, body: "95 03 03 a56c6f626279 a36f7073 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", want: &GroupChange{RequestID: 3, Op: GroupSwitch, From: "lobby", To: "ops", Grant: seqBytes(0x30, 40)}, canon: true},
	{name: "group_change/non-shortest ints", msg: &GroupChange{}, body: "95 cf0000000000000001 d30000000000000001 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", want: &GroupChange{RequestID: 1, Op: GroupJoin, To: "lobby", Grant: seqBytes(0x30, 40)}},
	{name: "group_change/join with empty from", msg: &GroupChange{}, body: "95 01 01 a0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", want: &GroupChange{RequestID: 1, Op: GroupJoin, To: "lobby", Grant: seqBytes(0x30, 40)}},
	{name: "group_change/leave with empty to and grant", msg: &GroupChange{}, body: "95 02 02 a56c6f626279 a0 c400", want: &GroupChange{RequestID: 2, Op: GroupLeave, From: "lobby"}},
	{name: "group_change/bytes after the array", msg: &GroupChange{}, body: "95 01 01 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_change/array claims one more element than remains", msg: &GroupChange{}, body: "96 01 01 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "truncated"},
	{name: "group_change/array32 header claims 4 GiB elements", msg: &GroupChange{}, body: "ddffffffff 01 01 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "truncated"},
	{name: "group_change/trailing element nested 9 levels", msg: &GroupChange{}, body: "96 01 01 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_change/trailing element nested exactly 8 levels", msg: &GroupChange{}, body: "96 01 01 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 91919191919190", want: &GroupChange{RequestID: 1, Op: GroupJoin, To: "lobby", Grant: seqBytes(0x30, 40)}},
	{name: "group_change/extra trailing elements (str, map, ext)", msg: &GroupChange{}, body: "98 01 01 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657 a6667574757265 81a16b9201c0 d40107", want: &GroupChange{RequestID: 1, Op: GroupJoin, To: "lobby", Grant: seqBytes(0x30, 40)}},
	{name: "group_change/not an array", msg: &GroupChange{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_change/missing grant element", msg: &GroupChange{}, body: "94 01 01 c0 a56c6f626279", code: BadRequest, why: "missing group_change fields"},
	{name: "group_change/op wrong type", msg: &GroupChange{}, body: "95 01 a46a6f696e c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "op: not an integer"},
	{name: "group_change/op 0", msg: &GroupChange{}, body: "95 01 00 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "op: out of range"},
	{name: "group_change/op 4", msg: &GroupChange{}, body: "95 01 04 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "op: out of range"},
	{name: "group_change/join without to", msg: &GroupChange{}, body: "95 01 01 c0 c0 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "missing to"},
	{name: "group_change/join without grant", msg: &GroupChange{}, body: "95 01 01 c0 a56c6f626279 c0", code: BadRequest, why: "missing grant"},
	{name: "group_change/join with empty grant", msg: &GroupChange{}, body: "95 01 01 c0 a56c6f626279 c400", code: BadRequest, why: "missing grant"},
	{name: "group_change/join with from", msg: &GroupChange{}, body: "95 01 01 a36f7073 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "from: not used by join"},
	{name: "group_change/leave without from", msg: &GroupChange{}, body: "95 02 02 c0 c0 c0", code: BadRequest, why: "missing from"},
	{name: "group_change/leave with to", msg: &GroupChange{}, body: "95 02 02 a56c6f626279 a36f7073 c0", code: BadRequest, why: "not used by leave"},
	{name: "group_change/leave with grant", msg: &GroupChange{}, body: "95 02 02 a56c6f626279 c0 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "not used by leave"},
	{name: "group_change/switch without from", msg: &GroupChange{}, body: "95 03 03 c0 a36f7073 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "missing from"},
	{name: "group_change/switch without grant", msg: &GroupChange{}, body: "95 03 03 a56c6f626279 a36f7073 c0", code: BadRequest, why: "missing grant"},
	{name: "group_change/to wrong type", msg: &GroupChange{}, body: "95 01 01 c0 05 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "to: not a string"},
	{name: "group_change/grant wrong type", msg: &GroupChange{}, body: "95 01 01 c0 a56c6f626279 a56772616e74", code: BadRequest, why: "grant: not binary"},
	{name: "group_change/to 65 bytes", msg: &GroupChange{}, body: "95 01 01 c0 d941 78*65 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "to: too long"},
	{name: "group_change/grant 513 bytes", msg: &GroupChange{}, body: "95 01 01 c0 a56c6f626279 c50201 ab*513", code: BadRequest, why: "grant: too long"},
	{name: "group_change/request_id negative", msg: &GroupChange{}, body: "95 ff 01 c0 a56c6f626279 c428303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "request_id: negative"},
	{name: "group_change/grant bin16 claims 1000 bytes", msg: &GroupChange{}, body: "95 01 01 c0 a56c6f626279 c503e8303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f5051525354555657", code: BadRequest, why: "truncated"},

	// GROUP_CHANGE_ACK 0x89
	{name: "group_change_ack/two groups", msg: &GroupChangeAck{}, body: "93 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", want: &GroupChangeAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}, canon: true},
	{name: "group_change_ack/no groups", msg: &GroupChangeAck{}, body: "93 00 08 90", want: &GroupChangeAck{GroupVersion: 8}, canon: true},
	{name: "group_change_ack/32 groups", msg: &GroupChangeAck{}, body: "93 00 09 dc002092a3673030a66d656d62657292a3673031a66d656d62657292a3673032a66d656d62657292a3673033a66d656d62657292a3673034a66d656d62657292a3673035a66d656d62657292a3673036a66d656d62657292a3673037a66d656d62657292a3673038a66d656d62657292a3673039a66d656d62657292a3673130a66d656d62657292a3673131a66d656d62657292a3673132a66d656d62657292a3673133a66d656d62657292a3673134a66d656d62657292a3673135a66d656d62657292a3673136a66d656d62657292a3673137a66d656d62657292a3673138a66d656d62657292a3673139a66d656d62657292a3673230a66d656d62657292a3673231a66d656d62657292a3673232a66d656d62657292a3673233a66d656d62657292a3673234a66d656d62657292a3673235a66d656d62657292a3673236a66d656d62657292a3673237a66d656d62657292a3673238a66d656d62657292a3673239a66d656d62657292a3673330a66d656d62657292a3673331a66d656d626572", want: &GroupChangeAck{GroupVersion: 9, Groups: groupsN(32)}, canon: true},
	{name: "group_change_ack/non-shortest (uint64 version, array16 groups)", msg: &GroupChangeAck{}, body: "93 00 cf0000000000000007 dc0002dc0002d9056c6f626279a66d656d62657292a36f7073da000561646d696e", want: &GroupChangeAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_change_ack/extra element in a membership", msg: &GroupChangeAck{}, body: "93 00 07 9293a56c6f626279a66d656d626572cf0000018bcfe5680093a36f7073a561646d696e81a16bc0", want: &GroupChangeAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_change_ack/membership extra element nested to level 8", msg: &GroupChangeAck{}, body: "93 00 07 9293a56c6f626279a66d656d626572919191919092a36f7073a561646d696e", want: &GroupChangeAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_change_ack/membership extra element nested to level 9", msg: &GroupChangeAck{}, body: "93 00 07 9293a56c6f626279a66d656d62657291919191919092a36f7073a561646d696e", code: BadRequest, why: "deeper than 8"},
	{name: "group_change_ack/bytes after the array", msg: &GroupChangeAck{}, body: "93 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_change_ack/array claims one more element than remains", msg: &GroupChangeAck{}, body: "94 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "truncated"},
	{name: "group_change_ack/array32 header claims 4 GiB elements", msg: &GroupChangeAck{}, body: "ddffffffff 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "truncated"},
	{name: "group_change_ack/trailing element nested 9 levels", msg: &GroupChangeAck{}, body: "94 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_change_ack/trailing element nested exactly 8 levels", msg: &GroupChangeAck{}, body: "94 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e 91919191919190", want: &GroupChangeAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_change_ack/extra trailing elements (str, map, ext)", msg: &GroupChangeAck{}, body: "96 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e a6667574757265 81a16b9201c0 d40107", want: &GroupChangeAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_change_ack/not an array", msg: &GroupChangeAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_change_ack/missing groups", msg: &GroupChangeAck{}, body: "92 00 07", code: BadRequest, why: "missing"},
	{name: "group_change_ack/group_version wrong type", msg: &GroupChangeAck{}, body: "93 00 a137 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "group_version: not an integer"},
	{name: "group_change_ack/groups nil", msg: &GroupChangeAck{}, body: "93 00 07 c0", code: BadRequest, why: "groups: not an array"},
	{name: "group_change_ack/membership not an array", msg: &GroupChangeAck{}, body: "93 00 07 91a56c6f626279", code: BadRequest, why: "membership: not an array"},
	{name: "group_change_ack/membership without role", msg: &GroupChangeAck{}, body: "93 00 07 9191a56c6f626279", code: BadRequest, why: "missing membership fields"},
	{name: "group_change_ack/role wrong type", msg: &GroupChangeAck{}, body: "93 00 07 9192a56c6f62627901", code: BadRequest, why: "role: not a string"},
	{name: "group_change_ack/33 groups", msg: &GroupChangeAck{}, body: "93 00 09 dc002192a3673030a66d656d62657292a3673031a66d656d62657292a3673032a66d656d62657292a3673033a66d656d62657292a3673034a66d656d62657292a3673035a66d656d62657292a3673036a66d656d62657292a3673037a66d656d62657292a3673038a66d656d62657292a3673039a66d656d62657292a3673130a66d656d62657292a3673131a66d656d62657292a3673132a66d656d62657292a3673133a66d656d62657292a3673134a66d656d62657292a3673135a66d656d62657292a3673136a66d656d62657292a3673137a66d656d62657292a3673138a66d656d62657292a3673139a66d656d62657292a3673230a66d656d62657292a3673231a66d656d62657292a3673232a66d656d62657292a3673233a66d656d62657292a3673234a66d656d62657292a3673235a66d656d62657292a3673236a66d656d62657292a3673237a66d656d62657292a3673238a66d656d62657292a3673239a66d656d62657292a3673330a66d656d62657292a3673331a66d656d62657292a3673332a66d656d626572", code: BadRequest, why: "groups: too many entries"},
	{name: "group_change_ack/role 17 bytes", msg: &GroupChangeAck{}, body: "93 00 07 9192a56c6f626279b1 78*17", code: BadRequest, why: "role: too long"},
	{name: "group_change_ack/group_id 65 bytes", msg: &GroupChangeAck{}, body: "93 00 07 9192d941 78*65 a66d656d626572", code: BadRequest, why: "group_id: too long"},
	{name: "group_change_ack/groups array16 claims 2 entries, 1 remains", msg: &GroupChangeAck{}, body: "93 00 07 dc000292a56c6f626279a66d656d626572", code: BadRequest, why: "truncated"},
	{name: "group_change_ack/groups array32 claims 4 GiB entries", msg: &GroupChangeAck{}, body: "93 00 07 ddffffffff", code: BadRequest, why: "truncated"},
	{name: "group_change_ack/refused CONFLICT", msg: &GroupChangeAck{}, body: "92 05 ac6e6f742061206d656d626572", err: &Error{Code: Conflict, Message: "not a member"}, code: Conflict},
	{name: "group_change_ack/refused UNAVAILABLE", msg: &GroupChangeAck{}, body: "94 07 aa67726f75702066756c6c c0 a3657874", err: &Error{Code: Unavailable, Message: "group full"}, code: Unavailable},

	// GROUP_LIST 0x0A
	{name: "group_list/canonical []", msg: &GroupList{}, body: "90", want: &GroupList{}, canon: true},
	{name: "group_list/non-shortest (array16)", msg: &GroupList{}, body: "dc0000", want: &GroupList{}},
	{name: "group_list/bytes after the array", msg: &GroupList{}, body: "90 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_list/array claims one more element than remains", msg: &GroupList{}, body: "91", code: BadRequest, why: "truncated"},
	{name: "group_list/array32 header claims 4 GiB elements", msg: &GroupList{}, body: "ddffffffff", code: BadRequest, why: "truncated"},
	{name: "group_list/trailing element nested 9 levels", msg: &GroupList{}, body: "91 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_list/trailing element nested exactly 8 levels", msg: &GroupList{}, body: "91 91919191919190", want: &GroupList{}},
	{name: "group_list/extra trailing elements (str, map, ext)", msg: &GroupList{}, body: "93 a6667574757265 81a16b9201c0 d40107", want: &GroupList{}},
	{name: "group_list/not an array", msg: &GroupList{}, body: "c0", code: BadRequest, why: "not an array"},

	// GROUP_LIST_ACK 0x8A
	{name: "group_list_ack/two groups", msg: &GroupListAck{}, body: "93 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", want: &GroupListAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}, canon: true},
	{name: "group_list_ack/no groups", msg: &GroupListAck{}, body: "93 00 08 90", want: &GroupListAck{GroupVersion: 8}, canon: true},
	{name: "group_list_ack/32 groups", msg: &GroupListAck{}, body: "93 00 09 dc002092a3673030a66d656d62657292a3673031a66d656d62657292a3673032a66d656d62657292a3673033a66d656d62657292a3673034a66d656d62657292a3673035a66d656d62657292a3673036a66d656d62657292a3673037a66d656d62657292a3673038a66d656d62657292a3673039a66d656d62657292a3673130a66d656d62657292a3673131a66d656d62657292a3673132a66d656d62657292a3673133a66d656d62657292a3673134a66d656d62657292a3673135a66d656d62657292a3673136a66d656d62657292a3673137a66d656d62657292a3673138a66d656d62657292a3673139a66d656d62657292a3673230a66d656d62657292a3673231a66d656d62657292a3673232a66d656d62657292a3673233a66d656d62657292a3673234a66d656d62657292a3673235a66d656d62657292a3673236a66d656d62657292a3673237a66d656d62657292a3673238a66d656d62657292a3673239a66d656d62657292a3673330a66d656d62657292a3673331a66d656d626572", want: &GroupListAck{GroupVersion: 9, Groups: groupsN(32)}, canon: true},
	{name: "group_list_ack/non-shortest (uint64 version, array16 groups)", msg: &GroupListAck{}, body: "93 00 cf0000000000000007 dc0002dc0002d9056c6f626279a66d656d62657292a36f7073da000561646d696e", want: &GroupListAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_list_ack/extra element in a membership", msg: &GroupListAck{}, body: "93 00 07 9293a56c6f626279a66d656d626572cf0000018bcfe5680093a36f7073a561646d696e81a16bc0", want: &GroupListAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_list_ack/membership extra element nested to level 8", msg: &GroupListAck{}, body: "93 00 07 9293a56c6f626279a66d656d626572919191919092a36f7073a561646d696e", want: &GroupListAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_list_ack/membership extra element nested to level 9", msg: &GroupListAck{}, body: "93 00 07 9293a56c6f626279a66d656d62657291919191919092a36f7073a561646d696e", code: BadRequest, why: "deeper than 8"},
	{name: "group_list_ack/bytes after the array", msg: &GroupListAck{}, body: "93 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_list_ack/array claims one more element than remains", msg: &GroupListAck{}, body: "94 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "truncated"},
	{name: "group_list_ack/array32 header claims 4 GiB elements", msg: &GroupListAck{}, body: "ddffffffff 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "truncated"},
	{name: "group_list_ack/trailing element nested 9 levels", msg: &GroupListAck{}, body: "94 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_list_ack/trailing element nested exactly 8 levels", msg: &GroupListAck{}, body: "94 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e 91919191919190", want: &GroupListAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_list_ack/extra trailing elements (str, map, ext)", msg: &GroupListAck{}, body: "96 00 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e a6667574757265 81a16b9201c0 d40107", want: &GroupListAck{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_list_ack/not an array", msg: &GroupListAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_list_ack/missing groups", msg: &GroupListAck{}, body: "92 00 07", code: BadRequest, why: "missing"},
	{name: "group_list_ack/group_version wrong type", msg: &GroupListAck{}, body: "93 00 a137 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "group_version: not an integer"},
	{name: "group_list_ack/groups nil", msg: &GroupListAck{}, body: "93 00 07 c0", code: BadRequest, why: "groups: not an array"},
	{name: "group_list_ack/membership not an array", msg: &GroupListAck{}, body: "93 00 07 91a56c6f626279", code: BadRequest, why: "membership: not an array"},
	{name: "group_list_ack/membership without role", msg: &GroupListAck{}, body: "93 00 07 9191a56c6f626279", code: BadRequest, why: "missing membership fields"},
	{name: "group_list_ack/role wrong type", msg: &GroupListAck{}, body: "93 00 07 9192a56c6f62627901", code: BadRequest, why: "role: not a string"},
	{name: "group_list_ack/33 groups", msg: &GroupListAck{}, body: "93 00 09 dc002192a3673030a66d656d62657292a3673031a66d656d62657292a3673032a66d656d62657292a3673033a66d656d62657292a3673034a66d656d62657292a3673035a66d656d62657292a3673036a66d656d62657292a3673037a66d656d62657292a3673038a66d656d62657292a3673039a66d656d62657292a3673130a66d656d62657292a3673131a66d656d62657292a3673132a66d656d62657292a3673133a66d656d62657292a3673134a66d656d62657292a3673135a66d656d62657292a3673136a66d656d62657292a3673137a66d656d62657292a3673138a66d656d62657292a3673139a66d656d62657292a3673230a66d656d62657292a3673231a66d656d62657292a3673232a66d656d62657292a3673233a66d656d62657292a3673234a66d656d62657292a3673235a66d656d62657292a3673236a66d656d62657292a3673237a66d656d62657292a3673238a66d656d62657292a3673239a66d656d62657292a3673330a66d656d62657292a3673331a66d656d62657292a3673332a66d656d626572", code: BadRequest, why: "groups: too many entries"},
	{name: "group_list_ack/role 17 bytes", msg: &GroupListAck{}, body: "93 00 07 9192a56c6f626279b1 78*17", code: BadRequest, why: "role: too long"},
	{name: "group_list_ack/group_id 65 bytes", msg: &GroupListAck{}, body: "93 00 07 9192d941 78*65 a66d656d626572", code: BadRequest, why: "group_id: too long"},
	{name: "group_list_ack/groups array16 claims 2 entries, 1 remains", msg: &GroupListAck{}, body: "93 00 07 dc000292a56c6f626279a66d656d626572", code: BadRequest, why: "truncated"},
	{name: "group_list_ack/groups array32 claims 4 GiB entries", msg: &GroupListAck{}, body: "93 00 07 ddffffffff", code: BadRequest, why: "truncated"},
	{name: "group_list_ack/refused INTERNAL", msg: &GroupListAck{}, body: "92 08 a573746f7265", err: &Error{Code: Internal, Message: "store"}, code: Internal},

	// GROUP_SYNC 0x42 (push, acked)
	{name: "group_sync/two groups", msg: &GroupSync{}, body: "92 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", want: &GroupSync{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}, canon: true},
	{name: "group_sync/no groups", msg: &GroupSync{}, body: "92 08 90", want: &GroupSync{GroupVersion: 8}, canon: true},
	{name: "group_sync/32 groups", msg: &GroupSync{}, body: "92 09 dc002092a3673030a66d656d62657292a3673031a66d656d62657292a3673032a66d656d62657292a3673033a66d656d62657292a3673034a66d656d62657292a3673035a66d656d62657292a3673036a66d656d62657292a3673037a66d656d62657292a3673038a66d656d62657292a3673039a66d656d62657292a3673130a66d656d62657292a3673131a66d656d62657292a3673132a66d656d62657292a3673133a66d656d62657292a3673134a66d656d62657292a3673135a66d656d62657292a3673136a66d656d62657292a3673137a66d656d62657292a3673138a66d656d62657292a3673139a66d656d62657292a3673230a66d656d62657292a3673231a66d656d62657292a3673232a66d656d62657292a3673233a66d656d62657292a3673234a66d656d62657292a3673235a66d656d62657292a3673236a66d656d62657292a3673237a66d656d62657292a3673238a66d656d62657292a3673239a66d656d62657292a3673330a66d656d62657292a3673331a66d656d626572", want: &GroupSync{GroupVersion: 9, Groups: groupsN(32)}, canon: true},
	{name: "group_sync/non-shortest (uint64 version, array16 groups)", msg: &GroupSync{}, body: "92 cf0000000000000007 dc0002dc0002d9056c6f626279a66d656d62657292a36f7073da000561646d696e", want: &GroupSync{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_sync/extra element in a membership", msg: &GroupSync{}, body: "92 07 9293a56c6f626279a66d656d626572cf0000018bcfe5680093a36f7073a561646d696e81a16bc0", want: &GroupSync{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_sync/membership extra element nested to level 8", msg: &GroupSync{}, body: "92 07 9293a56c6f626279a66d656d626572919191919092a36f7073a561646d696e", want: &GroupSync{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_sync/membership extra element nested to level 9", msg: &GroupSync{}, body: "92 07 9293a56c6f626279a66d656d62657291919191919092a36f7073a561646d696e", code: BadRequest, why: "deeper than 8"},
	{name: "group_sync/bytes after the array", msg: &GroupSync{}, body: "92 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_sync/array claims one more element than remains", msg: &GroupSync{}, body: "93 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "truncated"},
	{name: "group_sync/array32 header claims 4 GiB elements", msg: &GroupSync{}, body: "ddffffffff 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "truncated"},
	{name: "group_sync/trailing element nested 9 levels", msg: &GroupSync{}, body: "93 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_sync/trailing element nested exactly 8 levels", msg: &GroupSync{}, body: "93 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e 91919191919190", want: &GroupSync{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_sync/extra trailing elements (str, map, ext)", msg: &GroupSync{}, body: "95 07 9292a56c6f626279a66d656d62657292a36f7073a561646d696e a6667574757265 81a16b9201c0 d40107", want: &GroupSync{GroupVersion: 7, Groups: []Membership{{GroupID: "lobby", Role: "member"}, {GroupID: "ops", Role: "admin"}}}},
	{name: "group_sync/not an array", msg: &GroupSync{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_sync/missing groups", msg: &GroupSync{}, body: "91 07", code: BadRequest, why: "missing"},
	{name: "group_sync/group_version wrong type", msg: &GroupSync{}, body: "92 a137 9292a56c6f626279a66d656d62657292a36f7073a561646d696e", code: BadRequest, why: "group_version: not an integer"},
	{name: "group_sync/groups nil", msg: &GroupSync{}, body: "92 07 c0", code: BadRequest, why: "groups: not an array"},
	{name: "group_sync/membership not an array", msg: &GroupSync{}, body: "92 07 91a56c6f626279", code: BadRequest, why: "membership: not an array"},
	{name: "group_sync/membership without role", msg: &GroupSync{}, body: "92 07 9191a56c6f626279", code: BadRequest, why: "missing membership fields"},
	{name: "group_sync/role wrong type", msg: &GroupSync{}, body: "92 07 9192a56c6f62627901", code: BadRequest, why: "role: not a string"},
	{name: "group_sync/33 groups", msg: &GroupSync{}, body: "92 09 dc002192a3673030a66d656d62657292a3673031a66d656d62657292a3673032a66d656d62657292a3673033a66d656d62657292a3673034a66d656d62657292a3673035a66d656d62657292a3673036a66d656d62657292a3673037a66d656d62657292a3673038a66d656d62657292a3673039a66d656d62657292a3673130a66d656d62657292a3673131a66d656d62657292a3673132a66d656d62657292a3673133a66d656d62657292a3673134a66d656d62657292a3673135a66d656d62657292a3673136a66d656d62657292a3673137a66d656d62657292a3673138a66d656d62657292a3673139a66d656d62657292a3673230a66d656d62657292a3673231a66d656d62657292a3673232a66d656d62657292a3673233a66d656d62657292a3673234a66d656d62657292a3673235a66d656d62657292a3673236a66d656d62657292a3673237a66d656d62657292a3673238a66d656d62657292a3673239a66d656d62657292a3673330a66d656d62657292a3673331a66d656d62657292a3673332a66d656d626572", code: BadRequest, why: "groups: too many entries"},
	{name: "group_sync/role 17 bytes", msg: &GroupSync{}, body: "92 07 9192a56c6f626279b1 78*17", code: BadRequest, why: "role: too long"},
	{name: "group_sync/group_id 65 bytes", msg: &GroupSync{}, body: "92 07 9192d941 78*65 a66d656d626572", code: BadRequest, why: "group_id: too long"},
	{name: "group_sync/groups array16 claims 2 entries, 1 remains", msg: &GroupSync{}, body: "92 07 dc000292a56c6f626279a66d656d626572", code: BadRequest, why: "truncated"},
	{name: "group_sync/groups array32 claims 4 GiB entries", msg: &GroupSync{}, body: "92 07 ddffffffff", code: BadRequest, why: "truncated"},

	// GROUP_SEND 0x0B
	{name: "group_send/canonical", msg: &GroupSend{}, body: "92 a56c6f626279 c40568656c6c6f", want: &GroupSend{GroupID: "lobby", Payload: []byte("hello")}, canon: true},
	{name: "group_send/empty payload", msg: &GroupSend{}, body: "92 a56c6f626279 c400", want: &GroupSend{GroupID: "lobby"}, canon: true},
	{name: "group_send/1024-byte payload", msg: &GroupSend{}, body: "92 a56c6f626279 c50400 ab*1024", want: &GroupSend{GroupID: "lobby", Payload: bytes.Repeat([]byte{0xab}, 1024)}, canon: true},
	{name: "group_send/non-shortest (bin32, str8)", msg: &GroupSend{}, body: "92 d9056c6f626279 c60000000568656c6c6f", want: &GroupSend{GroupID: "lobby", Payload: []byte("hello")}},
	{name: "group_send/bytes after the array", msg: &GroupSend{}, body: "92 a56c6f626279 c40568656c6c6f c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_send/array claims one more element than remains", msg: &GroupSend{}, body: "93 a56c6f626279 c40568656c6c6f", code: BadRequest, why: "truncated"},
	{name: "group_send/array32 header claims 4 GiB elements", msg: &GroupSend{}, body: "ddffffffff a56c6f626279 c40568656c6c6f", code: BadRequest, why: "truncated"},
	{name: "group_send/trailing element nested 9 levels", msg: &GroupSend{}, body: "93 a56c6f626279 c40568656c6c6f 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_send/trailing element nested exactly 8 levels", msg: &GroupSend{}, body: "93 a56c6f626279 c40568656c6c6f 91919191919190", want: &GroupSend{GroupID: "lobby", Payload: []byte("hello")}},
	{name: "group_send/extra trailing elements (str, map, ext)", msg: &GroupSend{}, body: "95 a56c6f626279 c40568656c6c6f a6667574757265 81a16b9201c0 d40107", want: &GroupSend{GroupID: "lobby", Payload: []byte("hello")}},
	{name: "group_send/not an array", msg: &GroupSend{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_send/missing payload", msg: &GroupSend{}, body: "91 a56c6f626279", code: BadRequest, why: "missing"},
	{name: "group_send/payload wrong type", msg: &GroupSend{}, body: "92 a56c6f626279 a568656c6c6f", code: BadRequest, why: "payload: not binary"},
	{name: "group_send/payload nil", msg: &GroupSend{}, body: "92 a56c6f626279 c0", code: BadRequest, why: "payload: not binary"},
	{name: "group_send/payload 1025 bytes", msg: &GroupSend{}, body: "92 a56c6f626279 c50401 ab*1025", code: BadRequest, why: "payload: too long"},
	{name: "group_send/group_id 65 bytes", msg: &GroupSend{}, body: "92 d941 78*65 c40568656c6c6f", code: BadRequest, why: "group_id: too long"},
	{name: "group_send/payload bin16 claims 1024 bytes, 5 remain", msg: &GroupSend{}, body: "92 a56c6f626279 c5040068656c6c6f", code: BadRequest, why: "truncated"},

	// GROUP_SEND_ACK 0x8B
	{name: "group_send_ack/canonical", msg: &GroupSendAck{}, body: "92 00 05", want: &GroupSendAck{Delivered: 5}, canon: true},
	{name: "group_send_ack/non-shortest ints", msg: &GroupSendAck{}, body: "92 cf0000000000000000 d200000005", want: &GroupSendAck{Delivered: 5}},
	{name: "group_send_ack/bytes after the array", msg: &GroupSendAck{}, body: "92 00 05 c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_send_ack/array claims one more element than remains", msg: &GroupSendAck{}, body: "93 00 05", code: BadRequest, why: "truncated"},
	{name: "group_send_ack/array32 header claims 4 GiB elements", msg: &GroupSendAck{}, body: "ddffffffff 00 05", code: BadRequest, why: "truncated"},
	{name: "group_send_ack/trailing element nested 9 levels", msg: &GroupSendAck{}, body: "93 00 05 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_send_ack/trailing element nested exactly 8 levels", msg: &GroupSendAck{}, body: "93 00 05 91919191919190", want: &GroupSendAck{Delivered: 5}},
	{name: "group_send_ack/extra trailing elements (str, map, ext)", msg: &GroupSendAck{}, body: "95 00 05 a6667574757265 81a16b9201c0 d40107", want: &GroupSendAck{Delivered: 5}},
	{name: "group_send_ack/not an array", msg: &GroupSendAck{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_send_ack/missing delivered", msg: &GroupSendAck{}, body: "91 00", code: BadRequest, why: "missing delivered"},
	{name: "group_send_ack/delivered wrong type", msg: &GroupSendAck{}, body: "92 00 a135", code: BadRequest, why: "delivered: not an integer"},
	{name: "group_send_ack/delivered negative", msg: &GroupSendAck{}, body: "92 00 d1fed4", code: BadRequest, why: "delivered: negative"},
	{name: "group_send_ack/delivered uint32 truncated", msg: &GroupSendAck{}, body: "92 00 ce0000", code: BadRequest, why: "truncated"},
	{name: "group_send_ack/refused RATE_LIMITED", msg: &GroupSendAck{}, body: "93 06 a6627564676574 cd03e8", err: &Error{Code: RateLimited, Message: "budget", RetryAfterMs: 1000}, code: RateLimited},

	// GROUP_MESSAGE 0x43 (push, not acked)
	{name: "group_message/canonical", msg: &GroupMessage{}, body: "94 a56c6f626279 a6542d30303032 63 c40568656c6c6f", want: &GroupMessage{GroupID: "lobby", From: "T-0002", MsgID: 99, Payload: []byte("hello")}, canon: true},
	{name: "group_message/empty payload", msg: &GroupMessage{}, body: "94 a56c6f626279 a6542d30303032 63 c400", want: &GroupMessage{GroupID: "lobby", From: "T-0002", MsgID: 99}, canon: true},
	{name: "group_message/non-shortest ints", msg: &GroupMessage{}, body: "94 a56c6f626279 a6542d30303032 cf0000000000000063 c5000568656c6c6f", want: &GroupMessage{GroupID: "lobby", From: "T-0002", MsgID: 99, Payload: []byte("hello")}},
	{name: "group_message/bytes after the array", msg: &GroupMessage{}, body: "94 a56c6f626279 a6542d30303032 63 c40568656c6c6f c0", code: BadRequest, why: "bytes after the body array"},
	{name: "group_message/array claims one more element than remains", msg: &GroupMessage{}, body: "95 a56c6f626279 a6542d30303032 63 c40568656c6c6f", code: BadRequest, why: "truncated"},
	{name: "group_message/array32 header claims 4 GiB elements", msg: &GroupMessage{}, body: "ddffffffff a56c6f626279 a6542d30303032 63 c40568656c6c6f", code: BadRequest, why: "truncated"},
	{name: "group_message/trailing element nested 9 levels", msg: &GroupMessage{}, body: "95 a56c6f626279 a6542d30303032 63 c40568656c6c6f 9191919191919190", code: BadRequest, why: "deeper than 8"},
	{name: "group_message/trailing element nested exactly 8 levels", msg: &GroupMessage{}, body: "95 a56c6f626279 a6542d30303032 63 c40568656c6c6f 91919191919190", want: &GroupMessage{GroupID: "lobby", From: "T-0002", MsgID: 99, Payload: []byte("hello")}},
	{name: "group_message/extra trailing elements (str, map, ext)", msg: &GroupMessage{}, body: "97 a56c6f626279 a6542d30303032 63 c40568656c6c6f a6667574757265 81a16b9201c0 d40107", want: &GroupMessage{GroupID: "lobby", From: "T-0002", MsgID: 99, Payload: []byte("hello")}},
	{name: "group_message/not an array", msg: &GroupMessage{}, body: "c0", code: BadRequest, why: "not an array"},
	{name: "group_message/missing payload", msg: &GroupMessage{}, body: "93 a56c6f626279 a6542d30303032 63", code: BadRequest, why: "missing"},
	{name: "group_message/msg_id wrong type", msg: &GroupMessage{}, body: "94 a56c6f626279 a6542d30303032 a23939 c40568656c6c6f", code: BadRequest, why: "msg_id: not an integer"},
	{name: "group_message/payload 1025 bytes", msg: &GroupMessage{}, body: "94 a56c6f626279 a6542d30303032 63 c50401 ab*1025", code: BadRequest, why: "payload: too long"},
	{name: "group_message/from 65 bytes", msg: &GroupMessage{}, body: "94 a56c6f626279 d941 78*65 63 c40568656c6c6f", code: BadRequest, why: "from: too long"},
	{name: "group_message/from bin32 claims 4 GiB", msg: &GroupMessage{}, body: "94 a56c6f626279 c6ffffffff", code: BadRequest, why: "from: not a string"},
	{name: "group_message/from str32 claims 4 GiB", msg: &GroupMessage{}, body: "94 a56c6f626279 dbffffffff", code: BadRequest, why: "truncated"},
}
