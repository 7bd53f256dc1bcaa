package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
)

// controlOps maps the CLI's operation names to CONTROL ops (spec §5).
var controlOps = map[string]uint8{
	"start": protocol.OpStart, "stop": protocol.OpStop, "restart": protocol.OpRestart, "status": protocol.OpStatus,
}

// controlCmd is `termctl control`: one terminal session that sends one
// CONTROL request over TGP, the way firmware would, and prints the answer.
func (a *app) controlCmd() *cobra.Command {
	var (
		addr, secret, keyHex, device, model string
		timeout                             time.Duration
		requestID                           uint64
	)
	cmd := &cobra.Command{
		Use:   "control SERVICE start|stop|restart|status [ARG...]",
		Short: "Act as a terminal: send one CONTROL request over TGP and print the answer",
		Long: `termctl control connects to the TGP port as a terminal (--device, --model;
the fleet secret is --secret, else $TERMD_FLEET_SECRET, else DATA/fleet-secret
that "termd -dev" writes; --key KEYHEX uses a per-device key instead), sends CONTROL and prints CONTROL_ACK. It is subject
to the service's ops, ACL and arg patterns like any terminal, and audited.
Exit status 1 on a refusal or TIMEOUT.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, ok := controlOps[args[1]]
			if !ok {
				return fmt.Errorf("unknown operation %q: start, stop, restart or status", args[1])
			}
			cr, err := a.terminalCreds(secret, keyHex)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+10*time.Second)
			defer cancel()
			ccfg := client.Config{Addr: addr, DeviceID: device, FW: "termctl", Model: model, NoHeartbeat: true}
			cr.apply(&ccfg)
			c, err := client.Dial(ctx, ccfg)
			if err != nil {
				return fmt.Errorf("connect as %s: %w", device, cr.explain(err))
			}
			defer c.Close()
			req := protocol.Control{ServiceID: args[0], Op: op, TimeoutMs: uint64(timeout.Milliseconds()),
				RequestID: requestID, HasRequestID: cmd.Flags().Changed("request-id")}
			if len(args) > 2 {
				req.Args = args[2:]
			}
			var ack protocol.ControlAck
			err = c.Do(ctx, &req, &ack)
			var to *protocol.ControlTimeout
			switch {
			case errors.As(err, &to):
				a.printControl(to.State, to.PID, to.ExitCode, to.SinceMs, "")
				return fmt.Errorf("TIMEOUT: %s (the operation may still complete)", to.Message)
			case err != nil:
				return fmt.Errorf("%v: %s", protocol.StatusOf(err), protocol.MessageOf(err))
			}
			a.printControl(ack.State, ack.PID, ack.ExitCode, ack.SinceMs, ack.Output)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr-tgp", "127.0.0.1:7000", "TGP address of the termd node")
	f.StringVar(&secret, "secret", "", "fleet secret (default: env TERMD_FLEET_SECRET, else DATA/fleet-secret)")
	f.StringVar(&keyHex, "key", "", "per-device key, 64 hex digits (instead of the fleet secret)")
	f.StringVar(&device, "device", "termctl", "device id to connect as")
	f.StringVar(&model, "model", "termctl", "model to report in HELLO (ACLs may match it)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "timeout_ms of the request")
	f.Uint64Var(&requestID, "request-id", 0, "request_id (makes a repeat return the first answer)")
	return cmd
}

// printControl prints a CONTROL_ACK as key: value lines.
func (a *app) printControl(state string, pid uint64, exit int64, since uint64, output string) {
	if a.jsonOut {
		_ = a.printJSON(map[string]any{"state": state, "pid": pid, "exit_code": exit, "since_ms": since, "output": output})
		return
	}
	a.printf("state: %s\npid: %d\nexit_code: %d\nsince: %s\n", state, pid, exit, a.msTime(int64(since), timeLayout))
	if output != "" {
		a.printf("output:\n%s", output)
		if !strings.HasSuffix(output, "\n") {
			a.printf("\n")
		}
	}
}
