package client_test

// The scheduled-campaign flow of the SDK against a real termd engine
// (servertest: gnet listener, HELLO, tags, dispatcher, worker pool) whose
// SCHEDULE_REQUEST, UPGRADE_CHECK and UPGRADE_REPORT routes are scripted
// here, and a real HTTP download node (httptest, http.ServeContent with
// Range support). Timings are checked only as lower bounds with
// tolerances and generous upper bounds: these tests run on loaded CI
// machines.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/servertest"
)

const (
	campApp     = "pos"
	campVersion = "2.0.0"
	campRelease = "rel-camp"
	campToken   = "tok-123"
	// slack is how much earlier than asked a wait may seem to end, seen
	// from the server: clock offset rounding (ms) and timer granularity.
	slack = 30 * time.Millisecond
)

// slot is a reservation's time span on the server's clock.
type slot struct{ start, end time.Time }

// campServer scripts a termd node's campaign routes and records what the
// terminal sent.
type campServer struct {
	mu sync.Mutex
	// slots are handed out by SCHEDULE_REQUEST in order; the last repeats.
	slots []slot
	// unavailable SCHEDULE_REQUESTs are refused UNAVAILABLE with
	// retryAfterMs before one succeeds.
	unavailable  int
	retryAfterMs uint64
	// schedErr, when set, refuses every SCHEDULE_REQUEST.
	schedErr error
	// forceEarly UPGRADE_CHECKs are answered TOO_EARLY with earlyMs
	// whatever the time.
	forceEarly int
	earlyMs    uint64
	// checkUnavailable UPGRADE_CHECKs are refused UNAVAILABLE (a paused
	// campaign) with retryAfterMs.
	checkUnavailable int
	// What PROCEED carries.
	url  string
	sha  []byte
	size uint64
	sig  []byte

	reservations map[string]slot
	placed       int // reservations made
	schedAt      []time.Time
	checkAt      []time.Time
	reports      []protocol.UpgradeReport
}

func (cs *campServer) schedule(_ context.Context, req *server.Request) (protocol.Message, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.schedAt = append(cs.schedAt, time.Now())
	if cs.schedErr != nil {
		return nil, cs.schedErr
	}
	if cs.unavailable > 0 {
		cs.unavailable--
		return nil, &protocol.Error{Code: protocol.Unavailable, Message: "no capacity", RetryAfterMs: cs.retryAfterMs}
	}
	if r := req.Msg.(*protocol.ScheduleRequest); r.CampaignID != "camp-1" || r.SystemID != "sys-a" || !r.HasLoc {
		return nil, protocol.Errorf(protocol.BadRequest, "unexpected request %+v", r)
	}
	sl := cs.slots[0]
	if len(cs.slots) > 1 {
		cs.slots = cs.slots[1:]
	}
	cs.placed++
	id := fmt.Sprintf("res-%d", cs.placed)
	cs.reservations[id] = sl
	return &protocol.ScheduleAck{ReservationID: id, NodeID: "node-1", URL: cs.url,
		SlotStartMs: uint64(sl.start.UnixMilli()), SlotEndMs: uint64(sl.end.UnixMilli()), ReleaseID: campRelease}, nil
}

// check answers as a server does, by its own clock, unless forceEarly.
func (cs *campServer) check(_ context.Context, req *server.Request) (protocol.Message, error) {
	r := req.Msg.(*protocol.UpgradeCheck)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	now := time.Now()
	cs.checkAt = append(cs.checkAt, now)
	sl, ok := cs.reservations[r.ReservationID]
	switch {
	case !ok:
		return nil, protocol.Errorf(protocol.NotFound, "unknown reservation")
	case cs.checkUnavailable > 0:
		cs.checkUnavailable--
		return nil, &protocol.Error{Code: protocol.Unavailable, Message: "campaign paused", RetryAfterMs: cs.retryAfterMs}
	case cs.forceEarly > 0:
		cs.forceEarly--
		return &protocol.UpgradeCheckAck{Decision: protocol.DecisionTooEarly, WaitMs: cs.earlyMs}, nil
	case now.Before(sl.start):
		return &protocol.UpgradeCheckAck{Decision: protocol.DecisionTooEarly, WaitMs: uint64(sl.start.Sub(now).Milliseconds()) + 1}, nil
	case !now.Before(sl.end):
		delete(cs.reservations, r.ReservationID)
		return &protocol.UpgradeCheckAck{Decision: protocol.DecisionMissed}, nil
	}
	if c, _ := protocol.CompareVersions(r.Version, campVersion); c >= 0 {
		delete(cs.reservations, r.ReservationID)
		return &protocol.UpgradeCheckAck{Decision: protocol.DecisionUpToDate}, nil
	}
	return &protocol.UpgradeCheckAck{Decision: protocol.DecisionProceed, URL: cs.url, SHA256: cs.sha,
		Size: cs.size, Token: campToken, ReleaseSig: cs.sig}, nil
}

func (cs *campServer) report(_ context.Context, req *server.Request) (protocol.Message, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.reports = append(cs.reports, *req.Msg.(*protocol.UpgradeReport))
	return &protocol.Ack{AckType: protocol.Response(protocol.TypeUpgradeReport)}, nil
}

// set changes the script under the lock (the routes run on the node's
// workers).
func (cs *campServer) set(f func(cs *campServer)) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	f(cs)
}

func (cs *campServer) snapshot() (sched, check []time.Time, reports []protocol.UpgradeReport) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]time.Time(nil), cs.schedAt...), append([]time.Time(nil), cs.checkAt...),
		append([]protocol.UpgradeReport(nil), cs.reports...)
}

// dlNode is the HTTP download node: it serves the artifact with Range
// support, checks the token, and can cut its first response or serve
// tampered bytes.
type dlNode struct {
	*httptest.Server
	artifact []byte
	cutFirst atomic.Bool // the first GET stops halfway
	tamper   atomic.Bool // serve bytes that differ from the signed ones
	mu       sync.Mutex
	ranges   []string // the Range header of each GET
}

func newDLNode(t *testing.T, artifact []byte) *dlNode {
	n := &dlNode{artifact: artifact}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("t") != campToken {
			http.Error(w, "bad token", http.StatusForbidden)
			return
		}
		n.mu.Lock()
		n.ranges = append(n.ranges, r.Header.Get("Range"))
		first := len(n.ranges) == 1
		n.mu.Unlock()
		body := n.artifact
		if n.tamper.Load() {
			body = bytes.Clone(body)
			body[len(body)/3] ^= 0xFF
		}
		if first && n.cutFirst.Load() {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(http.StatusOK)
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		http.ServeContent(w, r, "artifact", time.Unix(1700000000, 0), bytes.NewReader(body))
	}))
	t.Cleanup(n.Close)
	return n
}

func (n *dlNode) gets() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.ranges...)
}

// campEnv is one test's node, download node, release key and terminal
// parameters.
type campEnv struct {
	cs   *campServer
	node *servertest.Node
	dl   *dlNode
	key  *ecdsa.PrivateKey
	camp *protocol.Campaign
	p    client.CampaignParams
}

func newCampEnv(t *testing.T) *campEnv {
	t.Helper()
	artifact := make([]byte, 256<<10)
	if _, err := rand.Read(artifact); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(artifact)
	sig, err := protocol.SignRelease(key, campApp, campVersion, sum, uint64(len(artifact)))
	if err != nil {
		t.Fatal(err)
	}
	dl := newDLNode(t, artifact)
	now := time.Now()
	cs := &campServer{
		slots:        []slot{{now.Add(200 * time.Millisecond), now.Add(2200 * time.Millisecond)}},
		url:          dl.URL + "/a/" + fmt.Sprintf("%x", sum) + "?d=dev&t=" + campToken,
		sha:          sum[:],
		size:         uint64(len(artifact)),
		sig:          sig,
		reservations: map[string]slot{},
	}
	node := servertest.Start(t, servertest.Config(t), func(s *server.Server) {
		s.Handle(protocol.TypeScheduleReq, &server.Route{New: func() protocol.Message { return &protocol.ScheduleRequest{} }, Serve: cs.schedule})
		s.Handle(protocol.TypeUpgradeCheck, &server.Route{New: func() protocol.Message { return &protocol.UpgradeCheck{} }, Serve: cs.check})
		s.Handle(protocol.TypeUpgradeReport, &server.Route{New: func() protocol.Message { return &protocol.UpgradeReport{} }, Serve: cs.report})
	})
	return &campEnv{
		cs: cs, node: node, dl: dl, key: key,
		camp: &protocol.Campaign{CampaignID: "camp-1", Version: campVersion, ReleaseID: campRelease,
			WindowStartMs: uint64(now.UnixMilli()), WindowEndMs: uint64(now.Add(time.Hour).UnixMilli())},
		p: client.CampaignParams{
			AppID: campApp, Running: "1.4.2", SystemID: "sys-a", Loc: &client.Location{Lat: 48.85, Lon: 2.35},
			Keys: []*ecdsa.PublicKey{&key.PublicKey}, Path: filepath.Join(t.TempDir(), "pos.img"),
			Attempt: 2, DownloadBackoff: 20 * time.Millisecond,
		},
	}
}

func (e *campEnv) dial(t *testing.T, mod func(*client.Config)) *client.Conn {
	t.Helper()
	cfg := client.Config{Addr: e.node.Addr, DeviceID: "dev-1",
		FleetSecret: []byte(servertest.FleetSecret), FW: "1.4.2", Model: "t1"}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stages lists the reports as "stage/progress/code" and checks they are
// all under the campaign's release_id with the caller's attempt.
func stages(t *testing.T, reports []protocol.UpgradeReport, attempt uint64) []string {
	t.Helper()
	var out []string
	for _, r := range reports {
		if r.ReleaseID != campRelease || r.Attempt != attempt {
			t.Errorf("report under %s attempt %d, want %s attempt %d", r.ReleaseID, r.Attempt, campRelease, attempt)
		}
		out = append(out, fmt.Sprintf("%d/%d/%d", r.Stage, r.Progress, r.Code))
	}
	return out
}

// The whole flow: the check-in waits for the slot, a TOO_EARLY is waited
// out for at least its wait_ms, PROCEED's URL (with its token) is
// downloaded and verified, and DOWNLOADING then DOWNLOADED are reported
// under the campaign's release_id with the caller's attempt.
func TestRunCampaignTooEarlyThenProceed(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	var start time.Time
	e.cs.set(func(cs *campServer) { cs.forceEarly, cs.earlyMs, start = 1, 300, cs.slots[0].start })
	c := e.dial(t, nil)
	res, err := client.RunCampaign(testCtx(t), c, e.camp, e.p)
	if err != nil {
		t.Fatal(err)
	}
	if res.UpToDate || res.ReleaseID != campRelease || res.Version != campVersion || res.Path != e.p.Path ||
		res.Reservation.ReservationID != "res-1" || res.Check.Decision != protocol.DecisionProceed {
		t.Fatalf("result %+v", res)
	}
	got, err := os.ReadFile(e.p.Path)
	if err != nil || !bytes.Equal(got, e.dl.artifact) {
		t.Fatalf("artifact at %s: %d bytes, %v", e.p.Path, len(got), err)
	}
	_, checks, reports := e.cs.snapshot()
	if len(checks) != 2 {
		t.Fatalf("%d check-ins, want 2 (TOO_EARLY, PROCEED)", len(checks))
	}
	if checks[0].Before(start.Add(-slack)) {
		t.Errorf("first check-in %v before the slot's start", start.Sub(checks[0]))
	}
	// Inside the first quarter of the 2 s slot, give or take a loaded machine.
	if late := checks[0].Sub(start); late > 500*time.Millisecond+3*time.Second {
		t.Errorf("first check-in %v after the slot's start", late)
	}
	if gap := checks[1].Sub(checks[0]); gap < 300*time.Millisecond-slack {
		t.Errorf("TOO_EARLY with wait_ms 300 waited only %v", gap)
	}
	if want := []string{"1/0/0", "2/100/0"}; fmt.Sprint(stages(t, reports, 2)) != fmt.Sprint(want) {
		t.Errorf("reports %v, want %v", stages(t, reports, 2), want)
	}
	if g := e.dl.gets(); len(g) != 1 || g[0] != "" {
		t.Errorf("GETs %q, want one whole download", g)
	}
}

// Slot times are the server's: a terminal whose clock is an hour slow
// (HELLO goes through the clock challenge) still checks in inside its
// slot, not an hour late.
func TestWaitAndCheckInUsesServerClock(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	c := e.dial(t, func(cfg *client.Config) { cfg.Now = func() time.Time { return time.Now().Add(-time.Hour) } })
	if off := c.ServerTimeOffset(); off < 59*time.Minute {
		t.Fatalf("server time offset %v, want about 1 h", off)
	}
	ctx := testCtx(t)
	ack, err := c.Schedule(ctx, "camp-1", "1.4.2", &client.Location{Lat: 1, Lon: 2}, "sys-a")
	if err != nil {
		t.Fatal(err)
	}
	chk, err := c.WaitAndCheckIn(ctx, ack, "1.4.2", client.CheckInOptions{Spread: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	_, checks, _ := e.cs.snapshot()
	// The server answers by its clock: one PROCEED means the first
	// check-in was inside the slot.
	if chk.Decision != protocol.DecisionProceed || len(checks) != 1 {
		t.Fatalf("decision %d after %d check-ins, want PROCEED at once", chk.Decision, len(checks))
	}
	if chk.Token != campToken || len(chk.SHA256) != 32 {
		t.Errorf("PROCEED %+v", chk)
	}
}

// On a Conn without its own heartbeat loop the wait for the slot
// heartbeats by itself, so the session outlives the wait.
func TestWaitHeartbeatsWithoutHeartbeatLoop(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	now := time.Now()
	e.cs.set(func(cs *campServer) { cs.slots = []slot{{now.Add(time.Second), now.Add(5 * time.Second)}} })
	var beats atomic.Int32
	c := e.dial(t, func(cfg *client.Config) {
		cfg.NoHeartbeat = true
		cfg.HBMin, cfg.HBMax = 100*time.Millisecond, 100*time.Millisecond
		cfg.Status = func() []byte { beats.Add(1); return nil }
	})
	ctx := testCtx(t)
	ack, err := c.Schedule(ctx, "camp-1", "1.4.2", &client.Location{}, "sys-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitAndCheckIn(ctx, ack, "1.4.2", client.CheckInOptions{Spread: -1}); err != nil {
		t.Fatal(err)
	}
	// About 9 in the second; 2 is enough to show it beats.
	if n := beats.Load(); n < 2 {
		t.Errorf("%d heartbeats during a 1 s wait at a 100 ms interval", n)
	}
	if c.Err() != nil {
		t.Errorf("session ended: %v", c.Err())
	}
}

// MISSED is a typed error that tells the caller to schedule again, and
// RunCampaign does so: the second reservation's slot is downloaded.
func TestMissedSlot(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	now := time.Now()
	past := slot{now.Add(-2 * time.Second), now.Add(-time.Second)}
	e.cs.set(func(cs *campServer) {
		cs.slots = []slot{past, past, {now.Add(100 * time.Millisecond), now.Add(5 * time.Second)}}
	})
	c := e.dial(t, nil)
	ctx := testCtx(t)

	ack, err := c.Schedule(ctx, "camp-1", "1.4.2", &client.Location{}, "sys-a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitAndCheckIn(ctx, ack, "1.4.2", client.CheckInOptions{})
	var me *client.MissedError
	if !errors.Is(err, client.ErrSlotMissed) || !errors.As(err, &me) || me.ReservationID != ack.ReservationID {
		t.Fatalf("err %v, want a MissedError for %s", err, ack.ReservationID)
	}

	res, err := client.RunCampaign(ctx, c, e.camp, e.p)
	if err != nil {
		t.Fatal(err)
	}
	sched, _, reports := e.cs.snapshot()
	if len(sched) != 3 || res.Reservation.ReservationID != "res-3" {
		t.Errorf("%d schedule requests, reservation %s; want 3 and res-3", len(sched), res.Reservation.ReservationID)
	}
	if want := []string{"1/0/0", "2/100/0"}; fmt.Sprint(stages(t, reports, 2)) != fmt.Sprint(want) {
		t.Errorf("reports %v, want %v", stages(t, reports, 2), want)
	}

	// With rescheduling turned off the MissedError comes back.
	e.cs.set(func(cs *campServer) { cs.slots = []slot{past} })
	e.p.MaxReschedules = -1
	if _, err := client.RunCampaign(ctx, c, e.camp, e.p); !errors.Is(err, client.ErrSlotMissed) {
		t.Errorf("RunCampaign without reschedules: %v, want ErrSlotMissed", err)
	}
}

// A terminal that already runs the campaign's version gets UP_TO_DATE:
// nothing is downloaded or reported.
func TestUpToDate(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	c := e.dial(t, nil)
	e.p.Running = "v2.0"
	res, err := client.RunCampaign(testCtx(t), c, e.camp, e.p)
	if err != nil {
		t.Fatal(err)
	}
	_, _, reports := e.cs.snapshot()
	if !res.UpToDate || res.Check.Decision != protocol.DecisionUpToDate || len(reports) != 0 || len(e.dl.gets()) != 0 {
		t.Errorf("result %+v, %d reports, %d GETs", res, len(reports), len(e.dl.gets()))
	}
	if _, err := os.Stat(e.p.Path); !os.IsNotExist(err) {
		t.Errorf("artifact written: %v", err)
	}
}

// UNAVAILABLE is retried no sooner than retry_after_ms, until ctx ends;
// other refusals are returned at once.
func TestScheduleRetriesUnavailable(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	e.cs.set(func(cs *campServer) { cs.unavailable, cs.retryAfterMs = 2, 200 })
	c := e.dial(t, nil)
	ctx := testCtx(t)
	ack, err := c.Schedule(ctx, "camp-1", "1.4.2", &client.Location{}, "sys-a")
	if err != nil {
		t.Fatal(err)
	}
	sched, _, _ := e.cs.snapshot()
	if ack.ReservationID != "res-1" || len(sched) != 3 {
		t.Fatalf("reservation %q after %d requests, want res-1 after 3", ack.ReservationID, len(sched))
	}
	for i := 1; i < len(sched); i++ {
		if gap := sched[i].Sub(sched[i-1]); gap < 200*time.Millisecond-slack {
			t.Errorf("retry %d came %v after the refusal with retry_after_ms 200", i, gap)
		}
	}

	// Refused until ctx ends: both the deadline and the refusal show.
	e.cs.set(func(cs *campServer) { cs.unavailable = 1 << 20 })
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = c.Schedule(short, "camp-1", "1.4.2", nil, "sys-a")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, protocol.Unavailable) {
		t.Errorf("err %v, want the deadline and UNAVAILABLE", err)
	}

	for _, code := range []protocol.Code{protocol.NotFound, protocol.Expired} {
		e.cs.set(func(cs *campServer) { cs.schedErr, cs.unavailable = &protocol.Error{Code: code, Message: "no"}, 0 })
		_, err := client.RunCampaign(ctx, c, e.camp, e.p)
		if !errors.Is(err, code) {
			t.Errorf("err %v, want %v", err, code)
		}
	}
}

// A download cut off halfway is resumed with a Range request, and
// DOWNLOADING is reported again with the progress so far.
func TestRunCampaignResumesCutDownload(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	e.dl.cutFirst.Store(true)
	c := e.dial(t, nil)
	if _, err := client.RunCampaign(testCtx(t), c, e.camp, e.p); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(e.p.Path)
	if err != nil || !bytes.Equal(got, e.dl.artifact) {
		t.Fatalf("artifact: %d bytes, %v", len(got), err)
	}
	g := e.dl.gets()
	if len(g) != 2 || g[0] != "" || !strings.HasPrefix(g[1], "bytes=") || g[1] == "bytes=0-" {
		t.Fatalf("GETs %q, want a whole one then a resumed one", g)
	}
	_, _, reports := e.cs.snapshot()
	st := stages(t, reports, 2)
	if len(st) != 3 || st[0] != "1/0/0" || !strings.HasPrefix(st[1], "1/") || st[1] == "1/0/0" || st[2] != "2/100/0" {
		t.Errorf("reports %v, want DOWNLOADING 0, DOWNLOADING with progress, DOWNLOADED", st)
	}
	if _, err := os.Stat(e.p.Path + ".part"); !os.IsNotExist(err) {
		t.Errorf(".part left behind: %v", err)
	}
}

// Bytes that are not the signed ones are refused, removed and reported
// FAILED; so is a release whose signature does not verify, before any
// byte is fetched.
func TestRunCampaignRefusesTamperedAndBadlySigned(t *testing.T) {
	t.Parallel()
	t.Run("tampered artifact", func(t *testing.T) {
		t.Parallel()
		e := newCampEnv(t)
		e.dl.tamper.Store(true)
		c := e.dial(t, nil)
		_, err := client.RunCampaign(testCtx(t), c, e.camp, e.p)
		if !errors.Is(err, client.ErrArtifactDigest) {
			t.Fatalf("err %v, want ErrArtifactDigest", err)
		}
		for _, p := range []string{e.p.Path, e.p.Path + ".part"} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", p, err)
			}
		}
		_, _, reports := e.cs.snapshot()
		want := []string{"1/0/0", fmt.Sprintf("5/0/%d", client.FailBadArtifact)}
		if fmt.Sprint(stages(t, reports, 2)) != fmt.Sprint(want) {
			t.Errorf("reports %v, want %v", stages(t, reports, 2), want)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		t.Parallel()
		e := newCampEnv(t)
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.p.Keys = []*ecdsa.PublicKey{&other.PublicKey}
		c := e.dial(t, nil)
		_, err = client.RunCampaign(testCtx(t), c, e.camp, e.p)
		if !errors.Is(err, client.ErrOfferBadSig) {
			t.Fatalf("err %v, want ErrOfferBadSig", err)
		}
		_, _, reports := e.cs.snapshot()
		want := []string{fmt.Sprintf("5/0/%d", client.FailBadSignature)}
		if fmt.Sprint(stages(t, reports, 2)) != fmt.Sprint(want) || len(e.dl.gets()) != 0 {
			t.Errorf("reports %v (want %v), %d GETs (want none)", stages(t, reports, 2), want, len(e.dl.gets()))
		}
	})
	t.Run("signed for another version", func(t *testing.T) {
		t.Parallel()
		e := newCampEnv(t)
		e.camp.Version = "2.0.1" // the signature binds the version
		c := e.dial(t, nil)
		if _, err := client.RunCampaign(testCtx(t), c, e.camp, e.p); !errors.Is(err, client.ErrOfferBadSig) {
			t.Fatalf("err %v, want ErrOfferBadSig", err)
		}
	})
}

// TOO_EARLY is waited out only MaxTooEarly times; a paused campaign's
// UNAVAILABLE is retried after its retry_after_ms and the reservation
// then proceeds.
func TestCheckInTooEarlyBoundedAndPaused(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	e.cs.set(func(cs *campServer) { cs.forceEarly, cs.earlyMs = 1<<20, 20 })
	c := e.dial(t, nil)
	ctx := testCtx(t)
	ack, err := c.Schedule(ctx, "camp-1", "1.4.2", &client.Location{}, "sys-a")
	if err != nil {
		t.Fatal(err)
	}
	opts := client.CheckInOptions{Spread: -1, MaxTooEarly: 2}
	if _, err := c.WaitAndCheckIn(ctx, ack, "1.4.2", opts); !errors.Is(err, client.ErrStillTooEarly) {
		t.Fatalf("err %v, want ErrStillTooEarly", err)
	}
	if _, checks, _ := e.cs.snapshot(); len(checks) != 3 {
		t.Errorf("%d check-ins, want 3 (2 TOO_EARLY waited out, the third gives up)", len(checks))
	}

	e.cs.set(func(cs *campServer) { cs.forceEarly, cs.checkUnavailable, cs.retryAfterMs, cs.checkAt = 0, 2, 150, nil })
	chk, err := c.WaitAndCheckIn(ctx, ack, "1.4.2", opts)
	if err != nil || chk.Decision != protocol.DecisionProceed {
		t.Fatalf("after the pause: %+v, %v", chk, err)
	}
	_, checks, _ := e.cs.snapshot()
	if len(checks) != 3 {
		t.Fatalf("%d check-ins, want 3 (2 UNAVAILABLE, PROCEED)", len(checks))
	}
	for i := 1; i < len(checks); i++ {
		if gap := checks[i].Sub(checks[i-1]); gap < 150*time.Millisecond-slack {
			t.Errorf("check-in %d came %v after UNAVAILABLE with retry_after_ms 150", i, gap)
		}
	}
}

// After a reboot the firmware runs the campaign again: the artifact
// already at Path verifies, so it is not fetched again and DOWNLOADED is
// reported (the server acknowledges the repeat without a second record).
func TestRunCampaignAlreadyDownloaded(t *testing.T) {
	t.Parallel()
	e := newCampEnv(t)
	c := e.dial(t, nil)
	ctx := testCtx(t)
	if _, err := client.RunCampaign(ctx, c, e.camp, e.p); err != nil {
		t.Fatal(err)
	}
	res, err := client.RunCampaign(ctx, c, e.camp, e.p)
	if err != nil || res.Path != e.p.Path {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	_, _, reports := e.cs.snapshot()
	if want := []string{"1/0/0", "2/100/0", "2/100/0"}; fmt.Sprint(stages(t, reports, 2)) != fmt.Sprint(want) {
		t.Errorf("reports %v, want %v", stages(t, reports, 2), want)
	}
	if g := e.dl.gets(); len(g) != 1 {
		t.Errorf("GETs %q, want only the first run's", g)
	}
}

func TestDownloadURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, token, want string }{
		{"http://n1/a/x?d=dev&t=tok", "tok", "http://n1/a/x?d=dev&t=tok"},
		{"http://n1/a/x", "tok", "http://n1/a/x?token=tok"},
		{"http://n1/a/x?d=dev", "a b&c", "http://n1/a/x?d=dev&token=a+b%26c"},
		{"http://n1/a/x?d=dev", "", "http://n1/a/x?d=dev"},
	} {
		if got := client.DownloadURL(tc.url, tc.token); got != tc.want {
			t.Errorf("DownloadURL(%q, %q) = %q, want %q", tc.url, tc.token, got, tc.want)
		}
	}
}
