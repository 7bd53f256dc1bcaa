// Command termload is termd's load generator: it opens thousands of
// simulated terminals on a lean event-loop client and measures connects,
// heartbeat latency under an open-loop schedule, mixed requests, churn
// with takeovers, and the server's memory and CPU.
//
//	termload -scenario connect   -n 19000 -procs 2
//	termload -scenario idle      -n 19000 -procs 2 -duration 1m
//	termload -scenario heartbeat -n 2000 -rate 1 -duration 30s
//	termload -scenario heartbeat -n 2000 -rate 1 -saturate
//	termload -scenario mixed     -n 1000 -rate 2 -mix heartbeat=70,upgrade_query=15,control=10,group_list=5
//	termload -scenario churn     -n 5000 -rate 20 -takeover-share 0.2
//	termload -scenario groups    -n 1000 -token T -admin http://127.0.0.1:7080   # switch storm, fan-out (docs/groups.md)
//	termload report a.json b.json   # results saved with -json, side by side
//	termload peer-table -docs docs/performance.md var/bench/peer/run1 var/bench/peer/run2   # make bench-peer's table
//	termload crash -termd ./bin/termd -kills 20   # kill -9 termd under load, check nothing acknowledged was lost
//
// `termload -h` lists every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/termd/termd/loadtest"
	"github.com/termd/termd/loadtest/crash"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is termload with args; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "crash":
		err = crashTest(ctx, args[1:], stdout, stderr)
	case isGroupsScenario(args):
		err = groupsScenario(ctx, args, stdout, stderr)
	default:
		cli := &loadtest.CLI{Stdout: stdout, Stderr: stderr}
		err = cli.Run(ctx, args)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	}
	fmt.Fprintln(stderr, "termload:", err)
	return 1
}

// errLost fails the crash test without another message: the report said it.
var errLost = errors.New("acknowledged records lost or invariants broken")

// crashTest is `termload crash`: see package loadtest/crash.
func crashTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("termload crash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	termd := fs.String("termd", "./bin/termd", "the termd binary to run and kill")
	opt := crash.Options{}
	fs.IntVar(&opt.Kills, "kills", 20, "how many times termd is killed with SIGKILL")
	fs.IntVar(&opt.Terminals, "terminals", 16, "terminals recording every acknowledged CONTROL")
	fs.IntVar(&opt.Load, "load", 500, "terminals of termload's mixed scenario beside them (0: none)")
	fs.DurationVar(&opt.MinUp, "min-up", time.Second, "shortest time termd runs before a kill")
	fs.DurationVar(&opt.MaxUp, "max-up", 4*time.Second, "longest time termd runs before a kill")
	fs.StringVar(&opt.Dir, "dir", "", "work directory (config, data, termd.log); default: a new temporary one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if opt.Dir == "" {
		d, err := os.MkdirTemp("", "termd-crash-")
		if err != nil {
			return err
		}
		opt.Dir = d
	}
	opt.Command, opt.Log = []string{*termd}, stderr
	fmt.Fprintf(stderr, "termload crash: %d kills, work dir %s\n", opt.Kills, opt.Dir)
	rep, err := crash.Run(ctx, opt)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, rep)
	if !rep.OK() {
		return errLost
	}
	return nil
}
