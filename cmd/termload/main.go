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
//	termload report a.json b.json   # results saved with -json, side by side
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

	"github.com/termd/termd/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is termload with args; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cli := &loadtest.CLI{Stdout: stdout, Stderr: stderr}
	err := cli.Run(ctx, args)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	}
	fmt.Fprintln(stderr, "termload:", err)
	return 1
}
