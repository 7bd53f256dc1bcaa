package server

import (
	"golang.org/x/sys/unix"

	"github.com/termd/termd/server/presence"
)

// What counts as a replacement (spec §3.4's duplicate-device rule).
//
// The cool-down exists to stop two live terminals that share an id from
// taking the session from each other for ever. A terminal on a flaky
// link that reconnects is not that: its old session is half-open (no
// FIN reached us) and silent, or already closed. So a takeover counts
// only when the session taken over is still live on both tests:
//
//   - heard from within dupSilenceMs = min(hb_interval, 30 s), which is
//     how long a terminal waits for a HEARTBEAT_ACK before it gives up on
//     the connection (spec §4): a terminal reconnecting because its link
//     failed has been silent at least that long; and
//   - still open when its own loop ends it: the HELLO is checked on the
//     new connection's loop, and the old connection's close may not have
//     been processed yet on its loop (a clean close racing the reconnect,
//     TestReplacementRaceWithClose). The old loop therefore confirms the
//     replacement only if the connection still serves the session and the
//     kernel still has it ESTABLISHED (a FIN or RST received moves it to
//     CLOSE_WAIT or CLOSE, whether or not the loop has read it yet).
//
// A HELLO is refused (and the cool-down starts) only when the session it
// would take over is live by the first test and the device already has
// replace_limit confirmed replacements in replace_window.

// ackGiveUpMs caps how long a terminal waits for a HEARTBEAT_ACK before
// it reconnects (spec §4: min(hb_interval_s, 30 s)), in ms.
const ackGiveUpMs = 30_000

// dupSilenceMs is the silence after which a session's takeover is not a
// duplicate.
func (s *Server) dupSilenceMs() int64 {
	return min(int64(s.hbIntervalSeconds())*1000, ackGiveUpMs)
}

// heardFrom reports whether e had a valid frame within dupSilenceMs of now.
func (s *Server) heardFrom(e *presence.Entry, now int64) bool {
	return now-e.LastSeen() < s.dupSilenceMs()
}

// confirmReplacement runs on c's loop when a newer session of the device
// takes over session sessionID: it records a replacement only if c is
// still live (see above).
func (c *conn) confirmReplacement(sessionID uint64) {
	s := c.l.s
	now := s.nowMs()
	if !c.serves(sessionID) || !s.heardFrom(&c.live, now) || !peerOpen(c.gc.Fd()) {
		return
	}
	s.dups.Record(c.live.DeviceID, now)
}

// peerOpen reports whether the kernel still has the TCP connection on fd
// established, i.e. no FIN or RST has arrived from the peer. When it
// cannot tell, it says open: a duplicate must not escape the rule.
func peerOpen(fd int) bool {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return true
	}
	return info.State == unix.BPF_TCP_ESTABLISHED
}
