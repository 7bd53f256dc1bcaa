package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// fakeGroups serves Members, Group and Add; other calls panic.
// groupsAPI and releasesAPI let fakes embed the interfaces (whose own
// methods are named Groups and Releases).
type (
	groupsAPI   = Groups
	releasesAPI = Releases
)

type fakeGroups struct {
	groupsAPI // nil
	members   map[string][]string
	added     []string
}

func (g *fakeGroups) Members(id, _ string, _ int) (api.GroupMembers, error) {
	ms, ok := g.members[id]
	if !ok {
		return api.GroupMembers{}, &protocol.Error{Code: protocol.NotFound, Message: "no such group"}
	}
	out := api.GroupMembers{Group: id}
	for _, m := range ms {
		out.Members = append(out.Members, api.GroupMember{DeviceID: m})
	}
	return out, nil
}

func (g *fakeGroups) Group(id string) (api.Group, error) {
	_, err := g.Members(id, "", 0)
	return api.Group{}, err
}

func (g *fakeGroups) Add(ctx context.Context, id, dev, role, by string) (api.DeviceGroups, error) {
	g.added = append(g.added, id+" "+dev+" "+by)
	return api.DeviceGroups{}, nil
}

// fakeStages serves DeviceStages, Release and Retry; other calls panic.
type fakeStages struct {
	releasesAPI // nil
	stages      map[string]string
	retried     []string
}

func (f *fakeStages) DeviceStages(ctx context.Context, id string) (map[string]string, error) {
	if id != "rel-1" {
		return nil, &protocol.Error{Code: protocol.NotFound, Message: "no such release"}
	}
	return f.stages, nil
}

func (f *fakeStages) Release(ctx context.Context, id string) (api.Release, error) {
	_, err := f.DeviceStages(ctx, id)
	return api.Release{ID: id}, err
}

func (f *fakeStages) Retry(ctx context.Context, id string, in api.Retry) (int, error) {
	f.retried = append(f.retried, in.Device)
	return 1, nil
}

// searchFixture has 2,500 devices (more than two registry pages):
// d0000..d2499; every 10th online, model P400 for even numbers else
// P200, fw 1.<n%3>, every 7th blocked, the odd ones last seen 3 days ago,
// the even ones an hour ago.
func searchFixture(t *testing.T) (*fixture, *fakeGroups, *fakeStages) {
	grp := &fakeGroups{members: map[string][]string{"lobby": {"d0001", "d0002", "d0010", "d2498"}}}
	rel := &fakeStages{stages: map[string]string{"d0002": "failed", "d0004": "succeeded", "d0006": "failed", "d2400": "offered"}}
	vers := fakeVersions{{DeviceID: "d0002", AppID: "pos", Version: "2.0.0"}, {DeviceID: "d0003", AppID: "pos", Version: "1.0.0"},
		{DeviceID: "d0004", AppID: "kiosk", Version: "2.0.0"}}
	f := newFixture(t, func(o *Options) {
		withScopedTokens(t)(o)
		o.Groups, o.Releases, o.Versions, o.OperatorAudit = grp, rel, vers, storage.NewMemory()
	})
	now := time.Now().UnixMilli()
	for i := range 2500 {
		d := storage.Device{ID: fmt.Sprintf("d%04d", i), Online: i%10 == 0, Model: "P200", FW: fmt.Sprintf("1.%d", i%3),
			Blocked: i%7 == 0, LastSeen: now - 3*24*3600*1000}
		if i%2 == 0 {
			d.Model, d.LastSeen = "P400", now-3600*1000
		}
		f.node.add(server.DeviceView{Device: d, Live: d.Online})
	}
	return f, grp, rel
}

// search pages GET /v1/devices?query through its cursor and returns the ids.
func search(t *testing.T, f *fixture, query string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		resp := f.do(t, "GET", "/v1/devices?"+query+"&limit=300&cursor="+url.QueryEscape(cursor), readToken, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", query, resp.StatusCode)
		}
		var l api.DeviceList
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatal(err)
		}
		for _, d := range l.Devices {
			ids = append(ids, d.ID)
		}
		if l.NextCursor == "" {
			return ids
		}
		cursor = l.NextCursor
	}
}

func TestDeviceSearchFilters(t *testing.T) {
	f, _, _ := searchFixture(t)
	want := func(pred func(i int) bool) []string {
		var out []string
		for i := range 2500 {
			if pred(i) {
				out = append(out, fmt.Sprintf("d%04d", i))
			}
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"model=P400", want(func(i int) bool { return i%2 == 0 })},
		{"model=P400&fw=1.1", want(func(i int) bool { return i%2 == 0 && i%3 == 1 })},
		{"online=true&model=P200", nil},
		{"online=false&blocked=true", want(func(i int) bool { return i%10 != 0 && i%7 == 0 })},
		{"id=D24", want(func(i int) bool { return i >= 2400 })}, // "d" only leads
		{"id=249", want(func(i int) bool { return i >= 2490 || i%1000 == 249 })},
		{"offline_for=48h", want(func(i int) bool { return i%2 == 1 })},
		{"offline_for=30m&model=P400", want(func(i int) bool { return i%2 == 0 && i%10 != 0 })},
		{"group=lobby", []string{"d0001", "d0002", "d0010", "d2498"}},
		{"group=lobby&model=P400&online=false", []string{"d0002", "d2498"}},
		{"app=pos", []string{"d0002", "d0003"}},
		{"app=pos&app_version=2.0.0", []string{"d0002"}},
		{"release=rel-1", []string{"d0002", "d0004", "d0006", "d2400"}},
		{"release=rel-1&stage=failed", []string{"d0002", "d0006"}},
		{"release=rel-1&stage=failed&group=lobby", []string{"d0002"}},
		{"app=nothing", nil},
	} {
		got := search(t, f, tc.query)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %d devices %v..., want %d", tc.query, len(got), got[:min(len(got), 5)], len(tc.want))
		}
	}
	for _, q := range []string{"online=maybe", "blocked=2", "offline_for=-1h", "offline_for=soon", "app_version=1", "stage=failed",
		"model=" + strings.Repeat("x", 2000)} {
		expectError(t, f.do(t, "GET", "/v1/devices?"+q, readToken, ""), http.StatusBadRequest, api.CodeBadRequest)
	}
	expectError(t, f.do(t, "GET", "/v1/devices?group=nope", readToken, ""), http.StatusNotFound, api.CodeNotFound)
	expectError(t, f.do(t, "GET", "/v1/devices?release=nope", readToken, ""), http.StatusNotFound, api.CodeNotFound)
}

func bulk(t *testing.T, f *fixture, tok, body string) api.BulkResult {
	t.Helper()
	resp := f.do(t, "POST", "/v1/devices/bulk", tok, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bulk %s: %d", body, resp.StatusCode)
	}
	var out api.BulkResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeviceBulk(t *testing.T) {
	f, grp, rel := searchFixture(t)
	// Disconnect by filter: the online P400s with fw 1.0; and one offline
	// device by id, which fails.
	r := bulk(t, f, opsToken, `{"action":"disconnect","filter":"online=true&fw=1.0"}`)
	if r.Matched != 84 || r.Succeeded != 84 || r.Failed != 0 {
		t.Errorf("disconnect by filter: %+v", r)
	}
	r = bulk(t, f, opsToken, `{"action":"disconnect","ids":["d0010","d0011"]}`)
	if r.Matched != 2 || r.Succeeded != 1 || r.Failed != 1 || r.Failures[0].ID != "d0011" || r.Failures[0].Code != api.CodeNotFound {
		t.Errorf("disconnect by ids: %+v", r)
	}
	r = bulk(t, f, opsToken, `{"action":"block","filter":"group=lobby"}`)
	if r.Succeeded != 4 {
		t.Errorf("block a group: %+v", r)
	}
	calls := strings.Join(f.node.Calls(), ",")
	for _, c := range []string{"block d0001", "block d2498", "disconnect d0030"} {
		if !strings.Contains(calls, c) {
			t.Errorf("the node was not asked to %s", c)
		}
	}
	bulk(t, f, opsToken, `{"action":"group_add","group":"lobby","ids":["d0100"]}`)
	if len(grp.added) != 1 || grp.added[0] != "lobby d0100 operator:alice" {
		t.Errorf("group_add: %v", grp.added)
	}
	bulk(t, f, opsToken, `{"action":"retry_upgrade","release":"rel-1","filter":"release=rel-1&stage=failed"}`)
	if !slices.Equal(rel.retried, []string{"d0002", "d0006"}) {
		t.Errorf("retry_upgrade: %v", rel.retried)
	}

	// The audit names the bulk request's devices.
	var l api.OperatorAuditList
	resp := f.do(t, "GET", "/v1/operator-audit?target=d2498", readToken, "")
	_ = json.NewDecoder(resp.Body).Decode(&l)
	if len(l.Records) != 1 || l.Records[0].Path != "/v1/devices/bulk" || l.Records[0].TargetCount != 4 {
		t.Errorf("audit of the bulk block: %+v", l.Records)
	}

	// Refusals.
	for _, body := range []string{`{"action":"explode","ids":["a"]}`, `{"action":"block"}`, `{"action":"block","ids":["a"],"filter":""}`,
		`{"action":"block","ids":["bad id"]}`, `{"action":"group_add","ids":["a"]}`, `{"action":"retry_upgrade","ids":["a"]}`,
		`{"action":"block","filter":"%zz"}`, `{"action":"block","filter":"online=perhaps"}`, `not json`,
		`{"action":"block","filter":""}`} { // every device: 2,500 ≤ 10,000 is fine, so...
		resp := f.do(t, "POST", "/v1/devices/bulk", opsToken, body)
		if body == `{"action":"block","filter":""}` {
			if resp.StatusCode != http.StatusOK {
				t.Errorf("block every device: %d", resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", body, resp.StatusCode)
		}
	}
	ids := make([]string, MaxBulk+1)
	for i := range ids {
		ids[i] = fmt.Sprint("x", i)
	}
	b, _ := json.Marshal(api.BulkRequest{Action: "block", IDs: ids})
	expectError(t, f.do(t, "POST", "/v1/devices/bulk", opsToken, string(b)), http.StatusBadRequest, api.CodeBadRequest)
	expectError(t, f.do(t, "POST", "/v1/devices/bulk", readToken, `{"action":"block","ids":["a"]}`), http.StatusForbidden, api.CodeForbidden)
}
