package admin

// The filters GET /v1/audit gained for the console (docs/admin-api.md
// §22): op, result, source, operator and a time range. The store indexes
// only device and service, so these run over its pages, newest first,
// until the page is full or maxAuditScan records were looked at; the
// page's next_before then resumes the scan (a page may be short).

import (
	"context"
	"fmt"
	"net/url"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// maxAuditScan bounds the records one filtered GET /v1/audit looks at.
const maxAuditScan = 20_000

// auditFilterX are the filters the store does not index.
type auditFilterX struct {
	op, source, operator string
	// failed: nil any result, else only refusals/failures (status != OK)
	// or only successes.
	failed       *bool
	since, until int64
}

func (x *auditFilterX) none() bool {
	return x.op == "" && x.source == "" && x.operator == "" && x.failed == nil && x.since == 0 && x.until == 0
}

func (x *auditFilterX) match(r *storage.AuditRecord) bool {
	switch {
	case x.op != "" && r.Op != x.op,
		x.source != "" && r.Source != x.source,
		x.operator != "" && r.Operator != x.operator,
		x.failed != nil && (r.Status != uint8(protocol.OK)) != *x.failed,
		x.since != 0 && r.At < x.since,
		x.until != 0 && r.At >= x.until:
		return false
	}
	return true
}

func auditExtra(q url.Values) (*auditFilterX, error) {
	x := &auditFilterX{op: q.Get("op"), source: q.Get("source"), operator: q.Get("operator")}
	for _, k := range []string{"op", "source", "operator"} {
		if len(q.Get(k)) > maxFilterValue {
			return nil, fmt.Errorf("%s is longer than %d bytes", k, maxFilterValue)
		}
	}
	switch q.Get("result") {
	case "":
	case "ok":
		x.failed = new(bool)
	case "failed":
		x.failed = new(bool)
		*x.failed = true
	default:
		return nil, fmt.Errorf("result must be ok or failed")
	}
	var err error
	if x.since, err = timeParam(q.Get("since")); err != nil {
		return nil, fmt.Errorf("since: %v", err)
	}
	if x.until, err = timeParam(q.Get("until")); err != nil {
		return nil, fmt.Errorf("until: %v", err)
	}
	return x, nil
}

// auditPage reads one page of f with the extra filters x.
func (h *handler) auditPage(ctx context.Context, f storage.AuditFilter, x *auditFilterX) (api.AuditList, error) {
	out := api.AuditList{Records: []api.AuditRecord{}}
	if x.none() {
		recs, err := h.opt.Services.Audit(ctx, f)
		if err != nil {
			return out, err
		}
		for _, rec := range recs {
			out.Records = append(out.Records, auditJSON(rec))
		}
		if len(recs) == f.Limit {
			out.NextBefore = recs[len(recs)-1].Seq
		}
		return out, nil
	}
	want := f.Limit
	sf := f
	sf.Limit = MaxPageSize
	for scanned := 0; scanned < maxAuditScan; {
		recs, err := h.opt.Services.Audit(ctx, sf)
		if err != nil {
			return out, err
		}
		for i := range recs {
			scanned++
			if x.match(&recs[i]) {
				out.Records = append(out.Records, auditJSON(recs[i]))
				if len(out.Records) == want {
					if i < len(recs)-1 || len(recs) == sf.Limit {
						out.NextBefore = recs[i].Seq
					}
					return out, nil
				}
			}
			if scanned == maxAuditScan && (i < len(recs)-1 || len(recs) == sf.Limit) {
				out.NextBefore = recs[i].Seq
				return out, nil
			}
		}
		if len(recs) < sf.Limit {
			return out, nil
		}
		sf.Before = recs[len(recs)-1].Seq
	}
	return out, nil
}
