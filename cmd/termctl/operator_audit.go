package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

// operatorAuditCmd is `termctl audit operator`: GET /v1/operator-audit.
func (a *app) operatorAuditCmd() *cobra.Command {
	var operator, method, target, path, result, since, until string
	var paging seqPage
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "List the operator audit: every state-changing admin request, newest first (GET /v1/operator-audit)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := paging.path("/v1/operator-audit", map[string]string{"operator": operator, "method": method, "target": target,
				"path": path, "result": result, "since": since, "until": until})
			if err != nil {
				return err
			}
			var page api.OperatorAuditList
			if done, err := a.fetch(cmd.Context(), p, &page); done {
				return err
			}
			tw := a.table("SEQ\tTIME\tOPERATOR\tSCOPE\tFROM\tREQUEST\tTARGETS\tSTATUS")
			for _, r := range page.Records {
				targets := strings.Join(r.Targets, ",")
				if r.TargetCount > len(r.Targets) {
					targets += fmt.Sprintf(" (+%d)", r.TargetCount-len(r.Targets))
				}
				status := strconv.Itoa(r.Status)
				if r.Message != "" {
					status += " (" + r.Message + ")"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s %s\t%s\t%s\n", r.Seq, a.msTime(r.AtMs, timeLayout), r.Operator, r.Scope,
					dash(r.Remote), r.Method, r.Path, dash(targets), status)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			a.olderFollow(page.NextBefore)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&operator, "operator", "", "only this token name's requests")
	f.StringVar(&method, "method", "", "only this method (POST, PUT, DELETE)")
	f.StringVar(&target, "target", "", "only requests on this id (device, service, release, group ...)")
	f.StringVar(&path, "path", "", "only paths starting with this (e.g. /v1/services/)")
	f.StringVar(&result, "result", "", "ok (status < 400) or failed")
	f.StringVar(&since, "since", "", "only records at or after this time (RFC 3339 or unix ms)")
	f.StringVar(&until, "until", "", "only records before this time (RFC 3339 or unix ms)")
	paging.addFlags(cmd)
	return cmd
}
