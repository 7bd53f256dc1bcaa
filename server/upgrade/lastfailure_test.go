package upgrade_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// gatedStore holds the release service's commits while its gate is
// closed, and runs onRead after each read of a failure mark outside a
// transaction (the launch query's read), before the query sees it.
type gatedStore struct {
	storage.Upgrades
	mu     sync.Mutex
	gate   chan struct{} // nil: open
	onRead atomic.Pointer[func()]
}

func (g *gatedStore) close() {
	g.mu.Lock()
	g.gate = make(chan struct{})
	g.mu.Unlock()
}

func (g *gatedStore) open() {
	g.mu.Lock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
	g.mu.Unlock()
}

func (g *gatedStore) UpdateUpgrades(ctx context.Context, fn func(tx storage.UpgradeTx) error) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return g.Upgrades.UpdateUpgrades(ctx, fn)
}

func (g *gatedStore) FailureMark(ctx context.Context, device, app string) (storage.UpgradeFailureMark, error) {
	m, err := g.Upgrades.FailureMark(ctx, device, app)
	if f := g.onRead.Load(); f != nil {
		(*f)()
	}
	return m, err
}

// failedThenRestarted gives device pos-1 a FAILED attempt at a release,
// then restarts the node on the same store (memory empty, as after the
// kill in the end-to-end test), with the new node's store gated.
func failedThenRestarted(t *testing.T) (*node, *gatedStore, *terminal, string) {
	t.Helper()
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	n := startOn(t, store, nil)
	a := n.dial(t, "pos-1", "P400")
	rel := n.release(t, api.ReleaseCreate{Version: "2.0.0"}, true)
	a.query(t, "pos", "1.0.0", true)
	a.mustReport(t, rel.ID, 1, protocol.StageDownloading)
	if err := a.report(t, rel.ID, 1, protocol.StageFailed, 42, "flash write failed"); err != nil {
		t.Fatal(err)
	}
	n.stop()
	g := &gatedStore{}
	n = startWrapped(t, store, nil, func(u storage.Upgrades) storage.Upgrades { g.Upgrades = u; return g })
	return n, g, n.dial(t, "pos-1", "P400"), rel.ID
}

// A launch query sent as soon as the answer carrying last_failure was
// read must not get it again while the delivered mark is still waiting
// for the committer (the end-to-end test's flake: the mark is only
// queued when the answer is written, and the next query read the store
// before that commit landed).
func TestLastFailureOnceWhileMarkCommits(t *testing.T) {
	n, g, a, rel := failedThenRestarted(t)
	g.close()
	defer g.open()
	if lf := a.query(t, "pos", "1.0.0", true).LastFailure; lf == nil || lf.ReleaseID != rel || lf.Code != 42 {
		t.Fatalf("first launch query after the restart: last_failure %+v", lf)
	}
	if lf := a.query(t, "pos", "1.0.0", true).LastFailure; lf != nil {
		t.Fatalf("last_failure returned twice while its delivered mark was being committed: %+v", lf)
	}
	g.open()
	eventually(t, "delivered mark", func() bool {
		m, err := n.Store.FailureMark(t.Context(), "pos-1", "pos")
		return err == nil && m.Delivered
	})
	if lf := a.query(t, "pos", "1.0.0", true).LastFailure; lf != nil {
		t.Fatalf("last_failure after its delivered mark committed: %+v", lf)
	}
}

// The delivered mark's commit may land between the next query's read of
// the store (not delivered yet) and its look at what was written: the
// query must still not return the failure.
func TestLastFailureOnceWhenMarkCommitsDuringQuery(t *testing.T) {
	n, g, a, rel := failedThenRestarted(t)
	g.close()
	defer g.open()
	if lf := a.query(t, "pos", "1.0.0", true).LastFailure; lf == nil || lf.ReleaseID != rel {
		t.Fatalf("first launch query after the restart: last_failure %+v", lf)
	}
	// On the second query's read: let the delivered mark commit, and wait
	// until its job was answered (Assign commits after it, in order).
	hook := func() {
		g.onRead.Store(nil)
		g.open()
		if err := n.up.Assign(context.Background(), rel, "pos-2", "1.0.0", "P400"); err != nil {
			t.Errorf("assign: %v", err)
		}
	}
	g.onRead.Store(&hook)
	if lf := a.query(t, "pos", "1.0.0", true).LastFailure; lf != nil {
		t.Fatalf("last_failure returned twice when its mark committed during the query: %+v", lf)
	}
}

// A new outcome of the same attempt (ROLLED_BACK after FAILED) is a new
// last_failure: it is returned once, though the earlier one of the same
// attempt was delivered.
func TestRolledBackAfterDeliveredFailureReturnedOnce(t *testing.T) {
	n, _, a, rel := failedThenRestarted(t)
	if lf := a.query(t, "pos", "1.0.0", true).LastFailure; lf == nil || lf.Code != 42 {
		t.Fatalf("first launch query: last_failure %+v", lf)
	}
	eventually(t, "delivered mark", func() bool {
		m, err := n.Store.FailureMark(t.Context(), "pos-1", "pos")
		return err == nil && m.Delivered
	})
	if err := a.report(t, rel, 1, protocol.StageRolledBack, 43, "restored 1.0.0"); err != nil {
		t.Fatal(err)
	}
	lf := a.query(t, "pos", "1.0.0", true).LastFailure
	if lf == nil || lf.Code != 43 || lf.Message != "restored 1.0.0" {
		t.Fatalf("last_failure after ROLLED_BACK: %+v", lf)
	}
	if lf := a.query(t, "pos", "1.0.0", true).LastFailure; lf != nil {
		t.Fatalf("ROLLED_BACK's last_failure returned twice: %+v", lf)
	}
}
