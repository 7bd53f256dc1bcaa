// Command termctl is the operator's CLI for termd: it lists and inspects
// devices, blocks, disconnects and provisions them, follows presence
// events and takes backups over the admin API, and simulates fleets of
// terminals over TGP for load and failure tests.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Defaults of the global flags.
const (
	defaultAdminAddr = "http://127.0.0.1:7080"
	defaultDataDir   = "./var"
	// tokenFile and secretFile are what `termd -dev` writes in the data dir.
	tokenFile  = "admin-token"
	secretFile = "fleet-secret"
)

// app is one termctl invocation: its global flags and where it writes.
type app struct {
	addr    string
	token   string
	dataDir string
	jsonOut bool

	getenv func(string) string
	out    io.Writer
	errOut io.Writer
	loc    *time.Location // for printed times
	hc     *http.Client
}

func main() {
	a := &app{getenv: os.Getenv, out: os.Stdout, errOut: os.Stderr, loc: time.Local, hc: &http.Client{}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := a.rootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "termctl:", err)
		os.Exit(1)
	}
}

// rootCmd builds the command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "termctl",
		Short: "Operate a termd node: devices, services, audit, events, backups, fleet simulation",
		Long: `termctl talks to termd's admin API (--addr, default $TERMD_ADMIN_ADDR or
` + defaultAdminAddr + `) with a bearer token (--token, else $TERMD_ADMIN_TOKEN,
else the file DATA/admin-token that "termd -dev" writes, DATA being --data).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addr := a.getenv("TERMD_ADMIN_ADDR")
	if addr == "" {
		addr = defaultAdminAddr
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", addr, "admin API address (env TERMD_ADMIN_ADDR)")
	pf.StringVar(&a.token, "token", "", "admin token (default: env TERMD_ADMIN_TOKEN, else DATA/admin-token)")
	pf.StringVar(&a.dataDir, "data", defaultDataDir, "termd data directory holding the -dev admin-token and fleet-secret files")
	pf.BoolVar(&a.jsonOut, "json", false, "print the API's JSON instead of tables")
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.AddCommand(
		a.devicesCmd(), a.deviceCmd(), a.filtersCmd(), a.statsCmd(), a.watchCmd(),
		a.actionCmd("block", "Block a device: end its session and refuse its HELLOs", "blocked"),
		a.actionCmd("unblock", "Let a blocked device connect again", "unblocked"),
		a.actionCmd("disconnect", "End a device's session (GOAWAY 7; it reconnects with backoff)", "disconnected"),
		a.setKeyCmd(), a.backupCmd(), a.simulateCmd(),
		a.servicesCmd(), a.serviceCmd(), a.auditCmd(), a.controlCmd(),
		a.outboxCmd(),
		a.releaseCmd(),
		a.groupCmd(),
		a.rolloutCmd(),
		a.campaignCmd(),
		a.planCmd(),
		a.nodeCmd(),
		a.locationCmd(),
	)
	a.addSigning(root)
	root.AddCommand(a.artifactCmd())
	return root
}

// client resolves the address and token into an API client.
func (a *app) client() (*apiClient, error) {
	base := strings.TrimRight(a.addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	tok, from := a.token, "--token"
	if tok == "" {
		tok, from = a.getenv("TERMD_ADMIN_TOKEN"), "$TERMD_ADMIN_TOKEN"
	}
	if tok == "" {
		var err error
		from = filepath.Join(a.dataDir, tokenFile)
		tok, err = a.readDataFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("no admin token: pass --token, set TERMD_ADMIN_TOKEN, or run `termd -dev` (it writes %s): %w",
				from, err)
		}
	}
	return &apiClient{base: base, token: tok, tokenFrom: from, hc: a.hc}, nil
}

// readDataFile reads a file termd -dev wrote into the data dir, trimmed.
func (a *app) readDataFile(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(a.dataDir, name))
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New(filepath.Join(a.dataDir, name) + " is empty")
	}
	return s, nil
}

// printf writes to the command's output; a failed write to stdout is not
// worth an error of its own.
func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.out, format, args...) }
