package ui

// Device search (/ui/devices): the filters of GET /v1/devices, paging by
// the registry's cursor, bulk actions through POST /v1/devices/bulk, and
// a CSV export of the whole filtered set streamed page by page. A search
// is the page's URL (the filter form is a GET, so it can be bookmarked or
// shared as a link), and operators give searches names that every
// operator of the node sees: the saved filters of /v1/device-filters
// (docs/console.md, "Devices").

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/termd/termd/server/admin/api"
)

// deviceFilterKeys are the query parameters the page passes to GET
// /v1/devices (anything else in its URL is ignored).
var deviceFilterKeys = api.DeviceSearchKeys

// csvPage is the page size of the CSV export's API calls.
const csvPage = 1000

func init() {
	register(Page{Nav: "Devices", Path: Prefix + "devices", Order: 20, Template: "devices.html", Routes: func(rt *Routes) {
		rt.Get(Prefix+"devices", devicesPage)
		rt.Get(Prefix+"devices.csv", devicesCSV)
		rt.Post(Prefix+"devices/bulk", devicesBulk)
		rt.Post(Prefix+"devices/filters", saveDeviceFilter)
		rt.Post(Prefix+"devices/filters/delete", deleteDeviceFilter)
	}})
}

// deviceFilter is the API query of the page's filters (no paging).
func deviceFilter(q url.Values) url.Values {
	f := url.Values{}
	for _, k := range deviceFilterKeys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			f.Set(k, v)
		}
	}
	return f
}

type devicesData struct {
	List api.DeviceList
	// Filter is the API query of the filters ("" for none); F its values.
	Filter string
	F      map[string]string
	Stages []string
	Bulk   int // MaxBulk
	// Error is why the API refused the filter.
	Error string
	Now   int64
	// Saved are the saved filters; SavedOn is false when the node keeps
	// none (the API answered 503). Current is the name of the one whose
	// query is Filter, if any.
	Saved   []api.DeviceFilter
	SavedOn bool
	Current string
}

func devicesPage(w http.ResponseWriter, r *Request) error {
	q := r.URL.Query()
	f := deviceFilter(q)
	api1 := url.Values{}
	for k, v := range f {
		api1[k] = v
	}
	api1.Set("limit", "100")
	if c := q.Get("cursor"); c != "" {
		api1.Set("cursor", c)
	}
	d := devicesData{Filter: f.Encode(), F: map[string]string{}, Bulk: 10_000, Now: time.Now().UnixMilli(),
		Stages: []string{"offered", "downloading", "downloaded", "installing", "succeeded", "failed", "rolled_back", "timed_out", "reverted"}}
	for _, k := range deviceFilterKeys {
		d.F[k] = f.Get(k)
	}
	var saved api.DeviceFilterList
	if err := r.Get("/v1/device-filters", &saved); err == nil {
		d.Saved, d.SavedOn = saved.Filters, true
		for _, sf := range saved.Filters {
			if sf.Query == d.Filter {
				d.Current = sf.Name
			}
		}
	} else if statusOf(err) != http.StatusServiceUnavailable {
		return err
	}
	if err := r.Get("/v1/devices?"+api1.Encode(), &d.List); err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest && ae.Status != http.StatusNotFound {
			return err
		}
		d.Error = ae.Message // a bad filter: the form again, with why
	}
	return r.Render(w, "Devices", d)
}

// devicesCSV streams the filtered set as CSV, one API page at a time.
func devicesCSV(w http.ResponseWriter, r *Request) error {
	f := deviceFilter(r.URL.Query())
	f.Set("limit", strconv.Itoa(csvPage))
	var page api.DeviceList
	// The first page before any byte is written: a refused filter is
	// still an error page.
	if err := r.Get("/v1/devices?"+f.Encode(), &page); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="devices.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "online", "model", "fw", "last_seen", "last_offline", "offline_reason", "blocked", "has_key", "remote_addr"})
	rc := http.NewResponseController(w)
	for {
		for _, d := range page.Devices {
			_ = cw.Write([]string{d.ID, strconv.FormatBool(d.Online), d.Model, d.FW, csvTime(d.LastSeenMs), csvTime(d.LastOfflineMs),
				d.OfflineReason, strconv.FormatBool(d.Blocked), strconv.FormatBool(d.HasKey), d.RemoteAddr})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return nil // the browser went away
		}
		_ = rc.Flush()
		if page.NextCursor == "" {
			return nil
		}
		f.Set("cursor", page.NextCursor)
		page = api.DeviceList{}
		if err := r.Get("/v1/devices?"+f.Encode(), &page); err != nil {
			// Headers are out: end the file with a line that says so.
			_ = cw.Write([]string{"# export stopped: " + err.Error()})
			cw.Flush()
			return nil
		}
	}
}

func csvTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// devicesBulk runs a bulk action on the checked devices or on the whole
// filtered set, and comes back with a summary.
func devicesBulk(w http.ResponseWriter, r *Request) error {
	in := api.BulkRequest{Action: r.PostFormValue("action"), Group: strings.TrimSpace(r.PostFormValue("group")),
		Release: strings.TrimSpace(r.PostFormValue("release"))}
	switch r.PostFormValue("scope") {
	case "filter":
		fq, err := url.ParseQuery(r.PostFormValue("filter"))
		if err != nil {
			return fmt.Errorf("bad filter: %v", err)
		}
		s := deviceFilter(fq).Encode()
		in.Filter = &s
	default:
		in.IDs = r.PostForm["id"]
		if len(in.IDs) == 0 {
			return fmt.Errorf("no device selected: tick some, or choose every device of the filter")
		}
	}
	var res api.BulkResult
	if err := r.API(http.MethodPost, "/v1/devices/bulk", in, &res); err != nil {
		return err
	}
	msg := fmt.Sprintf("%s: %d devices, %d succeeded, %d failed.", res.Action, res.Matched, res.Succeeded, res.Failed)
	for i, f := range res.Failures {
		if i == 5 {
			msg += fmt.Sprintf(" … and %d more.", res.Failed-5)
			break
		}
		msg += fmt.Sprintf(" %s: %s.", f.ID, f.Message)
	}
	if res.Failed > 0 {
		r.FlashError(msg)
	} else {
		r.Flash(msg)
	}
	r.Back(w)
	return nil
}

// saveDeviceFilter saves the search the page shows under the name typed
// (a name in use is replaced), then shows that search.
func saveDeviceFilter(w http.ResponseWriter, r *Request) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" {
		return errors.New("give the search a name to save it")
	}
	fq, err := url.ParseQuery(r.PostFormValue("filter"))
	if err != nil {
		return fmt.Errorf("bad filter: %v", err)
	}
	var f api.DeviceFilter
	if err := r.API(http.MethodPut, "/v1/device-filters/"+url.PathEscape(name), api.DeviceFilterSave{Query: deviceFilter(fq).Encode()}, &f); err != nil {
		return err
	}
	r.Flash(fmt.Sprintf("Saved the search as %q.", f.Name))
	http.Redirect(w, r.Request, searchURL(f.Query), http.StatusSeeOther)
	return nil
}

// deleteDeviceFilter deletes a saved filter; the page stays where it was.
func deleteDeviceFilter(w http.ResponseWriter, r *Request) error {
	name := r.PostFormValue("name")
	if err := r.API(http.MethodDelete, "/v1/device-filters/"+url.PathEscape(name), nil, nil); err != nil {
		return err
	}
	r.Flash(fmt.Sprintf("Deleted the saved search %q.", name))
	r.Back(w)
	return nil
}

// searchURL is the device page showing the search query.
func searchURL(query string) string {
	if query == "" {
		return Prefix + "devices"
	}
	return Prefix + "devices?" + query
}
