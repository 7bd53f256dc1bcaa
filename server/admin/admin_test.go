package admin

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

const testToken = "s3cret-admin-token"

// fakeNode is an in-memory Node that records what the API asked of it.
type fakeNode struct {
	mu      sync.Mutex
	devs    map[string]server.DeviceView
	ready   bool
	calls   []string
	keys    map[string][]byte
	failErr error // returned by every storage-backed call when set
	noWrite error // returned by Writable when set

	lastOnline *bool
	lastLimit  int
	lastCursor string
}

func newFakeNode() *fakeNode {
	return &fakeNode{devs: map[string]server.DeviceView{}, keys: map[string][]byte{}, ready: true}
}

func (f *fakeNode) add(v server.DeviceView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devs[v.ID] = v
}

func (f *fakeNode) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeNode) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeNode) Stats() api.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.devs {
		if d.Online {
			n++
		}
	}
	return api.Stats{Online: n, Connections: int64(n), MaxConnections: 19500, HBIntervalS: 30, MissFactor: 3, BootEpoch: 7}
}

func (f *fakeNode) Device(ctx context.Context, id string) (server.DeviceView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failErr != nil {
		return server.DeviceView{}, f.failErr
	}
	d, ok := f.devs[id]
	if !ok {
		return server.DeviceView{}, storage.ErrNotFound
	}
	return d, nil
}

func (f *fakeNode) Devices(ctx context.Context, online *bool, limit int, cursor string) ([]server.DeviceView, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastOnline, f.lastLimit, f.lastCursor = online, limit, cursor
	if f.failErr != nil {
		return nil, "", f.failErr
	}
	ids := make([]string, 0, len(f.devs))
	for id, d := range f.devs {
		if id > cursor && (online == nil || d.Online == *online) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	out := make([]server.DeviceView, 0, len(ids))
	for _, id := range ids {
		out = append(out, f.devs[id])
	}
	return out, next, nil
}

func (f *fakeNode) Disconnect(id string) bool {
	f.record("disconnect " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devs[id].Online
}

func (f *fakeNode) Block(ctx context.Context, id string) error {
	f.record("block " + id)
	return f.failErr
}

func (f *fakeNode) Unblock(ctx context.Context, id string) error {
	f.record("unblock " + id)
	return f.failErr
}

func (f *fakeNode) SetKey(ctx context.Context, id string, key []byte) error {
	f.record(fmt.Sprintf("setkey %s %x", id, key))
	if f.failErr != nil {
		return f.failErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[id] = key
	return nil
}

func (f *fakeNode) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeNode) Writable() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.noWrite
}

var quietLog = slog.New(slog.DiscardHandler)

// fixture is an API over a fake node on a loopback httptest server.
type fixture struct {
	node *fakeNode
	bus  *events.Bus
	h    *handler
	srv  *httptest.Server
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	f := &fixture{node: newFakeNode(), bus: events.NewBus()}
	set := metrics.NewSet()
	set.NewCounter("termd_test_total").Add(3)
	opt := Options{
		Token: testToken, OpenProbes: true, EventBuffer: 16, Bus: f.bus, Logger: quietLog,
		Metrics:      []*metrics.Set{set},
		ExtraMetrics: func(w io.Writer) { fmt.Fprintln(w, "termd_badger_lsm_bytes 1234") },
		Backup: func(ctx context.Context, w io.Writer) (uint64, error) {
			_, err := io.WriteString(w, "BACKUP-BYTES")
			return 42, err
		},
	}
	if mod != nil {
		mod(&opt)
	}
	f.h = New(f.node, opt).(*handler)
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close)
	return f
}

// do sends a request with the test token (token "" sends none).
func (f *fixture) do(t *testing.T, method, path, token, body string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// expectError checks status and the JSON error code.
func expectError(t *testing.T, resp *http.Response, status int, code api.ErrorCode) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d", resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content-type %q", ct)
	}
	var e api.Error
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Code != code || e.Message == "" {
		t.Fatalf("error %+v, want code %q with a message", e, code)
	}
}

func TestAuth(t *testing.T) {
	for _, open := range []bool{true, false} {
		f := newFixture(t, func(o *Options) { o.OpenProbes = open })
		cases := []struct {
			path, token string
			want        int
		}{
			{"/v1/stats", "", 401},
			{"/v1/stats", "wrong", 401},
			{"/v1/stats", testToken + "x", 401},
			{"/v1/stats", testToken, 200},
			{"/v1/nope", "", 401}, // unknown paths do not leak before auth
			{"/v1/nope", testToken, 404},
			{"/healthz", "", map[bool]int{true: 200, false: 401}[open]},
			{"/readyz", "", map[bool]int{true: 200, false: 401}[open]},
			{"/metrics", "", map[bool]int{true: 200, false: 401}[open]},
			{"/healthz", testToken, 200},
		}
		for _, c := range cases {
			resp := f.do(t, "GET", c.path, c.token, "")
			if resp.StatusCode != c.want {
				t.Errorf("open=%v GET %s token=%q: %d, want %d", open, c.path, c.token, resp.StatusCode, c.want)
			}
			if c.want == 401 {
				expectError(t, resp, 401, api.CodeUnauthorized)
			}
		}
	}

	// A probe that did not arrive on loopback needs the token even with
	// open probes.
	h := New(newFakeNode(), Options{Token: testToken, OpenProbes: true, Logger: quietLog})
	for _, local := range []string{"10.1.2.3:7080", "[2001:db8::1]:7080"} {
		req := httptest.NewRequest("GET", "/healthz", nil)
		addr, _ := net.ResolveTCPAddr("tcp", local)
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, addr))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 401 {
			t.Errorf("probe via %s without token: %d, want 401", local, rec.Code)
		}
		req.Header.Set("Authorization", "bearer "+testToken) // scheme is case-insensitive
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Errorf("probe via %s with token: %d, want 200", local, rec.Code)
		}
	}

	// No configured token refuses everything that needs one.
	h = New(newFakeNode(), Options{Logger: quietLog})
	req := httptest.NewRequest("GET", "/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Errorf("empty configured token: %d, want 401", rec.Code)
	}
}

func TestProbes(t *testing.T) {
	f := newFixture(t, nil)
	if b := readBody(t, f.do(t, "GET", "/healthz", "", "")); b != "ok\n" {
		t.Errorf("healthz body %q", b)
	}
	if resp := f.do(t, "GET", "/readyz", "", ""); resp.StatusCode != 200 {
		t.Errorf("readyz %d", resp.StatusCode)
	}
	f.node.mu.Lock()
	f.node.ready = false
	f.node.mu.Unlock()
	expectError(t, f.do(t, "GET", "/readyz", "", ""), 503, api.CodeUnavailable)

	resp := f.do(t, "GET", "/metrics", "", "")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("metrics content-type %q", ct)
	}
	body := readBody(t, resp)
	for _, want := range []string{"termd_test_total 3\n", "termd_badger_lsm_bytes 1234\n", "go_goroutines ", "process_"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Index(body, "termd_test_total") > strings.Index(body, "termd_badger_lsm_bytes") {
		t.Error("sets must come before the extra metrics")
	}
}

func TestRouteErrors(t *testing.T) {
	f := newFixture(t, nil)
	resp := f.do(t, "DELETE", "/v1/stats", testToken, "")
	expectError(t, resp, 405, api.CodeMethodNotAllowed)
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("Allow %q", allow)
	}
	expectError(t, f.do(t, "GET", "/v1/devices/x/block", testToken, ""), 405, api.CodeMethodNotAllowed)
	expectError(t, f.do(t, "GET", "/v2/stats", testToken, ""), 404, api.CodeNotFound)
}

func TestStats(t *testing.T) {
	f := newFixture(t, nil)
	f.node.add(server.DeviceView{Device: storage.Device{ID: "A", Online: true}, Live: true})
	resp := f.do(t, "GET", "/v1/stats", testToken, "")
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st["online"] != 1.0 || st["max_connections"] != 19500.0 || st["boot_epoch"] != 7.0 {
		t.Errorf("stats %v", st)
	}
}

// encodeMap makes stored-form MessagePack attrs the way the SDK does.
func encodeMap(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := client.EncodeStatus(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDevice(t *testing.T) {
	f := newFixture(t, nil)
	f.node.add(server.DeviceView{Live: true, Device: storage.Device{
		ID: "POS-1", Online: true, SessionID: 1<<32 | 5, FirstSeen: 1000, LastSeen: 5000,
		LastOnline: 4000, LastOffline: 3000, OfflineReason: "timeout", RemoteAddr: "10.0.0.9:5555",
		FW: "2.1.0", Model: "P400", Key: make([]byte, 32), Blocked: true,
		Attrs:  encodeMap(t, map[string]any{"site": "berlin", "lane": 3, "kiosk": true}),
		Status: encodeMap(t, map[string]any{"temp": 41.5}),
	}})
	resp := f.do(t, "GET", "/v1/devices/POS-1", testToken, "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	raw := readBody(t, resp)
	want := `{"id":"POS-1","online":true,"live":true,"session_id":4294967301,"first_seen_ms":1000,` +
		`"last_seen_ms":5000,"last_online_ms":4000,"last_offline_ms":3000,"offline_reason":"timeout",` +
		`"remote_addr":"10.0.0.9:5555","fw":"2.1.0","model":"P400",` +
		`"attrs":{"kiosk":true,"lane":3,"site":"berlin"},"status":{"temp":41.5},"blocked":true,"has_key":true}` + "\n"
	if raw != want {
		t.Errorf("device JSON\n got %s\nwant %s", raw, want)
	}
	if strings.Contains(raw, `"key"`) {
		t.Error("the key itself must never be shown")
	}

	f.node.add(server.DeviceView{Device: storage.Device{ID: "BARE"}})
	raw = readBody(t, f.do(t, "GET", "/v1/devices/BARE", testToken, ""))
	if !strings.Contains(raw, `"attrs":null,"status":null`) || !strings.Contains(raw, `"has_key":false`) {
		t.Errorf("bare device %s", raw)
	}
	// A corrupt stored map shows as null, not as a failure.
	f.node.add(server.DeviceView{Device: storage.Device{ID: "BAD", Attrs: []byte{0xc1}}})
	if raw = readBody(t, f.do(t, "GET", "/v1/devices/BAD", testToken, "")); !strings.Contains(raw, `"attrs":null`) {
		t.Errorf("corrupt attrs %s", raw)
	}

	expectError(t, f.do(t, "GET", "/v1/devices/NOPE", testToken, ""), 404, api.CodeNotFound)
	expectError(t, f.do(t, "GET", "/v1/devices/bad%20id", testToken, ""), 400, api.CodeBadRequest)
	expectError(t, f.do(t, "GET", "/v1/devices/"+strings.Repeat("x", 65), testToken, ""), 400, api.CodeBadRequest)

	f.node.mu.Lock()
	f.node.failErr = errors.New("disk on fire")
	f.node.mu.Unlock()
	expectError(t, f.do(t, "GET", "/v1/devices/POS-1", testToken, ""), 500, api.CodeInternal)
	f.node.mu.Lock()
	f.node.failErr = storage.ErrClosed
	f.node.mu.Unlock()
	expectError(t, f.do(t, "GET", "/v1/devices/POS-1", testToken, ""), 503, api.CodeUnavailable)
}

func TestDevicesPagination(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 5 {
		f.node.add(server.DeviceView{Device: storage.Device{ID: fmt.Sprintf("D%d", i), Online: i%2 == 0}})
	}
	type page struct {
		Devices []struct {
			ID string `json:"id"`
		} `json:"devices"`
		NextCursor string `json:"next_cursor"`
	}
	get := func(q string) page {
		t.Helper()
		resp := f.do(t, "GET", "/v1/devices"+q, testToken, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", q, resp.StatusCode)
		}
		var p page
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := get("")
	if len(p.Devices) != 5 || p.NextCursor != "" || f.node.lastLimit != DefaultPageSize || f.node.lastOnline != nil {
		t.Fatalf("default page %+v limit %d", p, f.node.lastLimit)
	}
	p = get("?limit=2")
	if len(p.Devices) != 2 || p.NextCursor != "D1" {
		t.Fatalf("first page %+v", p)
	}
	p = get("?limit=2&cursor=" + p.NextCursor)
	if f.node.lastCursor != "D1" || p.Devices[0].ID != "D2" || p.NextCursor != "D3" {
		t.Fatalf("second page %+v (cursor passed %q)", p, f.node.lastCursor)
	}
	p = get("?online=true&limit=1000")
	if len(p.Devices) != 3 || f.node.lastOnline == nil || !*f.node.lastOnline || f.node.lastLimit != 1000 {
		t.Fatalf("online page %+v", p)
	}
	if p = get("?online=false"); len(p.Devices) != 2 || *f.node.lastOnline {
		t.Fatalf("offline page %+v", p)
	}
	// An empty listing is [] not null.
	if raw := readBody(t, f.do(t, "GET", "/v1/devices?cursor=ZZZ", testToken, "")); !strings.Contains(raw, `"devices":[]`) {
		t.Errorf("empty page %s", raw)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?limit=-1", "?online=maybe", "?cursor=" + strings.Repeat("c", 2000)} {
		expectError(t, f.do(t, "GET", "/v1/devices"+q, testToken, ""), 400, api.CodeBadRequest)
	}
}

func TestActions(t *testing.T) {
	f := newFixture(t, nil)
	f.node.add(server.DeviceView{Device: storage.Device{ID: "ON", Online: true}, Live: true})
	for _, path := range []string{"/v1/devices/ON/block", "/v1/devices/ON/unblock", "/v1/devices/ON/disconnect"} {
		if resp := f.do(t, "POST", path, testToken, ""); resp.StatusCode != 204 {
			t.Errorf("POST %s: %d", path, resp.StatusCode)
		}
	}
	expectError(t, f.do(t, "POST", "/v1/devices/OFF/disconnect", testToken, ""), 404, api.CodeNotFound)
	expectError(t, f.do(t, "POST", "/v1/devices/b@d/block", testToken, ""), 400, api.CodeBadRequest)
	want := []string{"block ON", "unblock ON", "disconnect ON", "disconnect OFF"}
	if got := f.node.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	f.node.mu.Lock()
	f.node.failErr = fmt.Errorf("%w: id too long", storage.ErrInvalid)
	f.node.mu.Unlock()
	expectError(t, f.do(t, "POST", "/v1/devices/ON/block", testToken, ""), 400, api.CodeBadRequest)
	f.node.mu.Lock()
	f.node.failErr = errors.New("badger: write failed")
	f.node.mu.Unlock()
	expectError(t, f.do(t, "POST", "/v1/devices/ON/unblock", testToken, ""), 500, api.CodeInternal)
}

func TestSetKey(t *testing.T) {
	f := newFixture(t, nil)
	key := strings.Repeat("ab", 32)
	if resp := f.do(t, "PUT", "/v1/devices/K1/key", testToken, `{"key":"`+key+`"}`); resp.StatusCode != 204 {
		t.Fatalf("set key: %d %s", resp.StatusCode, readBody(t, resp))
	}
	if got := hex.EncodeToString(f.node.keys["K1"]); got != key {
		t.Fatalf("stored key %s", got)
	}
	if resp := f.do(t, "PUT", "/v1/devices/K1/key", testToken, `{"key":null}`); resp.StatusCode != 204 {
		t.Fatalf("clear key: %d", resp.StatusCode)
	}
	if k, ok := f.node.keys["K1"]; !ok || k != nil {
		t.Fatalf("cleared key %x (present %v)", k, ok)
	}
	for _, body := range []string{
		`{"key":"` + key[:62] + `"}`,  // 31 bytes
		`{"key":"` + key + `00"}`,     // 33 bytes
		`{"key":"` + key[:63] + `g"}`, // not hex
		`{"key":""}`,                  // empty string is not removal
		`{"key":12}`,                  // not a string
		`{}`,                          // no key field
		`{"key":null,"extra":1}`,      // unknown field
		`{"key":null}{"key":null}`,    // trailing data
		`not json`,                    //
		`{"key":"` + key + `", "k":"` + strings.Repeat("x", 5000) + `"}`, // oversized
	} {
		expectError(t, f.do(t, "PUT", "/v1/devices/K1/key", testToken, body), 400, api.CodeBadRequest)
	}
	f.node.mu.Lock()
	f.node.failErr = server.ErrBadKey
	f.node.mu.Unlock()
	expectError(t, f.do(t, "PUT", "/v1/devices/K1/key", testToken, `{"key":"`+key+`"}`), 400, api.CodeBadRequest)
}

// While the store refuses writes for lack of disk space, every POST/PUT
// is refused 503 before it runs, reads still work, and /readyz says so.
func TestDiskFullRefusesWrites(t *testing.T) {
	f := newFixture(t, nil)
	f.node.add(server.DeviceView{Device: storage.Device{ID: "POS-1"}})
	f.node.mu.Lock()
	f.node.noWrite = storage.ErrDiskFull
	f.node.mu.Unlock()
	for _, req := range [][2]string{
		{"POST", "/v1/devices/POS-1/block"},
		{"PUT", "/v1/devices/POS-1/key"},
		{"POST", "/v1/services/x/start"},
	} {
		resp := f.do(t, req[0], req[1], testToken, `{"key":null}`)
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", req[0], req[1])
		}
		expectError(t, resp, 503, api.CodeUnavailable)
	}
	if calls := f.node.Calls(); len(calls) != 0 {
		t.Fatalf("the node was asked to write: %v", calls)
	}
	if resp := f.do(t, "GET", "/v1/devices/POS-1", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("read while writes are refused: %d", resp.StatusCode)
	}
	expectError(t, f.do(t, "GET", "/readyz", "", ""), 503, api.CodeUnavailable)
	if resp := f.do(t, "GET", "/healthz", "", ""); resp.StatusCode != 200 {
		t.Fatalf("healthz %d: the process is alive and must not be restarted", resp.StatusCode)
	}
}
