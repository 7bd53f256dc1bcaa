package loadtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// openMQTT opens a session for a fresh terminal and returns its CONNECT.
func openMQTT(t *testing.T, id string) (Proto, *Term, []byte) {
	t.Helper()
	p := NewMQTT()
	term := &Term{ID: id}
	return p, term, p.Open(term, time.Now(), nil)
}

func TestMQTTEncodeGolden(t *testing.T) {
	long := strings.Repeat("x", 200)
	cases := []struct {
		name string
		got  func() []byte
		want []byte
	}{
		{"connect", func() []byte { _, _, b := openMQTT(t, "t-1"); return b }, []byte{
			0x10, 15, // CONNECT, remaining 10 + 2 + 3
			0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0x02, 0x58, // level 4, clean session, keepalive 600
			0, 3, 't', '-', '1',
		}},
		{"connect two-byte length", func() []byte { _, _, b := openMQTT(t, long); return b[:3] }, []byte{
			0x10, 0xD4, 0x01, // 212 = 0x54 + 1<<7
		}},
		{"pingreq", func() []byte {
			p, term, _ := openMQTT(t, "a")
			return p.Ping(term, 1, []byte{0xAA})
		}, []byte{0xAA, 0xC0, 0x00}},
	}
	for _, c := range cases {
		if got := c.got(); !bytes.Equal(got, c.want) {
			t.Errorf("%s: got % x, want % x", c.name, got, c.want)
		}
	}
	if _, _, b := openMQTT(t, long); len(b) != 3+212 {
		t.Errorf("long CONNECT: %d bytes, want %d", len(b), 3+212)
	}
}

func TestMQTTReadGolden(t *testing.T) {
	cases := []struct {
		name    string
		pings   []uint16 // outstanding before the read
		raw     []byte
		n       int
		ev      Event
		wantErr error
	}{
		{name: "connack accepted", raw: []byte{0x20, 2, 0, 0}, n: 4, ev: Event{Kind: EvOpened}},
		{name: "connack session present", raw: []byte{0x20, 2, 1, 0, 0xD0}, n: 4, ev: Event{Kind: EvOpened}},
		{name: "connack refused", raw: []byte{0x20, 2, 0, 5}, n: 4,
			ev: Event{Kind: EvRefused, Err: ConnackCode(5), Status: "NOT_AUTHORIZED"}},
		{name: "connack unknown code", raw: []byte{0x20, 2, 0, 9}, n: 4,
			ev: Event{Kind: EvRefused, Err: ConnackCode(9), Status: connackUnknownStatus}},
		{name: "pingresp", pings: []uint16{7, 8}, raw: []byte{0xD0, 0}, n: 2, ev: Event{Kind: EvPong, Seq: 7}},
		{name: "pingresp unsolicited", raw: []byte{0xD0, 0}, n: 2, ev: Event{}},
		{name: "other packet", raw: []byte{0x90, 3, 0, 1, 0, 0xD0, 0}, n: 5, ev: Event{}},
		{name: "empty", raw: nil},
		{name: "type only", raw: []byte{0x20}},
		{name: "connack partial", raw: []byte{0x20, 2, 0}},
		{name: "length continues", raw: []byte{0x30, 0xFF, 0xFF, 0xFF}},
		{name: "length five bytes", raw: []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF}, wantErr: errMQTTRemaining},
		{name: "too large", raw: []byte{0x30, 0x81, 0x80, 0x04}, wantErr: errMQTTTooLarge},
		{name: "connack bad length", raw: []byte{0x20, 3, 0, 0, 0}, wantErr: errMQTTConnack},
	}
	for _, c := range cases {
		p, term, _ := openMQTT(t, "golden")
		for _, s := range c.pings {
			p.Ping(term, s, nil)
		}
		n, ev, err := p.Read(term, c.raw)
		if !errors.Is(err, c.wantErr) || n != c.n || !sameEvent(ev, c.ev) {
			t.Errorf("%s: got n=%d ev=%+v err=%v; want n=%d ev=%+v err=%v", c.name, n, ev, err, c.n, c.ev, c.wantErr)
		}
	}
	if got := ConnackCode(3).Error(); got != "server unavailable" {
		t.Errorf("ConnackCode(3) = %q", got)
	}
}

// sameEvent compares events; MQTT never sets Reply or Interval.
func sameEvent(a, b Event) bool {
	return a.Kind == b.Kind && a.Seq == b.Seq && a.Err == b.Err && a.Status == b.Status &&
		a.Interval == b.Interval && len(a.Reply) == 0 && len(b.Reply) == 0
}

// readAll feeds in to p.Read until it wants more, returning the events and
// the bytes left over.
func readAll(t *testing.T, p Proto, term *Term, in []byte) ([]Event, []byte) {
	t.Helper()
	var evs []Event
	for {
		n, ev, err := p.Read(term, in)
		if err != nil {
			t.Fatalf("Read(% x): %v", in, err)
		}
		if n == 0 {
			return evs, in
		}
		evs = append(evs, ev)
		in = in[n:]
	}
}

func TestMQTTEverySplit(t *testing.T) {
	stream := []byte{0x20, 2, 0, 0, 0xD0, 0, 0xD0, 0, 0xD0, 0}
	want := []Event{{Kind: EvOpened}, {Kind: EvPong, Seq: 10}, {Kind: EvPong, Seq: 11}, {Kind: EvPong, Seq: 12}}
	// Every way of delivering the stream in three reads (two cuts).
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j++ {
			p, term, _ := openMQTT(t, "split")
			for s := uint16(10); s < 13; s++ {
				p.Ping(term, s, nil)
			}
			var got []Event
			var buf []byte
			for _, chunk := range [][]byte{stream[:i], stream[i:j], stream[j:]} {
				var evs []Event
				evs, buf = readAll(t, p, term, append(buf, chunk...))
				got = append(got, evs...)
			}
			if len(buf) != 0 || len(got) != len(want) {
				t.Fatalf("cuts %d,%d: events %+v, left % x", i, j, got, buf)
			}
			for k := range want {
				if !sameEvent(got[k], want[k]) {
					t.Fatalf("cuts %d,%d: event %d = %+v, want %+v", i, j, k, got[k], want[k])
				}
			}
		}
	}
}

func TestMQTTPingWindow(t *testing.T) {
	p, term, _ := openMQTT(t, "window")
	pong := []byte{0xD0, 0}
	// Fill the window, then two untracked pings around an answered one.
	for s := range uint16(mqttPingWindow) {
		p.Ping(term, s, nil)
	}
	p.Ping(term, 100, nil) // untracked: window full
	if _, ev, _ := p.Read(term, pong); ev.Kind != EvPong || ev.Seq != 0 {
		t.Fatalf("first pong %+v", ev)
	}
	p.Ping(term, 101, nil) // untracked: must stay behind 100
	for s := uint16(1); s < mqttPingWindow; s++ {
		if _, ev, _ := p.Read(term, pong); ev.Kind != EvPong || ev.Seq != s {
			t.Fatalf("pong %d: %+v", s, ev)
		}
	}
	for range 2 { // the untracked pings' pongs
		if _, ev, _ := p.Read(term, pong); ev.Kind != EvNone {
			t.Fatalf("untracked pong: %+v", ev)
		}
	}
	p.Ping(term, 200, nil) // drained: tracked again
	if _, ev, _ := p.Read(term, pong); ev.Kind != EvPong || ev.Seq != 200 {
		t.Fatalf("after drain: %+v", ev)
	}
}

func TestMQTTPingAllocs(t *testing.T) {
	p, term, _ := openMQTT(t, "allocs")
	out := make([]byte, 0, 16)
	pong := []byte{0xD0, 0}
	allocs := testing.AllocsPerRun(1000, func() {
		out = p.Ping(term, 1, out[:0])
		if _, ev, err := p.Read(term, pong); err != nil || ev.Kind != EvPong {
			t.Fatalf("%+v %v", ev, err)
		}
	})
	if allocs != 0 {
		t.Errorf("ping round trip allocates %.1f times", allocs)
	}
}

// fakeBroker accepts one MQTT client on loopback: it checks CONNECT,
// answers CONNACK, and answers each PINGREQ with a PINGRESP.
func fakeBroker(t *testing.T, wantID string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	t.Cleanup(func() {
		ln.Close()
		if err := <-errc; err != nil {
			t.Error("broker:", err)
		}
	})
	go func() {
		errc <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			var hdr [2]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return err
			}
			body := make([]byte, hdr[1]) // a short client id: one length byte
			if _, err := io.ReadFull(c, body); err != nil {
				return err
			}
			want := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0x02, 0x58, 0, byte(len(wantID))}, wantID...)
			if hdr[0] != 0x10 || !bytes.Equal(body, want) {
				return errors.New("bad CONNECT")
			}
			if _, err := c.Write([]byte{0x20, 2, 0, 0}); err != nil {
				return err
			}
			for {
				if _, err := io.ReadFull(c, hdr[:]); err == io.EOF {
					return nil
				} else if err != nil {
					return err
				}
				if hdr != [2]byte{0xC0, 0} {
					return errors.New("expected PINGREQ")
				}
				if _, err := c.Write([]byte{0xD0, 0}); err != nil {
					return err
				}
			}
		}()
	}()
	return ln.Addr().String()
}

func TestMQTTFakeBroker(t *testing.T) {
	addr := fakeBroker(t, "term-42")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	p, term, connect := openMQTT(t, "term-42")
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	var in []byte
	buf := make([]byte, 64)
	// next reads until Read reports an event.
	next := func() Event {
		for {
			if n, ev, err := p.Read(term, in); err != nil {
				t.Fatal(err)
			} else if n > 0 {
				in = in[n:]
				return ev
			}
			k, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			in = append(in, buf[:k]...)
		}
	}
	if ev := next(); ev.Kind != EvOpened {
		t.Fatalf("after CONNECT: %+v", ev)
	}
	// Pipelined pings come back in order with their seqs.
	var out []byte
	for s := uint16(500); s < 505; s++ {
		out = p.Ping(term, s, out)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	for s := uint16(500); s < 505; s++ {
		if ev := next(); ev.Kind != EvPong || ev.Seq != s {
			t.Fatalf("pong: %+v, want seq %d", ev, s)
		}
	}
	// And one at a time.
	for s := uint16(9); s < 12; s++ {
		if _, err := c.Write(p.Ping(term, s, nil)); err != nil {
			t.Fatal(err)
		}
		if ev := next(); ev.Kind != EvPong || ev.Seq != s {
			t.Fatalf("pong: %+v, want seq %d", ev, s)
		}
	}
}
