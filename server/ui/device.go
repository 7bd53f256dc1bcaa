package ui

// Device detail (/ui/devices/{id}): identity, presence with the last
// offline reason and the week's online hours, versions, upgrade history,
// groups with who added each, the latest status readings, the
// service-control audit and the operator audit of the device, and the
// actions disconnect, block/unblock and set/remove key. All from the
// admin API; what it does not keep (a presence event log, the registered
// location, a pending reservation) is not shown (docs/console.md).

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/termd/termd/server/admin/api"
)

func init() {
	register(Page{Path: Prefix + "devices/", Order: 21, Template: "device.html", Routes: func(rt *Routes) {
		rt.Get(Prefix+"devices/{id}", devicePage)
		rt.Action(Prefix+"devices/{id}/disconnect", "POST", "/v1/devices/{id}/disconnect", "Disconnected.")
		rt.Action(Prefix+"devices/{id}/block", "POST", "/v1/devices/{id}/block", "Blocked: its HELLO is refused until unblocked.")
		rt.Action(Prefix+"devices/{id}/unblock", "POST", "/v1/devices/{id}/unblock", "Unblocked.")
		rt.Post(Prefix+"devices/{id}/key", deviceKey)
	}})
}

type deviceData struct {
	Device   api.Device
	Upgrades api.DeviceUpgrades
	Attempts []attemptRow
	Groups   api.DeviceGroups
	Hours    []hourCell
	// HoursOnline counts the week's online hours; HoursErr says why there are none.
	HoursOnline int
	Audit       api.AuditList
	Operator    api.OperatorAuditList
	Status      []kv
	// Schedule is the device's registered location and zone and its
	// campaign reservations; nil on a node without scheduling.
	Schedule *api.DeviceSchedule
}

type kv struct{ K, V string }

// hourCell is one hour of the online strip (an SVG rect at X).
type hourCell struct {
	X      int
	On     bool
	Starts int64
}

func devicePage(w http.ResponseWriter, r *Request) error {
	id := r.PathValue("id")
	esc := url.PathEscape(id)
	d := &deviceData{}
	if err := r.Get("/v1/devices/"+esc, &d.Device); err != nil {
		return err
	}
	var hours api.OnlineHours
	var wg sync.WaitGroup
	var sched api.DeviceSchedule
	errs := make([]error, 6)
	for i, f := range []func() error{
		func() error { return r.Get("/v1/devices/"+esc+"/upgrades", &d.Upgrades) },
		func() error { return optional(r.Get("/v1/devices/"+esc+"/groups", &d.Groups)) },
		func() error { return optional(r.Get("/v1/devices/"+esc+"/online-hours", &hours)) },
		func() error { return r.Get("/v1/audit?limit=20&device="+url.QueryEscape(id), &d.Audit) },
		func() error {
			return optional(r.Get("/v1/operator-audit?limit=20&target="+url.QueryEscape(id), &d.Operator))
		},
		func() error {
			err := r.Get("/v1/devices/"+esc+"/schedule", &sched)
			if err == nil {
				d.Schedule = &sched
			}
			return optional(err)
		},
	} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for i, h := range hours.Hours {
		d.Hours = append(d.Hours, hourCell{X: i, On: h.Online, Starts: h.StartMs})
		if h.Online {
			d.HoursOnline++
		}
	}
	slices.SortFunc(d.Upgrades.Attempts, func(a, b api.UpgradeAttempt) int { return cmp.Compare(b.UpdatedMs, a.UpdatedMs) })
	for _, a := range d.Upgrades.Attempts {
		d.Attempts = append(d.Attempts, attemptRow{UpgradeAttempt: a, Stages: stagesOf(a.StageMs)})
	}
	for k, v := range d.Device.Status {
		d.Status = append(d.Status, kv{k, fmt.Sprint(v)})
	}
	sort.Slice(d.Status, func(i, j int) bool { return d.Status[i].K < d.Status[j].K })
	return r.Render(w, "Device "+id, d)
}

// stageOrder lists upgrade stages in the order a terminal reaches them.
var stageOrder = []string{"downloading", "downloaded", "installing", "succeeded", "failed", "rolled_back", "timed_out", "reverted"}

// stagesOf is an attempt's stages with their times, in order.
func stagesOf(ms map[string]int64) []stageAt {
	var out []stageAt
	for _, s := range stageOrder {
		if t, ok := ms[s]; ok {
			out = append(out, stageAt{s, t})
		}
	}
	return out
}

type attemptRow struct {
	api.UpgradeAttempt
	Stages []stageAt
}

type stageAt struct {
	Stage string
	AtMs  int64
}

var hexKey = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// deviceKey sets the device's key from the form (64 hex digits) or
// removes it (remove=1).
func deviceKey(w http.ResponseWriter, r *Request) error {
	path := "/v1/devices/" + url.PathEscape(r.PathValue("id")) + "/key"
	if r.PostFormValue("remove") == "1" {
		if err := r.API(http.MethodPut, path, map[string]any{"key": nil}, nil); err != nil {
			return err
		}
		r.Flash("Key removed: the device signs with the fleet secret again.")
		r.Back(w)
		return nil
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	if !hexKey.MatchString(key) {
		return fmt.Errorf("a key is 64 hex digits (32 bytes)")
	}
	if err := r.API(http.MethodPut, path, map[string]any{"key": key}, nil); err != nil {
		return err
	}
	r.Flash("Key set: the device must sign with it from its next HELLO.")
	r.Back(w)
	return nil
}
