package server

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/panjf2000/gnet/v2"
	"github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/auth"
)

// preHello is what a connection needs only until HELLO_OK: its place in
// its loop's eviction queue, the source address it is counted under, and
// a clock challenge. It is allocated at accept and dropped at HELLO_OK,
// so a live session pays one nil pointer for it (conn must stay within
// its 288-byte size class, see TestConnSize).
type preHello struct {
	prev, next *conn // the loop's FIFO of pre-HELLO connections, oldest first
	linked     bool
	src        netip.Addr // per-source key; the zero Addr is not counted
	challenge  [protocol.NonceSize]byte
}

// Why eviction and not refusal: an idle socket costs nothing to open, so
// a cap that refuses new connections is a cap anyone can fill. The
// oldest pre-HELLO connection has had the longest to send HELLO; a
// terminal sends it within a round trip of connecting, so evicting
// oldest-first only ever closes sockets that had their chance, and a
// terminal that proves its MAC never loses its place to an idle one.

// linkPre appends c to the loop's FIFO of pre-HELLO connections.
func (l *loop) linkPre(c *conn) {
	p := c.pre
	p.prev, p.next = l.preTail, nil
	if l.preTail != nil {
		l.preTail.pre.next = c
	} else {
		l.preHead = c
	}
	l.preTail = c
	p.linked = true
	l.preN.Add(1)
}

// unlinkPre takes c out of the FIFO; it is a no-op if c is not in it.
func (l *loop) unlinkPre(c *conn) {
	p := c.pre
	if p == nil || !p.linked {
		return
	}
	if p.prev != nil {
		p.prev.pre.next = p.next
	} else {
		l.preHead = p.next
	}
	if p.next != nil {
		p.next.pre.prev = p.prev
	} else {
		l.preTail = p.prev
	}
	p.prev, p.next, p.linked = nil, nil, false
	l.preN.Add(-1)
}

// maxEvictScan bounds how many connections with a HELLO waiting an
// eviction skips before it gives up for this accept.
const maxEvictScan = 16

// evictOldest closes the loop's oldest idle pre-HELLO connection, on the
// loop, and reports whether room was made. A connection whose whole first
// frame is already waiting in the kernel is not idle: it is about to be
// read (gnet runs the OnOpens of a burst of accepts before it reads any
// socket, so a terminal's HELLO can be waiting behind hundreds of
// accepts), and goes to the back of the queue instead. When every one
// looked at has its HELLO waiting, none is evicted and room is reported
// all the same: each of them leaves HELLO at the next read.
func (l *loop) evictOldest() bool {
	if l.preHead == nil {
		return false
	}
	for range min(maxEvictScan, int(l.preN.Load())) {
		c := l.preHead
		if !c.helloWaiting() {
			l.unlinkPre(c)
			l.s.m.helloEvicted.Inc()
			_ = l.el.Close(c.gc)
			return true
		}
		l.unlinkPre(c)
		l.linkPre(c)
	}
	return true
}

// makeRoom evicts the oldest pre-HELLO connection to make room for a new
// one accepted on l: l's own oldest at once, or else, when l holds none,
// the oldest of the loop holding the most (posted to that loop, so the
// node is over its cap by at most the evictions in flight). It reports
// false when no connection anywhere is before HELLO.
func (s *Server) makeRoom(l *loop) bool {
	if l.evictOldest() {
		return true
	}
	var most *loop
	var n int32
	s.loops.Range(func(_, v any) bool {
		if o := v.(*loop); o != l {
			if k := o.preN.Load(); k > n {
				most, n = o, k
			}
		}
		return true
	})
	if most == nil {
		return false
	}
	most.post(most.evictFn)
	return true
}

// sourceOf is the per-source key of a peer address, or the zero Addr
// when the per-source limits do not apply to it (exempt or not IP).
func (s *Server) sourceOf(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	for _, p := range s.sourceExempt {
		if p.Contains(ip) {
			return netip.Addr{}
		}
	}
	return auth.SourceKey(ip)
}

// admitSource counts c against its source's pre-HELLO limit and reports
// false (counting nothing) when the source has too many in HELLO.
func (c *conn) admitSource(s *Server) bool {
	src := s.sourceOf(c.live.Remote)
	if !s.sources.Open(src, s.nowMs()) {
		s.m.refused[refusedPerSource].Inc()
		return false
	}
	c.pre.src = src
	return true
}

// leavePreHello ends c's pre-HELLO accounting: at HELLO_OK or at close.
func (c *conn) leavePreHello() {
	if c.pre == nil {
		return
	}
	c.l.unlinkPre(c)
	c.l.s.sources.Done(c.pre.src)
	c.pre = nil
}

// refuseAtOpen counts a connection refused in OnOpen and closes it.
func (s *Server) refuseAtOpen(reason string) ([]byte, gnet.Action) {
	s.m.refused[reason].Inc()
	return nil, gnet.Close
}

// helloWaiting reports whether the kernel holds c's whole first frame
// (after the PROXY header, when one is expected), unread: c is not idle.
// Bytes gnet already read mean a partial frame that stalled: idle.
func (c *conn) helloWaiting() bool {
	if c.gc.InboundBuffered() > 0 {
		return false
	}
	fd := c.gc.Fd()
	avail, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil || avail < codec.HeaderSize {
		return false
	}
	buf := c.l.peekScratch()
	n, _, err := unix.Recvfrom(fd, buf[:min(avail, len(buf))], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err != nil {
		return false
	}
	b, off := buf[:n], 0
	if c.state == stateProxy {
		if n < proxyFixedLen || !bytes.HasPrefix(b, proxyproto.SIGV2) {
			return false
		}
		off = proxyFixedLen + int(binary.BigEndian.Uint16(b[14:16]))
	}
	if n < off+codec.HeaderSize {
		return false
	}
	h, err := codec.ParseHeader(b[off:])
	return err == nil && avail >= off+codec.HeaderSize+int(h.Len)
}

// peekScratch is the loop's buffer for helloWaiting: room for the
// largest PROXY header and a frame header.
func (l *loop) peekScratch() []byte {
	if l.peek == nil {
		l.peek = make([]byte, maxProxyHeader+codec.HeaderSize)
	}
	return l.peek
}
