package ui

// Campaigns: the list, each campaign's progress per cluster, node and
// slot (GET /v1/campaigns/{id}/progress) with its actions, the download
// nodes with drain and undrain, and the planner (planner.go). One page
// of the navigation, four views of campaigns.html.

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/termd/termd/server/admin/api"
)

func init() {
	register(Page{Nav: "Campaigns", Path: Prefix + "campaigns", Order: 50, Template: "campaigns.html", Routes: func(rt *Routes) {
		rt.Get(Prefix+"campaigns", func(w http.ResponseWriter, r *Request) error {
			d, err := loadCampaignList(r)
			if err != nil {
				return err
			}
			return r.Render(w, "Campaigns", &campaignsData{Kind: "list", List: d})
		})
		rt.Get(Prefix+"campaigns/plan", func(w http.ResponseWriter, r *Request) error {
			v, err := loadPlanner(r)
			if err != nil {
				return err
			}
			return r.Render(w, "Campaign planner", &campaignsData{Kind: "plan", Plan: v})
		})
		rt.Get(Prefix+"campaigns/plan/cover", func(w http.ResponseWriter, r *Request) error {
			v, err := loadCover(r, r.URL.Query())
			if err != nil {
				// The page shows the refusal in place of the figures.
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.WriteHeader(statusOf(err))
				return r.Partial(w, "cover-error", err.Error())
			}
			return r.Partial(w, "cover", v)
		})
		rt.Post(Prefix+"campaigns/plan/create", createFromPlan)
		rt.Get(Prefix+"campaigns/nodes", func(w http.ResponseWriter, r *Request) error {
			var nodes api.NodeList
			if err := r.Get("/v1/nodes", &nodes); err != nil {
				return err
			}
			return r.Render(w, "Download nodes", &campaignsData{Kind: "nodes", Nodes: nodes.Nodes})
		})
		rt.Get(Prefix+"campaigns/{id}", func(w http.ResponseWriter, r *Request) error {
			d, err := loadCampaign(r, r.PathValue("id"))
			if err != nil {
				return err
			}
			return r.Render(w, "Campaign "+d.Progress.Campaign.ID, &campaignsData{Kind: "detail", Detail: d})
		})
		for _, op := range []struct{ name, done string }{
			{"publish", "Campaign published: its terminals are told."},
			{"pause", "Campaign paused: placements and check-ins wait."},
			{"resume", "Campaign resumed."},
			{"cancel", "Campaign cancelled: its reservations were given back."},
		} {
			rt.Action(Prefix+"campaigns/{id}/"+op.name, "POST", "/v1/campaigns/{id}/"+op.name, op.done)
		}
		rt.Post(Prefix+"campaigns/{id}/retry", retryCampaign)
		rt.Action(Prefix+"campaigns/nodes/{id}/drain", "POST", "/v1/nodes/{id}/drain", "Node draining: it takes no new reservations.")
		rt.Action(Prefix+"campaigns/nodes/{id}/undrain", "POST", "/v1/nodes/{id}/undrain", "Node takes reservations again.")
	}})
}

// campaignsData is campaigns.html's data: Kind names the view.
type campaignsData struct {
	Kind   string
	List   []api.Campaign
	Detail *campaignDetail
	Nodes  []api.Node
	Plan   *planView
}

// loadCampaignList lists every campaign, newest first. Their progress
// is on each campaign's page: a campaign's progress reads its
// reservations, too much to do for every campaign of a list.
func loadCampaignList(r *Request) ([]api.Campaign, error) {
	var list api.CampaignList
	if err := r.Get("/v1/campaigns", &list); err != nil {
		return nil, err
	}
	slices.SortFunc(list.Campaigns, func(a, b api.Campaign) int { return cmp.Compare(b.CreatedMs, a.CreatedMs) })
	return list.Campaigns, nil
}

// maxSlotRows bounds the per-slot table of a campaign's page.
const maxSlotRows = 300

// campaignDetail is one campaign's page.
type campaignDetail struct {
	Progress api.CampaignProgress
	Health   string
	Why      string
	Clusters []progressRow // per cluster (Node empty)
	Nodes    []progressRow // per node
	Slots    []progressRow // per (node, slot), the first maxSlotRows
	More     int
	// NodeDraining tells which nodes are draining now.
	NodeDraining map[string]bool
}

func loadCampaign(r *Request, id string) (*campaignDetail, error) {
	d := &campaignDetail{NodeDraining: map[string]bool{}}
	if err := r.Get("/v1/campaigns/"+url.PathEscape(id)+"/progress", &d.Progress); err != nil {
		return nil, err
	}
	var nodes api.NodeList
	if err := r.Get("/v1/nodes", &nodes); err != nil {
		return nil, err
	}
	for _, n := range nodes.Nodes {
		d.NodeDraining[n.ID] = n.Draining
	}
	d.Health, d.Why = campaignHealth(&campaignRow{Campaign: d.Progress.Campaign, Progress: d.Progress})
	d.Clusters = sumBy(d.Progress.Slots, func(s api.SlotProgress) string { return s.Cluster }, false)
	d.Nodes = sumBy(d.Progress.Slots, func(s api.SlotProgress) string { return s.Node }, true)
	for _, s := range d.Progress.Slots[:min(len(d.Progress.Slots), maxSlotRows)] {
		d.Slots = append(d.Slots, progressRow{s})
	}
	d.More = len(d.Progress.Slots) - len(d.Slots)
	return d, nil
}

// sumBy adds the slot rows up per key, in key order; withNode keeps the
// node (and its cluster) in the sums.
func sumBy(slots []api.SlotProgress, key func(api.SlotProgress) string, withNode bool) []progressRow {
	byKey := map[string]*api.SlotProgress{}
	var keys []string
	for _, s := range slots {
		k := key(s)
		t := byKey[k]
		if t == nil {
			t = &api.SlotProgress{Cluster: s.Cluster}
			if withNode {
				t.Node = s.Node
			}
			byKey[k] = t
			keys = append(keys, k)
		}
		t.Reserved += s.Reserved
		t.CheckedIn += s.CheckedIn
		t.Proceeded += s.Proceeded
		t.Succeeded += s.Succeeded
		t.Failed += s.Failed
		t.Missed += s.Missed
		t.UpToDate += s.UpToDate
		t.Lapsed += s.Lapsed
		t.Due += s.Due
		t.NoShow += s.NoShow
	}
	slices.Sort(keys)
	out := make([]progressRow, 0, len(keys))
	for _, k := range keys {
		out = append(out, progressRow{*byKey[k]})
	}
	return out
}

// retryCampaign re-opens a campaign's stragglers (POST
// /v1/campaigns/{id}/retry) chosen by the form's check boxes.
func retryCampaign(w http.ResponseWriter, r *Request) error {
	in := api.CampaignRetry{Missed: r.PostFormValue("missed") == "1", Failed: r.PostFormValue("failed") == "1", Unreached: r.PostFormValue("unreached") == "1"}
	if !in.Missed && !in.Failed && !in.Unreached {
		return badInput("tick missed, failed and/or not reached")
	}
	var res api.RetryResult
	if err := r.API(http.MethodPost, r.fill("/v1/campaigns/{id}/retry"), in, &res); err != nil {
		return err
	}
	r.Flash(fmt.Sprintf("%d terminals re-opened: they are told again.", res.Devices))
	r.Back(w)
	return nil
}

// progressRow is a row of a campaign's progress tables.
type progressRow struct{ api.SlotProgress }

// NoShowRate is the row's no-shows among its reservations due.
func (p progressRow) NoShowRate() float64 {
	if p.Due == 0 {
		return 0
	}
	return float64(p.NoShow) / float64(p.Due)
}
