package upgrade_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/groups"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/server/upgrade"
	"github.com/termd/termd/storage"
)

// A release targeted at an operator-only group reaches exactly its
// members at the time of the offer; open and unknown groups are refused
// at creation with the reason; a targeted group cannot be deleted.
func TestReleaseGroupTargeting(t *testing.T) {
	cfg := servertest.Config(t)
	var g *groups.Service
	var up *upgrade.Service
	n := servertest.Start(t, cfg, func(s *server.Server) {
		var err error
		if g, err = groups.Open(context.Background(), groups.Options{Store: s.Store().(storage.Groups), Server: s, Log: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		g.Routes(s)
		if up, err = upgrade.Open(upgrade.Options{Config: cfg, Store: s.Store(), Server: s, Groups: g, Log: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		up.Routes(s)
		up.Start()
		t.Cleanup(func() { _ = up.Close(context.Background()) })
		g.SetReferences(up.GroupReferences)
	})
	ctx := t.Context()
	for _, in := range []api.GroupCreate{{ID: "pilot"}, {ID: "lobby", Policy: "open"}, {ID: "vip", Policy: "allowlist", Allow: []string{"model:P4*"}}} {
		if _, err := g.Create(ctx, in, "operator:t"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Add(ctx, "pilot", "T1", "", "operator:t"); err != nil {
		t.Fatal(err)
	}
	mk := func(gs ...string) (api.Release, error) {
		return up.CreateRelease(ctx, api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: testSHA, Size: 1 << 20,
			URL: "https://dl.example/pos.bin", Groups: gs})
	}
	for gs, want := range map[string]string{
		"lobby": "group lobby can be joined by terminals themselves",
		"vip":   "group vip can be joined by terminals themselves",
		"nope":  "unknown group nope",
	} {
		_, err := mk(gs)
		if protocol.StatusOf(err) != protocol.BadRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("release for %s: %v, want %q", gs, err, want)
		}
	}
	rel, err := mk("pilot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Publish(ctx, rel.ID); err != nil {
		t.Fatal(err)
	}
	offered := func(dev string) bool {
		c, err := client.Dial(ctx, client.Config{Addr: n.Addr, DeviceID: dev, FleetSecret: []byte(servertest.FleetSecret), FW: "1", Model: "P400", NoHeartbeat: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var ack protocol.UpgradeQueryAck
		if err := c.Do(ctx, &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0"}, &ack); err != nil {
			t.Fatal(err)
		}
		return ack.Offer != nil && ack.Offer.ReleaseID == rel.ID
	}
	if !offered("T1") || offered("T2") {
		t.Fatal("the release did not reach exactly the group's members")
	}
	// Membership at the time of the offer: T2 added later is offered it;
	// T3, removed before it ever asked, is not. (An offer already made
	// stays assigned, as for every targeting change: docs/upgrades.md.)
	for _, d := range []string{"T2", "T3"} {
		if _, err := g.Add(ctx, "pilot", d, "", "operator:t"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Remove(ctx, "pilot", "T3", "operator:t"); err != nil {
		t.Fatal(err)
	}
	if !offered("T2") || offered("T3") {
		t.Fatal("the offer did not follow the membership change")
	}
	// A phased rollout whose pilot phase is the group: members of pilot
	// only, until the phase advances; an open group is refused there too.
	_, err = up.CreateRelease(ctx, api.ReleaseCreate{AppID: "pos", Version: "2.0.1", SHA256: testSHA, Size: 1 << 20,
		URL: "https://dl.example/pos.bin", Phases: []api.Phase{{Group: "lobby"}, {Percent: 100}}})
	if protocol.StatusOf(err) != protocol.BadRequest || !strings.Contains(err.Error(), "group lobby can be joined") {
		t.Fatalf("phase on an open group: %v", err)
	}
	phased, err := up.CreateRelease(ctx, api.ReleaseCreate{AppID: "pos", Version: "2.0.1", SHA256: testSHA, Size: 1 << 20,
		URL: "https://dl.example/pos.bin", Phases: []api.Phase{{Group: "pilot"}, {Percent: 100}}})
	if err != nil || phased.Phases[0].Group != "pilot" {
		t.Fatalf("phased: %+v %v", phased, err)
	}
	if _, err := up.Publish(ctx, phased.ID); err != nil {
		t.Fatal(err)
	}
	rel = phased
	if !offered("T2") || offered("T4") {
		t.Fatal("the group phase did not reach exactly the group's members")
	}
	// A dynamic group (a filter on HELLO's model) targets too: a P400
	// asking now is offered the release, whatever its memberships.
	if _, err := g.Create(ctx, api.GroupCreate{ID: "p4", Policy: "dynamic", Filter: &api.GroupFilter{Models: []string{"P4*"}}}, "operator:t"); err != nil {
		t.Fatal(err)
	}
	dyn, err := up.CreateRelease(ctx, api.ReleaseCreate{AppID: "pos", Version: "2.0.2", SHA256: testSHA, Size: 1 << 20,
		URL: "https://dl.example/pos.bin", Groups: []string{"p4"}})
	if err != nil {
		t.Fatalf("release for a dynamic group: %v", err)
	}
	if _, err := up.Publish(ctx, dyn.ID); err != nil {
		t.Fatal(err)
	}
	rel = dyn
	if !offered("T5") {
		t.Fatal("the dynamic group's release did not reach a matching device")
	}
	rel = phased
	err = g.Delete(ctx, "pilot", "operator:t")
	if protocol.StatusOf(err) != protocol.Conflict || !strings.Contains(err.Error(), "release "+rel.ID) {
		t.Fatalf("delete of a targeted group: %v", err)
	}
	if err := g.Delete(ctx, "lobby", "operator:t"); err != nil {
		t.Fatalf("delete of an unreferenced group: %v", err)
	}
}
