package control

import (
	"context"
	"slices"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control/supervisor"
	"github.com/termd/termd/storage"
)

// OpResult is the outcome of an operator's operation.
type OpResult struct {
	Service api.Service `json:"service"`
	// TimedOut: the operation did not finish within its timeout; Service
	// is what was known then and the operation may still complete.
	TimedOut bool `json:"timed_out,omitempty"`
}

// Errors of the operator API: refusals with the status the admin API
// answers them with (one table, server/admin).
var (
	// ErrUnknownService: no service has that id.
	ErrUnknownService = &protocol.Error{Code: protocol.NotFound, Message: "unknown service"}
	// ErrBadOp: not start, stop, restart or status.
	ErrBadOp = &protocol.Error{Code: protocol.BadRequest, Message: "unknown operation"}
	// ErrNotAudited: the operation ran but its audit record could not be
	// written.
	ErrNotAudited = &protocol.Error{Code: protocol.Internal, Message: "audit unavailable"}
)

func (c *Controller) view(st supervisor.State) api.Service {
	p := c.pols[st.Service]
	v := api.Service{
		ID: st.Service, Kind: st.Kind, State: st.State, PID: st.PID, ExitCode: st.ExitCode, Signal: st.Signal,
		SinceMs: st.SinceMs, Output: wireOutput(st.Output), Running: st.Running, Restarts: st.Restarts,
		Busy: st.Busy, Adopted: st.Adopted,
	}
	if p != nil {
		v.Kind, v.Description, v.Command = p.svc.Kind, p.svc.Description, p.svc.Command
		v.Ops, v.AcceptsArgs, v.Autostart = slices.Clone(p.ops), len(p.args) > 0, p.svc.Autostart
		if p.svc.Kind == config.KindDaemon {
			v.Restart = p.svc.Restart
		}
	}
	return v
}

// Services lists every configured service, by id.
func (c *Controller) Services() []api.Service {
	sts := c.sup.Services()
	out := make([]api.Service, 0, len(sts))
	for _, st := range sts {
		out = append(out, c.view(st))
	}
	return out
}

// Service returns one service or ErrUnknownService.
func (c *Controller) Service(id string) (api.Service, error) {
	st, err := c.sup.Status(id)
	if err != nil {
		return api.Service{}, ErrUnknownService
	}
	return c.view(st), nil
}

// Operate runs op on service id for an operator and waits for it (at most
// the service's timeout for op, or until ctx ends). Operators are not
// bound by the service's ops or ACL. The request is audited like a
// terminal's, with Source "operator" and the caller's remote address.
func (c *Controller) Operate(ctx context.Context, id, op, remote string) (OpResult, error) {
	start := c.now()
	rec := storage.AuditRecord{At: start.UnixMilli(), Source: storage.SourceOperator, Remote: remote, Operator: OperatorFrom(ctx), Service: id, Op: op}
	p := c.pols[id]
	var (
		a   answer
		res OpResult
		err error
	)
	switch {
	case !slices.Contains(config.AllOps, op):
		return OpResult{}, ErrBadOp
	case p == nil:
		rec.Service = auditName(id)
		a = answer{err: ErrUnknownService}
		err = a.err
	case op == config.OpStatus:
		st, serr := c.sup.Status(id)
		a = c.stateAnswer(st, serr)
		res.Service = c.view(st)
	default:
		o, derr := c.sup.DoStarted(id, op, nil, storage.SourceOperator, c.startedRecord(rec, start))
		if derr != nil {
			a = c.doError(derr)
			err = a.err
			break
		}
		t := time.NewTimer(time.Duration(p.opTimeout(op)) * time.Millisecond)
		defer t.Stop()
		select {
		case <-o.Done():
			r := o.Result()
			a, res.Service, res.TimedOut = c.resultAnswer(r), c.view(r.State), r.TimedOut
			if r.Err != nil {
				err = r.Err
			}
		case <-t.C:
			st := o.Current()
			a, res.Service, res.TimedOut = timeoutAnswer("operation still running", st), c.view(st), true
		case <-ctx.Done():
			st := o.Current()
			a, res.Service, res.TimedOut = timeoutAnswer("operator went away", st), c.view(st), true
		}
	}
	if _, aerr := c.commit(&rec, a, start); aerr != nil && err == nil {
		return res, aerr
	}
	return res, err
}

// Audit lists audit records, newest first.
func (c *Controller) Audit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditRecord, error) {
	if c.audit == nil {
		return nil, nil
	}
	return c.audit.ListAudit(ctx, f)
}
