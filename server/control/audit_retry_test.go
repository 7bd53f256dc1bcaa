package control_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/control"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// sickAudit fails the first fails appends, as a store under pressure does.
type sickAudit struct {
	storage.Audit
	fails atomic.Int64
	calls atomic.Int64
}

func (a *sickAudit) AppendAudit(ctx context.Context, r storage.AuditRecord) (uint64, error) {
	a.calls.Add(1)
	if a.fails.Add(-1) >= 0 {
		return 0, errors.New("disk is slow")
	}
	return a.Audit.AppendAudit(ctx, r)
}

// A failed audit write is retried (off the worker pool) and the request is
// answered once its record is committed; a record that cannot be written
// at all is answered INTERNAL, never acknowledged.
func TestAuditRetried(t *testing.T) {
	dir := t.TempDir()
	cfg := servertest.Config(t)
	cfg.Storage.Dir = dir
	cfg.Services = services(t, dir)
	audit := &sickAudit{}
	n := &node{dir: dir}
	n.Node = servertest.Start(t, cfg, func(s *server.Server) {
		audit.Audit = s.Store()
		ctl, err := control.Open(control.Options{Config: cfg, Audit: audit, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		s.Handle(protocol.TypeControl, ctl.Route())
		ctl.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = ctl.Close(ctx)
		})
	})
	c := n.dial(t, "pos-1", "till-1")

	audit.fails.Store(2)
	ack := mustAck(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStatus, RequestID: 1, HasRequestID: true})
	if ack.State == "" {
		t.Fatal("no state")
	}
	if got := audit.calls.Load(); got != 3 {
		t.Fatalf("%d append attempts, want 3", got)
	}
	recs, err := n.Store.ListAudit(t.Context(), storage.AuditFilter{DeviceID: "pos-1", Limit: 10})
	if err != nil || len(recs) != 1 || recs[0].RequestID != 1 {
		t.Fatalf("audit after retries: %+v, %v", recs, err)
	}

	audit.fails.Store(100)
	_, err = do(t, c, protocol.Control{ServiceID: "spooler", Op: protocol.OpStatus})
	wantCode(t, err, protocol.Internal)
}
