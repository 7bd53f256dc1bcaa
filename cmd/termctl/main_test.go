package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

const testToken = "termctl-test-token"

// fakeNode is an in-memory admin.Node.
type fakeNode struct {
	mu      sync.Mutex
	devs    map[string]server.DeviceView
	calls   []string
	keys    map[string][]byte
	cursors []string // cursor of every Devices call
}

func newFakeNode() *fakeNode {
	return &fakeNode{devs: map[string]server.DeviceView{}, keys: map[string][]byte{}}
}

func (f *fakeNode) add(d storage.Device) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devs[d.ID] = server.DeviceView{Device: d, Live: d.Online}
}

func (f *fakeNode) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeNode) Stats() api.Stats {
	return api.Stats{Online: 2, Connections: 3, MaxConnections: 19500, StartedMs: 1700000000000, HBIntervalS: 30, MissFactor: 3}
}

func (f *fakeNode) Device(ctx context.Context, id string) (server.DeviceView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devs[id]
	if !ok {
		return d, storage.ErrNotFound
	}
	return d, nil
}

func (f *fakeNode) Devices(ctx context.Context, online *bool, limit int, cursor string) ([]server.DeviceView, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cursors = append(f.cursors, cursor)
	var ids []string
	for id, d := range f.devs {
		if id > cursor && (online == nil || d.Online == *online) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	next := ""
	if len(ids) > limit {
		ids, next = ids[:limit], ids[limit-1]
	}
	var out []server.DeviceView
	for _, id := range ids {
		out = append(out, f.devs[id])
	}
	return out, next, nil
}

func (f *fakeNode) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeNode) Disconnect(id string) bool {
	f.record("disconnect " + id)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devs[id].Online
}

func (f *fakeNode) Block(ctx context.Context, id string) error {
	f.record("block " + id)
	return nil
}

func (f *fakeNode) Unblock(ctx context.Context, id string) error {
	f.record("unblock " + id)
	return nil
}

func (f *fakeNode) SetKey(ctx context.Context, id string, key []byte) error {
	f.record(fmt.Sprintf("setkey %s %x", id, key))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[id] = key
	return nil
}

func (f *fakeNode) Ready() bool { return true }

func (f *fakeNode) Writable() error { return nil }

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer = servertest.SyncBuffer

// env is an admin API over a fake node, and a way to run termctl at it.
type env struct {
	node   *fakeNode
	bus    *events.Bus
	srv    *httptest.Server
	backup func(ctx context.Context, w io.Writer) (uint64, error)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{node: newFakeNode(), bus: events.NewBus()}
	e.backup = func(ctx context.Context, w io.Writer) (uint64, error) {
		_, err := io.WriteString(w, "BADGER-BACKUP")
		return 77, err
	}
	return e.serveAdmin(t, e.node, admin.Options{
		Bus:    e.bus,
		Backup: func(ctx context.Context, w io.Writer) (uint64, error) { return e.backup(ctx, w) },
	})
}

// serveAdmin serves the admin API over node for e, with opts plus the
// test token and a silent log, until the test ends.
func (e *env) serveAdmin(t *testing.T, node admin.Node, opts admin.Options) *env {
	opts.Token, opts.Logger = testToken, slog.New(slog.DiscardHandler)
	e.srv = httptest.NewServer(admin.New(node, opts))
	t.Cleanup(e.srv.Close)
	return e
}

// closeAtEnd closes a service when the test ends, giving it 10 s: its
// Close waits for the work it has in flight.
func closeAtEnd(t *testing.T, closeFn func(context.Context) error) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = closeFn(ctx)
	})
}

// run runs termctl with args (plus --addr and --token unless given) and
// returns stdout and stderr.
func (e *env) run(vars map[string]string, args ...string) (string, string, error) {
	var out, errOut syncBuffer
	return e.runTo(context.Background(), &out, &errOut, vars, args...)
}

func (e *env) runTo(ctx context.Context, out, errOut *syncBuffer, vars map[string]string, args ...string) (string, string, error) {
	a := &app{
		getenv: func(k string) string { return vars[k] },
		out:    out, errOut: errOut, loc: time.UTC, hc: http.DefaultClient,
	}
	if e != nil {
		args = append([]string{"--addr", e.srv.URL, "--token", testToken}, args...)
	}
	cmd := a.rootCmd()
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func (e *env) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := e.run(nil, args...)
	if err != nil {
		t.Fatalf("termctl %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
	}
	return out
}

func (e *env) addDevices() {
	e.node.add(storage.Device{ID: "POS-1", Online: true, LastSeen: 1700000000000, FW: "2.1.0", Model: "P400", RemoteAddr: "10.0.0.1:4000"})
	e.node.add(storage.Device{ID: "POS-2", LastSeen: 1700000100000, FW: "2.0.9", Model: "P400", Blocked: true})
	e.node.add(storage.Device{ID: "POS-3"})
}

func TestDevices(t *testing.T) {
	e := newEnv(t)
	e.addDevices()
	want := `ID     ONLINE        LAST SEEN            FW     MODEL  REMOTE
POS-1  yes           2023-11-14 22:13:20  2.1.0  P400   10.0.0.1:4000
POS-2  no (blocked)  2023-11-14 22:15:00  2.0.9  P400   -
POS-3  no            -                    -      -      -
`
	if got := e.mustRun(t, "devices"); got != want {
		t.Errorf("table\n%s\nwant\n%s", got, want)
	}
	out, stderr, err := e.run(nil, "devices", "--limit", "2")
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(stderr, "--cursor POS-2") {
		t.Errorf("one page: %v\n%s\n%s", err, out, stderr)
	}
	e.node.cursors = nil
	if got := e.mustRun(t, "devices", "--all", "--limit", "1"); got != want {
		t.Errorf("--all\n%s", got)
	}
	if !slices.Equal(e.node.cursors, []string{"", "POS-1", "POS-2"}) {
		t.Errorf("cursors followed: %q", e.node.cursors)
	}
	if got := e.mustRun(t, "devices", "--online"); !strings.Contains(got, "POS-1") || strings.Contains(got, "POS-2") {
		t.Errorf("--online\n%s", got)
	}
	if got := e.mustRun(t, "devices", "--offline"); strings.Contains(got, "POS-1") || !strings.Contains(got, "POS-3") {
		t.Errorf("--offline\n%s", got)
	}
	var all struct {
		Devices    []map[string]any `json:"devices"`
		NextCursor string           `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(e.mustRun(t, "devices", "--all", "--limit", "2", "--json")), &all); err != nil || len(all.Devices) != 3 || all.Devices[2]["id"] != "POS-3" {
		t.Errorf("--json --all: %v %+v", err, all)
	}
	for _, bad := range [][]string{{"devices", "--limit", "0"}, {"devices", "--limit", "1001"}, {"devices", "--online", "--offline"}} {
		if _, _, err := e.run(nil, bad...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDeviceAndStats(t *testing.T) {
	e := newEnv(t)
	e.addDevices()
	out := e.mustRun(t, "device", "POS-1")
	for _, want := range []string{"id:              POS-1\n", "online:          true\n", "last_seen_ms:    2023-11-14 22:13:20.000\n",
		"first_seen_ms:   -\n", "attrs:           -\n", "remote_addr:     10.0.0.1:4000\n", "has_key:         false\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("device output lacks %q:\n%s", want, out)
		}
	}
	if raw := e.mustRun(t, "device", "POS-1", "--json"); !json.Valid([]byte(raw)) || !strings.Contains(raw, `"id":"POS-1"`) {
		t.Errorf("--json %s", raw)
	}
	_, _, err := e.run(nil, "device", "NOPE")
	if !isCode(err, "not_found") {
		t.Errorf("unknown device: %v", err)
	}

	out = e.mustRun(t, "stats")
	if !strings.HasPrefix(out, "online:") || !strings.Contains(out, "started_ms:") || !strings.Contains(out, "2023-11-14 22:13:20.000") {
		t.Errorf("stats:\n%s", out)
	}
	if strings.Index(out, "online:") > strings.Index(out, "connections:") {
		t.Error("stats are not in the server's order")
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(e.mustRun(t, "stats", "--json")), &st); err != nil || st["max_connections"] != 19500.0 {
		t.Errorf("stats --json: %v %v", err, st)
	}
}

func TestActions(t *testing.T) {
	e := newEnv(t)
	e.addDevices()
	if out := e.mustRun(t, "block", "POS-1"); out != "blocked POS-1\n" {
		t.Errorf("block: %q", out)
	}
	e.mustRun(t, "unblock", "POS-1")
	e.mustRun(t, "disconnect", "POS-1")
	_, _, err := e.run(nil, "disconnect", "POS-3")
	if !isCode(err, "not_found") || !strings.Contains(err.Error(), "not online") {
		t.Errorf("disconnect offline: %v", err)
	}
	want := []string{"block POS-1", "unblock POS-1", "disconnect POS-1", "disconnect POS-3"}
	if got := e.node.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q", got)
	}
	if _, _, err := e.run(nil, "block", "bad id"); !isCode(err, "bad_request") {
		t.Errorf("bad id: %v", err)
	}
}

func TestSetKey(t *testing.T) {
	e := newEnv(t)
	key := strings.Repeat("0f", 32)
	e.mustRun(t, "set-key", "K1", "--key", key)
	if hex.EncodeToString(e.node.keys["K1"]) != key {
		t.Errorf("key %x", e.node.keys["K1"])
	}
	out := e.mustRun(t, "set-key", "K2", "--generate")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	gen := lines[len(lines)-1]
	if len(gen) != 64 || hex.EncodeToString(e.node.keys["K2"]) != gen {
		t.Errorf("generated %q, stored %x", gen, e.node.keys["K2"])
	}
	e.mustRun(t, "set-key", "K1", "--clear")
	if k, ok := e.node.keys["K1"]; !ok || k != nil {
		t.Errorf("cleared key %x", k)
	}
	var js map[string]string
	if err := json.Unmarshal([]byte(e.mustRun(t, "set-key", "K3", "--generate", "--json")), &js); err != nil || len(js["key"]) != 64 {
		t.Errorf("--json generate: %v %v", err, js)
	}
	for _, bad := range [][]string{
		{"set-key", "K1"}, {"set-key", "K1", "--generate", "--clear"}, {"set-key", "K1", "--key", "abcd"},
		{"set-key", "K1", "--key", strings.Repeat("zz", 32)},
	} {
		if _, _, err := e.run(nil, bad...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if n := len(e.node.Calls()); n != 4 {
		t.Errorf("%d SetKey calls, want 4 (bad flags must not reach the server)", n)
	}
}

func TestBackup(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "termd.backup")
	if out := e.mustRun(t, "backup", file); out != "wrote 13 bytes to "+file+" (backup version 77)\n" {
		t.Errorf("backup output %q", out)
	}
	b, err := os.ReadFile(file)
	if err != nil || string(b) != "BADGER-BACKUP" {
		t.Fatalf("backup file %q %v", b, err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v", fi.Mode())
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}

	// A backup that fails mid-stream leaves the old file and no temp file.
	e.backup = func(ctx context.Context, w io.Writer) (uint64, error) {
		_, _ = w.Write(make([]byte, 64<<10))
		return 0, errors.New("disk error")
	}
	if _, _, err := e.run(nil, "backup", file); err == nil {
		t.Fatal("failed backup reported success")
	}
	if b, _ := os.ReadFile(file); string(b) != "BADGER-BACKUP" {
		t.Error("failed backup replaced the previous file")
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temp file left after failure: %v", err)
	}
}

// startWatch runs `termctl watch args...` into out until the returned stop
// cancels it (and returns its error). It returns once the watcher has
// subscribed, so that every event published after it is seen.
func (e *env) startWatch(t *testing.T, out *syncBuffer, args ...string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	args = append([]string{"watch"}, args...)
	done := make(chan error, 1)
	go func() {
		_, _, err := e.runTo(ctx, out, &syncBuffer{}, nil, args...)
		done <- err
	}()
	waitFor(t, strings.Join(args, " ")+" to subscribe", func() bool { return e.bus.Subscribers() == 1 })
	return func() error {
		cancel()
		return <-done
	}
}

func TestWatch(t *testing.T) {
	e := newEnv(t)
	var out syncBuffer
	stop := e.startWatch(t, &out)
	e.bus.Publish(events.Event{Kind: events.KindOnline, DeviceID: "POS-1", SessionID: 5, At: 1700000000123, Remote: "10.0.0.1:4000"})
	e.bus.Publish(events.Event{Kind: events.KindOffline, DeviceID: "POS-1", SessionID: 5, At: 1700000005000, Reason: "disconnected"})
	e.bus.Publish(events.Event{Kind: events.KindRelease, Release: "r-1", State: "published", At: 1700000006000})
	e.bus.Publish(events.Event{Kind: events.KindUpgrade, DeviceID: "POS-1", Release: "r-1", Stage: "failed", Reason: "disk full", At: 1700000007000})
	want := "2023-11-14 22:13:20.123  online     POS-1  session=5 remote=10.0.0.1:4000\n" +
		"2023-11-14 22:13:25.000  offline    POS-1  session=5 reason=disconnected\n" +
		"2023-11-14 22:13:26.000  release      release=r-1 state=published\n" +
		"2023-11-14 22:13:27.000  upgrade    POS-1  release=r-1 stage=failed reason=disk full\n"
	waitFor(t, "four event lines", func() bool { return strings.Count(out.String(), "\n") >= 4 })
	if err := stop(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	if out.String() != want {
		t.Errorf("watch printed\n%s\nwant\n%s", out.String(), want)
	}

	// --json prints each event's data line.
	waitFor(t, "the first stream to end", func() bool { return e.bus.Subscribers() == 0 })
	var jout syncBuffer
	stop = e.startWatch(t, &jout, "--json")
	e.bus.Publish(events.Event{Kind: events.KindDuplicate, DeviceID: "POS-9", At: 1})
	waitFor(t, "a JSON line", func() bool { return strings.HasSuffix(jout.String(), "\n") })
	_ = stop()
	if got := jout.String(); got != `{"kind":"duplicate","device_id":"POS-9","session_id":0,"at_ms":1}`+"\n" {
		t.Errorf("watch --json %q", got)
	}

	// A wrong token fails at once instead of retrying.
	if _, _, err := e.run(nil, "watch", "--token", "wrong"); !isCode(err, "unauthorized") {
		t.Errorf("watch with a bad token: %v", err)
	}
}

func TestReadSSE(t *testing.T) {
	stream := ": subscribed\r\n\r\nevent: online\ndata: {\"a\":1}\n\n: keepalive\n\n" +
		"data: line1\ndata:line2\nid: 7\n\nevent: x\n\nevent: offline\ndata: {}\n\npartial"
	type ev struct{ name, data string }
	var got []ev
	err := readSSE(strings.NewReader(stream), func(name, data string) error {
		got = append(got, ev{name, data})
		return nil
	})
	want := []ev{{"online", `{"a":1}`}, {"message", "line1\nline2"}, {"offline", "{}"}}
	if !errors.Is(err, io.ErrUnexpectedEOF) || !slices.Equal(got, want) {
		t.Errorf("got %q, %v", got, err)
	}
	stop := errors.New("stop")
	if err := readSSE(strings.NewReader(stream), func(string, string) error { return stop }); err != stop {
		t.Errorf("callback error not returned: %v", err)
	}
}

func TestTokenAndAddr(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	// Token from the data dir file, trimmed; address without a scheme.
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(e.srv.URL, "http://")
	var out, errOut syncBuffer
	if _, _, err := (*env)(nil).runTo(context.Background(), &out, &errOut, nil, "stats", "--addr", host, "--data", dir); err != nil {
		t.Errorf("token from file: %v", err)
	}
	// The environment beats the file; the flag beats the environment.
	vars := map[string]string{"TERMD_ADMIN_TOKEN": "env-token", "TERMD_ADMIN_ADDR": e.srv.URL}
	if _, _, err := (*env)(nil).runTo(context.Background(), &out, &errOut, vars, "stats", "--data", dir); !isCode(err, "unauthorized") {
		t.Errorf("env token not used: %v", err)
	}
	if _, _, err := (*env)(nil).runTo(context.Background(), &out, &errOut, vars, "stats", "--token", testToken); err != nil {
		t.Errorf("flag token and env addr: %v", err)
	}
	_, _, err := (*env)(nil).runTo(context.Background(), &out, &errOut, nil, "stats", "--addr", host, "--data", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "no admin token") {
		t.Errorf("missing token: %v", err)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
