package main

// termctl rollout: phased rollouts (docs/upgrades.md, "Phases").

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

func (a *app) rolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Phased rollouts of releases: show, approve, pause, resume",
	}
	cmd.AddCommand(a.rolloutShowCmd())
	cmd.AddCommand(a.opCmds("/v1/releases", "/rollout", []idOp{
		{"approve", "Approve the next phase of a rollout waiting for approval"},
		{"pause", "Pause a rollout: no device gets a first offer; assigned devices go on"},
		{"resume", "Resume a paused rollout; the current phase's failures so far are accepted"},
	})...)
	return cmd
}

func (a *app) rolloutShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "A rollout's phases with their counts against their conditions, and the funnel (GET /v1/releases/{id}/rollout)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.RolloutStatus
			if done, err := a.fetch(cmd.Context(), releasePath(args[0], "/rollout"), &st); done {
				return err
			}
			a.printf("rollout of %s: %s, phase %d of %d", st.ReleaseID, st.State, st.Phase, len(st.Phases))
			if st.PauseReason != "" {
				a.printf(" (%s)", st.PauseReason)
			}
			a.printf("\n")
			tw := a.table("PHASE\tDEVICES\tSOAK\tOFFERED\tSUCCEEDED\tFAILED\tADVANCE AT\tPAUSE ABOVE\tSTATE")
			for i, p := range st.Phases {
				who := strconv.Itoa(p.Percent) + "%"
				if len(p.Devices) > 0 {
					who = fmt.Sprintf("%d listed", len(p.Devices))
				}
				soak := "-"
				if p.SoakS != nil {
					soak = (time.Duration(*p.SoakS) * time.Second).String()
				}
				state := p.State
				if p.Approval {
					state += ", approval"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d%%\t%d%% (min %d)\t%s\n", i+1, who, soak, p.Offered, p.Succeeded, p.Failed,
					p.SuccessPct, p.ErrorPct, p.MinDevices, state)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			var funnel []string
			for k, n := range st.Funnel {
				funnel = append(funnel, fmt.Sprintf("%s %d", k, n))
			}
			sort.Strings(funnel)
			a.printf("funnel (latest attempts by stage): %s\n", dash(strings.Join(funnel, ", ")))
			return nil
		},
	}
}

// parsePhases reads --phases: "default" (1,10,100), or a comma list of
// cumulative percents.
func parsePhases(s string) ([]api.Phase, error) {
	if s == "default" {
		s = "1,10,100"
	}
	var out []api.Phase
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("--phases: %q is not a percent 1-100", f)
		}
		out = append(out, api.Phase{Percent: n})
	}
	return out, nil
}
