package ui

// Operator audit (/ui/audit): who did what, from GET /v1/operator-audit
// (every state-changing admin request: the console's, termctl's, curl's),
// with its filters and paging by seq.

import (
	"net/http"

	"github.com/termd/termd/server/admin/api"
)

var operatorAuditKeys = []string{"operator", "target", "method", "path", "result", "since", "until", "before"}

func init() {
	register(Page{Nav: "Audit", Path: Prefix + "audit", Order: 85, Template: "audit.html", Routes: func(rt *Routes) {
		rt.Get(Prefix+"audit", func(w http.ResponseWriter, r *Request) error {
			d := auditData{F: map[string]string{}}
			f := filterQuery(r.URL.Query(), operatorAuditKeys)
			for _, k := range operatorAuditKeys {
				d.F[k] = f.Get(k)
			}
			f.Set("limit", "100")
			if err := r.Get("/v1/operator-audit?"+f.Encode(), &d.List); err != nil {
				ae, ok := err.(*APIError)
				if !ok || ae.Status != http.StatusBadRequest {
					return err
				}
				d.Error = ae.Message
			}
			d.Older = olderLink(r, d.List.NextBefore)
			return r.Render(w, "Audit", d)
		})
	}})
}

type auditData struct {
	List  api.OperatorAuditList
	F     map[string]string
	Error string
	Older string
}
