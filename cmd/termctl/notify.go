package main

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

// outboxCmd is `termctl outbox`: pending and failed notification
// deliveries (GET /v1/outbox).
func (a *app) outboxCmd() *cobra.Command {
	var channel, cursor string
	var failed, pending, delivered bool
	var limit int
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "List pending and failed notification deliveries (GET /v1/outbox)",
		Long: `List the notification outbox: each failure notification's delivery on each
channel (webhook:<name>, smtp, event) that is still pending (with its
attempts, next attempt and last error) or was given up after notify.max_age.
--failed shows only given-up ones, --pending only pending ones,
--delivered the delivered ones still kept (notify.retention).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(limit); err != nil {
				return err
			}
			q := url.Values{}
			q.Set("limit", strconv.Itoa(limit))
			n := 0
			for st, on := range map[string]bool{"failed": failed, "pending": pending, "delivered": delivered} {
				if on {
					q.Set("state", st)
					n++
				}
			}
			if n > 1 {
				return fmt.Errorf("--failed, --pending and --delivered exclude each other")
			}
			if channel != "" {
				q.Set("channel", channel)
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var page api.OutboxList
			if done, err := a.fetch(cmd.Context(), "/v1/outbox?"+q.Encode(), &page); done {
				return err
			}
			tw := a.table("CHANNEL\tSTATE\tKIND\tRELEASE\tENTRY\tATTEMPTS\tNEXT\tDELIVERY\tLAST ERROR")
			for _, d := range page.Deliveries {
				next := "-"
				if d.State == "pending" {
					next = a.msTime(d.NextAtMs, timeLayout)
				} else if d.DoneAtMs != 0 {
					next = d.State + " " + a.msTime(d.DoneAtMs, timeLayout)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.Channel, d.State, d.Kind, dash(d.ReleaseID), d.EntryID,
					d.Attempts, next, dash(d.DeliveryID), dash(d.LastError))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			chs := make([]string, 0, len(page.Counts))
			for ch := range page.Counts {
				chs = append(chs, ch)
			}
			sort.Strings(chs)
			for _, ch := range chs {
				fmt.Fprintf(a.errOut, "%s: %d pending, %d failed\n", ch, page.Counts[ch].Pending, page.Counts[ch].Failed)
			}
			if page.NextCursor != "" {
				fmt.Fprintf(a.errOut, "more follow: --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&failed, "failed", false, "only deliveries given up after notify.max_age")
	f.BoolVar(&pending, "pending", false, "only pending deliveries, by next attempt")
	f.BoolVar(&delivered, "delivered", false, "only delivered ones (kept for notify.retention)")
	f.StringVar(&channel, "channel", "", "only this channel (webhook:<name>, smtp, event)")
	f.IntVar(&limit, "limit", 50, fmt.Sprintf("deliveries, 1..%d", maxPage))
	f.StringVar(&cursor, "cursor", "", "continue after an earlier page (its --cursor hint)")
	return cmd
}
