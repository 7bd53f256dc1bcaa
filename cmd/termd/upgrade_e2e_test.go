package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/servertest"
)

// The upgrade feature as an operator and a terminal use it, through a real
// termd process, a real download listener, a webhook receiver and an SMTP
// server: upload an artifact; create, sign and publish a release for one
// model; online terminals of that model get UPGRADE_NOTICE and the others
// do not; a launch query gets the offer, whose signature verifies with
// the pinned key (a tampered one does not); the artifact is downloaded
// part-way with a Range request and resumed; reports up to SUCCEEDED show
// the new version on the device; another terminal reports FAILED and
// termd is killed with SIGKILL before delivering: after the restart the
// webhook and the mail server both get the failure, and that terminal's
// next launch query returns last_failure exactly once.
func TestUpgradeEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	hookBodies := make(chan []byte, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookBodies <- b
	}))
	defer hook.Close()
	sink, smtpAddr := startMailSink(t)
	smtpHost, smtpPort, _ := net.SplitHostPort(smtpAddr)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, pubPEM, err := protocol.MarshalReleaseKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := filepath.Join(t.TempDir(), "release.pub")
	if err := os.WriteFile(pubPath, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dlAddr := servertest.FreePort(t)
	n := newNode(t, fmt.Sprintf(`
[upgrade]
release_public_keys = [%q]
require_signature = true
notice_spread = "100ms"
[download]
listen = %q
[notify]
digest_window = "1s"
[[notify.webhook]]
name = "ops"
url = %q
secret = %q
[notify.smtp]
host = %q
port = %s
from = "termd@example.com"
to = ["ops@example.com"]
starttls = "off"
`, pubPath, dlAddr, hook.URL, hookSecret, smtpHost, smtpPort))
	n.start()

	admin := func(method, path string, body []byte, hdr map[string]string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+n.adminAddr+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	// The artifact.
	art := make([]byte, 300<<10)
	_, _ = rand.Read(art)
	sum := sha256.Sum256(art)
	shaHex := hex.EncodeToString(sum[:])
	if code, b := admin("POST", "/v1/artifacts", art, map[string]string{"X-Termd-Sha256": shaHex}); code != http.StatusCreated {
		t.Fatalf("upload: %d %s", code, b)
	}

	// Terminals online before the release is published.
	dial := func(id, model string, notices *atomic.Int32) *client.Conn {
		t.Helper()
		cfg := client.Config{Addr: n.tgp, DeviceID: id, FleetSecret: []byte(testSecret), FW: "1.0", Model: model, NoHeartbeat: true}
		if notices != nil {
			cfg.OnPush = func(typ byte, _ uint16, _ []byte) {
				if typ == protocol.TypeUpgradeNotice {
					notices.Add(1)
				}
			}
		}
		c, err := client.Dial(t.Context(), cfg)
		if err != nil {
			t.Fatalf("login %s: %v", id, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var p400Notices, x100Notices atomic.Int32
	t1 := dial("T-UP-1", "P400", &p400Notices)
	dial("T-UP-X", "X100", &x100Notices)

	// Create, sign, publish.
	code, b := admin("POST", "/v1/releases", []byte(`{"app_id":"pos","version":"2.0.0","sha256":"`+shaHex+`","models":["P400"]}`), nil)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	var rel struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &rel)
	if code, b := admin("POST", "/v1/releases/"+rel.ID+"/publish", nil, nil); code != http.StatusConflict {
		t.Fatalf("publish unsigned with require_signature: %d %s", code, b)
	}
	sig, err := protocol.SignRelease(key, "pos", "2.0.0", sum, uint64(len(art)))
	if err != nil {
		t.Fatal(err)
	}
	if code, b := admin("PUT", "/v1/releases/"+rel.ID+"/signature", []byte(`{"sig":"`+hex.EncodeToString(sig)+`"}`), nil); code != http.StatusOK {
		t.Fatalf("signature: %d %s", code, b)
	}
	if code, b := admin("POST", "/v1/releases/"+rel.ID+"/publish", nil, nil); code != http.StatusOK {
		t.Fatalf("publish: %d %s", code, b)
	}
	for end := time.Now().Add(5 * time.Second); p400Notices.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the P400 terminal got no UPGRADE_NOTICE")
		}
	}
	time.Sleep(300 * time.Millisecond) // past notice_spread
	if x100Notices.Load() != 0 {
		t.Fatal("a terminal of another model got an UPGRADE_NOTICE")
	}

	// The offer, and its signature with the pinned key.
	query := func(c *client.Conn, version string) *protocol.UpgradeQueryAck {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var ack protocol.UpgradeQueryAck
		if err := c.Do(ctx, &protocol.UpgradeQuery{AppID: "pos", Version: version, Launch: true}, &ack); err != nil {
			t.Fatalf("query: %v", err)
		}
		return &ack
	}
	ack := query(t1, "1.0.0")
	if ack.Offer == nil {
		t.Fatal("no offer")
	}
	pinned := []*ecdsa.PublicKey{&key.PublicKey}
	if err := client.VerifyOffer(ack.Offer, "pos", "1.0.0", pinned); err != nil {
		t.Fatalf("offer refused: %v", err)
	}
	tampered := *ack.Offer
	tampered.ReleaseSig = append([]byte(nil), ack.Offer.ReleaseSig...)
	tampered.ReleaseSig[5] ^= 1
	if client.VerifyOffer(&tampered, "pos", "1.0.0", pinned) == nil {
		t.Fatal("a tampered signature was accepted")
	}
	if client.VerifyOffer(ack.Offer, "pos", "2.0.0", pinned) == nil {
		t.Fatal("an offer not newer than the running version was accepted")
	}

	// Part of the artifact with a Range request, then the SDK resumes.
	path := filepath.Join(t.TempDir(), "pos.bin")
	req, _ := http.NewRequest("GET", ack.Offer.URL, nil)
	req.Header.Set("Range", "bytes=0-99999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || len(part) != 100000 {
		t.Fatalf("range: %d, %d bytes", resp.StatusCode, len(part))
	}
	if err := os.WriteFile(path+".part", part, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := client.DownloadArtifact(t.Context(), nil, ack.Offer.URL, path, ack.Offer); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, art) {
		t.Fatal("the resumed download differs from the artifact")
	}

	report := func(c *client.Conn, stage uint8, code uint64, msg string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err := c.Do(ctx, &protocol.UpgradeReport{ReleaseID: rel.ID, Attempt: 1, Stage: stage, Progress: 100, Code: code, Message: msg},
			&protocol.Ack{AckType: protocol.Response(protocol.TypeUpgradeReport)})
		if err != nil {
			t.Fatalf("report stage %d: %v", stage, err)
		}
	}
	for _, st := range []uint8{protocol.StageDownloading, protocol.StageDownloaded, protocol.StageInstalling, protocol.StageSucceeded} {
		report(t1, st, 0, "")
	}
	var dev struct {
		Apps []struct {
			AppID   string `json:"app_id"`
			Version string `json:"version"`
		} `json:"apps"`
	}
	n.get("/v1/devices/T-UP-1", &dev)
	if len(dev.Apps) != 1 || dev.Apps[0].AppID != "pos" || dev.Apps[0].Version != "2.0.0" {
		t.Fatalf("device after SUCCEEDED: %+v", dev)
	}

	// A failure, and termd killed before its digest window ends.
	t3 := dial("T-UP-3", "P400", nil)
	if query(t3, "1.0.0").Offer == nil {
		t.Fatal("no offer for the second P400 terminal")
	}
	report(t3, protocol.StageDownloading, 0, "")
	report(t3, protocol.StageFailed, 42, "flash write failed")
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Wait()
	select {
	case b := <-hookBodies:
		t.Fatalf("delivered before the kill (digest_window not honoured?): %s", b)
	default:
	}
	n.start()
	select {
	case b := <-hookBodies:
		if !strings.Contains(string(b), "T-UP-3") || !strings.Contains(string(b), "flash write failed") {
			t.Fatalf("webhook body: %s", b)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the webhook got nothing after the restart")
	}
	select {
	case m := <-sink.got:
		if !strings.Contains(m, "T-UP-3") {
			t.Fatalf("mail: %s", m)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the mail server got nothing after the restart")
	}

	// last_failure once, on the next launch.
	t3 = dial("T-UP-3", "P400", nil)
	lf := query(t3, "1.0.0").LastFailure
	if lf == nil || lf.ReleaseID != rel.ID || lf.Code != 42 || lf.Message != "flash write failed" {
		t.Fatalf("last_failure after the restart: %+v", lf)
	}
	if lf := query(t3, "1.0.0").LastFailure; lf != nil {
		t.Fatalf("last_failure returned twice: %+v", lf)
	}
}
