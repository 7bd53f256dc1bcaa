package protocol

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"testing"
)

// fuzzTargets is every decoder, as the zero message it decodes into. Its
// order is FuzzDecode's kind argument; append only, so corpus entries keep
// their meaning.
var fuzzTargets = []Message{
	&Hello{}, &HelloOK{}, &ClockChallenge{}, &Heartbeat{}, &HeartbeatAck{},
	&Bye{}, &Ack{AckType: Response(TypeBye)}, &Refusal{RespType: Response(TypeControl)},
	&Goaway{}, &ErrorFrame{},
	&Control{}, &ControlAck{}, &ControlTimeout{},
	&UpgradeQuery{}, &UpgradeQueryAck{}, &UpgradeReport{}, &UpgradeNotice{},
	&ScheduleRequest{}, &ScheduleAck{}, &UpgradeCheck{}, &UpgradeCheckAck{},
	&GroupAuth{}, &GroupAuthAck{}, &GroupChange{}, &GroupChangeAck{},
	&GroupList{}, &GroupListAck{}, &GroupSync{}, &GroupSend{}, &GroupSendAck{},
	&GroupMessage{},
}

// typeName is the Go type name of m, which names its fuzz target.
func typeName(m Message) string { return reflect.TypeOf(m).Elem().Name() }

// seedGolden adds the golden bodies of the target's type (all of them
// when name is "") to f's corpus through add.
func seedGolden(name string, add func(kind byte, body []byte)) {
	for _, c := range goldenCases {
		n := typeName(c.msg)
		if name != "" && n != name {
			continue
		}
		for k, m := range fuzzTargets {
			if typeName(m) == n {
				add(byte(k), goldenHex(c.body))
			}
		}
	}
}

// checkDecode is the property every decoder must have on any body: no
// panic (the fuzzer reports one), an error that is a protocol error, and
// on success a message that is no bigger than the body and survives an
// encode/decode round trip unchanged, whose encoding is stable.
func checkDecode(t *testing.T, tmpl Message, body []byte) {
	r := NewReader(nil)
	m := fresh(tmpl)
	err := DecodeBody(r, body, m)
	if r.Pos() > len(body) {
		t.Fatalf("read %d bytes of a %d-byte body", r.Pos(), len(body))
	}
	if err != nil {
		checkError(t, tmpl, err, len(body))
		return
	}
	if r.Left() != 0 {
		t.Fatalf("success with %d bytes left", r.Left())
	}
	if n := longest(reflect.ValueOf(m)); n > len(body) {
		t.Fatalf("decoded a %d-byte field from a %d-byte body", n, len(body))
	}
	w := NewWriter()
	m.Encode(w)
	enc := append([]byte(nil), w.Bytes()...)
	m2 := fresh(tmpl)
	if err := DecodeBody(r, enc, m2); err != nil {
		t.Fatalf("re-decode of %x: %v (decoded %+v from %x)", enc, err, m, body)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip\n got %+v\nwant %+v", m2, m)
	}
	w.Reset()
	m2.Encode(w)
	if string(w.Bytes()) != string(enc) {
		t.Fatalf("unstable encoding %x then %x", enc, w.Bytes())
	}
}

// checkError checks a decode error: it must be one of the protocol's
// error types with a message no longer than the body, and a refusal (or
// clock challenge, control timeout) must itself round-trip.
func checkError(t *testing.T, tmpl Message, err error, bodyLen int) {
	var again Message
	switch e := err.(type) {
	case *Error:
		if StatusOf(e) == OK {
			t.Fatalf("error with status OK: %v", e)
		}
		if len(e.Message) > max(bodyLen, MaxMessage) {
			t.Fatalf("error message of %d bytes", len(e.Message))
		}
		// A response decoder reads a refusal as the same *Error again.
		if _, isRefusal := tmpl.(*Refusal); isRefusal || tmpl.Type()&ResponseBit == 0 || tmpl.Type() == TypeError {
			return
		}
		again = &Refusal{RespType: tmpl.Type(), Err: e}
	case *ClockChallenge:
		again = e
	case *ControlTimeout:
		again = e
	default:
		t.Fatalf("foreign error %T: %v", err, err)
	}
	if n := longest(reflect.ValueOf(err)); n > max(bodyLen, MaxMessage) {
		t.Fatalf("error with a %d-byte field from a %d-byte body", n, bodyLen)
	}
	w := NewWriter()
	again.Encode(w)
	err2 := DecodeBody(NewReader(nil), w.Bytes(), fresh(tmpl))
	if !reflect.DeepEqual(err, err2) {
		t.Fatalf("refusal round trip\n got %#v\nwant %#v", err2, err)
	}
}

// longest returns the length of the longest string or slice reachable
// from v.
func longest(v reflect.Value) int {
	n := 0
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			n = longest(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			n = max(n, longest(v.Field(i)))
		}
	case reflect.String:
		n = v.Len()
	case reflect.Slice:
		n = v.Len()
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := 0; i < v.Len(); i++ {
				n = max(n, longest(v.Index(i)))
			}
		}
	}
	return n
}

// fuzzOne is the body of a per-type target.
func fuzzOne(f *testing.F, tmpl Message) {
	seedGolden(typeName(tmpl), func(_ byte, body []byte) { f.Add(body) })
	f.Fuzz(func(t *testing.T, body []byte) { checkDecode(t, tmpl, body) })
}

// FuzzDecode runs every decoder; kind picks one from fuzzTargets, so the
// fuzzer can carry an input that one decoder likes over to the others.
func FuzzDecode(f *testing.F) {
	seedGolden("", func(kind byte, body []byte) { f.Add(kind, body) })
	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		checkDecode(t, fuzzTargets[int(kind)%len(fuzzTargets)], body)
	})
}

func FuzzDecodeHello(f *testing.F)           { fuzzOne(f, &Hello{}) }
func FuzzDecodeHelloOK(f *testing.F)         { fuzzOne(f, &HelloOK{}) }
func FuzzDecodeClockChallenge(f *testing.F)  { fuzzOne(f, &ClockChallenge{}) }
func FuzzDecodeHeartbeat(f *testing.F)       { fuzzOne(f, &Heartbeat{}) }
func FuzzDecodeHeartbeatAck(f *testing.F)    { fuzzOne(f, &HeartbeatAck{}) }
func FuzzDecodeBye(f *testing.F)             { fuzzOne(f, &Bye{}) }
func FuzzDecodeAck(f *testing.F)             { fuzzOne(f, &Ack{AckType: Response(TypeBye)}) }
func FuzzDecodeRefusal(f *testing.F)         { fuzzOne(f, &Refusal{RespType: Response(TypeControl)}) }
func FuzzDecodeGoaway(f *testing.F)          { fuzzOne(f, &Goaway{}) }
func FuzzDecodeErrorFrame(f *testing.F)      { fuzzOne(f, &ErrorFrame{}) }
func FuzzDecodeControl(f *testing.F)         { fuzzOne(f, &Control{}) }
func FuzzDecodeControlAck(f *testing.F)      { fuzzOne(f, &ControlAck{}) }
func FuzzDecodeControlTimeout(f *testing.F)  { fuzzOne(f, &ControlTimeout{}) }
func FuzzDecodeUpgradeQuery(f *testing.F)    { fuzzOne(f, &UpgradeQuery{}) }
func FuzzDecodeUpgradeQueryAck(f *testing.F) { fuzzOne(f, &UpgradeQueryAck{}) }
func FuzzDecodeUpgradeReport(f *testing.F)   { fuzzOne(f, &UpgradeReport{}) }
func FuzzDecodeUpgradeNotice(f *testing.F)   { fuzzOne(f, &UpgradeNotice{}) }
func FuzzDecodeScheduleRequest(f *testing.F) { fuzzOne(f, &ScheduleRequest{}) }
func FuzzDecodeScheduleAck(f *testing.F)     { fuzzOne(f, &ScheduleAck{}) }
func FuzzDecodeUpgradeCheck(f *testing.F)    { fuzzOne(f, &UpgradeCheck{}) }
func FuzzDecodeUpgradeCheckAck(f *testing.F) { fuzzOne(f, &UpgradeCheckAck{}) }
func FuzzDecodeGroupAuth(f *testing.F)       { fuzzOne(f, &GroupAuth{}) }
func FuzzDecodeGroupAuthAck(f *testing.F)    { fuzzOne(f, &GroupAuthAck{}) }
func FuzzDecodeGroupChange(f *testing.F)     { fuzzOne(f, &GroupChange{}) }
func FuzzDecodeGroupChangeAck(f *testing.F)  { fuzzOne(f, &GroupChangeAck{}) }
func FuzzDecodeGroupList(f *testing.F)       { fuzzOne(f, &GroupList{}) }
func FuzzDecodeGroupListAck(f *testing.F)    { fuzzOne(f, &GroupListAck{}) }
func FuzzDecodeGroupSync(f *testing.F)       { fuzzOne(f, &GroupSync{}) }
func FuzzDecodeGroupSend(f *testing.F)       { fuzzOne(f, &GroupSend{}) }
func FuzzDecodeGroupSendAck(f *testing.F)    { fuzzOne(f, &GroupSendAck{}) }
func FuzzDecodeGroupMessage(f *testing.F)    { fuzzOne(f, &GroupMessage{}) }

// Every decoder has its own fuzz target, named after its type.
func TestDecoderTargetsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range fuzzTargets {
		if seen[typeName(m)] {
			t.Errorf("%s listed twice", typeName(m))
		}
		seen[typeName(m)] = true
	}
	for _, c := range goldenCases {
		if !seen[typeName(c.msg)] {
			t.Errorf("golden rows for %s, which has no fuzz target", typeName(c.msg))
		}
	}
	f, err := parser.ParseFile(token.NewFileSet(), "fuzz_test.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]bool{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok {
			funcs[fd.Name.Name] = true
		}
	}
	for name := range seen {
		if !funcs["FuzzDecode"+name] {
			t.Errorf("no FuzzDecode%s", name)
		}
	}
}
