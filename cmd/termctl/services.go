package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// serviceOpTimeout bounds POST /v1/services/{id}/{op}: the server waits
// at most the service's own timeout (restart_timeout defaults to 60 s).
const serviceOpTimeout = 10 * time.Minute

func (a *app) servicesCmd() *cobra.Command {
	return listCmd(a, "services", "List the services termd runs and their state (GET /v1/services)", "/v1/services",
		"ID\tKIND\tSTATE\tPID\tEXIT\tSINCE\tNOTE", func(w io.Writer, page *api.ServiceList) {
			for _, s := range page.Services {
				var note []string
				if s.Busy != "" {
					note = append(note, s.Busy+" in progress")
				}
				if s.Running > 1 {
					note = append(note, fmt.Sprintf("%d runs", s.Running))
				}
				if s.Adopted {
					note = append(note, "adopted")
				}
				if s.Restarts > 0 {
					note = append(note, fmt.Sprintf("%d restarts", s.Restarts))
				}
				pid := "-"
				if s.PID > 0 {
					pid = strconv.Itoa(s.PID)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Kind, s.State, pid, s.ExitCode,
					a.msTime(s.SinceMs, timeLayout), dash(strings.Join(note, ", ")))
			}
		})
}

func (a *app) serviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service ID | service start|stop|restart ID",
		Short: "Show a service, or start, stop or restart it (GET /v1/services/{id}, POST .../start|stop|restart)",
		Long: `termctl service ID shows one service. termctl service start|stop|restart ID
runs the operation and waits for it (at most the service's timeout for it);
it is audited with source "operator". Exit status 1 if the operation was
refused, timed out, or left the service failed.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				b, err := c.getJSON(cmd.Context(), "/v1/services/"+url.PathEscape(args[0]), nil)
				if err != nil {
					return err
				}
				return a.printFields(b)
			}
			op, id := args[0], args[1]
			switch op {
			case "start", "stop", "restart":
			default:
				return fmt.Errorf("unknown operation %q: start, stop or restart", op)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), serviceOpTimeout)
			defer cancel()
			resp, err := c.request(ctx, "POST", "/v1/services/"+url.PathEscape(id)+"/"+op, nil)
			if err != nil {
				if isCode(err, api.CodeTimeout) {
					return fmt.Errorf("%s %s: did not finish within the service's timeout; it may still complete (termctl service %s)", op, id, id)
				}
				return err
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(resp.Body); err != nil {
				return err
			}
			if err := a.printFields(buf.Bytes()); err != nil {
				return err
			}
			var s api.Service
			if json.Unmarshal(buf.Bytes(), &s) == nil && s.State == "failed" {
				return fmt.Errorf("%s %s: the service is failed (exit code %d)", op, id, s.ExitCode)
			}
			return nil
		},
	}
	return cmd
}

func (a *app) auditCmd() *cobra.Command {
	var device, svc string
	var paging seqPage
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List service-control audit records, newest first (GET /v1/audit)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := paging.path("/v1/audit", map[string]string{"device": device, "service": svc})
			if err != nil {
				return err
			}
			var page api.AuditList
			if done, err := a.fetch(cmd.Context(), path, &page); done {
				return err
			}
			tw := a.table("SEQ\tTIME\tWHO\tSERVICE\tOP\tARGS\tRESULT\tSTATE\tEXIT\tMS")
			for _, r := range page.Records {
				who := r.Source
				if r.DeviceID != "" {
					who = r.DeviceID
				}
				result := protocol.Code(r.Status).String()
				if r.Message != "" && (r.Status != 0 || r.Repeat || r.Count > 0 || r.State == protocol.StateRunning) {
					result += " (" + r.Message + ")"
				}
				if r.Count > 1 { // coalesced refusals or repeats
					result += fmt.Sprintf(" x%d until %s", r.Count, a.msTime(r.LastAtMs, timeLayout))
				}
				args := strings.Join(r.Args, " ")
				if r.ArgCount > 0 && len(r.Args) == 0 { // not stored: their count and digest
					args = fmt.Sprintf("<%d args sha256:%s>", r.ArgCount, r.ArgsSHA256)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.Seq, a.msTime(r.AtMs, timeLayout), who, r.Service, r.Op,
					dash(args), result, dash(r.State), r.ExitCode, r.DurationMs)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			a.olderFollow(page.NextBefore)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&device, "device", "", "only this device's requests")
	f.StringVar(&svc, "service", "", "only this service")
	paging.addFlags(cmd)
	cmd.AddCommand(a.operatorAuditCmd())
	return cmd
}

// seqPage is the paging of the two audits, newest first: at most --limit
// records, older than --before, the seq where the previous page ended.
type seqPage struct {
	limit  int
	before uint64
}

// addFlags adds --limit and --before to cmd.
func (p *seqPage) addFlags(cmd *cobra.Command) {
	cmd.Flags().IntVar(&p.limit, "limit", 50, fmt.Sprintf("records, 1..%d", maxPage))
	cmd.Flags().Uint64Var(&p.before, "before", 0, "only records older than this seq (paging)")
}

// path is base with the page's query: its limit and before, and each of
// filters that is set (the query is encoded sorted, whatever the map's
// order).
func (p *seqPage) path(base string, filters map[string]string) (string, error) {
	if err := checkLimit(p.limit); err != nil {
		return "", err
	}
	q := url.Values{}
	q.Set("limit", strconv.Itoa(p.limit))
	for k, v := range filters {
		if v != "" {
			q.Set(k, v)
		}
	}
	if p.before > 0 {
		q.Set("before", strconv.FormatUint(p.before, 10))
	}
	return base + "?" + q.Encode(), nil
}

// olderFollow tells stderr where the next page starts, when one does.
func (a *app) olderFollow(next uint64) {
	if next != 0 {
		fmt.Fprintf(a.errOut, "older records follow: --before %d\n", next)
	}
}
