package groups_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/groups"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

type node struct {
	*servertest.Node
	g   *groups.Service
	now atomic.Int64 // unix ms offset added to the real clock (tests move time)
}

func startNode(t *testing.T, store *storage.Badger, keyFile string, mod func(*groups.Options)) *node {
	t.Helper()
	if store == nil {
		var err error
		store, err = storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
	}
	n := &node{}
	cfg := servertest.Config(t)
	cfg.Server.FrameRate, cfg.Server.FrameBurst = 10000, 10000
	n.Node = servertest.StartStore(t, cfg, store, func(s *server.Server) {
		opt := groups.Options{Store: store, Server: s, KeyFile: keyFile, Log: slog.New(slog.DiscardHandler),
			Now: func() time.Time { return time.Now().Add(time.Duration(n.now.Load()) * time.Millisecond) }}
		if mod != nil {
			mod(&opt)
		}
		g, err := groups.Open(context.Background(), opt)
		if err != nil {
			t.Fatal(err)
		}
		g.Routes(s)
		g.Start()
		t.Cleanup(func() { _ = g.Close(context.Background()) })
		n.g = g
	})
	return n
}

// terminal is an SDK client that records its pushes.
type terminal struct {
	*client.Conn
	id    string
	mu    sync.Mutex
	syncs []protocol.GroupSync
	msgs  []protocol.GroupMessage
}

func (n *node) dial(t *testing.T, id string, read bool) *terminal {
	t.Helper()
	return n.dialAs(t, id, "P400", "1.0")
}

func (n *node) dialAs(t *testing.T, id, model, fw string) *terminal {
	t.Helper()
	tm := &terminal{id: id}
	c, err := client.Dial(t.Context(), client.Config{
		Addr: n.Addr, DeviceID: id, FleetSecret: []byte(servertest.FleetSecret), FW: fw, Model: model, NoHeartbeat: true,
		OnPush: func(typ byte, _ uint16, body []byte) {
			r := protocol.NewReader(nil)
			tm.mu.Lock()
			defer tm.mu.Unlock()
			switch typ {
			case protocol.TypeGroupSync:
				var m protocol.GroupSync
				if protocol.DecodeBody(r, body, &m) == nil {
					tm.syncs = append(tm.syncs, m)
				}
			case protocol.TypeGroupMessage:
				var m protocol.GroupMessage
				if protocol.DecodeBody(r, body, &m) == nil {
					tm.msgs = append(tm.msgs, m)
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tm.Conn = c
	return tm
}

func (n *node) create(t *testing.T, id, policy string, limit int) {
	t.Helper()
	if _, err := n.g.Create(t.Context(), api.GroupCreate{ID: id, Policy: policy, Limit: limit}, "operator:test"); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
}

func (tm *terminal) auth(t *testing.T, group string) protocol.GroupAuthAck {
	t.Helper()
	var ack protocol.GroupAuthAck
	if err := tm.Do(t.Context(), &protocol.GroupAuth{GroupID: group}, &ack); err != nil {
		t.Fatalf("%s: auth %s: %v", tm.id, group, err)
	}
	return ack
}

func (tm *terminal) change(ctx context.Context, rid uint64, op uint8, from, to string, grant []byte) (protocol.GroupChangeAck, error) {
	var ack protocol.GroupChangeAck
	err := tm.Do(ctx, &protocol.GroupChange{RequestID: rid, Op: op, From: from, To: to, Grant: grant}, &ack)
	return ack, err
}

func (tm *terminal) list(t *testing.T) protocol.GroupListAck {
	t.Helper()
	var ack protocol.GroupListAck
	if err := tm.Do(t.Context(), &protocol.GroupList{}, &ack); err != nil {
		t.Fatal(err)
	}
	return ack
}

func (tm *terminal) heartbeat(t *testing.T, v uint64) uint64 {
	t.Helper()
	var ack protocol.HeartbeatAck
	if err := tm.Do(t.Context(), &protocol.Heartbeat{GroupVersion: v}, &ack); err != nil {
		t.Fatal(err)
	}
	return ack.Flags
}

func groupIDs(ms []protocol.Membership) string { return fmt.Sprint(ms) }

func wantCode(t *testing.T, what string, err error, code protocol.Code) {
	t.Helper()
	if got := protocol.StatusOf(err); got != code {
		t.Fatalf("%s: %v (%v), want %v", what, got, err, code)
	}
}

// The walk-through: open groups A and B, authority for A, join,
// switch to B with a fresh grant, a replayed switch, expired and stolen
// grants, an operator-only group that cannot be left.
func TestJoinSwitchReplayAndGrants(t *testing.T) {
	n := startNode(t, nil, "", nil)
	n.create(t, "A", storage.PolicyOpen, 0)
	n.create(t, "B", storage.PolicyOpen, 0)
	n.create(t, "ops", storage.PolicyOperator, 0)
	tm := n.dial(t, "T1", true)
	other := n.dial(t, "T2", true)
	ctx := t.Context()

	a := tm.auth(t, "A")
	if a.Role != "member" || a.ExpiresMs == 0 || int64(a.ExpiresMs)-time.Now().UnixMilli() > 300_000 {
		t.Fatalf("auth ack %+v", a)
	}
	ack, err := tm.change(ctx, 1, protocol.GroupJoin, "", "A", a.Grant)
	if err != nil || ack.GroupVersion != 1 || groupIDs(ack.Groups) != "[{A member}]" {
		t.Fatalf("join: %+v %v", ack, err)
	}
	// Another device cannot use T1's grant; T1's grant for A is not one for B.
	_, err = other.change(ctx, 1, protocol.GroupJoin, "", "A", a.Grant)
	wantCode(t, "stolen grant", err, protocol.Unauthenticated)
	_, err = tm.change(ctx, 2, protocol.GroupJoin, "", "B", a.Grant)
	wantCode(t, "grant for another group", err, protocol.Unauthenticated)
	bad := append([]byte(nil), a.Grant...)
	bad[len(bad)-1] ^= 1
	_, err = tm.change(ctx, 2, protocol.GroupJoin, "", "A", bad)
	wantCode(t, "forged grant", err, protocol.Unauthenticated)

	b := tm.auth(t, "B")
	sw, err := tm.change(ctx, 3, protocol.GroupSwitch, "A", "B", b.Grant)
	if err != nil || sw.GroupVersion != 2 || groupIDs(sw.Groups) != "[{B member}]" {
		t.Fatalf("switch: %+v %v", sw, err)
	}
	// The replay returns the same answer and changes nothing, even once
	// the grant has expired; the same request_id for another change is a
	// conflict.
	n.now.Store(301_000)
	again, err := tm.change(ctx, 3, protocol.GroupSwitch, "A", "B", b.Grant)
	if err != nil || again.GroupVersion != 2 || groupIDs(again.Groups) != "[{B member}]" {
		t.Fatalf("replay: %+v %v", again, err)
	}
	_, err = tm.change(ctx, 3, protocol.GroupSwitch, "B", "A", b.Grant)
	wantCode(t, "request_id reused", err, protocol.Conflict)
	_, err = tm.change(ctx, 4, protocol.GroupJoin, "", "B", b.Grant)
	wantCode(t, "expired grant", err, protocol.Expired)
	n.now.Store(0)
	if l := tm.list(t); l.GroupVersion != 2 || groupIDs(l.Groups) != "[{B member}]" {
		t.Fatalf("list after replays: %+v", l)
	}

	// Operator-only: no grant, cannot be left.
	var aa protocol.GroupAuthAck
	wantCode(t, "auth operator-only", tm.Do(ctx, &protocol.GroupAuth{GroupID: "ops"}, &aa), protocol.Forbidden)
	wantCode(t, "auth unknown", tm.Do(ctx, &protocol.GroupAuth{GroupID: "nope"}, &aa), protocol.NotFound)
	if _, err := n.g.Add(ctx, "ops", "T1", "", "operator:test"); err != nil {
		t.Fatal(err)
	}
	_, err = tm.change(ctx, 5, protocol.GroupLeave, "ops", "", nil)
	wantCode(t, "leave operator-only", err, protocol.Forbidden)
	_, err = tm.change(ctx, 6, protocol.GroupSwitch, "ops", "A", tm.auth(t, "A").Grant)
	wantCode(t, "switch out of operator-only", err, protocol.Forbidden)
	_, err = tm.change(ctx, 7, protocol.GroupLeave, "A", "", nil)
	wantCode(t, "leave non-member", err, protocol.Conflict)
	l, err := tm.change(ctx, 8, protocol.GroupLeave, "B", "", nil)
	if err != nil || l.GroupVersion != 4 || groupIDs(l.Groups) != "[{ops member}]" {
		t.Fatalf("leave B: %+v %v", l, err)
	}
	ms, _ := n.g.Members("ops", "", 0)
	if len(ms.Members) != 1 || ms.Members[0].By != "operator:test" {
		t.Fatalf("ops members %+v", ms)
	}
}

// A grant issued before an operator changed that membership is refused;
// a grant survives a key rotation; a grant from a key retired more than
// a grant's life ago does not.
func TestGrantOperatorChangeAndRotation(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, nil, filepath.Join(dir, "keys.json"), nil)
	n.create(t, "A", storage.PolicyOpen, 0)
	tm := n.dial(t, "T1", true)
	ctx := t.Context()
	g := tm.auth(t, "A")
	time.Sleep(2 * time.Millisecond)
	if _, err := n.g.Add(ctx, "A", "T1", "", "operator:x"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.g.Remove(ctx, "A", "T1", "operator:x"); err != nil {
		t.Fatal(err)
	}
	_, err := tm.change(ctx, 1, protocol.GroupJoin, "", "A", g.Grant)
	wantCode(t, "grant older than the operator's change", err, protocol.Forbidden)

	time.Sleep(2 * time.Millisecond)
	g = tm.auth(t, "A")
	if err := n.g.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if _, err := tm.change(ctx, 2, protocol.GroupJoin, "", "A", g.Grant); err != nil {
		t.Fatalf("grant of the previous key after a rotation: %v", err)
	}
	old := tm.auth(t, "A")
	if err := n.g.RotateKey(); err != nil {
		t.Fatal(err)
	}
	// Past a grant's life the old key is gone: with the clock moved, the
	// grant would be EXPIRED anyway, so forge a long-lived check by
	// rotating again after the window.
	n.now.Store(301_000)
	if err := n.g.RotateKey(); err != nil {
		t.Fatal(err)
	}
	_, err = tm.change(ctx, 3, protocol.GroupLeave, "A", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tm.change(ctx, 4, protocol.GroupJoin, "", "A", old.Grant)
	wantCode(t, "grant of a key retired long ago", err, protocol.Unauthenticated)
}

// Member limits and the 32-membership cap hold under concurrency, and a
// switch storm never leaves a device in both groups or in neither.
func TestLimitsUnderConcurrency(t *testing.T) {
	n := startNode(t, nil, "", nil)
	n.create(t, "A", storage.PolicyOpen, 0)
	n.create(t, "B", storage.PolicyOpen, 20)
	const devices = 40
	tms := make([]*terminal, devices)
	for i := range tms {
		tms[i] = n.dial(t, fmt.Sprintf("T%02d", i), true)
		g := tms[i].auth(t, "A")
		if _, err := tms[i].change(t.Context(), 1, protocol.GroupJoin, "", "A", g.Grant); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var full, ok atomic.Int64
	for i, tm := range tms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := uint64(2); r < 12; r++ {
				from, to := "A", "B"
				if tm.list(t).Groups[0].GroupID == "B" {
					from, to = "B", "A"
				}
				g := tm.auth(t, to)
				_, err := tm.change(t.Context(), r, protocol.GroupSwitch, from, to, g.Grant)
				switch protocol.StatusOf(err) {
				case protocol.OK:
					ok.Add(1)
				case protocol.Unavailable:
					full.Add(1)
				default:
					t.Errorf("T%02d switch: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	if full.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("ok %d, full %d: the limit was never reached or nothing switched", ok.Load(), full.Load())
	}
	// Checked against storage: each device in exactly one group, B within its limit.
	_, ds, err := n.Store.(*storage.Badger).LoadGroups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	inB := 0
	for _, d := range ds {
		if len(d.Members) != 1 {
			t.Fatalf("%s is in %d groups: %+v", d.DeviceID, len(d.Members), d.Members)
		}
		if d.Members[0].GroupID == "B" {
			inB++
		}
	}
	if len(ds) != devices || inB > 20 {
		t.Fatalf("%d devices stored, %d in B (limit 20)", len(ds), inB)
	}
	if g, _ := n.g.Group("B"); g.Members != inB {
		t.Fatalf("memory says %d in B, storage %d", g.Members, inB)
	}

	// The cap: 32 memberships, the 33rd is CONFLICT.
	tm := tms[0]
	for i := 0; i < 32; i++ {
		n.create(t, fmt.Sprintf("C%02d", i), storage.PolicyOpen, 0)
	}
	joined := len(tm.list(t).Groups)
	var err33 error
	for i := 0; i < 32 && err33 == nil; i++ {
		g := tm.auth(t, fmt.Sprintf("C%02d", i))
		_, err33 = tm.change(t.Context(), uint64(100+i), protocol.GroupJoin, "", fmt.Sprintf("C%02d", i), g.Grant)
		if err33 == nil {
			joined++
		}
	}
	wantCode(t, "33rd membership", err33, protocol.Conflict)
	if joined != 32 {
		t.Fatalf("refused at %d memberships", joined)
	}
}

// An operator's change while the terminal is offline: the next session's
// heartbeat flags GROUP_STALE and GROUP_LIST shows the truth; online, an
// operator's change is pushed as GROUP_SYNC.
func TestStaleAndSync(t *testing.T) {
	n := startNode(t, nil, "", nil)
	n.create(t, "A", storage.PolicyOpen, 0)
	n.create(t, "ops", storage.PolicyOperator, 0)
	tm := n.dial(t, "T1", true)
	ack, err := tm.change(t.Context(), 1, protocol.GroupJoin, "", "A", tm.auth(t, "A").Grant)
	if err != nil {
		t.Fatal(err)
	}
	if f := tm.heartbeat(t, ack.GroupVersion); f&uint64(1) != 0 {
		t.Fatalf("GROUP_STALE set while in step: %b", f)
	}
	if f := tm.heartbeat(t, 0); f&1 == 0 {
		t.Fatalf("GROUP_STALE not set for an old version: %b", f)
	}
	// Online: GROUP_SYNC with the new state.
	if _, err := n.g.Add(t.Context(), "ops", "T1", "moderator", "operator:x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "GROUP_SYNC", func() bool {
		tm.mu.Lock()
		defer tm.mu.Unlock()
		return len(tm.syncs) == 1 && tm.syncs[0].GroupVersion == 2 && groupIDs(tm.syncs[0].Groups) == "[{A member} {ops moderator}]"
	})
	tm.Close()
	waitFor(t, "offline", func() bool { return n.Presence.Get("T1") == nil })
	if _, err := n.g.Remove(t.Context(), "A", "T1", "operator:x"); err != nil {
		t.Fatal(err)
	}
	tm = n.dial(t, "T1", true)
	if f := tm.heartbeat(t, 2); f&1 == 0 {
		t.Fatalf("after an offline removal the heartbeat did not flag GROUP_STALE: %b", f)
	}
	l := tm.list(t)
	if l.GroupVersion != 3 || groupIDs(l.Groups) != "[{ops moderator}]" {
		t.Fatalf("list %+v", l)
	}
	if f := tm.heartbeat(t, l.GroupVersion); f&1 != 0 {
		t.Fatalf("still stale after GROUP_LIST: %b", f)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s within 5 s", what)
		}
	}
}

// GROUP_SEND: members only, at most once to every other online member,
// the budget, the size rule (moderators exempt), operators' messages.
func TestSend(t *testing.T) {
	n := startNode(t, nil, "", func(o *groups.Options) { o.SendSizeLimit, o.SendRate = 3, 0.01 }) // no refill within the test
	n.create(t, "A", storage.PolicyOpen, 0)
	var tms []*terminal
	for i := 0; i < 3; i++ {
		tm := n.dial(t, fmt.Sprintf("T%d", i), true)
		if _, err := tm.change(t.Context(), 1, protocol.GroupJoin, "", "A", tm.auth(t, "A").Grant); err != nil {
			t.Fatal(err)
		}
		tms = append(tms, tm)
	}
	outsider := n.dial(t, "X", true)
	var sa protocol.GroupSendAck
	wantCode(t, "outsider send", outsider.Do(t.Context(), &protocol.GroupSend{GroupID: "A", Payload: []byte("x")}, &sa), protocol.Forbidden)
	wantCode(t, "unknown group", outsider.Do(t.Context(), &protocol.GroupSend{GroupID: "Z", Payload: []byte("x")}, &sa), protocol.NotFound)
	if err := tms[0].Do(t.Context(), &protocol.GroupSend{GroupID: "A", Payload: []byte("hi")}, &sa); err != nil || sa.Delivered != 2 {
		t.Fatalf("send: %+v %v", sa, err)
	}
	waitFor(t, "messages", func() bool {
		for _, tm := range tms[1:] {
			tm.mu.Lock()
			ok := len(tm.msgs) == 1 && tm.msgs[0].From == "T0" && string(tm.msgs[0].Payload) == "hi"
			tm.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	tms[0].mu.Lock()
	if len(tms[0].msgs) != 0 {
		t.Fatal("the sender got its own message")
	}
	tms[0].mu.Unlock()
	// Budget: burst 10 in all, the 11th is RATE_LIMITED with retry_after.
	var err error
	sent := 1
	for ; sent < 20; sent++ {
		if err = tms[0].Do(t.Context(), &protocol.GroupSend{GroupID: "A", Payload: []byte("b")}, &sa); err != nil {
			break
		}
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.RateLimited || pe.RetryAfterMs == 0 || sent != 10 {
		t.Fatalf("after %d sends: %v", sent, err)
	}
	// Size rule: a 4th member makes A larger than 3: members are refused,
	// a moderator and the operator are not.
	if _, err := n.g.Add(t.Context(), "A", "T9", "", "operator:x"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "member of a large group", tms[1].Do(t.Context(), &protocol.GroupSend{GroupID: "A", Payload: []byte("x")}, &sa), protocol.Forbidden)
	if _, err := n.g.Add(t.Context(), "A", "T2", "moderator", "operator:x"); err != nil {
		t.Fatal(err)
	}
	if err := tms[2].Do(t.Context(), &protocol.GroupSend{GroupID: "A", Payload: []byte("mod")}, &sa); err != nil || sa.Delivered != 2 {
		t.Fatalf("moderator send: %+v %v", sa, err)
	}
	d, _, err := n.g.Send(t.Context(), "A", []byte("op"))
	if err != nil || d != 3 {
		t.Fatalf("operator send: %d %v", d, err)
	}
	waitFor(t, "operator message", func() bool {
		tms[2].mu.Lock()
		defer tms[2].mu.Unlock()
		last := tms[2].msgs[len(tms[2].msgs)-1]
		return last.From == "" && string(last.Payload) == "op"
	})
}

// Memberships, group_version and request_id answers survive a restart on
// the same store; the grant keys survive in their file.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.OpenBadger(filepath.Join(dir, "db"), storage.BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys := filepath.Join(dir, "group-keys.json")
	n := startNode(t, store, keys, nil)
	n.create(t, "A", storage.PolicyOpen, 0)
	tm := n.dial(t, "T1", true)
	grant := tm.auth(t, "A").Grant
	if _, err := tm.change(t.Context(), 7, protocol.GroupJoin, "", "A", grant); err != nil {
		t.Fatal(err)
	}
	tm.Close()
	n.Stop()

	n2 := startNode(t, store, keys, nil)
	tm = n2.dial(t, "T1", true)
	if f := tm.heartbeat(t, 1); f&1 != 0 {
		t.Fatalf("stale after restart: %b", f)
	}
	ack, err := tm.change(t.Context(), 7, protocol.GroupJoin, "", "A", grant)
	if err != nil || ack.GroupVersion != 1 {
		t.Fatalf("replay after restart: %+v %v", ack, err)
	}
	_, err = tm.change(t.Context(), 7, protocol.GroupLeave, "A", "", nil)
	wantCode(t, "request_id reused after restart", err, protocol.Conflict)
	// The grant (signed before the restart) still verifies: a rejoin
	// after leaving works with it.
	if _, err := tm.change(t.Context(), 8, protocol.GroupLeave, "A", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tm.change(t.Context(), 9, protocol.GroupJoin, "", "A", grant); err != nil {
		t.Fatalf("grant from before the restart: %v", err)
	}
	if g, _ := n2.g.Group("A"); g.Members != 1 {
		t.Fatalf("members %+v", g)
	}
}

// Deleting a group refers to its selectors: referenced → CONFLICT naming
// them; otherwise members are removed (version up, GROUP_SYNC).
func TestDelete(t *testing.T) {
	n := startNode(t, nil, "", nil)
	n.create(t, "A", storage.PolicyOperator, 0)
	tm := n.dial(t, "T1", true)
	if _, err := n.g.Add(t.Context(), "A", "T1", "", "operator:x"); err != nil {
		t.Fatal(err)
	}
	n.g.SetReferences(func(g string) []string {
		if g == "A" {
			return []string{"release r1"}
		}
		return nil
	})
	err := n.g.Delete(t.Context(), "A", "operator:x")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.Conflict || pe.Message != "group A is referenced by release r1" {
		t.Fatalf("delete referenced: %v", err)
	}
	n.g.SetReferences(nil)
	if err := n.g.Delete(t.Context(), "A", "operator:x"); err != nil {
		t.Fatal(err)
	}
	if l := tm.list(t); l.GroupVersion != 2 || len(l.Groups) != 0 {
		t.Fatalf("after delete: %+v", l)
	}
	if _, err := n.g.Group("A"); protocol.StatusOf(err) != protocol.NotFound {
		t.Fatalf("deleted group: %v", err)
	}
}

// One operation changing many members pushes GROUP_SYNC to each online
// one exactly once, paced by SyncRate instead of all at once.
func TestSyncSpread(t *testing.T) {
	n := startNode(t, nil, "", func(o *groups.Options) { o.SyncRate = 50 }) // 5 per 100 ms tick
	n.create(t, "ops", storage.PolicyOperator, 0)
	const members = 30
	var tms []*terminal
	for i := 0; i < members; i++ {
		id := fmt.Sprintf("T%02d", i)
		tms = append(tms, n.dial(t, id, true))
		if _, err := n.g.Add(t.Context(), "ops", id, "", "operator:x"); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n int) {
		for _, tm := range tms {
			tm.mu.Lock()
			n += len(tm.syncs)
			tm.mu.Unlock()
		}
		return n
	}
	waitFor(t, "the adds' syncs", func() bool { return count() == members })
	start := time.Now()
	if err := n.g.Delete(t.Context(), "ops", "operator:x"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delete's syncs", func() bool { return count() == 2*members })
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("%d syncs in %v: not paced at 50/s", members, el)
	}
	for _, tm := range tms {
		tm.mu.Lock()
		got, last := len(tm.syncs), tm.syncs[len(tm.syncs)-1]
		tm.mu.Unlock()
		if got != 2 || last.GroupVersion != 2 || len(last.Groups) != 0 {
			t.Fatalf("%s syncs %+v", tm.id, tm.syncs)
		}
	}
}

// failingStore refuses group writes while fail is set.
type failingStore struct {
	storage.Groups
	fail atomic.Bool
}

func (f *failingStore) ApplyGroups(ctx context.Context, w storage.GroupWrite) error {
	if f.fail.Load() {
		return errors.New("disk on fire")
	}
	return f.Groups.ApplyGroups(ctx, w)
}

// A switch whose commit fails changes nothing: the device stays in
// `from` (never in neither or both), the member counts are as before,
// the request_id is not remembered, and a retry succeeds.
func TestSwitchCommitFailure(t *testing.T) {
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	fs := &failingStore{Groups: store}
	n := startNode(t, store, "", func(o *groups.Options) { o.Store = fs })
	n.create(t, "A", storage.PolicyOpen, 0)
	n.create(t, "B", storage.PolicyOpen, 1)
	tm := n.dial(t, "T1", true)
	if _, err := tm.change(t.Context(), 1, protocol.GroupJoin, "", "A", tm.auth(t, "A").Grant); err != nil {
		t.Fatal(err)
	}
	fs.fail.Store(true)
	grant := tm.auth(t, "B").Grant
	_, err = tm.change(t.Context(), 2, protocol.GroupSwitch, "A", "B", grant)
	wantCode(t, "switch with a failing store", err, protocol.Internal)
	if l := tm.list(t); l.GroupVersion != 1 || groupIDs(l.Groups) != "[{A member}]" {
		t.Fatalf("after the failed switch: %+v", l)
	}
	a, _ := n.g.Group("A")
	b, _ := n.g.Group("B")
	if a.Members != 1 || b.Members != 0 {
		t.Fatalf("counts after the failed switch: A %d, B %d", a.Members, b.Members)
	}
	// B's one seat was given back: another device can take it... and
	// the retry with the same request_id runs (nothing was remembered).
	fs.fail.Store(false)
	ack, err := tm.change(t.Context(), 2, protocol.GroupSwitch, "A", "B", grant)
	if err != nil || ack.GroupVersion != 2 || groupIDs(ack.Groups) != "[{B member}]" {
		t.Fatalf("retry: %+v %v", ack, err)
	}
	_, ds, _ := store.LoadGroups(t.Context())
	if len(ds) != 1 || ds[0].Version != 2 || len(ds[0].Members) != 1 || ds[0].Members[0].GroupID != "B" {
		t.Fatalf("stored: %+v", ds)
	}
}

// Malformed requests get the spec's codes over a real socket and the
// session goes on.
func TestBadInput(t *testing.T) {
	n := startNode(t, nil, "", nil)
	n.create(t, "A", storage.PolicyOpen, 0)
	tm := n.dial(t, "T1", true)
	ctx := t.Context()
	long := strings.Repeat("x", 65)
	var aa protocol.GroupAuthAck
	wantCode(t, "auth with a 65-byte id", tm.Do(ctx, &protocol.GroupAuth{GroupID: long}, &aa), protocol.BadRequest)
	for name, g := range map[string][]byte{"empty": {1}, "junk": []byte("not a grant at all, not at all, not at all, not at all, no"), "zeros": make([]byte, 71)} {
		_, err := tm.change(ctx, 1, protocol.GroupJoin, "", "A", g)
		wantCode(t, "grant "+name, err, protocol.Unauthenticated)
	}
	_, err := tm.change(ctx, 2, protocol.GroupSwitch, "A", "A", tm.auth(t, "A").Grant)
	wantCode(t, "switch to the same group", err, protocol.BadRequest)
	var sa protocol.GroupSendAck
	wantCode(t, "payload over 1024", tm.Do(ctx, &protocol.GroupSend{GroupID: "A", Payload: make([]byte, 1025)}, &sa), protocol.BadRequest)
	_, err = tm.change(ctx, 3, protocol.GroupJoin, "", "A", tm.auth(t, "A").Grant)
	if err != nil {
		t.Fatalf("the session after bad input: %v", err)
	}
}

// A dynamic group's members are the online devices matching its filter,
// evaluated when asked; they are never memberships (no group_version,
// no GROUP_SYNC), terminals cannot join it and operators cannot add to
// it; an operator's message reaches exactly the matching devices.
func TestDynamicGroup(t *testing.T) {
	n := startNode(t, nil, "", nil)
	ctx := t.Context()
	if _, err := n.g.Create(ctx, api.GroupCreate{ID: "p4-v2", Policy: "dynamic", Filter: &api.GroupFilter{Models: []string{"P4*"}, FW: []string{"2.*"}}}, "operator:t"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.g.Create(ctx, api.GroupCreate{ID: "bad", Policy: "dynamic"}, "operator:t"); protocol.StatusOf(err) != protocol.BadRequest {
		t.Fatalf("dynamic without a filter: %v", err)
	}
	yes := n.dialAs(t, "T1", "P400", "2.1")
	no := n.dialAs(t, "T2", "P400", "1.0")
	other := n.dialAs(t, "T3", "X9", "2.1")
	if !n.g.IsMember("p4-v2", "T1") || n.g.IsMember("p4-v2", "T2") || n.g.IsMember("p4-v2", "T3") || n.g.SelfJoinable("p4-v2") {
		t.Fatal("filter evaluation")
	}
	if ms, _ := n.g.Members("p4-v2", "", 0); len(ms.Members) != 1 || ms.Members[0].DeviceID != "T1" || ms.Members[0].By != "filter" {
		t.Fatalf("members %+v", ms)
	}
	var aa protocol.GroupAuthAck
	wantCode(t, "auth of a dynamic group", yes.Do(ctx, &protocol.GroupAuth{GroupID: "p4-v2"}, &aa), protocol.Forbidden)
	if _, err := n.g.Add(ctx, "p4-v2", "T2", "", "operator:t"); protocol.StatusOf(err) != protocol.Conflict {
		t.Fatalf("operator add to a dynamic group: %v", err)
	}
	d, _, err := n.g.Send(ctx, "p4-v2", []byte("hello v2"))
	if err != nil || d != 1 {
		t.Fatalf("send: %d %v", d, err)
	}
	waitFor(t, "the message", func() bool {
		yes.mu.Lock()
		defer yes.mu.Unlock()
		return len(yes.msgs) == 1 && string(yes.msgs[0].Payload) == "hello v2"
	})
	for _, tm := range []*terminal{no, other} {
		tm.mu.Lock()
		if len(tm.msgs) != 0 {
			t.Fatalf("%s got a message", tm.id)
		}
		tm.mu.Unlock()
	}
	if l := yes.list(t); l.GroupVersion != 0 || len(l.Groups) != 0 {
		t.Fatalf("a dynamic group shows as a membership: %+v", l)
	}
	yes.mu.Lock()
	if len(yes.syncs) != 0 {
		t.Fatal("GROUP_SYNC for a dynamic group")
	}
	yes.mu.Unlock()
	yes.Close()
	waitFor(t, "offline", func() bool { return !n.g.IsMember("p4-v2", "T1") })
}
