package main

// termctl campaign, plan and node: upgrade scheduling (docs/scheduling.md).

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

func (a *app) campaignCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "campaign",
		Short: "Scheduled upgrade campaigns: create, publish, pause, resume, cancel, list, show, progress",
	}
	cmd.AddCommand(a.campaignCreateCmd(), a.campaignListCmd(), a.campaignProgressCmd(), a.campaignRetryCmd(),
		a.idCmd("show", "Show one campaign (GET /v1/campaigns/{id})", "GET", "/v1/campaigns", ""))
	cmd.AddCommand(a.opCmds("/v1/campaigns", "", []idOp{
		{"publish", "Publish a draft campaign: its online targets get UPGRADE_NOTICE kind 2"},
		{"pause", "Pause a campaign: placements and check-ins answer UNAVAILABLE until resumed"},
		{"resume", "Resume a paused campaign"},
		{"cancel", "Cancel a campaign for good: EXPIRED to its terminals, its capacity given back"},
	})...)
	return cmd
}

func (a *app) campaignCreateCmd() *cobra.Command {
	var in api.CampaignCreate
	var windows []string
	var dates string
	cmd := &cobra.Command{
		Use:   "create --release ID (--window START/END... | --daily HH:MM-HH:MM --dates D,D... [--tz ZONE]) [flags]",
		Short: "Create a draft campaign of a published release (POST /v1/campaigns)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, w := range windows {
				from, to, ok := strings.Cut(w, "/")
				if !ok {
					return fmt.Errorf("--window %q: want START/END, two RFC 3339 times", w)
				}
				s, err1 := time.Parse(time.RFC3339, from)
				e, err2 := time.Parse(time.RFC3339, to)
				if err1 != nil || err2 != nil {
					return fmt.Errorf("--window %q: want START/END, two RFC 3339 times", w)
				}
				in.Windows = append(in.Windows, api.Window{StartMs: s.UnixMilli(), EndMs: e.UnixMilli()})
			}
			if dates != "" {
				in.Dates = strings.Split(dates, ",")
			}
			return a.send(cmd.Context(), "POST", "/v1/campaigns", in)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.ReleaseID, "release", "", "the release the campaign rolls out")
	f.StringArrayVar(&windows, "window", nil, "a window START/END (RFC 3339; repeat)")
	f.StringVar(&in.Daily, "daily", "", "a daily window HH:MM-HH:MM (with --dates and --tz)")
	f.StringVar(&dates, "dates", "", "the days of the daily window, YYYY-MM-DD,...")
	f.StringVar(&in.TZ, "tz", "", `time zone of the daily window (IANA name, default UTC; "device": each device's own zone)`)
	f.StringArrayVar(&in.Models, "model", nil, "target this model (repeat; none = every model)")
	f.StringArrayVar(&in.Devices, "device", nil, "target this device (repeat; none = every device)")
	f.StringVar(&in.FromRange, "from-range", "", `installed versions targeted, e.g. ">=1.2 <2"`)
	f.StringArrayVar(&in.Clusters, "cluster", nil, "place only in this cluster (repeat; data residency)")
	f.Float64Var(&in.MaxDistanceKm, "max-distance", 0, "place only in clusters within this many km (0 = any)")
	_ = cmd.MarkFlagRequired("release")
	return cmd
}

func (a *app) campaignListCmd() *cobra.Command {
	return listCmd(a, "list", "List campaigns (GET /v1/campaigns)", "/v1/campaigns",
		"ID\tRELEASE\tVERSION\tSTATE\tWINDOWS\tENDS", func(w io.Writer, list *api.CampaignList) {
			for _, c := range list.Campaigns {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.ReleaseID, c.Version, c.State, len(c.Windows), time.UnixMilli(c.EndMs).UTC().Format(time.RFC3339))
			}
		})
}

func (a *app) campaignProgressCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "progress ID",
		Short: "A campaign's reservations and outcomes per cluster, node and slot (GET /v1/campaigns/{id}/progress)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.CampaignProgress
			if done, err := a.fetch(cmd.Context(), "/v1/campaigns/"+url.PathEscape(args[0])+"/progress", &p); done {
				return err
			}
			a.printf("campaign %s (%s %s): %s\n", p.Campaign.ID, p.Campaign.ReleaseID, p.Campaign.Version, p.Campaign.State)
			tw := a.table("SLOT\tCLUSTER\tNODE\tRESERVED\tPROCEEDED\tSUCCEEDED\tFAILED\tMISSED\tUP TO DATE\tLAPSED")
			row := func(slot string, r api.SlotProgress) {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", slot, dash(r.Cluster), dash(r.Node), r.Reserved, r.Proceeded, r.Succeeded, r.Failed, r.Missed, r.UpToDate, r.Lapsed)
			}
			for _, r := range p.Slots {
				row(time.UnixMilli(r.StartMs).UTC().Format("2006-01-02 15:04"), r)
			}
			row("total", p.Totals)
			return tw.Flush()
		},
	}
}

func (a *app) planCmd() *cobra.Command {
	var release, fromRange, from, to, tz string
	var models, devices, clusters, windows []string
	cmd := &cobra.Command{
		Use:   "plan --release ID [--model M]... [--from T --to T] [--tz ZONE] [--window START/END]...",
		Short: "Free download capacity per slot and cluster for a release's targets, and suggested windows (GET /v1/plan)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loc := time.UTC
			if tz != "" {
				l, err := time.LoadLocation(tz)
				if err != nil {
					return fmt.Errorf("--tz: %v", err)
				}
				loc = l
			}
			q := url.Values{"release": {release}, "model": models, "device": devices, "cluster": clusters, "window": windows}
			if fromRange != "" {
				q.Set("from_range", fromRange)
			}
			if from != "" {
				q.Set("from", from)
			}
			if to != "" {
				q.Set("to", to)
			}
			var p api.Plan
			if done, err := a.fetch(cmd.Context(), "/v1/plan?"+q.Encode(), &p); done {
				return err
			}
			a.printf("release %s: %d targeted terminals; suggested windows take %d:\n", p.ReleaseID, p.Targeted, p.Covered)
			for _, w := range p.Suggested {
				a.printf("  %s - %s\n", time.UnixMilli(w.StartMs).In(loc).Format("2006-01-02 15:04 MST"), time.UnixMilli(w.EndMs).In(loc).Format("15:04 MST"))
			}
			tw := a.table("SLOT\tFREE PER CLUSTER\tONLINE\tTAKES")
			for _, s := range p.Slots {
				var free []string
				for cl, n := range s.Free {
					free = append(free, fmt.Sprintf("%s=%d", cl, n))
				}
				sort.Strings(free)
				fmt.Fprintf(tw, "%s\t%s\t%.0f%%\t%d\n", time.UnixMilli(s.StartMs).In(loc).Format("2006-01-02 15:04"), strings.Join(free, " "), 100*s.OnlineShare, s.Takes)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if sel := p.Selection; sel != nil {
				a.printf("the %d window(s) given: %d slots, %d free places, take %d of the %d targeted terminals\n", len(sel.Windows), sel.Slots, sel.Free, sel.Covered, p.Targeted)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&release, "release", "", "the release to plan a campaign of")
	f.StringArrayVar(&models, "model", nil, "targeted model (repeat)")
	f.StringArrayVar(&devices, "device", nil, "targeted device (repeat)")
	f.StringArrayVar(&clusters, "cluster", nil, "only this cluster (repeat)")
	f.StringVar(&fromRange, "from-range", "", "installed versions targeted")
	f.StringVar(&from, "from", "", "start of the period (RFC 3339, default now)")
	f.StringVar(&to, "to", "", "end of the period (RFC 3339, default a week after from)")
	f.StringVar(&tz, "tz", "", "print times in this zone (default UTC)")
	f.StringArrayVar(&windows, "window", nil, "weigh this window, START/END in RFC 3339 (repeat): how many targeted terminals it takes")
	_ = cmd.MarkFlagRequired("release")
	return cmd
}

func (a *app) nodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Download nodes: list, drain, undrain",
	}
	cmd.AddCommand(listCmd(a, "list", "List download nodes with their current slot's reservations (GET /v1/nodes)", "/v1/nodes",
		"NODE\tCLUSTER\tURL\tSLOT\tCAPACITY\tRESERVED\tLOAD\tSTATE", func(w io.Writer, list *api.NodeList) {
			for _, n := range list.Nodes {
				state := "up"
				switch {
				case n.Disabled:
					state = "disabled"
				case n.Draining:
					state = "draining"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", n.ID, n.Cluster, dash(n.URL), time.Duration(n.SlotS)*time.Second, n.Capacity, n.Reserved, n.Load, state)
			}
		}))
	cmd.AddCommand(a.opCmds("/v1/nodes", "", []idOp{
		{"drain", "Take no new reservations on a node; its check-ins go to another node of its cluster"},
		{"undrain", "Let a drained node take reservations again"},
	})...)
	return cmd
}

func (a *app) campaignRetryCmd() *cobra.Command {
	var in api.CampaignRetry
	cmd := &cobra.Command{
		Use:   "retry ID [--missed] [--failed] [--unreached]",
		Short: "Re-open a campaign's stragglers: tell them again (failed ones also get their failures forgiven) (POST /v1/campaigns/{id}/retry)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !in.Missed && !in.Failed && !in.Unreached {
				return fmt.Errorf("give --missed, --failed and/or --unreached")
			}
			return a.send(cmd.Context(), "POST", "/v1/campaigns/"+url.PathEscape(args[0])+"/retry", in)
		},
	}
	cmd.Flags().BoolVar(&in.Missed, "missed", false, "devices whose slot was missed or lapsed")
	cmd.Flags().BoolVar(&in.Failed, "failed", false, "devices whose upgrade failed")
	cmd.Flags().BoolVar(&in.Unreached, "unreached", false, "targeted devices that never got a reservation")
	return cmd
}

// showDeviceSchedule prints what scheduling holds for a device.
func (a *app) showDeviceSchedule(ctx context.Context, dev string) error {
	var ds api.DeviceSchedule
	if done, err := a.fetch(ctx, "/v1/devices/"+url.PathEscape(dev)+"/schedule", &ds); done {
		return err
	}
	loc := "none registered"
	if ds.HasLocation {
		loc = fmt.Sprintf("%.5f, %.5f", ds.Lat, ds.Lon)
	}
	tz := ds.TZ
	if tz == "" {
		tz = "the fleet default (" + dash(ds.DefaultTZ) + ")"
	}
	a.printf("device %s\nlocation: %s\nzone: %s\n", ds.DeviceID, loc, tz)
	if len(ds.Reservations) == 0 {
		a.printf("reservations: none\n")
		return nil
	}
	tw := a.table("CAMPAIGN\tRELEASE\tCLUSTER\tNODE\tSLOT (UTC)\tSTATE")
	for _, r := range ds.Reservations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.CampaignID, r.ReleaseID, r.Cluster, r.NodeID,
			time.UnixMilli(r.SlotStartMs).UTC().Format("2006-01-02 15:04"), r.State)
	}
	return tw.Flush()
}

func (a *app) locationCmd() *cobra.Command {
	var clear bool
	var tz string
	cmd := &cobra.Command{
		Use:   "location DEVICE [LAT LON | --clear | --tz ZONE]",
		Short: "Show a device's registered location, zone and reservations (GET /v1/devices/{id}/schedule), or register its location for placement when it sends none, or its time zone for campaigns in each device's zone (PUT|DELETE /v1/devices/{id}/location, PUT /v1/devices/{id}/zone)",
		Args:  cobra.RangeArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("tz") {
				if len(args) != 1 || clear {
					return fmt.Errorf("--tz takes no coordinates (give them in another call)")
				}
				return a.send(cmd.Context(), "PUT", "/v1/devices/"+url.PathEscape(args[0])+"/zone", api.Zone{TZ: tz})
			}
			if len(args) == 1 && !clear {
				return a.showDeviceSchedule(cmd.Context(), args[0])
			}
			path := "/v1/devices/" + url.PathEscape(args[0]) + "/location"
			if clear {
				if len(args) != 1 {
					return fmt.Errorf("--clear takes no coordinates")
				}
				return a.send(cmd.Context(), "DELETE", path, nil)
			}
			if len(args) != 3 {
				return fmt.Errorf("give LAT and LON, or --clear")
			}
			lat, err1 := strconv.ParseFloat(args[1], 64)
			lon, err2 := strconv.ParseFloat(args[2], 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("LAT and LON are decimal degrees")
			}
			return a.send(cmd.Context(), "PUT", path, api.Location{Lat: lat, Lon: lon})
		},
	}
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the registered location")
	cmd.Flags().StringVar(&tz, "tz", "", `the device's IANA time zone ("" removes it)`)
	return cmd
}
