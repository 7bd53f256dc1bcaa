package admin

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/groups"
	"github.com/termd/termd/storage"
)

func groupsFixture(t *testing.T) *fixture {
	t.Helper()
	g, err := groups.Open(context.Background(), groups.Options{Store: storage.NewMemory(), Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	return newFixture(t, func(o *Options) { o.Groups = g })
}

// The group endpoints: create, list, show, members, add and remove with
// who made the membership, send, delete, and their refusals.
func TestGroupsEndpoints(t *testing.T) {
	f := groupsFixture(t)
	resp := f.do(t, "POST", "/v1/groups", testToken, `{"id":"store-12","name":"Store 12","policy":"open","limit":2}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, readBody(t, resp))
	}
	for body, want := range map[string]int{
		`{"id":"store-12"}`:                               http.StatusConflict,
		`{"id":"x","policy":"anyone"}`:                    http.StatusBadRequest,
		`{"id":""}`:                                       http.StatusBadRequest,
		`{"id":"x","limit":-1}`:                           http.StatusBadRequest,
		`{"id":"x","colour":"red"}`:                       http.StatusBadRequest,
		`{"id":"x","allow":["model:P4*"]}`:                http.StatusBadRequest, // allow needs the allowlist policy
		`{"id":"x","policy":"allowlist","allow":["P4*"]}`: http.StatusBadRequest,
	} {
		if resp := f.do(t, "POST", "/v1/groups", testToken, body); resp.StatusCode != want {
			t.Errorf("create %s: %d, want %d (%s)", body, resp.StatusCode, want, readBody(t, resp))
		}
	}
	if resp := f.do(t, "PUT", "/v1/groups/store-12/members/T1", testToken, `{"role":"moderator"}`); resp.StatusCode != 200 {
		t.Fatalf("add: %d %s", resp.StatusCode, readBody(t, resp))
	}
	resp = f.do(t, "PUT", "/v1/groups/store-12/members/T2", testToken, "")
	if d := decodeJSON[api.DeviceGroups](t, resp); d.GroupVersion != 1 || len(d.Groups) != 1 || d.Groups[0].Role != "member" {
		t.Fatalf("add T2: %+v", d)
	}
	if resp := f.do(t, "PUT", "/v1/groups/store-12/members/T3", testToken, ""); resp.StatusCode != http.StatusConflict {
		t.Fatalf("add past the limit: %d", resp.StatusCode)
	}
	if resp := f.do(t, "PUT", "/v1/groups/store-12/members/T3", testToken, `{"role":"admin"}`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad role: %d", resp.StatusCode)
	}
	if resp := f.do(t, "PUT", "/v1/groups/nope/members/T3", testToken, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown group: %d", resp.StatusCode)
	}
	ms := decodeJSON[api.GroupMembers](t, f.do(t, "GET", "/v1/groups/store-12/members", testToken, ""))
	if len(ms.Members) != 2 || ms.Members[0].DeviceID != "T1" || ms.Members[0].Role != "moderator" || ms.Members[0].By != "operator:"+config.LegacyTokenName || ms.Members[0].AtMs == 0 {
		t.Fatalf("members %+v", ms)
	}
	g := decodeJSON[api.Group](t, f.do(t, "GET", "/v1/groups/store-12", testToken, ""))
	if g.Members != 2 || g.Policy != "open" || g.Limit != 2 || g.Name != "Store 12" {
		t.Fatalf("show %+v", g)
	}
	l := decodeJSON[api.GroupList](t, f.do(t, "GET", "/v1/groups", testToken, ""))
	if len(l.Groups) != 1 {
		t.Fatalf("list %+v", l)
	}
	dg := decodeJSON[api.DeviceGroups](t, f.do(t, "GET", "/v1/devices/T1/groups", testToken, ""))
	if dg.GroupVersion != 1 || len(dg.Groups) != 1 || dg.Groups[0].DeviceID != "store-12" {
		t.Fatalf("device groups %+v", dg)
	}
	s := decodeJSON[api.GroupSent](t, f.do(t, "POST", "/v1/groups/store-12/send", testToken, `{"text":"price update"}`))
	if s.MsgID == 0 {
		t.Fatalf("send %+v", s)
	}
	if resp := f.do(t, "POST", "/v1/groups/store-12/send", testToken, `{"text":"a","payload":"YQ=="}`); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("text and payload: %d", resp.StatusCode)
	}
	if resp := f.do(t, "DELETE", "/v1/groups/store-12/members/T2", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	if resp := f.do(t, "POST", "/v1/group-keys/rotate", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("rotate: %d", resp.StatusCode)
	}
	if resp := f.do(t, "DELETE", "/v1/groups/store-12", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp := f.do(t, "GET", "/v1/groups/store-12", testToken, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("deleted: %d", resp.StatusCode)
	}
	dg = decodeJSON[api.DeviceGroups](t, f.do(t, "GET", "/v1/devices/T1/groups", testToken, ""))
	if dg.GroupVersion != 2 || len(dg.Groups) != 0 {
		t.Fatalf("after delete %+v", dg)
	}
	// Without the feature: 503.
	plain := newFixture(t, nil)
	if resp := plain.do(t, "GET", "/v1/groups", testToken, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("no groups: %d", resp.StatusCode)
	}
}

// GET /v1/groups/{id}/members?limit=&after= pages through the members in
// id order; without limit it lists them all, as before.
func TestGroupMembersPaged(t *testing.T) {
	f := groupsFixture(t)
	if resp := f.do(t, "POST", "/v1/groups", testToken, `{"id":"techs"}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	for _, d := range []string{"T5", "T1", "T4", "T2", "T3"} {
		if resp := f.do(t, "PUT", "/v1/groups/techs/members/"+d, testToken, ""); resp.StatusCode != 200 {
			t.Fatalf("add %s: %d", d, resp.StatusCode)
		}
	}
	var got []string
	after, pages := "", 0
	for {
		ms := decodeJSON[api.GroupMembers](t, f.do(t, "GET", "/v1/groups/techs/members?limit=2&after="+after, testToken, ""))
		pages++
		for _, m := range ms.Members {
			got = append(got, m.DeviceID)
		}
		if ms.Next == "" {
			break
		}
		if len(ms.Members) != 2 || ms.Next != ms.Members[1].DeviceID {
			t.Fatalf("page %d: %+v", pages, ms)
		}
		after = ms.Next
	}
	if pages != 3 || fmt.Sprint(got) != "[T1 T2 T3 T4 T5]" {
		t.Fatalf("%d pages: %v", pages, got)
	}
	if all := decodeJSON[api.GroupMembers](t, f.do(t, "GET", "/v1/groups/techs/members", testToken, "")); len(all.Members) != 5 || all.Next != "" {
		t.Fatalf("unpaged: %+v", all)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x"} {
		if resp := f.do(t, "GET", "/v1/groups/techs/members?"+q, testToken, ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, resp.StatusCode)
		}
	}
}
