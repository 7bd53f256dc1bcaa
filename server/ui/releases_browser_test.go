package ui

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/admin/api"
)

// uploadPattern is the test artifact's bytes, made the same way in the
// page (JavaScript) and here: byte i is (i*31+7) mod 256.
const uploadSize = 3 << 20

func uploadPattern() []byte {
	b := make([]byte, uploadSize)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}

// A release made and watched in the console, against a real termd and a
// simulated terminal: the artifact is uploaded from the page with its
// progress bar (the stored sha256 and size checked through the API), the
// form creates the release (its fields checked through the API), it is
// published from its page; the terminal's FAILED report brings the toasts
// and, without a reload, the failure group with its link to the devices;
// the rollout is resumed and the release paused and resumed through the
// confirmation dialog, each checked through the API. A read-only session
// sees no control on the same page. Screenshots of the list, the form and
// the release page.
func TestBrowserReleases(t *testing.T) {
	b := newBrowser(t)
	p := startTermd(t, "")
	term := p.dial("POS-000", "P400")
	b.signIn(p, opsToken)
	b.open(p.url("/ui/releases"))
	b.waitJS(`!!document.getElementById("new-release")`, 5*time.Second)
	b.click("#new-release")
	b.waitJS(`location.pathname == "/ui/releases/new" && !!document.getElementById("artifact-upload")`, 5*time.Second)

	art := uploadPattern()
	sum := sha256.Sum256(art)
	sha := hex.EncodeToString(sum[:])
	evalJS[bool](b, fmt.Sprintf(`(() => {
		const n = %d, a = new Uint8Array(n);
		for (let i = 0; i < n; i++) { a[i] = (i * 31 + 7) & 255; }
		const dt = new DataTransfer();
		dt.items.add(new File([a], "pos-2.0.0.bin", {type: "application/octet-stream"}));
		document.getElementById("artifact-file").files = dt.files;
		return true; })()`, uploadSize))
	b.click("#artifact-upload")
	b.waitJS(`!!document.getElementById("artifact-status").dataset.sha256`, 15*time.Second)
	if got := evalJS[string](b, `document.getElementById("artifact-status").dataset.sha256`); got != sha {
		t.Fatalf("page says it stored %s, want %s", got, sha)
	}
	if v := evalJS[int](b, `document.getElementById("artifact-progress").value`); v != 100 {
		t.Fatalf("progress bar at %d after the upload", v)
	}
	if got := evalJS[string](b, `document.getElementById("sha256").value`); got != sha {
		t.Fatalf("the form's sha256 field holds %q", got)
	}
	var arts api.ArtifactList
	if p.api("GET", "/v1/artifacts", nil, &arts); len(arts.Artifacts) != 1 || arts.Artifacts[0].SHA256 != sha || arts.Artifacts[0].Size != uploadSize {
		t.Fatalf("artifacts after the upload: %+v", arts.Artifacts)
	}
	evalJS[bool](b, `(() => {
		const set = (id, v) => { document.getElementById(id).value = v; };
		set("app_id", "pos"); set("version", "2.0.0"); set("models", "P400"); set("notes", "console test");
		set("phases", "custom"); document.getElementById("phases").dispatchEvent(new Event("change"));
		set("phase_list", "100"); set("soak_s", "3600"); set("error_pct", "5"); set("min_devices", "1");
		return true; })()`)
	b.shot("release-new")
	b.click("#create-release")
	b.waitJS(`/^\/ui\/releases\/r-[0-9a-f]{16}$/.test(location.pathname)`, 5*time.Second)
	id := strings.TrimPrefix(evalJS[string](b, `location.pathname`), "/ui/releases/")
	var rel api.Release
	if p.api("GET", "/v1/releases/"+id, nil, &rel); rel.State != "draft" || rel.SHA256 != sha || rel.Size != uploadSize || rel.AppID != "pos" ||
		rel.Version != "2.0.0" || len(rel.Models) != 1 || rel.Models[0] != "P400" || rel.Notes != "console test" ||
		len(rel.Phases) != 1 || rel.Phases[0].Percent != 100 || rel.Phases[0].MinDevices != 1 || rel.Phases[0].ErrorPct != 5 {
		t.Fatalf("release created by the form: %+v", rel)
	}

	b.click(`#release-actions form.action[action$="/publish"] button`)
	b.confirm()
	b.waitJS(`document.getElementById("release-state").textContent == "published"`, 5*time.Second)
	var cur api.Release
	if p.api("GET", "/v1/releases/"+id, nil, &cur); cur.State != "published" {
		t.Fatalf("after Publish in the console: %s", cur.State)
	}

	evalJS[int](b, `window.termdNoReload = 1`)
	query(t, term)
	reportFailed(t, term, id)
	b.waitJS(`[...document.querySelectorAll("#toasts .toast")].some(t => t.dataset.kind == "upgrade_failure")`, 15*time.Second)
	// The pause's toast may come before or after the digest's (each lasts
	// 30 s); on a loaded CI machine the stream can take seconds.
	b.waitJS(`[...document.querySelectorAll("#toasts .toast")].some(t => t.dataset.kind == "rollout")`, 15*time.Second)
	b.waitJS(`!!document.querySelector('#failures tr[data-code="42"][data-model="P400"][data-from="1.0.0"]')`, 10*time.Second)
	b.waitJS(`document.getElementById("rollout-state").textContent == "paused"`, 10*time.Second)
	if evalJS[int](b, `window.termdNoReload || 0`) != 1 {
		t.Fatal("the page reloaded; the counts must come live")
	}
	href := evalJS[string](b, `document.querySelector('#failures a.devices-link').getAttribute("href")`)
	for _, want := range []string{"/ui/devices?", "release=" + id, "outcome=failed", "code=42", "model=P400", "from=1.0.0"} {
		if !strings.Contains(href, want) {
			t.Fatalf("failure group links to %q, without %q", href, want)
		}
	}
	if n := b.text(`#funnel tr[data-step="failed"] td.num`); n != "1" {
		t.Fatalf("funnel failed: %q", n)
	}
	b.shot("release-failed")

	b.click(`#release-actions form.action[action$="/rollout/resume"] button`)
	b.confirm()
	b.waitJS(`(document.querySelector(".flash") || {}).textContent == "Rollout resumed."`, 5*time.Second)
	var ro api.RolloutStatus
	if p.api("GET", "/v1/releases/"+id+"/rollout", nil, &ro); ro.State == "paused" {
		t.Fatalf("rollout after Resume in the console: %+v", ro)
	}
	b.click(`#release-actions form.action[action$="/pause"]:not([action$="/rollout/pause"]) button`)
	b.confirm()
	b.waitJS(`document.getElementById("release-state").textContent == "paused"`, 5*time.Second)
	if p.api("GET", "/v1/releases/"+id, nil, &cur); cur.State != "paused" {
		t.Fatalf("after Pause release in the console: %s", cur.State)
	}
	b.click(`#release-actions form.action[action$="/resume"]:not([action$="/rollout/resume"]) button`)
	b.confirm()
	b.waitJS(`document.getElementById("release-state").textContent == "published"`, 5*time.Second)
	if p.api("GET", "/v1/releases/"+id, nil, &cur); cur.State != "published" {
		t.Fatalf("after Resume release in the console: %s", cur.State)
	}
	b.shot("release")
	b.open(p.url("/ui/releases"))
	b.waitJS(`!!document.querySelector('#releases tr[data-release="`+id+`"] .light')`, 5*time.Second)
	b.shot("releases")
	// The terminal's page: its next query would be offered the release
	// again (its assignment holds; one failed attempt is under the cap).
	b.open(p.url("/ui/devices/POS-000"))
	if next := b.text("#next-offers"); !strings.Contains(next, "offer 2.0.0") || !strings.Contains(next, "offered before") {
		t.Fatalf("device page: next query %q", next)
	}

	ro2 := newBrowser(t)
	ro2.signIn(p, readToken)
	ro2.open(p.url("/ui/releases/" + id))
	ro2.waitJS(`!!document.getElementById("funnel")`, 5*time.Second)
	if n := evalJS[int](ro2, `document.querySelectorAll("form.action, form[method=post]:not(.logout), #artifact-upload").length`); n != 0 {
		t.Fatalf("a read-only session sees %d controls on the release page", n)
	}
	if code := p.api("GET", "/v1/releases/"+id, nil, nil); code != http.StatusOK {
		t.Fatalf("release gone: %d", code)
	}
}
