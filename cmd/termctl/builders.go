package main

// Builders of the commands that differ only in their route, help text
// and table. Most of termctl's API commands are one of two kinds: a list
// (GET, then a table, or the JSON as sent with --json) or an operation on
// an id (one request, then the answer's fields). Written out again for
// each, their details drift apart; built here, they cannot.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// table starts a table on stdout with its header line; the caller writes
// the rows and flushes it. Every table is spaced the same so that the
// commands' output reads alike.
func (a *app) table(header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

// listCmd makes a command without arguments that GETs path into a T and
// prints rows' lines under header; with --json it prints the answer as
// sent instead. T is fresh on each run so that nothing of an earlier run
// leaks into the next.
func listCmd[T any](a *app, use, short, path, header string, rows func(w io.Writer, list *T)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list T
			if done, err := a.fetch(cmd.Context(), path, &list); done {
				return err
			}
			tw := a.table(header)
			rows(tw, &list)
			return tw.Flush()
		},
	}
}

// checkLimit refuses a --limit the API would refuse, before a request.
func checkLimit(limit int) error {
	if limit < 1 || limit > maxPage {
		return fmt.Errorf("--limit must be in 1..%d", maxPage)
	}
	return nil
}

// idCmd makes `USE ID`: one request without a body, method on
// base/{ID}suffix, whose answer's fields are printed.
func (a *app) idCmd(use, short, method, base, suffix string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.send(cmd.Context(), method, base+"/"+url.PathEscape(args[0])+suffix, nil)
		},
	}
}

// idOp is a state change of one resource: `NAME ID` POSTs to its
// .../{id}/NAME route.
type idOp struct{ name, short string }

// opCmds makes an idCmd per op: POST base/{ID}sub/NAME, with the route
// named in its help after op.short, as every other command names its own.
func (a *app) opCmds(base, sub string, ops []idOp) []*cobra.Command {
	cmds := make([]*cobra.Command, len(ops))
	for i, op := range ops {
		route := sub + "/" + op.name
		cmds[i] = a.idCmd(op.name, op.short+" (POST "+base+"/{id}"+route+")", "POST", base, route)
	}
	return cmds
}

// deleteCmd makes `USE ID`: DELETE path(ID), whose answer has no body, so
// it prints "VERB ID" (with --json {KEY: ID, VERB: true}).
func (a *app) deleteCmd(use, short, key, verb string, path func(id string) string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if _, err := c.call(cmd.Context(), "DELETE", path(args[0]), nil); err != nil {
				return err
			}
			if a.jsonOut {
				out, _ := json.Marshal(map[string]any{key: args[0], verb: true})
				a.printf("%s\n", out)
				return nil
			}
			a.printf("%s %s\n", verb, args[0])
			return nil
		},
	}
}
