package admin

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// TestOutboxEndpoint lists a real outbox (Badger in memory) over HTTP:
// pending and failed by default, each state on its own, paging, counts.
func TestOutboxEndpoint(t *testing.T) {
	b, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	for i := range 5 {
		e := storage.OutboxEntry{ID: fmt.Sprintf("e%d", i), Group: "r1", Kind: "upgrade_failed", At: 10, Channels: []string{"smtp", "webhook:ops"}, Payload: []byte(`{}`)}
		if _, err := b.EnqueueOutbox(ctx, e, 100); err != nil {
			t.Fatal(err)
		}
	}
	c, _, _ := b.ClaimOutbox(ctx, "smtp", 100, 0)
	if _, err := b.SettleOutbox(ctx, "smtp", c.Batch, storage.OutboxResult{At: 200, Error: "550 no such user"}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.Outbox = b })

	page := decodeJSON[api.OutboxList](t, f.do(t, "GET", "/v1/outbox", testToken, ""))
	if len(page.Deliveries) != 10 || page.Counts["smtp"] != (api.OutboxCount{Failed: 5}) || page.Counts["webhook:ops"] != (api.OutboxCount{Pending: 5}) {
		t.Fatalf("default page: %d deliveries, counts %v", len(page.Deliveries), page.Counts)
	}
	failed := decodeJSON[api.OutboxList](t, f.do(t, "GET", "/v1/outbox?state=failed", testToken, ""))
	if len(failed.Deliveries) != 5 {
		t.Fatalf("failed: %d", len(failed.Deliveries))
	}
	d := failed.Deliveries[0]
	if d.Channel != "smtp" || d.State != "failed" || d.DeliveryID != c.Batch || d.Attempts != 1 || d.LastError != "550 no such user" || d.ReleaseID != "r1" || d.DoneAtMs != 200 {
		t.Fatalf("failed delivery = %+v", d)
	}
	seen := 0
	q := "/v1/outbox?state=pending&limit=2"
	for range 10 {
		p := decodeJSON[api.OutboxList](t, f.do(t, "GET", q, testToken, ""))
		seen += len(p.Deliveries)
		for _, d := range p.Deliveries {
			if d.State != "pending" || d.Channel != "webhook:ops" {
				t.Fatalf("pending page holds %+v", d)
			}
		}
		if p.NextCursor == "" {
			break
		}
		q = "/v1/outbox?state=pending&limit=2&cursor=" + p.NextCursor
	}
	if seen != 5 {
		t.Fatalf("paged %d pending deliveries, want 5", seen)
	}
	for _, bad := range []string{"?state=lost", "?limit=0", "?cursor=xyz", "?cursor=abc"} {
		expectError(t, f.do(t, "GET", "/v1/outbox"+bad, testToken, ""), http.StatusBadRequest, api.CodeBadRequest)
	}
	expectError(t, f.do(t, "GET", "/v1/outbox", "", ""), http.StatusUnauthorized, api.CodeUnauthorized)
}
