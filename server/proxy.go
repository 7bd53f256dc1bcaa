package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/panjf2000/gnet/v2"
	"github.com/pires/go-proxyproto"
)

// PROXY protocol v2 (haproxy.org/download/2.9/doc/proxy-protocol.txt):
// a 16-byte fixed part (12-byte signature, version/command, family,
// 2-byte length) then length bytes of addresses and TLVs.
const (
	proxyFixedLen = 16
	proxySigLen   = 12
	// maxProxyHeader bounds the header a proxy may send, in bytes:
	// addresses take at most 216 (AF_UNIX) and the TLVs load balancers
	// add (TLS details, VPC endpoint ids) a few hundred more.
	maxProxyHeader = 2048
)

// Refusal reasons at accept, as metric labels.
const (
	refusedMaxConns       = "max_connections"
	refusedShutdown       = "shutdown"
	refusedPerSource      = "per_source"
	refusedProxyUntrusted = "proxy_untrusted"
	refusedProxyHeader    = "proxy_header"
)

var refusedReasons = []string{refusedMaxConns, refusedShutdown, refusedPerSource, refusedProxyUntrusted, refusedProxyHeader}

// proxyTrusted reports whether peer may send PROXY headers.
func (s *Server) proxyTrusted(peer net.Addr) bool {
	if len(s.proxyFrom) == 0 {
		return true
	}
	ta, ok := peer.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.proxyFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// readProxyHeader takes the PROXY v2 header off the front of the inbound
// buffer, before any TGP framing: done once it is consumed, ok false when
// the bytes are not a valid v2 header (the connection is then closed).
// The header is parsed by go-proxyproto from a copy of the peeked bytes;
// its source address becomes the terminal's address (c.live.Remote). A
// LOCAL command (the proxy's own health check) keeps the proxy's address.
func (c *conn) readProxyHeader(gc gnet.Conn) (done, ok bool) {
	n := min(gc.InboundBuffered(), proxyFixedLen)
	b, _ := gc.Peek(n)
	if !bytes.HasPrefix(proxyproto.SIGV2, b[:min(n, proxySigLen)]) {
		return false, false // not v2 (a v1 text header or TGP itself)
	}
	if n < proxyFixedLen {
		return false, true
	}
	total := proxyFixedLen + int(binary.BigEndian.Uint16(b[14:16]))
	if total > maxProxyHeader {
		return false, false
	}
	if gc.InboundBuffered() < total {
		return false, true
	}
	b, _ = gc.Peek(total)
	raw := bytes.Clone(b) // b dies at Discard
	_, _ = gc.Discard(total)
	h, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(raw), total))
	if err != nil || h.Version != 2 {
		return false, false
	}
	if h.Command.IsProxy() {
		if src, _, ok := h.TCPAddrs(); ok {
			c.live.Remote = src
		}
	}
	return true, true
}
