package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/presence"
)

// Environment of the push helper process: the server's address, the
// device id prefix, the first index and how many terminals it holds.
const (
	envPushHelper = "TERMD_PUSH_HELPER"
	helperLine    = "HELPER "
)

func notice(id string) *protocol.UpgradeNotice {
	return &protocol.UpgradeNotice{ID: id, AppID: "pos", Version: "2.0.0", Kind: protocol.NoticeRelease}
}

// pushHelper is a child process (this test binary) holding terminals: a
// 10,000-terminal test needs more descriptors than one process may open
// for both ends, and the race detector caps a process's goroutines.
type pushHelper struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startPushHelper(t *testing.T, addr, prefix string, first, n int) *pushHelper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPushHelperProcess$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d,%d", envPushHelper, addr, prefix, first, n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &pushHelper{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return h
}

// line returns the helper's next line of its own output.
func (h *pushHelper) line(t *testing.T) string {
	t.Helper()
	for h.out.Scan() {
		if s, ok := strings.CutPrefix(h.out.Text(), helperLine); ok {
			return s
		}
	}
	t.Fatalf("push helper ended: %v", h.out.Err())
	return ""
}

// report asks the helper what its terminals received.
func (h *pushHelper) report(t *testing.T) map[string]int {
	t.Helper()
	if _, err := io.WriteString(h.in, "report\n"); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, kv := range strings.Fields(h.line(t)) {
		k, v, _ := strings.Cut(kv, "=")
		got[k], _ = strconv.Atoi(v)
	}
	return got
}

// TestPushHelperProcess is the body of a push helper; run directly it has
// nothing to do.
func TestPushHelperProcess(t *testing.T) {
	spec := os.Getenv(envPushHelper)
	if spec == "" {
		t.Skip("runs only as a child of TestPushTenThousandSessions")
	}
	p := strings.Split(spec, ",")
	addr, prefix := p[0], p[1]
	first, _ := strconv.Atoi(p[2])
	n, _ := strconv.Atoi(p[3])
	var received sync.Map // type name → *atomic.Int64
	var bad atomic.Int64
	count := func(name string) {
		v, _ := received.LoadOrStore(name, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	clients := make([]*rawClient, n)
	for i := range clients {
		c := dialRaw(t, addr)
		c.login(fmt.Sprintf("%s%05d", prefix, first+i))
		c.nc.SetWriteDeadline(time.Time{}) // login's deadline would fail later acks
		clients[i] = c
	}
	for _, c := range clients {
		go func() {
			for {
				f, err := c.read(time.Hour)
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
						if bad.Add(1) < 3 {
							fmt.Fprintf(os.Stderr, "helper read: %v\n", err)
						}
					}
					return
				}
				count(protocol.TypeName(f.typ))
				if protocol.PushNeedsAck(f.typ) {
					c.w.Reset()
					b := c.w.AppendTaggedFrame(c.mac, &c.ks, protocol.DirTerminal, c.nOut, f.seq, &protocol.Ack{AckType: protocol.Response(f.typ)})
					c.nOut++
					if _, err := c.nc.Write(b); err != nil {
						if bad.Add(1) < 3 {
							fmt.Fprintf(os.Stderr, "helper write: %v\n", err)
						}
						return
					}
				}
			}
		}()
	}
	fmt.Printf("%sready %d\n", helperLine, n)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var parts []string
		received.Range(func(k, v any) bool {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
			return true
		})
		parts = append(parts, fmt.Sprintf("bad=%d", bad.Load()))
		fmt.Printf("%s%s\n", helperLine, strings.Join(parts, " "))
	}
}

// A push reaches every one of 10,000 sessions spread over all event
// loops, every ack is matched to its push, and a fan-out of one
// GROUP_MESSAGE is written to all of them with valid tags.
func TestPushTenThousandSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 terminals")
	}
	const perHelper, helpers = 5000, 2
	const total = perHelper * helpers
	cfg := testConfig(t)
	ts := startServer(t, cfg, nil)
	hs := make([]*pushHelper, helpers)
	for i := range hs {
		hs[i] = startPushHelper(t, ts.addr, "P-", i*perHelper, perHelper)
	}
	start := time.Now()
	for _, h := range hs {
		if l := h.line(t); l != fmt.Sprintf("ready %d", perHelper) {
			t.Fatalf("helper: %q", l)
		}
	}
	t.Logf("%d terminals logged in after %v", total, time.Since(start))
	start = time.Now()
	ids := make([]string, total)
	for i := range ids {
		ids[i] = fmt.Sprintf("P-%05d", i)
	}
	perLoop := map[*loop]int{}
	ts.Presence.Each(func(e *presence.Entry) bool {
		perLoop[e.Owner.(*conn).l]++
		return true
	})
	if len(perLoop) != cfg.Server.EventLoops {
		t.Fatalf("sessions on %d loops, want all %d", len(perLoop), cfg.Server.EventLoops)
	}

	results := make(chan PushResult, total)
	for _, id := range ids {
		ok, err := ts.Push(id, notice("r1"), func(r PushResult) { results <- r })
		if !ok || err != nil {
			t.Fatalf("Push(%s) = %v, %v", id, ok, err)
		}
	}
	got := map[PushResult]int{}
	deadline := time.After(60 * time.Second)
	for i := 0; i < total; i++ {
		select {
		case r := <-results:
			got[r]++
		case <-deadline:
			var rep []map[string]int
			for _, h := range hs {
				rep = append(rep, h.report(t))
			}
			t.Fatalf("after 60 s only %d of %d pushes ended: %v; unmatched acks %d; terminals report %v",
				i, total, got, ts.m.acksUnmatched.Get(), rep)
		}
	}
	if got[PushAcked] != total {
		t.Fatalf("outcomes %v, want %d acked", got, total)
	}
	t.Logf("%d pushes acked after %v", total, time.Since(start))

	delivered := make(chan int, 1)
	msg := &protocol.GroupMessage{GroupID: "all", From: "", MsgID: 1, Payload: []byte("to everyone")}
	if err := ts.Fanout(ids, msg, func(n int) { delivered <- n }); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-delivered:
		if n != total {
			t.Fatalf("fan-out written to %d sessions, want %d", n, total)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("fan-out did not finish")
	}
	// The helpers count what their terminals received; the group message
	// may still be in flight on a few sockets.
	want := map[string]int{"upgrade_notice": total, "group_message": total}
	var sum map[string]int
	for end := time.Now().Add(30 * time.Second); ; {
		sum = map[string]int{}
		for _, h := range hs {
			for k, v := range h.report(t) {
				sum[k] += v
			}
		}
		if sum["upgrade_notice"] == want["upgrade_notice"] && sum["group_message"] == want["group_message"] {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("terminals received %v, want %v", sum, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sum["bad"] != 0 {
		t.Fatalf("%d terminals saw a bad frame or tag", sum["bad"])
	}
	if n := ts.m.pendingAcks.Load(); n != 0 {
		t.Fatalf("%d acks still pending", n)
	}
}

// Acks are matched by type and seq; a push not acked in time is given up
// and its late ack is counted, not fatal; past max_pending_acks the
// oldest is given up at once; a session that ends drops what it owed.
func TestPushAcks(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.PushAckTimeout = config.D(300 * time.Millisecond)
	cfg.Server.MaxPendingAcks = 2
	ts := startServer(t, cfg, nil)

	if ok, err := ts.Push("nobody", notice("r"), nil); ok || err != nil {
		t.Fatalf("push to an offline device: %v, %v", ok, err)
	}
	if _, err := ts.Push("nobody", &protocol.Heartbeat{}, nil); !errors.Is(err, ErrNotPush) {
		t.Fatalf("push of a request type: %v", err)
	}
	if err := ts.Fanout([]string{"x"}, notice("r"), nil); !errors.Is(err, ErrNotPush) {
		t.Fatalf("fan-out of a push that needs an ack: %v", err)
	}

	c := dialRaw(t, ts.addr)
	c.login("T-ack")
	results := make(chan PushResult, 16)
	var lastSeq uint16
	push := func() protocol.UpgradeNotice {
		t.Helper()
		if ok, err := ts.Push("T-ack", notice("r"), func(r PushResult) { results <- r }); !ok || err != nil {
			t.Fatalf("Push: %v %v", ok, err)
		}
		f := c.mustRead()
		if f.typ != protocol.TypeUpgradeNotice {
			t.Fatalf("got type %#x", f.typ)
		}
		var n protocol.UpgradeNotice
		if err := c.decode(f, &n); err != nil {
			t.Fatal(err)
		}
		lastSeq = f.seq
		return n
	}
	expect := func(want PushResult, within time.Duration) {
		t.Helper()
		select {
		case r := <-results:
			if r != want {
				t.Fatalf("outcome %v, want %v", r, want)
			}
		case <-time.After(within):
			t.Fatalf("no outcome within %v, want %v", within, want)
		}
	}
	ack := func(seq uint16, typ byte) { c.send(seq, &protocol.Ack{AckType: typ}) }

	// Acked.
	push()
	first := lastSeq
	ack(lastSeq, protocol.Response(protocol.TypeUpgradeNotice))
	expect(PushAcked, 2*time.Second)

	// Not acked: given up after push_ack_timeout; the late ack is counted
	// and the session goes on.
	push()
	if lastSeq != first+1 {
		t.Fatalf("push seq %d after %d: pushes count up by one", lastSeq, first)
	}
	start := time.Now()
	expect(PushGivenUp, 3*time.Second)
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("given up after %v, before push_ack_timeout", el)
	}
	unmatched := ts.m.acksUnmatched.Get()
	ack(lastSeq, protocol.Response(protocol.TypeUpgradeNotice))
	// An ack of the wrong type does not match either.
	ack(lastSeq, protocol.Response(protocol.TypeGroupSync))
	c.send(7, &protocol.Heartbeat{})
	if f := c.mustRead(); f.typ != protocol.Response(protocol.TypeHeartbeat) {
		t.Fatalf("after late acks: type %#x", f.typ)
	}
	if d := ts.m.acksUnmatched.Get() - unmatched; d != 2 {
		t.Fatalf("%d unmatched acks counted, want 2", d)
	}

	// Bounded: with 2 outstanding, a third gives up the oldest at once.
	push()
	push()
	push()
	expect(PushGivenUp, 100*time.Millisecond)
	// The session ends: the two it still owed are dropped.
	c.nc.Close()
	expect(PushDropped, 2*time.Second)
	expect(PushDropped, 2*time.Second)
	ts.waitEvent(t, "T-ack", events.KindOffline, 2*time.Second)
	if ok, _ := ts.Push("T-ack", notice("r"), nil); ok {
		t.Fatal("push accepted for a device that went offline")
	}
	if n := ts.m.pendingAcks.Load(); n != 0 {
		t.Fatalf("%d acks still pending", n)
	}
}

// A terminal that does not read is closed per the outbound bound during
// a fan-out; the others keep receiving every message.
func TestFanoutSlowReader(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.OutboundLimit = 16 << 10
	ts := startServer(t, cfg, nil)

	slow := dialSlowReader(t, ts.addr)
	slow.login("T-slow")

	fast := dialRaw(t, ts.addr)
	fast.login("T-fast")
	var got atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		for {
			f, err := fast.read(10 * time.Second)
			if err != nil {
				readErr <- err
				return
			}
			if f.typ == protocol.TypeGroupMessage {
				got.Add(1)
			}
		}
	}()

	payload := make([]byte, protocol.MaxPayload)
	sent := 0
	// The kernel's socket buffers take megabytes before termd's own
	// outbound buffer starts to grow.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ts.Presence.Get("T-slow") != nil; i++ {
		if i == 50_000 || time.Now().After(deadline) {
			t.Fatalf("the slow reader was never closed (%d fan-outs)", i)
		}
		delivered := make(chan int, 1)
		msg := &protocol.GroupMessage{GroupID: "g", MsgID: uint64(i), Payload: payload}
		if err := ts.Fanout([]string{"T-slow", "T-fast"}, msg, func(n int) { delivered <- n }); err != nil {
			t.Fatal(err)
		}
		if n := <-delivered; n < 1 {
			t.Fatalf("fan-out %d written to %d sessions", i, n)
		}
		sent++
	}
	ev := ts.waitEvent(t, "T-slow", events.KindOffline, 5*time.Second)
	if ev.Reason != presence.ReasonSlowReader.String() {
		t.Fatalf("slow reader went offline with %q", ev.Reason)
	}
	for end := time.Now().Add(10 * time.Second); got.Load() < int64(sent); {
		select {
		case err := <-readErr:
			t.Fatalf("the reading terminal: %v after %d of %d", err, got.Load(), sent)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("the reading terminal got %d of %d", got.Load(), sent)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ts.Presence.Get("T-fast") == nil {
		t.Fatal("the reading terminal was closed too")
	}
}

// Pushes racing with takeovers and closes: every accepted push ends
// exactly once, and every terminal only ever sees frames whose tags and
// counters verify (a push is never sent on a session it was not for).
func TestPushRacesTakeoverAndClose(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.PushAckTimeout = config.D(200 * time.Millisecond)
	cfg.Auth.ReplaceLimit = 1000
	ts := startServer(t, cfg, nil)

	var accepted, ended atomic.Int64
	var twice atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var once atomic.Bool
				done := func(PushResult) {
					if once.Swap(true) {
						twice.Store(true)
					}
					ended.Add(1)
				}
				var ok bool
				if i%2 == 0 {
					ok, _ = ts.Push("T-race", notice("r"), done)
				} else {
					ok, _ = ts.Push("T-race", &protocol.GroupMessage{GroupID: "g", MsgID: uint64(i)}, done)
				}
				if ok {
					accepted.Add(1)
				}
				if i%64 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}

	badFrames := make(chan error, 64)
	reader := func(c *rawClient) {
		for {
			_, err := c.read(5 * time.Second)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "connection reset") {
					badFrames <- err
				}
				return
			}
		}
	}
	var clients []*rawClient
	for round := 0; round < 8; round++ {
		c := dialRaw(t, ts.addr)
		c.login("T-race")
		go reader(c)
		clients = append(clients, c)
		time.Sleep(30 * time.Millisecond)
		if round%3 == 2 {
			c.nc.Close() // a close, not a takeover, between some rounds
			time.Sleep(10 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	for _, c := range clients {
		c.nc.Close()
	}
	for end := time.Now().Add(5 * time.Second); ended.Load() != accepted.Load(); {
		if time.Now().After(end) {
			t.Fatalf("%d pushes accepted, %d ended", accepted.Load(), ended.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if twice.Load() {
		t.Fatal("a push ended twice")
	}
	if accepted.Load() == 0 {
		t.Fatal("no push was accepted: the race was not exercised")
	}
	select {
	case err := <-badFrames:
		t.Fatalf("a terminal read a bad frame: %v", err)
	default:
	}
}

// A flag a feature sets from another goroutine is in the next
// HEARTBEAT_ACK; it stays with the device for its next session and is
// cleared the same way.
func TestHeartbeatFlags(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	c := dialRaw(t, ts.addr)
	c.login("T-flags")
	seq := uint16(0)
	beat := func(c *rawClient) uint64 {
		t.Helper()
		seq++
		c.send(seq, &protocol.Heartbeat{})
		var ack protocol.HeartbeatAck
		if err := c.decode(c.mustRead(), &ack); err != nil {
			t.Fatal(err)
		}
		return ack.Flags
	}
	if f := beat(c); f != 0 {
		t.Fatalf("flags %b before any was set", f)
	}
	set := func(on, off uint32) {
		done := make(chan struct{})
		go func() { ts.Presence.SetFlags("T-flags", on, off); close(done) }()
		<-done
	}
	set(presence.FlagUpgradePending, 0)
	if f := beat(c); f != uint64(presence.FlagUpgradePending) {
		t.Fatalf("flags %b, want UPGRADE_PENDING", f)
	}
	set(presence.FlagGroupStale, 0)
	if f := beat(c); f != uint64(presence.FlagUpgradePending|presence.FlagGroupStale) {
		t.Fatalf("flags %b, want both", f)
	}
	set(0, presence.FlagUpgradePending)
	if f := beat(c); f != uint64(presence.FlagGroupStale) {
		t.Fatalf("flags %b, want GROUP_STALE", f)
	}
	c.nc.Close()
	ts.waitEvent(t, "T-flags", events.KindOffline, 2*time.Second)
	c2 := dialRaw(t, ts.addr)
	c2.login("T-flags")
	if f := beat(c2); f != uint64(presence.FlagGroupStale) {
		t.Fatalf("new session: flags %b, want GROUP_STALE kept for the device", f)
	}
	set(0, presence.FlagGroupStale)
	if f := beat(c2); f != 0 {
		t.Fatalf("flags %b after clearing", f)
	}
	if ts.Presence.Flags("T-flags") != 0 {
		t.Fatal("cleared flags still held")
	}
}

// With the outbound limit above 16 KiB, a member that stopped reading is
// skipped by fan-outs once it has more than FanoutSlowBytes unsent, and
// counted, instead of being closed; the reading member gets every message.
func TestFanoutSkipsSlowMember(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.OutboundLimit = 256 << 10
	ts := startServer(t, cfg, nil)

	slow := dialSlowReader(t, ts.addr)
	slow.login("T-slow")
	fast := dialRaw(t, ts.addr)
	fast.login("T-fast")
	var got atomic.Int64
	go func() {
		for {
			f, err := fast.read(20 * time.Second)
			if err != nil {
				return
			}
			if f.typ == protocol.TypeGroupMessage {
				got.Add(1)
			}
		}
	}()
	payload := make([]byte, protocol.MaxPayload)
	// The kernel's socket buffers take megabytes before termd's own
	// outbound buffer starts to grow: send until skips start, then 200 more.
	total, n, after := 0, 0, 0
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; after < 200; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no member skipped after %d fan-outs", i)
		}
		if ts.m.fanoutSlow.Get() > 0 {
			after++
		}
		n++
		delivered := make(chan int, 1)
		msg := &protocol.GroupMessage{GroupID: "g", MsgID: uint64(i), Payload: payload}
		if err := ts.Fanout([]string{"T-slow", "T-fast"}, msg, func(n int) { delivered <- n }); err != nil {
			t.Fatal(err)
		}
		total += <-delivered
	}
	skipped := int(ts.m.fanoutSlow.Get())
	if skipped == 0 || total != 2*n-skipped {
		t.Fatalf("delivered %d, skipped %d of %d", total, skipped, 2*n)
	}
	if skipped < 200 || ts.Presence.Get("T-slow") == nil {
		t.Fatalf("the slow member was closed or not skipped every time (%d skips): it should only miss messages", skipped)
	}
	for end := time.Now().Add(10 * time.Second); got.Load() < int64(n); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the reading member got %d of %d", got.Load(), n)
		}
	}
}
