package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

func operatorAuditOf(t *testing.T, f *fixture, query string) api.OperatorAuditList {
	t.Helper()
	resp := f.do(t, "GET", "/v1/operator-audit"+query, readToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/operator-audit%s: %d", query, resp.StatusCode)
	}
	var out api.OperatorAuditList
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOperatorAuditRecords: state-changing requests with a token are
// recorded with who, from where, what, on which id and the status
// (refusals with their message); reads and unauthenticated requests are
// not.
func TestOperatorAuditRecords(t *testing.T) {
	store := storage.NewMemory()
	f := newFixture(t, func(o *Options) { withScopedTokens(t)(o); o.OperatorAudit = store })
	f.node.add(server.DeviceView{Device: storage.Device{ID: "t1"}})
	if resp := f.do(t, "POST", "/v1/devices/t1/block", opsToken, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("block: %d", resp.StatusCode)
	}
	f.do(t, "POST", "/v1/devices/t1/block", readToken, "")        // 403 by scope
	f.do(t, "POST", "/v1/devices/t9/disconnect", opsToken, "")    // 404: not online
	f.do(t, "PUT", "/v1/devices/t1/key", opsToken, `{"key":"x"}`) // 400
	f.do(t, "POST", "/v1/devices/t1/block", "wrong", "")          // 401: not recorded
	f.do(t, "GET", "/v1/devices/t1", opsToken, "")                // a read: not recorded

	got := operatorAuditOf(t, f, "")
	if len(got.Records) != 4 {
		t.Fatalf("%d records, want 4: %+v", len(got.Records), got.Records)
	}
	put, disc, refused, block := got.Records[0], got.Records[1], got.Records[2], got.Records[3]
	if block.Operator != "alice" || block.Scope != "operator" || block.Method != "POST" || block.Path != "/v1/devices/t1/block" ||
		block.Route != "POST /v1/devices/{id}/block" || len(block.Targets) != 1 || block.Targets[0] != "t1" ||
		block.Status != http.StatusNoContent || block.Remote == "" || block.AtMs == 0 || block.Message != "" {
		t.Errorf("block record: %+v", block)
	}
	if refused.Operator != "ci" || refused.Scope != "read" || refused.Status != http.StatusForbidden || refused.Message == "" {
		t.Errorf("refused record: %+v", refused)
	}
	if disc.Status != http.StatusNotFound || disc.Message != "device is not online" || disc.Targets[0] != "t9" {
		t.Errorf("disconnect record: %+v", disc)
	}
	if put.Method != "PUT" || put.Status != http.StatusBadRequest {
		t.Errorf("key record: %+v", put)
	}

	// Filters.
	if l := operatorAuditOf(t, f, "?operator=ci"); len(l.Records) != 1 || l.Records[0].Operator != "ci" {
		t.Errorf("operator=ci: %+v", l.Records)
	}
	if l := operatorAuditOf(t, f, "?target=t1&result=ok"); len(l.Records) != 1 || l.Records[0].Seq != block.Seq {
		t.Errorf("target=t1&result=ok: %+v", l.Records)
	}
	if l := operatorAuditOf(t, f, "?result=failed&method=put"); len(l.Records) != 1 || l.Records[0].Seq != put.Seq {
		t.Errorf("result=failed&method=put: %+v", l.Records)
	}
	if l := operatorAuditOf(t, f, "?limit=2"); len(l.Records) != 2 || l.NextBefore != disc.Seq {
		t.Errorf("limit=2: %d records, next %d (want %d)", len(l.Records), l.NextBefore, disc.Seq)
	}
	if l := operatorAuditOf(t, f, "?since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z"); len(l.Records) != 0 {
		t.Errorf("a range in 2000: %+v", l.Records)
	}
	for _, q := range []string{"?result=maybe", "?limit=0", "?limit=5000", "?before=x", "?since=yesterday"} {
		expectError(t, f.do(t, "GET", "/v1/operator-audit"+q, readToken, ""), http.StatusBadRequest, api.CodeBadRequest)
	}
}

// blockingAudit holds each append until released, to show the answer
// waits for the record.
type blockingAudit struct {
	*storage.Memory
	entered chan struct{}
	release chan struct{}
	err     error
}

func (b *blockingAudit) AppendOperator(ctx context.Context, rec storage.OperatorRecord) (uint64, error) {
	if b.entered != nil {
		b.entered <- struct{}{}
		<-b.release
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.Memory.AppendOperator(ctx, rec)
}

// TestOperatorAuditBeforeAnswer: the client gets no answer while the
// record is being written, and a success that cannot be recorded is
// answered 500, not acknowledged.
func TestOperatorAuditBeforeAnswer(t *testing.T) {
	a := &blockingAudit{Memory: storage.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	f := newFixture(t, func(o *Options) { withScopedTokens(t)(o); o.OperatorAudit = a })
	f.node.add(server.DeviceView{Device: storage.Device{ID: "t1"}})
	answered := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", f.srv.URL+"/v1/devices/t1/block", nil)
		req.Header.Set("Authorization", "Bearer "+opsToken)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-a.entered
	select {
	case code := <-answered:
		t.Fatalf("answered %d before the audit record was stored", code)
	case <-time.After(200 * time.Millisecond):
	}
	close(a.release)
	if code := <-answered; code != http.StatusNoContent {
		t.Fatalf("block: %d", code)
	}

	a.entered, a.err = nil, errors.New("disk on fire")
	expectError(t, f.do(t, "POST", "/v1/devices/t1/unblock", opsToken, ""), http.StatusInternalServerError, api.CodeInternal)
}
