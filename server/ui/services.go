package ui

// Services (/ui/services): each service's state from GET /v1/services,
// start/stop/restart through POST /v1/services/{id}/{op} after a
// confirmation (operators only), and the service-control audit
// (GET /v1/audit) with its filters.

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/termd/termd/server/admin/api"
)

// auditFilterKeys are the query parameters the services page passes to
// GET /v1/audit.
var auditFilterKeys = []string{"service", "device", "operator", "op", "result", "since", "until", "before"}

func init() {
	register(Page{Nav: "Services", Path: Prefix + "services", Order: 30, Template: "services.html", Routes: func(rt *Routes) {
		rt.Get(Prefix+"services", servicesPage)
		for _, op := range []string{"start", "stop", "restart"} {
			rt.Post(Prefix+"services/{id}/"+op, func(w http.ResponseWriter, r *Request) error {
				var s api.Service
				if err := r.API(http.MethodPost, "/v1/services/"+url.PathEscape(r.PathValue("id"))+"/"+op, nil, &s); err != nil {
					return err
				}
				r.Flash(s.ID + ": " + op + " done, now " + s.State + ".")
				r.Back(w)
				return nil
			})
		}
	}})
}

type servicesData struct {
	Services api.ServiceList
	Audit    api.AuditList
	F        map[string]string
	Error    string
	// Older is the link to the next page of the audit.
	Older string
}

// filterQuery keeps the non-empty values of keys from q.
func filterQuery(q url.Values, keys []string) url.Values {
	f := url.Values{}
	for _, k := range keys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			f.Set(k, v)
		}
	}
	return f
}

func servicesPage(w http.ResponseWriter, r *Request) error {
	d := servicesData{F: map[string]string{}}
	f := filterQuery(r.URL.Query(), auditFilterKeys)
	for _, k := range auditFilterKeys {
		d.F[k] = f.Get(k)
	}
	if err := r.Get("/v1/services", &d.Services); err != nil {
		return err
	}
	f.Set("limit", "50")
	if err := r.Get("/v1/audit?"+f.Encode(), &d.Audit); err != nil {
		ae, ok := err.(*APIError)
		if !ok || ae.Status != http.StatusBadRequest {
			return err
		}
		d.Error = ae.Message
	}
	d.Older = olderLink(r, d.Audit.NextBefore)
	return r.Render(w, "Services", d)
}

// olderLink is the current page's URL with before set: the link to the
// next (older) page of an audit paged by seq ("" on the last page).
func olderLink(r *Request, before uint64) string {
	if before == 0 {
		return ""
	}
	q := r.URL.Query()
	q.Set("before", strconv.FormatUint(before, 10))
	return r.URL.Path + "?" + q.Encode()
}
