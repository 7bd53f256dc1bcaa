package loadtest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Source addresses for loopback targets. One source address has about
// 28,000 ephemeral ports towards one target (Linux's default range), and
// a few thousand terminals per second of churn leave sockets in
// TIME_WAIT; spreading connections over 49 addresses (Linux routes all of
// 127/8 to lo) multiplies the ports available.
const (
	srcAutoFirst = "127.0.0.2"
	srcAutoLast  = "127.0.0.50"
	// maxSources bounds an explicit A-B range.
	maxSources = 1 << 16
)

// SourceAddrs hands out local addresses round-robin, one per connection.
// The zero value (and nil) means "let the kernel choose". Safe for
// concurrent use.
type SourceAddrs struct {
	addrs []*net.TCPAddr
	next  atomic.Uint64
}

// ParseSource reads -src for target: "off" (the kernel chooses), "auto"
// (127.0.0.2–127.0.0.50 when target is an IPv4 loopback address, else
// off) or an explicit range "A-B" of IPv4 addresses ("127.0.0.2-127.0.0.9";
// "127.0.0.2-9" is short for the same).
func ParseSource(spec, target string) (*SourceAddrs, error) {
	switch spec {
	case "off", "":
		return &SourceAddrs{}, nil
	case "auto":
		if !loopbackV4(target) {
			return &SourceAddrs{}, nil
		}
		spec = srcAutoFirst + "-" + srcAutoLast
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		b = a
	}
	first, err := netip.ParseAddr(a)
	if err != nil || !first.Is4() {
		return nil, fmt.Errorf("-src %q: want auto, off or A-B with IPv4 addresses", spec)
	}
	if !strings.Contains(b, ".") {
		// "127.0.0.2-9": the last octet only.
		b = a[:strings.LastIndexByte(a, '.')+1] + b
	}
	last, err := netip.ParseAddr(b)
	if err != nil || !last.Is4() {
		return nil, fmt.Errorf("-src %q: bad end address %q", spec, b)
	}
	lo, hi := v4int(first), v4int(last)
	if hi < lo || hi-lo >= maxSources {
		return nil, fmt.Errorf("-src %q: the range must be ascending and at most %d addresses", spec, maxSources)
	}
	s := &SourceAddrs{}
	for v := lo; ; v++ {
		var ip [4]byte
		binary.BigEndian.PutUint32(ip[:], v)
		s.addrs = append(s.addrs, &net.TCPAddr{IP: net.IP(ip[:])})
		if v == hi {
			break
		}
	}
	return s, nil
}

func v4int(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// loopbackV4 reports whether target's host is an IPv4 loopback literal
// or "localhost".
func loopbackV4(target string) bool {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Is4() && a.IsLoopback()
}

// Next returns the source address of the next connection, or nil when
// the kernel should choose.
func (s *SourceAddrs) Next() *net.TCPAddr {
	if s == nil || len(s.addrs) == 0 {
		return nil
	}
	i := s.next.Add(1) - 1
	return s.addrs[i%uint64(len(s.addrs))]
}

// Len is the number of source addresses (0: the kernel chooses).
func (s *SourceAddrs) Len() int {
	if s == nil {
		return 0
	}
	return len(s.addrs)
}

// String describes the addresses for the report.
func (s *SourceAddrs) String() string {
	switch s.Len() {
	case 0:
		return "kernel's choice"
	case 1:
		return s.addrs[0].IP.String()
	}
	return s.addrs[0].IP.String() + "-" + s.addrs[len(s.addrs)-1].IP.String()
}
