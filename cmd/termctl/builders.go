package main

// Builders of the commands that differ only in their route and help
// text. Many of termctl's API commands are an operation on an id: one
// request, then the answer's fields. Written out again for each, their
// details drifted apart; built here, they cannot.

import (
	"net/url"

	"github.com/spf13/cobra"
)

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
