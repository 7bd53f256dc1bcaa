package ui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/admin/api"
)

// The device, services and audit pages in a real browser against a real
// termd with simulated terminals: a search lists the online P400s, a
// bulk disconnect of them through the confirmation dialog takes them
// offline (checked through the API), the CSV export holds the search's
// devices, the detail page blocks a device (checked through the API), a
// service restart from the services page shows up in the API's audit,
// and the operator audit page lists what was done. Screenshots of each.
func TestBrowserDevicesServicesAudit(t *testing.T) {
	b := newBrowser(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "spooler.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startTermd(t, fmt.Sprintf(`
[[services]]
id = "spooler"
kind = "daemon"
description = "receipt spooler"
command = %q
stop_grace = "1s"
autostart = true
`, script))
	for i := range 4 {
		p.dial(fmt.Sprintf("POS-%03d", i), "P400")
	}
	p.dial("KIOSK-001", "K10")
	p.dial("KIOSK-002", "K10")
	b.signIn(p, opsToken)

	b.open(p.url("/ui/devices?model=P400&online=true"))
	b.waitJS(`document.querySelectorAll("#device-table tbody tr[data-id]").length == 4`, 5*time.Second)
	// Save the search under a name: the page comes back on it, marked.
	b.typeInto(`#save-filter input[name="name"]`, "P400 online")
	b.click(`#save-filter button`)
	b.waitJS(`!!document.querySelector('.saved-filter.current[data-name="P400 online"]')`, 5*time.Second)
	var saved api.DeviceFilter
	p.api("GET", "/v1/device-filters/P400%20online", nil, &saved)
	if saved.Query != "model=P400&online=true" || saved.CreatedBy != "alice" {
		t.Fatalf("the saved search through the API: %+v", saved)
	}
	b.shot("devices")
	csv := evalJS[string](b, `fetch("/ui/devices.csv?model=P400").then(r => r.text())`)
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "id,online,model,fw") || !strings.HasPrefix(lines[1], "POS-000,true,P400") {
		t.Fatalf("CSV export:\n%s", csv)
	}
	b.click("#select-all")
	b.click("#bulk-apply")
	if msg := evalJS[string](b, `document.getElementById("confirm-text").textContent`); !strings.Contains(msg, "disconnect to the 4 ticked") {
		t.Errorf("confirmation text %q", msg)
	}
	b.confirm()
	b.waitJS(`(document.querySelector(".flash") || {}).textContent == "disconnect: 4 devices, 4 succeeded, 0 failed."`, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st api.Stats
		p.api("GET", "/v1/stats", nil, &st)
		if st.Online == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("online after the bulk disconnect: %d, want 2", st.Online)
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.open(p.url("/ui/devices/KIOSK-001"))
	b.waitJS(`!!document.getElementById("device-actions")`, 5*time.Second)
	b.shot("device")
	b.click(`form.action[action$="/block"] button`)
	b.confirm()
	b.waitJS(`(document.querySelector(".flash") || {}).textContent.startsWith("Blocked")`, 5*time.Second)
	var d api.Device
	if p.api("GET", "/v1/devices/KIOSK-001", nil, &d); !d.Blocked {
		t.Fatal("KIOSK-001 not blocked after the page's Block")
	}

	b.open(p.url("/ui/services"))
	b.waitJS(`!!document.querySelector('#services tr[data-service="spooler"]')`, 5*time.Second)
	b.click(`form.action[action="/ui/services/spooler/restart"] button`)
	b.confirm()
	b.waitJS(`(document.querySelector(".flash") || {}).textContent.startsWith("spooler: restart done")`, 10*time.Second)
	b.shot("services")
	var audit api.AuditList
	p.api("GET", "/v1/audit?service=spooler&op=restart", nil, &audit)
	if len(audit.Records) == 0 || audit.Records[0].Operator != "alice" {
		t.Fatalf("service audit after the restart: %+v", audit.Records)
	}

	b.open(p.url("/ui/audit"))
	b.waitJS(`document.querySelectorAll("#operator-audit tbody tr[data-seq]").length == 4`, 5*time.Second)
	text := b.text("#operator-audit")
	for _, want := range []string{"PUT /v1/device-filters/P400 online", "POST /v1/services/spooler/restart", "POST /v1/devices/KIOSK-001/block", "POST /v1/devices/bulk", "alice"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit page lacks %q:\n%s", want, text)
		}
	}
	b.shot("audit")
}
