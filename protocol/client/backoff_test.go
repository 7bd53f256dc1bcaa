package client

import (
	"errors"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	maxRand := func(n int64) int64 { return n - 1 } // the top of random(0, x)
	zeroRand := func(n int64) int64 { return 0 }
	lost := errors.New("connection lost")
	goaway := func(code protocol.Code, retry uint64) error {
		return &GoawayError{Goaway: protocol.Goaway{Code: code, RetryAfterMs: retry}}
	}
	type step struct {
		err    error
		lasted time.Duration
		want   time.Duration
	}
	tests := []struct {
		name  string
		rand  func(int64) int64
		steps []step
	}{
		{"exponential to the cap", maxRand, []step{
			{lost, 0, 2 * time.Second}, // k=1
			{lost, 0, 4 * time.Second},
			{lost, 5 * time.Second, 8 * time.Second}, // a short session counts
			{lost, 0, 16 * time.Second},
			{lost, 0, 32 * time.Second},
			{lost, 0, 64 * time.Second},
			{lost, 0, 128 * time.Second},
			{lost, 0, 256 * time.Second},
			{lost, 0, 300 * time.Second}, // min(300 s, 512 s)
			{lost, 0, 300 * time.Second},
			{lost, time.Minute, time.Second}, // a 60 s session resets k
			{lost, 0, 2 * time.Second},
		}},
		{"retry_after wins when longer", zeroRand, []step{
			{&protocol.Error{Code: protocol.Unavailable, RetryAfterMs: 4500}, 0, 4500 * time.Millisecond},
			{lost, 0, 0},
			{goaway(protocol.Unavailable, 1200), time.Hour, 1200 * time.Millisecond},
		}},
		{"random term wins when longer", maxRand, []step{
			{&protocol.Error{Code: protocol.Unavailable, RetryAfterMs: 100}, 0, 2 * time.Second},
		}},
		{"replaced doubles to 1 h", zeroRand, []step{
			{goaway(protocol.Conflict, 0), 10 * time.Second, time.Minute},
			{goaway(protocol.Conflict, 0), 2 * time.Hour, 2 * time.Minute},
			{goaway(protocol.Conflict, 0), time.Minute, 4 * time.Minute},
			{goaway(protocol.Conflict, 0), time.Minute, 8 * time.Minute},
			{goaway(protocol.Conflict, 0), time.Minute, 16 * time.Minute},
			{goaway(protocol.Conflict, 0), time.Minute, 32 * time.Minute},
			{goaway(protocol.Conflict, 0), time.Minute, time.Hour},
			{goaway(protocol.Conflict, 0), time.Minute, time.Hour},
			{lost, time.Minute, 0}, // a long session ended otherwise: reset
			{goaway(protocol.Conflict, 0), time.Minute, time.Minute},
		}},
		{"HELLO refused 2 or 3", zeroRand, []step{
			{&protocol.Error{Code: protocol.Unauthenticated}, 0, time.Hour},
			{&protocol.Error{Code: protocol.Forbidden}, 0, time.Hour},
			{&protocol.Error{Code: protocol.Conflict, RetryAfterMs: 600_000}, 0, 10 * time.Minute},
			// Not a HELLO refusal: a live session's request was refused.
			{&protocol.Error{Code: protocol.Forbidden}, time.Second, 0},
			// An ERROR frame is not a refusal either.
			{&protocol.ErrorFrame{Code: protocol.Unauthenticated}, 0, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &Backoff{Rand: tc.rand}
			for i, s := range tc.steps {
				if got := b.Next(s.err, s.lasted); got != s.want {
					t.Fatalf("step %d (%v, %v): wait %v, want %v", i, s.err, s.lasted, got, s.want)
				}
			}
		})
	}
}

func TestBackoffShrunkAndRandomRange(t *testing.T) {
	t.Parallel()
	b := &Backoff{Base: time.Millisecond, Cap: 10 * time.Millisecond, ReplacedMin: 5 * time.Millisecond,
		ReplacedMax: 12 * time.Millisecond, AuthWait: 50 * time.Millisecond, StableSession: time.Second}
	for range 1000 {
		if w := b.Next(errors.New("x"), 0); w < 0 || w > 10*time.Millisecond {
			t.Fatalf("wait %v outside [0, 10 ms]", w)
		}
	}
	b.Reset()
	g := &GoawayError{Goaway: protocol.Goaway{Code: protocol.Conflict}}
	for _, want := range []time.Duration{5, 10, 12, 12} {
		if w := b.Next(g, time.Millisecond); w != want*time.Millisecond {
			t.Fatalf("replaced wait %v, want %v ms", w, want)
		}
	}
	if w := b.Next(&protocol.Error{Code: protocol.Forbidden}, 0); w != 50*time.Millisecond {
		t.Fatalf("auth wait %v", w)
	}
}

func TestEncodeAttrs(t *testing.T) {
	t.Parallel()
	attrs, err := EncodeAttrs(map[string]any{"site": "north", "slot": 3, "beta": true, "big": uint64(1 << 40)})
	if err != nil {
		t.Fatal(err)
	}
	// The server's decoder accepts it.
	w := protocol.NewWriter()
	frame := w.AppendFrame(0, &protocol.Hello{DeviceID: "T-1", FW: "1", Model: "m", Attrs: attrs})
	var h protocol.Hello
	if err := protocol.DecodeBody(protocol.NewReader(nil), frame[6:], &h); err != nil {
		t.Fatal(err)
	}
	if string(h.Attrs) != string(attrs) {
		t.Fatalf("attrs %x != %x", h.Attrs, attrs)
	}
	status, err := EncodeStatus(map[string]any{"temp": 21.5, "up": int64(-3)})
	if err != nil {
		t.Fatal(err)
	}
	w.Reset()
	var hb protocol.Heartbeat
	if err := protocol.DecodeBody(protocol.NewReader(nil), w.AppendFrame(1, &protocol.Heartbeat{Status: status})[6:], &hb); err != nil {
		t.Fatal(err)
	}
	bad := []map[string]any{
		{"f": 1.5},                      // no floats in attrs
		{"k": make([]int, 1)},           // unsupported type
		{"k": string(make([]byte, 65))}, // value too long
		{string(make([]byte, 33)): 1},   // key too long
		{"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, // 17 entries
			"f": 1, "g": 1, "h": 1, "i": 1, "j": 1, "k": 1,
			"l": 1, "m": 1, "n": 1, "o": 1, "p": 1, "q": 1},
	}
	for _, m := range bad {
		if _, err := EncodeAttrs(m); err == nil {
			t.Errorf("EncodeAttrs(%v) succeeded", m)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{DeviceID: "bad id", FleetSecret: []byte("s")},
		{DeviceID: "T-1"},
		{DeviceID: "T-1", FleetSecret: []byte("s"), FW: "a\x00b"},
		{DeviceID: "T-1", FleetSecret: []byte("s"), Model: string(make([]byte, 33))},
	} {
		if err := cfg.check(); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	cfg := Config{HBMin: 100 * time.Millisecond}
	for in, want := range map[uint64]time.Duration{0: 100 * time.Millisecond, 1: time.Second, 5000: 600 * time.Second, 1 << 63: 600 * time.Second} {
		if got := cfg.clampInterval(in); got != want {
			t.Errorf("clamp(%d) = %v, want %v", in, got, want)
		}
	}
	if got := (&Config{}).clampInterval(1); got != 10*time.Second {
		t.Errorf("default clamp(1) = %v", got)
	}
}
