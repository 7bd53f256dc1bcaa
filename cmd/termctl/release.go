package main

// termctl release ...: release management over /v1/releases
// (docs/upgrades.md). `release sign` lives with keygen (the signing
// workflow) and is added to this command.

import (
	"bytes"
	"context"
	"encoding/json"
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

// statusDevicesShown is how many device ids a failure group shows in
// the table (the JSON has up to 100).
const statusDevicesShown = 5

func (a *app) releaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Manage releases: create, publish, pause, resume, cancel, archive, rollout, deadline, list, show, status, retry",
	}
	cmd.AddCommand(a.releaseCreateCmd(), a.releaseListCmd(),
		a.idCmd("show", "Show one release (GET /v1/releases/{id})", "GET", "/v1/releases", ""),
		a.releaseStatusCmd(), a.releaseRolloutCmd(), a.releaseRetryCmd(), a.releaseDeadlineCmd())
	cmd.AddCommand(a.opCmds("/v1/releases", "", []idOp{
		{"publish", "Publish a draft release: offered to the devices it targets, which are notified"},
		{"pause", "Pause a published release: no new offers; assigned devices keep reporting"},
		{"resume", "Resume a paused release (notifies the targeted devices again)"},
		{"cancel", "Cancel a published or paused release for good: offers stop, devices not yet installing are told to discard it"},
		{"archive", "Archive a release for good"},
	})...)
	return cmd
}

// send does one JSON request and prints the answer's fields.
func (a *app) send(ctx context.Context, method, path string, body any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	var out []byte
	if rd != nil {
		out, err = c.call(ctx, method, path, rd)
	} else {
		out, err = c.call(ctx, method, path, nil)
	}
	if err != nil {
		return err
	}
	return a.printFields(out)
}

func releasePath(id string, rest ...string) string {
	return "/v1/releases/" + url.PathEscape(id) + strings.Join(rest, "")
}

func (a *app) releaseCreateCmd() *cobra.Command {
	var in api.ReleaseCreate
	var artifact string
	var rollout int
	var phases, pilot string
	var soak time.Duration
	var success, errPct, minDevices int
	var approval bool
	var deadline string
	cmd := &cobra.Command{
		Use:   "create --app A --version V (--artifact SHA256 | --url U --sha256 H --size N) [flags]",
		Short: "Create a draft release (POST /v1/releases)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case artifact != "" && (in.URL != "" || in.SHA256 != ""):
				return fmt.Errorf("give --artifact, or --url with --sha256 and --size, not both")
			case artifact != "":
				in.SHA256 = artifact
			case in.URL == "" || in.SHA256 == "" || in.Size <= 0:
				return fmt.Errorf("give --artifact SHA256 (an uploaded artifact), or --url, --sha256 and --size")
			}
			if cmd.Flags().Changed("rollout") {
				in.RolloutPct = &rollout
			}
			if phases != "" || pilot != "" {
				if phases == "" {
					phases = "100"
				}
				ps, err := parsePhases(phases)
				if err != nil {
					return err
				}
				if pilot != "" {
					ps = append([]api.Phase{{Devices: strings.Split(pilot, ",")}}, ps...)
				}
				for i := range ps {
					if cmd.Flags().Changed("soak") {
						s := int64(soak / time.Second)
						ps[i].SoakS = &s
					}
					ps[i].SuccessPct, ps[i].ErrorPct, ps[i].MinDevices, ps[i].Approval = success, errPct, minDevices, approval
				}
				in.Phases = ps
			}
			if deadline != "" {
				ms, err := parseDeadline(deadline)
				if err != nil {
					return err
				}
				in.DeadlineMs = ms
			}
			return a.send(cmd.Context(), "POST", "/v1/releases", in)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.AppID, "app", "", "application id (app_id)")
	f.StringVar(&in.Version, "version", "", "version (SemVer after lenient normalisation)")
	f.StringVar(&artifact, "artifact", "", "sha256 of an uploaded artifact (termctl artifact upload)")
	f.StringVar(&in.URL, "url", "", "external download URL")
	f.StringVar(&in.SHA256, "sha256", "", "external artifact's sha256 (64 hex digits)")
	f.Int64Var(&in.Size, "size", 0, "external artifact's size in bytes")
	f.StringArrayVar(&in.Models, "model", nil, "target this model (repeat; none = every model)")
	f.StringArrayVar(&in.Devices, "device", nil, "target this device (repeat; none = every device)")
	f.StringVar(&in.FromRange, "from-range", "", `installed versions targeted, e.g. ">=1.2 <2"`)
	f.IntVar(&rollout, "rollout", 100, "percentage of targeted devices offered the release (no phases)")
	f.StringVar(&phases, "phases", "", `phased rollout: cumulative percents "1,10,100", or "default" (the same)`)
	f.StringVar(&pilot, "pilot", "", "a first phase of these devices (comma-separated), before --phases")
	f.DurationVar(&soak, "soak", time.Hour, "each phase's minimum duration before it may advance")
	f.IntVar(&success, "success", 95, "a phase advances when this % of its devices succeeded")
	f.IntVar(&errPct, "error", 5, "the rollout pauses when more than this % of a phase's devices failed")
	f.IntVar(&minDevices, "min-devices", 0, "devices a phase needs before its conditions apply (0: 20, or the pilot's size if smaller)")
	f.BoolVar(&approval, "approval", false, "wait for termctl rollout approve instead of advancing by itself")
	f.BoolVar(&in.Mandatory, "mandatory", false, "the terminal must install it")
	f.StringVar(&in.Notes, "notes", "", "release notes shown to the terminal (<= 256 bytes)")
	f.StringVar(&deadline, "deadline", "", "mandatory from this time on (RFC 3339, e.g. 2026-12-31T00:00:00Z)")
	_ = cmd.MarkFlagRequired("app")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

func (a *app) releaseRolloutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rollout ID PCT",
		Short: "Set the rollout percentage; raising it only adds devices, which are notified (PUT /v1/releases/{id}/rollout)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pct, err := strconv.Atoi(strings.TrimSuffix(args[1], "%"))
			if err != nil {
				return fmt.Errorf("PCT %q is not a number", args[1])
			}
			return a.send(cmd.Context(), "PUT", releasePath(args[0], "/rollout"), api.Rollout{Pct: pct})
		},
	}
}

// parseDeadline reads a deadline: RFC 3339, or "none" (0, no deadline).
func parseDeadline(s string) (int64, error) {
	if s == "none" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("deadline %q: want RFC 3339 (2026-12-31T00:00:00Z) or none", s)
	}
	if t.UnixMilli() <= 0 {
		return 0, fmt.Errorf("deadline %q is before 1970", s)
	}
	return t.UnixMilli(), nil
}

func (a *app) releaseDeadlineCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "deadline ID TIME|none",
		Short: "Set (RFC 3339) or clear the time from which the release is mandatory (PUT /v1/releases/{id}/deadline)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ms, err := parseDeadline(args[1])
			if err != nil {
				return err
			}
			return a.send(cmd.Context(), "PUT", releasePath(args[0], "/deadline"), api.Deadline{DeadlineMs: ms})
		},
	}
}

func (a *app) releaseRetryCmd() *cobra.Command {
	var in api.Retry
	cmd := &cobra.Command{
		Use:   "retry ID (--device D | --failed | --timed-out)",
		Short: "Let devices try the release again: their failures are forgiven and their phase counts their next attempt (POST /v1/releases/{id}/retry)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, b := range []bool{in.Device != "", in.Failed, in.TimedOut} {
				if b {
					n++
				}
			}
			if n != 1 {
				return fmt.Errorf("give one of --device D, --failed or --timed-out")
			}
			return a.send(cmd.Context(), "POST", releasePath(args[0], "/retry"), in)
		},
	}
	cmd.Flags().StringVar(&in.Device, "device", "", "this device")
	cmd.Flags().BoolVar(&in.Failed, "failed", false, "every device whose latest attempt failed, or at the attempt cap")
	cmd.Flags().BoolVar(&in.TimedOut, "timed-out", false, "every device whose latest attempt timed out or reverted")
	return cmd
}

func (a *app) releaseListCmd() *cobra.Command {
	return listCmd(a, "list", "List releases (GET /v1/releases)", "/v1/releases",
		"ID\tAPP\tVERSION\tSTATE\tROLLOUT\tSIGNED\tTARGET\tCREATED", func(w io.Writer, list *api.ReleaseList) {
			for _, r := range list.Releases {
				var target []string
				if len(r.Models) > 0 {
					target = append(target, "models "+strings.Join(r.Models, ","))
				}
				if len(r.Devices) > 0 {
					target = append(target, fmt.Sprintf("%d devices", len(r.Devices)))
				}
				if r.FromRange != "" {
					target = append(target, "from "+r.FromRange)
				}
				signed := "no"
				if r.Sig != "" {
					signed = "yes"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.AppID, r.Version, r.State, rolloutOf(r), signed,
					dash(strings.Join(target, "; ")), a.msTime(r.CreatedMs, timeLayout))
			}
		})
}

func (a *app) releaseStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status ID",
		Short: "Rollout status: devices per stage, failure rate, failures by code x model x from-version (GET /v1/releases/{id}/status)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.ReleaseStatus
			if done, err := a.fetch(cmd.Context(), releasePath(args[0], "/status"), &st); done {
				return err
			}
			r := st.Release
			a.printf("release %s: %s %s, %s, rollout %s\n", r.ID, r.AppID, r.Version, r.State, rolloutOf(r))
			a.printf("assigned %d, succeeded %d, failed %d (failure rate %.1f%%), at attempt cap %d\n",
				st.Assigned, st.Succeeded, st.Failed, 100*st.FailureRate, st.AtCap)
			stages := make([]string, 0, len(st.Stages))
			for k, n := range st.Stages {
				stages = append(stages, fmt.Sprintf("%s %d", k, n))
			}
			sort.Strings(stages)
			a.printf("latest attempts by stage: %s\n", dash(strings.Join(stages, ", ")))
			if len(st.Failures) == 0 {
				return nil
			}
			tw := a.table("STAGE\tCODE\tMODEL\tFROM\tDEVICES\tIDS")
			for _, g := range st.Failures {
				shown := g.Devices[:min(len(g.Devices), statusDevicesShown)]
				ids := strings.Join(shown, ",")
				if len(shown) < g.Count {
					ids += ",... (--json lists up to 100)"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", g.Stage, g.Code, dash(g.Model), dash(g.FromVersion), g.Count, ids)
			}
			return tw.Flush()
		},
	}
}

// printUpgrades prints a device's upgrade history under its fields
// (termctl device ID).
func (a *app) printUpgrades(ctx context.Context, c *apiClient, id string) error {
	var h api.DeviceUpgrades
	if _, err := c.getJSON(ctx, "/v1/devices/"+url.PathEscape(id)+"/upgrades", &h); err != nil {
		return err
	}
	if len(h.Attempts) == 0 {
		return nil
	}
	a.printf("upgrades:\n")
	tw := a.table("  RELEASE\tAPP\tFROM\tTO\tATTEMPT\tSTAGE\tCODE\tUPDATED\tMESSAGE")
	for _, at := range h.Attempts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", at.ReleaseID, at.AppID, dash(at.FromVersion), at.Version,
			at.Attempt, at.Stage, at.Code, a.msTime(at.UpdatedMs, timeLayout), dash(at.Message))
	}
	return tw.Flush()
}

// rolloutOf is a release's rollout in a word: its percentage, or its
// number of phases (termctl rollout show has them).
func rolloutOf(r api.Release) string {
	if len(r.Phases) > 0 {
		return fmt.Sprintf("%d phases", len(r.Phases))
	}
	return fmt.Sprintf("%d%%", r.RolloutPct)
}
