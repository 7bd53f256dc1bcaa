package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/servertest"
)

const itSecret = servertest.FleetSecret

// startNode runs a real termd front end (in-memory Badger) and its admin
// API, both on loopback ports, until the test ends.
func startNode(t *testing.T) (srv *server.Server, tgpAddr, adminURL string) {
	t.Helper()
	cfg := servertest.Config(t)
	cfg.Admin.Token = testToken
	node := servertest.Start(t, cfg, nil)
	srv = node.Server
	h := New(srv, Options{
		Token: cfg.Admin.Token, OpenProbes: cfg.Admin.OpenProbes, EventBuffer: cfg.Admin.EventBuffer,
		Bus: srv.Bus, Backup: srv.Store().Backup, Metrics: []*metrics.Set{srv.Metrics()}, Logger: quietLog,
	})
	actx, acancel := context.WithCancel(context.Background())
	addr, errc, err := Serve(actx, "127.0.0.1:0", h, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		acancel()
		if err := <-errc; err != nil {
			t.Errorf("admin serve: %v", err)
		}
	})
	return srv, cfg.Server.Listen, "http://" + addr.String()
}

// apiDo sends an authorised request and returns the response.
func apiDo(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// waitSSE reads the stream until an event of kind for device arrives.
func waitSSE(t *testing.T, s *sseReader, kind, device string) map[string]any {
	t.Helper()
	for {
		name, data := s.next(false)
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event data %q: %v", data, err)
		}
		if name == kind && ev["device_id"] == device {
			return ev
		}
	}
}

func TestIntegration(t *testing.T) {
	_, tgp, base := startNode(t)
	const dev = "POS-IT-1"

	// Open the event stream first, with a deadline on the whole test.
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := &sseReader{t: t, br: bufio.NewReader(resp.Body)}
	if n, c := events.next(true); n != ":" || c != "subscribed" {
		t.Fatalf("stream starts with %q %q", n, c)
	}

	attrs, err := client.EncodeAttrs(map[string]any{"site": "berlin", "lane": 3})
	if err != nil {
		t.Fatal(err)
	}
	ccfg := client.Config{Addr: tgp, DeviceID: dev, FleetSecret: []byte(itSecret), FW: "1.2.3", Model: "P400", Attrs: attrs}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	conn, err := client.Dial(dctx, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitSSE(t, events, "online", dev)

	// The device is listed online, with its HELLO fields.
	var page struct {
		Devices []map[string]any `json:"devices"`
	}
	if err := json.NewDecoder(apiDo(t, "GET", base+"/v1/devices?online=true").Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Devices) != 1 {
		t.Fatalf("online devices %v", page.Devices)
	}
	d := page.Devices[0]
	if d["id"] != dev || d["online"] != true || d["live"] != true || d["fw"] != "1.2.3" || d["model"] != "P400" ||
		d["session_id"] != float64(conn.SessionID()) {
		t.Errorf("listed device %v", d)
	}
	if a, _ := d["attrs"].(map[string]any); a["site"] != "berlin" || a["lane"] != 3.0 {
		t.Errorf("attrs %v", d["attrs"])
	}

	// Disconnect: GOAWAY 7 to the terminal, offline `disconnected` on the stream.
	if resp := apiDo(t, "POST", base+"/v1/devices/"+dev+"/disconnect"); resp.StatusCode != 204 {
		t.Fatalf("disconnect: %d", resp.StatusCode)
	}
	if ev := waitSSE(t, events, "offline", dev); ev["reason"] != "disconnected" {
		t.Errorf("offline event %v", ev)
	}
	select {
	case <-conn.Done():
		if !errors.Is(conn.Err(), protocol.Unavailable) {
			t.Errorf("session ended with %v, want GOAWAY UNAVAILABLE", conn.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("terminal still connected after disconnect")
	}
	if resp := apiDo(t, "POST", base+"/v1/devices/"+dev+"/disconnect"); resp.StatusCode != 404 {
		t.Errorf("disconnect of an offline device: %d", resp.StatusCode)
	}

	// Block: the next HELLO is refused FORBIDDEN.
	if resp := apiDo(t, "POST", base+"/v1/devices/"+dev+"/block"); resp.StatusCode != 204 {
		t.Fatalf("block: %d", resp.StatusCode)
	}
	if c, err := client.Dial(dctx, ccfg); !errors.Is(err, protocol.Forbidden) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("HELLO of a blocked device: %v, want FORBIDDEN", err)
	}
	var one map[string]any
	if err := json.NewDecoder(apiDo(t, "GET", base+"/v1/devices/"+dev).Body).Decode(&one); err != nil {
		t.Fatal(err)
	}
	if one["blocked"] != true || one["live"] != false {
		t.Errorf("blocked device %v", one)
	}
	if resp := apiDo(t, "POST", base+"/v1/devices/"+dev+"/unblock"); resp.StatusCode != 204 {
		t.Fatalf("unblock: %d", resp.StatusCode)
	}
	c2, err := client.Dial(dctx, ccfg)
	if err != nil {
		t.Fatalf("HELLO after unblock: %v", err)
	}
	c2.Close()

	// Backup streams bytes and a version; metrics include the TGP set.
	resp = apiDo(t, "GET", base+"/v1/backup")
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n == 0 || resp.Trailer.Get(api.BackupVersionHeader) == "" {
		t.Errorf("backup: %d bytes, err %v, version %q", n, err, resp.Trailer.Get(api.BackupVersionHeader))
	}
	mresp, err := http.Get(base + "/metrics") // open probe on loopback
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	body, _ := io.ReadAll(mresp.Body)
	if !strings.Contains(string(body), "termd_hello_ok_total 2") || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("metrics:\n%.2000s", body)
	}
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("readyz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
