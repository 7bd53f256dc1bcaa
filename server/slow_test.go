package server

import (
	"bufio"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence"
)

// A terminal that sends but never reads is closed once its unsent bytes
// pass server.outbound_limit, instead of growing the server's memory.
func TestSlowReaderClosed(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.FrameRate = 1e9
	cfg.Server.FrameBurst = 1 << 30
	cfg.Server.OutboundLimit = 16 << 10
	ts := startServer(t, cfg, nil)

	c := dialSlowReader(t, ts.addr)
	nc := c.nc
	c.login("T-slow")

	// Send heartbeats (never reading the acks) until the server gives up.
	c.w.Reset()
	for i := 0; i < 1000; i++ {
		c.w.AppendTaggedFrame(c.mac, &c.ks, protocol.DirTerminal, c.nOut, uint16(i), &protocol.Heartbeat{})
		c.nOut++
	}
	batch := append([]byte(nil), c.w.Bytes()...)
	deadline := time.Now().Add(20 * time.Second)
	for ts.Presence.Get("T-slow") != nil {
		if time.Now().After(deadline) {
			t.Fatal("slow reader was not closed")
		}
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := nc.Write(batch); err != nil {
			break
		}
		// Re-tag the next batch with the advancing counter.
		c.w.Reset()
		for i := 0; i < 1000; i++ {
			c.w.AppendTaggedFrame(c.mac, &c.ks, protocol.DirTerminal, c.nOut, uint16(i), &protocol.Heartbeat{})
			c.nOut++
		}
		batch = append(batch[:0], c.w.Bytes()...)
	}
	ev := ts.waitEvent(t, "T-slow", events.KindOffline, 5*time.Second)
	if ev.Reason != presence.ReasonSlowReader.String() {
		t.Fatalf("reason %q", ev.Reason)
	}
}

// dialSlowReader dials with a tiny receive window, which makes the kernel
// stop taking the server's bytes early, so they pile up in termd's
// outbound buffer. The socket is held until the test ends: one the GC
// finalizes is closed with unread data, which resets it.
func dialSlowReader(t *testing.T, addr string) *rawClient {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReaderSize(nc, codec.MaxFrameBytes), w: protocol.NewWriter(), r: protocol.NewReader(nil), mac: protocol.NewMAC()}
}
