package server

import (
	"context"
	"testing"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/presence"
	"github.com/termd/termd/server/presence/history"
	"github.com/termd/termd/storage"
)

// heartbeatBench is one live connection on a loop that is never run by
// gnet: enough to drive the loop's heartbeat path directly.
func heartbeatBench(tb testing.TB) (*conn, codec.Frame) {
	cfg := testConfig(tb)
	cfg.Server.FrameRate = 1e12
	cfg.Server.FrameBurst = 1 << 30
	// With the online history on, as termd runs.
	s, err := Open(context.Background(), cfg, Options{Store: storage.NewMemory(), History: history.New(history.Options{})})
	if err != nil {
		tb.Fatal(err)
	}
	l := newLoop(s, nil)
	c := &conn{l: l, state: stateLive, authed: true, timeout: 90_000, tokens: 1 << 30}
	c.live = presence.Entry{DeviceID: "T-bench", SessionID: 1, Owner: c}
	c.seenMs = s.nowMs() + 1<<40 // keep last_seen out of the write-behind
	c.SetFlags(1, presence.FlagUpgradePending)
	c.SetGroupVersion(1, 5) // the terminal sends 3: GROUP_STALE
	w := protocol.NewWriter()
	raw := w.AppendTaggedFrame(protocol.NewMAC(), &c.ks, protocol.DirTerminal, 0, 1, &protocol.Heartbeat{GroupVersion: 3})
	src := sliceSource(raw)
	f, err := codec.Next(&src, codec.Limits{MaxLen: 4096, Tagged: true})
	if err != nil {
		tb.Fatal(err)
	}
	return c, f
}

// BenchmarkHeartbeatPath is the loop's work for one verified HEARTBEAT:
// dispatch checks, decode, flags, HEARTBEAT_ACK encode and tag.
func BenchmarkHeartbeatPath(b *testing.B) {
	c, f := heartbeatBench(b)
	now := c.l.s.nowMs()
	b.ReportAllocs()
	for b.Loop() {
		c.l.out.Reset()
		c.dispatch(&f, now)
	}
}

// The heartbeat path allocates nothing, flags included.
func TestHeartbeatPathAllocs(t *testing.T) {
	c, f := heartbeatBench(t)
	now := c.l.s.nowMs()
	if n := testing.AllocsPerRun(1000, func() {
		c.l.out.Reset()
		c.dispatch(&f, now)
	}); n != 0 {
		t.Fatalf("%v allocations per heartbeat", n)
	}
	var ack protocol.HeartbeatAck
	out := c.l.out.Bytes()
	if err := protocol.DecodeBody(protocol.NewReader(nil), out[codec.HeaderSize:len(out)-codec.TagSize], &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Flags != uint64(presence.FlagGroupStale|presence.FlagUpgradePending) {
		t.Fatalf("ack flags %b", ack.Flags)
	}
}

// GROUP_STALE is set exactly when the terminal's group_version differs
// from the session's, whatever the other flags; versions past 2^24 compare
// on their low 24 bits.
func TestHeartbeatGroupStale(t *testing.T) {
	c, _ := heartbeatBench(t)
	for _, tc := range []struct {
		server, terminal uint64
		flags            uint32
		want             uint64
	}{
		{0, 0, 0, 0},
		{5, 5, presence.FlagUpgradePending, uint64(presence.FlagUpgradePending)},
		{5, 3, 0, uint64(presence.FlagGroupStale)},
		{0, 1, 0, uint64(presence.FlagGroupStale)},
		{1<<30 + 7, 1<<30 + 7, 0, 0},
		{1<<30 + 7, 7, 0, 0}, // equal modulo 2^24: documented blind spot
		{1<<20 + 1, 1, presence.FlagUpgradePending, uint64(presence.FlagGroupStale | presence.FlagUpgradePending)},
	} {
		c.SetFlags(1, tc.flags)
		c.SetGroupVersion(1, tc.server)
		if got := c.hbAck(tc.terminal); got != tc.want {
			t.Errorf("server %d terminal %d flags %b: ack %b, want %b", tc.server, tc.terminal, tc.flags, got, tc.want)
		}
	}
	c.SetGroupVersion(2, 99) // another session's: ignored
	if got := c.hbAck(1<<20 + 1); got != uint64(presence.FlagUpgradePending) {
		t.Errorf("a late call for another session changed the version: %b", got)
	}
}

// sliceSource is a codec.Source over a slice.
type sliceSource []byte

func (s *sliceSource) Peek(n int) ([]byte, error) {
	if n > len(*s) {
		return nil, codec.ErrIncomplete
	}
	return (*s)[:n], nil
}

func (s *sliceSource) InboundBuffered() int { return len(*s) }
