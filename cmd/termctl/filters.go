package main

// termctl filters ...: saved device searches over /v1/device-filters
// (docs/admin-api.md §25), the same list the console's device page
// shows; `termctl devices --filter NAME` runs one.

import (
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

func (a *app) filtersCmd() *cobra.Command {
	cmd := listCmd(a, "filters", "List saved device searches (GET /v1/device-filters); save, delete",
		"/v1/device-filters", "NAME\tQUERY\tUPDATED\tBY",
		func(w io.Writer, l *api.DeviceFilterList) {
			for _, f := range l.Filters {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Name, dash(f.Query), a.msTime(f.UpdatedMs, timeLayout), dash(f.UpdatedBy))
			}
		})
	cmd.AddCommand(&cobra.Command{
		Use:   "save NAME QUERY",
		Short: "Save a device search under NAME, or replace its query (PUT /v1/device-filters/{name}); QUERY as GET /v1/devices takes it, e.g. 'model=P400&offline_for=24h'",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.send(cmd.Context(), "PUT", filterPath(args[0]), api.DeviceFilterSave{Query: args[1]})
		},
	}, a.deleteCmd("delete NAME", "Delete a saved device search (DELETE /v1/device-filters/{name})", "name", "deleted", filterPath))
	return cmd
}

func filterPath(name string) string { return "/v1/device-filters/" + url.PathEscape(name) }

// savedQuery returns the query of the saved filter name.
func (a *app) savedQuery(cmd *cobra.Command, name string) (url.Values, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	var f api.DeviceFilter
	if _, err := c.getJSON(cmd.Context(), filterPath(name), &f); err != nil {
		return nil, err
	}
	return url.ParseQuery(f.Query)
}
