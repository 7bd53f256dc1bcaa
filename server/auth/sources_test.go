package auth

import (
	"net/netip"
	"testing"
)

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"},
		{"2001:db8:1:2::1", "2001:db8:1:2::"},
	} {
		if got := SourceKey(netip.MustParseAddr(tc.in)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("SourceKey(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestSourcesPending(t *testing.T) {
	s := NewSources(2, 0, 0)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	steps := []struct {
		call string // open, done
		addr netip.Addr
		want bool
	}{
		{"open", a, true}, {"open", a, true}, {"open", a, false}, // third refused
		{"open", b, true},                    // others unaffected
		{"done", a, true}, {"open", a, true}, // a slot freed
		{"open", a, false},
		{"open", netip.Addr{}, true}, {"open", netip.Addr{}, true}, {"open", netip.Addr{}, true}, // not counted
	}
	for i, st := range steps {
		switch st.call {
		case "open":
			if got := s.Open(st.addr, 0); got != st.want {
				t.Fatalf("step %d: Open(%v) = %v", i, st.addr, got)
			}
		case "done":
			s.Done(st.addr)
		}
	}
	if s.Pending(a) != 2 || s.Pending(b) != 1 {
		t.Fatalf("pending a=%d b=%d", s.Pending(a), s.Pending(b))
	}
	s.Done(a)
	s.Done(a)
	s.Done(a) // never below zero
	s.Done(b)
	s.Sweep(0)
	if n := s.Len(); n != 0 {
		t.Fatalf("%d sources kept after everything closed", n)
	}
}

func TestSourcesHelloRate(t *testing.T) {
	s := NewSources(0, 2, 3) // 2 per second, burst 3
	a := netip.MustParseAddr("192.0.2.1")
	steps := []struct {
		now, retry int64
	}{
		{0, 0}, {0, 0}, {0, 0}, // the burst
		{0, 501}, // empty: one token takes 500 ms
		{499, 2}, // almost
		{500, 0}, // refilled one
		{500, 501},
		{5000, 0}, {5000, 0}, {5000, 0}, // full again (capped at the burst)
		{5000, 501},
	}
	for i, st := range steps {
		if got := s.Hello(a, st.now); got != st.retry {
			t.Fatalf("step %d: Hello at %d = %d, want %d", i, st.now, got, st.retry)
		}
	}
	if s.Hello(netip.MustParseAddr("192.0.2.2"), 5000) != 0 {
		t.Fatal("another address limited")
	}
	s.Sweep(5000)
	if n := s.Len(); n != 2 { // neither bucket is full yet
		t.Fatalf("%d sources kept, want 2", n)
	}
	s.Sweep(60_000)
	if n := s.Len(); n != 0 {
		t.Fatalf("%d sources kept once their buckets refilled", n)
	}
}
