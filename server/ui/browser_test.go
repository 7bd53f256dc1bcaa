package ui

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
)

// Sign-in in a real browser: a wrong token shows the form again with the
// error; the right one lands on the fleet page with the operator's name.
func TestBrowserSignIn(t *testing.T) {
	b := newBrowser(t)
	p := startTermd(t, "")
	b.open(p.url("/ui/fleet"))
	b.waitJS(`location.pathname == "/ui/login"`, 5*time.Second)
	b.shot("login")
	b.typeInto("#token", "not-the-token-0123456789")
	b.click("#sign-in")
	b.waitJS(`!!document.getElementById("login-error")`, 5*time.Second)
	if msg := b.text("#login-error"); !strings.Contains(msg, "not accepted") {
		t.Fatalf("error shown: %q", msg)
	}
	b.shot("login-wrong-token")
	b.signIn(p, opsToken)
	if who := b.text(".operator"); who != "alice" {
		t.Fatalf("signed in as %q", who)
	}
	// Signing out ends the session: the fleet page sends us back.
	b.click("form.logout button")
	b.waitJS(`location.pathname == "/ui/login"`, 5*time.Second)
	b.open(p.url("/ui/fleet"))
	b.waitJS(`location.pathname == "/ui/login"`, 5*time.Second)
}

// uploadRelease uploads a random artifact and creates a phased release of
// app pos 2.0.0 for model P400 that pauses itself at the first failure;
// it returns the release id (a draft).
func uploadRelease(t *testing.T, p *termdProc) string {
	t.Helper()
	art := make([]byte, 64<<10)
	_, _ = rand.Read(art)
	sum := sha256.Sum256(art)
	sha := hex.EncodeToString(sum[:])
	if code := p.api("POST", "/v1/artifacts", art, nil, "X-Termd-Sha256", sha); code != http.StatusCreated {
		t.Fatalf("upload: %d", code)
	}
	var rel api.Release
	if code := p.api("POST", "/v1/releases", api.ReleaseCreate{AppID: "pos", Version: "2.0.0", SHA256: sha, Models: []string{"P400"},
		Phases: []api.Phase{{Percent: 100, MinDevices: 1, ErrorPct: 5}}}, &rel); code != http.StatusCreated {
		t.Fatalf("create release: %d", code)
	}
	return rel.ID
}

// query asks for an upgrade of app pos from 1.0.0, as a terminal does at
// launch, and fails unless it gets an offer.
func query(t *testing.T, c *client.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ack protocol.UpgradeQueryAck
	if err := c.Do(ctx, &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &ack); err != nil || ack.Offer == nil {
		t.Fatalf("query: %v, offer %v", err, ack.Offer)
	}
}

// reportFailed reports a failed install of release id.
func reportFailed(t *testing.T, c *client.Conn, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Do(ctx, &protocol.UpgradeReport{ReleaseID: id, Attempt: 1, Stage: protocol.StageFailed, Progress: 100, Code: 42, Message: "flash write failed"},
		&protocol.Ack{AckType: protocol.Response(protocol.TypeUpgradeReport)}); err != nil {
		t.Fatalf("report FAILED: %v", err)
	}
}

// The fleet page with live data from a real termd and simulated
// terminals: the online count climbs on screen without a reload as
// terminals connect; a FAILED upgrade report brings a toast (the failure
// digest, and the rollout pausing itself) to the open page; after a
// reload the alert inbox and the rollout's red light show it, and the
// operator resumes the rollout through a confirmation dialog, which the
// API then reports. The events page lists the events live. Screenshots
// of each state.
func TestBrowserFleetLive(t *testing.T) {
	b := newBrowser(t)
	p := startTermd(t, "")
	var p400 []*client.Conn
	for i := range 10 {
		p400 = append(p400, p.dial(fmt.Sprintf("POS-%03d", i), "P400"))
	}
	for i := range 5 {
		p.dial(fmt.Sprintf("KIOSK-%03d", i), "K10")
	}
	b.signIn(p, opsToken)
	b.waitJS(`document.getElementById("online-count").dataset.value == "15"`, 5*time.Second)
	evalJS[int](b, `window.termdNoReload = 1`)
	start := time.Now()
	for i := 10; i < 35; i++ {
		p.dial(fmt.Sprintf("POS-%03d", i), "P400")
	}
	b.waitJS(`document.getElementById("online-count").dataset.value == "40"`, 5*time.Second)
	t.Logf("online count 40 on screen %v after the first of 25 connects began", time.Since(start).Round(time.Millisecond))
	if got := b.text("#online-count"); got != "40" {
		t.Fatalf("online count shows %q", got)
	}
	b.shot("fleet")

	id := uploadRelease(t, p)
	if code := p.api("POST", "/v1/releases/"+id+"/publish", nil, nil); code != http.StatusOK {
		t.Fatalf("publish: %d", code)
	}
	query(t, p400[0])
	reportFailed(t, p400[0], id)
	b.waitJS(`[...document.querySelectorAll("#toasts .toast")].some(t => t.dataset.kind == "upgrade_failure")`, 15*time.Second)
	b.waitJS(`[...document.querySelectorAll("#toasts .toast")].some(t => t.dataset.kind == "rollout")`, 5*time.Second)
	if evalJS[int](b, `window.termdNoReload || 0`) != 1 {
		t.Fatal("the page reloaded; the toasts must come live")
	}
	b.shot("fleet-toast")

	b.open(p.url("/ui/fleet"))
	b.waitJS(`!!document.querySelector('li.alert[data-kind="rollout_paused"]')`, 5*time.Second)
	b.waitJS(`!!document.querySelector('#rollouts .light-red')`, 5*time.Second)
	b.shot("fleet-alert")
	b.click(`#rollouts form.action[action$="/rollout/resume"] button`)
	b.confirm()
	b.waitJS(`(document.querySelector(".flash") || {}).textContent == "Rollout resumed."`, 5*time.Second)
	var ro api.RolloutStatus
	if code := p.api("GET", "/v1/releases/"+id+"/rollout", nil, &ro); code != http.StatusOK || ro.State == "paused" {
		t.Fatalf("rollout after resume in the console: %d %+v", code, ro)
	}

	b.open(p.url("/ui/events"))
	b.waitJS(`document.body.dataset.live == "1" && document.getElementById("live-state").classList.contains("on")`, 5*time.Second)
	for i := 35; i < 40; i++ {
		p.dial(fmt.Sprintf("POS-%03d", i), "P400")
	}
	b.waitJS(`document.querySelectorAll("#event-log tbody tr").length >= 5`, 5*time.Second)
	if !strings.Contains(b.text("#event-log tbody"), "POS-039") {
		t.Fatalf("events page rows: %q", b.text("#event-log tbody"))
	}
	b.shot("events")
}

// A read-only token sees no control that changes anything, where an
// operator sees the rollout's Pause button; a POST forced from the
// read-only page, with its valid CSRF token, is refused and changes
// nothing.
func TestBrowserReadOnly(t *testing.T) {
	p := startTermd(t, "")
	ops := newBrowser(t)
	id := uploadRelease(t, p)
	if code := p.api("POST", "/v1/releases/"+id+"/publish", nil, nil); code != http.StatusOK {
		t.Fatalf("publish: %d", code)
	}
	ops.signIn(p, opsToken)
	if n := evalJS[int](ops, `document.querySelectorAll("form.action").length`); n == 0 {
		t.Fatal("the operator sees no action")
	}
	ro := newBrowser(t)
	ro.signIn(p, readToken)
	if n := evalJS[int](ro, `document.querySelectorAll("form.action, form[method=post]:not(.logout)").length`); n != 0 {
		t.Fatalf("a read-only session sees %d forms that change things", n)
	}
	ro.shot("fleet-read-only")
	status := evalJS[int](ro, `(async () => {
		const csrf = document.querySelector("form.logout input[name=csrf]").value;
		const r = await fetch("/ui/releases/`+id+`/rollout/pause", {method: "POST",
			headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf=" + encodeURIComponent(csrf)});
		return r.status; })()`)
	if status != http.StatusForbidden {
		t.Fatalf("forced POST from a read-only page: %d", status)
	}
	var st api.RolloutStatus
	if p.api("GET", "/v1/releases/"+id+"/rollout", nil, &st); st.State != "running" {
		t.Fatalf("rollout after the refused pause: %+v", st)
	}
}

// Sessions live in termd's memory: after a restart the open page's stream
// reconnects, finds its session gone and takes the operator to the
// sign-in form by itself; signing in again works.
func TestBrowserRestart(t *testing.T) {
	b := newBrowser(t)
	p := startTermd(t, "")
	b.signIn(p, opsToken)
	b.waitJS(`document.getElementById("live-state").classList.contains("on")`, 5*time.Second)
	p.restart()
	b.waitJS(`location.pathname == "/ui/login"`, 20*time.Second)
	if got := evalJS[string](b, `new URLSearchParams(location.search).get("next")`); got != "/ui/fleet" {
		t.Fatalf("next after the restart: %q", got)
	}
	b.typeInto("#token", opsToken)
	b.click("#sign-in")
	b.waitJS(`location.pathname == "/ui/fleet"`, 5*time.Second)
}
