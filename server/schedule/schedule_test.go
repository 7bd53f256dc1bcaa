package schedule_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/schedule"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

const testSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// clock is the services' time, moved by the test.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *clock) set(t time.Time)     { c.ms.Store(t.UnixMilli()) }
func (c *clock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

type node struct {
	*servertest.Node
	store *storage.Badger
	up    *upgrade.Service
	sc    *schedule.Service
	clk   *clock
	rel   api.Release
}

// t0 is the tests' "now": a Monday 00:00 UTC, on a slot boundary.
var t0 = time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC)

// threeClusters: Frankfurt, Madrid and Warsaw, capacities per 10-minute
// slot 3 (two nodes of 2 and 1), 2 and 2.
func threeClusters(c *config.Config) {
	c.Schedule.SlotLength = config.D(10 * time.Minute)
	c.Schedule.Clusters = []config.Cluster{{ID: "fra", Lat: 50.11, Lon: 8.68}, {ID: "mad", Lat: 40.42, Lon: -3.70}, {ID: "waw", Lat: 52.23, Lon: 21.01}}
	c.Schedule.Nodes = []config.Node{
		{ID: "fra-1", Cluster: "fra", URL: "https://fra-1.dl.example", Secret: "fra-1-secret-0123456789", Capacity: 2},
		{ID: "fra-2", Cluster: "fra", URL: "https://fra-2.dl.example", Secret: "fra-2-secret-0123456789", Capacity: 1},
		{ID: "mad-1", Cluster: "mad", URL: "https://mad-1.dl.example", Secret: "mad-1-secret-0123456789", Capacity: 2},
		{ID: "waw-1", Cluster: "waw", URL: "https://waw-1.dl.example", Secret: "waw-1-secret-0123456789", Capacity: 2, SystemIDs: []string{"pos-linux"}},
	}
}

func start(t *testing.T, store *storage.Badger, clk *clock, mod func(*config.Config)) *node {
	t.Helper()
	cfg := servertest.Config(t)
	cfg.Upgrade.NoticeSpread = config.D(0)
	cfg.Server.HelloRatePerSource = 0
	if mod != nil {
		mod(&cfg)
	}
	n := &node{store: store, clk: clk}
	n.Node = servertest.StartStore(t, cfg, store, func(s *server.Server) {
		up, err := upgrade.Open(upgrade.Options{Config: cfg, Store: s.Store(), Server: s, Log: slog.New(slog.DiscardHandler), Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		up.Routes(s)
		up.Start()
		sc, err := schedule.Open(schedule.Options{Config: cfg, Store: store, Server: s, Releases: up, DownloadSecret: []byte("local-secret-0123456789"),
			Log: slog.New(slog.DiscardHandler), Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		sc.Routes(s)
		sc.Start()
		n.up, n.sc = up, sc
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = sc.Close(ctx)
			_ = up.Close(ctx)
		})
	})
	return n
}

func newStore(t *testing.T) *storage.Badger {
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// campaign publishes a release and a campaign with one window [t0+1h, t0+2h).
func (n *node) campaign(t *testing.T, in api.CampaignCreate) api.Campaign {
	t.Helper()
	rel, err := n.up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: testSHA, Size: 1 << 20, URL: ""})
	if err != nil {
		// no artifact store in this harness: an external URL would be
		// served as is; use the artifact-less form through the nodes.
		rel, err = n.up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: testSHA, Size: 1 << 20, URL: "https://origin.example/pos.bin"})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	n.rel = rel
	in.ReleaseID = rel.ID
	if len(in.Windows) == 0 {
		in.Windows = []api.Window{{StartMs: t0.Add(time.Hour).UnixMilli(), EndMs: t0.Add(2 * time.Hour).UnixMilli()}}
	}
	c, err := n.sc.CreateCampaign(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = n.sc.Publish(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	return c
}

func (n *node) dial(t *testing.T, id, model string) *client.Conn {
	t.Helper()
	c, err := client.Dial(t.Context(), client.Config{Addr: n.Addr, DeviceID: id, FleetSecret: []byte(servertest.FleetSecret), FW: "1", Model: model, NoHeartbeat: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func schedule1(t *testing.T, c *client.Conn, camp string, lat, lon float64) (*protocol.ScheduleAck, error) {
	var ack protocol.ScheduleAck
	err := c.Do(t.Context(), &protocol.ScheduleRequest{CampaignID: camp, Version: "1.0.0", HasLoc: true, Lat: lat, Lon: lon, SystemID: "pos-linux"}, &ack)
	return &ack, err
}

// The query names the campaign; placement goes to the nearest cluster
// with room and fills its slots in time order; asking again returns the
// same reservation; a full campaign answers UNAVAILABLE with a retry.
func TestPlacementNearestClusterSlotsInOrder(t *testing.T) {
	clk := &clock{}
	clk.set(t0)
	n := start(t, newStore(t), clk, threeClusters)
	camp := n.campaign(t, api.CampaignCreate{})

	lisbon := n.dial(t, "pos-lis", "P400")
	var qa protocol.UpgradeQueryAck
	if err := lisbon.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &qa); err != nil {
		t.Fatal(err)
	}
	if qa.Offer != nil || qa.Campaign == nil || qa.Campaign.CampaignID != camp.ID || qa.Campaign.ReleaseID != n.rel.ID ||
		qa.Campaign.WindowStartMs != uint64(t0.Add(time.Hour).UnixMilli()) {
		t.Fatalf("query: offer %+v campaign %+v", qa.Offer, qa.Campaign)
	}
	first, err := schedule1(t, lisbon, camp.ID, 38.72, -9.14)
	if err != nil || first.NodeID != "mad-1" || first.SlotStartMs != uint64(t0.Add(time.Hour).UnixMilli()) || first.ReleaseID != n.rel.ID {
		t.Fatalf("Lisbon: %+v, %v", first, err)
	}
	again, err := schedule1(t, lisbon, camp.ID, 38.72, -9.14)
	if err != nil || again.ReservationID != first.ReservationID {
		t.Fatalf("again: %+v, %v", again, err)
	}
	// Madrid holds 2 per slot over 6 slots: 12; eleven more Iberian
	// terminals fill it in time order.
	for i := range 11 {
		c := n.dial(t, fmt.Sprintf("pos-es-%02d", i), "P400")
		ack, err := schedule1(t, c, camp.ID, 40.0, -3.0)
		if err != nil || ack.NodeID != "mad-1" {
			t.Fatalf("es %d: %+v %v", i, ack, err)
		}
		if want := t0.Add(time.Hour + time.Duration((i+1)/2)*10*time.Minute).UnixMilli(); ack.SlotStartMs != uint64(want) {
			t.Fatalf("es %d: slot %d, want %d", i, ack.SlotStartMs, want)
		}
	}
	// The next goes to the nearest cluster that still has room: Frankfurt.
	c := n.dial(t, "pos-es-x", "P400")
	if ack, err := schedule1(t, c, camp.ID, 40.0, -3.0); err != nil || (ack.NodeID != "fra-1" && ack.NodeID != "fra-2") {
		t.Fatalf("overflow: %+v %v", ack, err)
	}
	// A system id Warsaw does not serve skips it.
	other := n.dial(t, "kiosk-pl", "K1")
	var ack protocol.ScheduleAck
	if err := other.Do(t.Context(), &protocol.ScheduleRequest{CampaignID: camp.ID, Version: "1.0.0", HasLoc: true, Lat: 52.2, Lon: 21.0, SystemID: "kiosk-os"}, &ack); err != nil || ack.NodeID == "waw-1" {
		t.Fatalf("kiosk: %+v %v", ack, err)
	}
	// Unknown campaign, not targeted.
	if _, err := schedule1(t, c, "c-nope", 0, 0); protocol.StatusOf(err) != protocol.NotFound {
		t.Fatalf("unknown campaign: %v", err)
	}
}

// Thousands of concurrent placements never overbook a slot: afterwards
// every (node, slot) holds at most its capacity, the stored slot uses
// equal the reservations that hold capacity, and the terminals refused
// got UNAVAILABLE with a retry — also after a restart on the same store.
func TestNoOverbookingUnderConcurrency(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 sessions")
	}
	clk := &clock{}
	clk.set(t0)
	store := newStore(t)
	n := start(t, store, clk, threeClusters)
	camp := n.campaign(t, api.CampaignCreate{})
	const fleet = 400
	conns := make([]*client.Conn, fleet)
	for i := range conns {
		conns[i] = n.dial(t, fmt.Sprintf("pos-%04d", i), "P400")
	}
	var placed, full atomic.Int32
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			_, err := schedule1(t, c, camp.ID, 35+r.Float64()*25, -10+r.Float64()*35)
			switch protocol.StatusOf(err) {
			case protocol.OK:
				placed.Add(1)
			case protocol.Unavailable:
				full.Add(1)
			default:
				t.Errorf("placement: %v", err)
			}
		}()
	}
	wg.Wait()
	// 6 slots × (3 + 2 + 2) = 42 places.
	if placed.Load() != 42 || full.Load() != fleet-42 {
		t.Fatalf("placed %d, refused %d", placed.Load(), full.Load())
	}
	checkBooks(t, store, map[string]int{"fra-1": 2, "fra-2": 1, "mad-1": 2, "waw-1": 2})
}

// checkBooks checks the store: no (node, slot) over capacity, and the
// slot uses are exactly the reservations holding capacity.
func checkBooks(t *testing.T, store *storage.Badger, capacity map[string]int) {
	t.Helper()
	type key struct {
		node string
		slot int64
	}
	held := map[key]int{}
	err := store.Reservations(context.Background(), "", func(r storage.Reservation) error {
		if r.Holds() {
			held[key{r.NodeID, r.Slot}]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	uses := map[key]int{}
	_ = store.SlotUses(context.Background(), func(u storage.SlotUse) error { uses[key{u.Node, u.Slot}] = u.Count; return nil })
	for k, n := range held {
		if n > capacity[k.node] {
			t.Errorf("%s slot %d holds %d, capacity %d", k.node, k.slot, n, capacity[k.node])
		}
		if uses[k] != n {
			t.Errorf("%s slot %d: use %d, reservations %d", k.node, k.slot, uses[k], n)
		}
	}
	for k, n := range uses {
		if held[k] != n {
			t.Errorf("%s slot %d: use %d without its reservations (%d)", k.node, k.slot, n, held[k])
		}
	}
}

// Check-in: TOO_EARLY with the wait before the slot, PROCEED inside it
// with a token URL on the reserved node, MISSED after it; UP_TO_DATE
// gives the capacity to the next request; a draining node's check-in is
// sent to another node of its cluster; cancel answers EXPIRED.
func TestCheckIn(t *testing.T) {
	clk := &clock{}
	clk.set(t0)
	n := start(t, newStore(t), clk, threeClusters)
	camp := n.campaign(t, api.CampaignCreate{Clusters: []string{"fra"}})
	check := func(c *client.Conn, id, version string) (*protocol.UpgradeCheckAck, error) {
		var ack protocol.UpgradeCheckAck
		err := c.Do(t.Context(), &protocol.UpgradeCheck{ReservationID: id, Version: version}, &ack)
		return &ack, err
	}
	a := n.dial(t, "pos-a", "P400")
	ra, err := schedule1(t, a, camp.ID, 50, 8)
	if err != nil || ra.NodeID != "fra-1" {
		t.Fatalf("a: %+v %v", ra, err)
	}
	ack, err := check(a, ra.ReservationID, "1.0.0")
	if err != nil || ack.Decision != protocol.DecisionTooEarly || ack.WaitMs != uint64(time.Hour.Milliseconds()) {
		t.Fatalf("early: %+v %v", ack, err)
	}
	clk.add(time.Hour + time.Minute)
	ack, err = check(a, ra.ReservationID, "1.0.0")
	if err != nil || ack.Decision != protocol.DecisionProceed || ack.Token == "" || len(ack.SHA256) != 32 || ack.Size != 1<<20 {
		t.Fatalf("inside: %+v %v", ack, err)
	}
	// Fill fra's first slot (fra-1 has 1 left, fra-2 1), then one more
	// that is up to date gives its place back.
	b, c3 := n.dial(t, "pos-b", "P400"), n.dial(t, "pos-c", "P400")
	rb, _ := schedule1(t, b, camp.ID, 50, 8)
	rc, _ := schedule1(t, c3, camp.ID, 50, 8)
	if rb.SlotStartMs != ra.SlotStartMs || rc.SlotStartMs != ra.SlotStartMs {
		t.Fatalf("b %+v c %+v", rb, rc)
	}
	d := n.dial(t, "pos-d", "P400")
	rd, _ := schedule1(t, d, camp.ID, 50, 8)
	if rd.SlotStartMs == ra.SlotStartMs {
		t.Fatalf("d placed in a full slot: %+v", rd)
	}
	if ack, err := check(c3, rc.ReservationID, "2.0.0"); err != nil || ack.Decision != protocol.DecisionUpToDate {
		t.Fatalf("up to date: %+v %v", ack, err)
	}
	e := n.dial(t, "pos-e", "P400")
	if re, _ := schedule1(t, e, camp.ID, 50, 8); re.SlotStartMs != ra.SlotStartMs {
		t.Fatalf("the freed place was not given: %+v", re)
	}
	if _, err := check(c3, rc.ReservationID, "1.0.0"); protocol.StatusOf(err) != protocol.NotFound {
		t.Fatalf("released reservation: %v", err)
	}
	// Draining fra-2: b's check-in goes to fra-1 if b was on fra-2.
	if _, err := n.sc.Drain(t.Context(), rb.NodeID, true); err != nil {
		t.Fatal(err)
	}
	ack, err = check(b, rb.ReservationID, "1.0.0")
	if err != nil || ack.Decision != protocol.DecisionProceed || ack.URL == "" {
		t.Fatalf("draining: %+v %v", ack, err)
	}
	if rb.NodeID == "fra-2" && ack.URL[:len("https://fra-1")] != "https://fra-1" {
		t.Fatalf("check-in on a draining node not sent elsewhere: %s", ack.URL)
	}
	_, _ = n.sc.Drain(t.Context(), rb.NodeID, false)
	// After the slot: MISSED.
	clk.add(10 * time.Minute)
	if ack, err := check(b, rb.ReservationID, "1.0.0"); err != nil || ack.Decision != protocol.DecisionMissed {
		t.Fatalf("after: %+v %v", ack, err)
	}
	// Paused: UNAVAILABLE; cancelled: EXPIRED.
	if _, err := n.sc.Pause(t.Context(), camp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := check(d, rd.ReservationID, "1.0.0"); protocol.StatusOf(err) != protocol.Unavailable {
		t.Fatalf("paused: %v", err)
	}
	if _, err := n.sc.Cancel(t.Context(), camp.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := check(d, rd.ReservationID, "1.0.0"); protocol.StatusOf(err) != protocol.Expired {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := schedule1(t, d, camp.ID, 50, 8); protocol.StatusOf(err) != protocol.Expired {
		t.Fatalf("cancelled placement: %v", err)
	}
}

// Without coordinates a device is placed by the location an operator
// registered (kept across a restart); a campaign's retry tells the
// unreached and missed devices again.
func TestRegisteredLocationAndRetry(t *testing.T) {
	clk := &clock{}
	clk.set(t0)
	store := newStore(t)
	n := start(t, store, clk, threeClusters)
	camp := n.campaign(t, api.CampaignCreate{})
	if err := n.sc.SetLocation(t.Context(), "pos-pl", 52.4, 16.9, false); err != nil { // Poznań
		t.Fatal(err)
	}
	if err := n.sc.SetLocation(t.Context(), "pos-x", 95, 0, false); protocol.StatusOf(err) != protocol.BadRequest {
		t.Fatalf("latitude 95: %v", err)
	}
	n.Stop() // restart on the same store: the location is stored
	n = start(t, store, clk, threeClusters)
	c := n.dial(t, "pos-pl", "P400")
	var ack protocol.ScheduleAck
	if err := c.Do(t.Context(), &protocol.ScheduleRequest{CampaignID: camp.ID, Version: "1.0.0", SystemID: "pos-linux"}, &ack); err != nil || ack.NodeID != "waw-1" {
		t.Fatalf("registered location: %+v %v", ack, err)
	}
	// No coordinates and no registered location: the HELLO attrs, as a
	// last resort (Madrid here).
	attrs, _ := client.EncodeAttrs(map[string]any{"lat": "40.4", "lon": "-3.7"})
	es, err := client.Dial(t.Context(), client.Config{Addr: n.Addr, DeviceID: "pos-es", FleetSecret: []byte(servertest.FleetSecret), FW: "1", Model: "P400", NoHeartbeat: true, Attrs: attrs})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	if err := es.Do(t.Context(), &protocol.ScheduleRequest{CampaignID: camp.ID, Version: "1.0.0", SystemID: "pos-linux"}, &ack); err != nil || ack.NodeID != "mad-1" {
		t.Fatalf("attrs location: %+v %v", ack, err)
	}
	// pos-q queried (termd knows its version) but never asked for a slot.
	var notices atomic.Int32
	var q *client.Conn
	q, err = client.Dial(t.Context(), client.Config{Addr: n.Addr, DeviceID: "pos-q", FleetSecret: []byte(servertest.FleetSecret), FW: "1", Model: "P400", NoHeartbeat: true,
		OnPush: func(typ byte, _ uint16, _ []byte) {
			if typ == protocol.TypeUpgradeNotice {
				notices.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var qa protocol.UpgradeQueryAck
	if err := q.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0"}, &qa); err != nil || qa.Campaign == nil {
		t.Fatalf("query %+v %v", qa, err)
	}
	got, err := n.sc.Retry(t.Context(), camp.ID, api.CampaignRetry{Unreached: true})
	if err != nil || got != 1 {
		t.Fatalf("retry unreached: %d %v", got, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for notices.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if notices.Load() != 1 {
		t.Fatalf("%d notices to the unreached device", notices.Load())
	}
}

// A campaign whose daily window is in each device's own zone: a device in
// New York and one in Berlin are told, and placed in, their own local
// 01:00–02:00; a device without a zone gets the fleet default's (UTC).
func TestDeviceTimeZones(t *testing.T) {
	clk := &clock{}
	clk.set(t0) // Monday 2030-01-07 00:00 UTC
	n := start(t, newStore(t), clk, threeClusters)
	rel, err := n.up.CreateRelease(t.Context(), api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: testSHA, Size: 1 << 20, URL: "https://origin.example/pos.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.up.Publish(t.Context(), rel.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.sc.CreateCampaign(t.Context(), api.CampaignCreate{ReleaseID: rel.ID, TZ: "device", Windows: []api.Window{{StartMs: 1, EndMs: 2}}}); protocol.StatusOf(err) != protocol.BadRequest {
		t.Fatalf("device zone with absolute windows: %v", err)
	}
	camp, err := n.sc.CreateCampaign(t.Context(), api.CampaignCreate{ReleaseID: rel.ID, TZ: "device", Daily: "01:00-02:00", Dates: []string{"2030-01-07"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.sc.Publish(t.Context(), camp.ID); err != nil {
		t.Fatal(err)
	}
	if err := n.sc.SetZone(t.Context(), "pos-ny", "America/New_York"); err != nil {
		t.Fatal(err)
	}
	if err := n.sc.SetZone(t.Context(), "pos-be", "Europe/Berlin"); err != nil {
		t.Fatal(err)
	}
	if err := n.sc.SetZone(t.Context(), "pos-x", "Mars/Olympus"); protocol.StatusOf(err) != protocol.BadRequest {
		t.Fatalf("unknown zone: %v", err)
	}
	for dev, local := range map[string]string{"pos-ny": "America/New_York", "pos-be": "Europe/Berlin", "pos-utc": "UTC"} {
		loc, _ := time.LoadLocation(local)
		start := time.Date(2030, 1, 7, 1, 0, 0, 0, loc).UnixMilli()
		c := n.dial(t, dev, "P400")
		var qa protocol.UpgradeQueryAck
		if err := c.Do(t.Context(), &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0"}, &qa); err != nil || qa.Campaign == nil || qa.Campaign.WindowStartMs != uint64(start) {
			t.Fatalf("%s: campaign %+v (want window at %d) %v", dev, qa.Campaign, start, err)
		}
		ack, err := schedule1(t, c, camp.ID, 50, 8)
		if err != nil || ack.SlotStartMs != uint64(start) {
			t.Fatalf("%s: placed %+v, want its local 01:00 (%d): %v", dev, ack, start, err)
		}
	}
}
