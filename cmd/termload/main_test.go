package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/termd/termd/loadtest"
	"github.com/termd/termd/server/servertest"
)

func TestUsageListsFlagsButNotWorker(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d", code)
	}
	u := errb.String()
	for _, f := range []string{"-scenario", "-n ", "-concurrency", "-rate", "-duration", "-timeout", "-saturate",
		"-step-factor", "-step-duration", "-max-rate", "-pipeline", "-mix", "-takeover-share", "-procs",
		"-src", "-metrics", "-server-pid", "-json", "-plot", "-addr", "-secret"} {
		if !strings.Contains(u, "\n  "+f) {
			t.Errorf("usage lacks %s", f)
		}
	}
	if strings.Contains(u, "-worker") {
		t.Error("usage shows the internal -worker flag")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope", "-secret", "s"},
		{"-n", "0", "-secret", "s"},
		{"-scenario", "churn", "-n", "10", "-rate", "100", "-duration", "1m", "-secret", "s"},
		{"-rate", "5000", "-secret", "s"},
		{"-src", "bogus", "-secret", "s", "-addr", "127.0.0.1:1", "-metrics", "off"},
		{"-n", "30000", "-secret", "s"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 1 {
			t.Errorf("%v: exit %d, stderr %s", args, code, errb.String())
		}
	}
}

func TestConnectRunWritesReport(t *testing.T) {
	node := servertest.Start(t, servertest.Config(t), nil)
	dir := t.TempDir()
	js := filepath.Join(dir, "connect.json")
	var out, errb bytes.Buffer
	t.Setenv("TERMD_FLEET_SECRET", "")
	code := run(context.Background(), []string{
		"-scenario", "connect", "-n", "50", "-addr", node.Addr, "-metrics", "off", "-src", "off",
		"-data", dir, "-json", js,
	}, &out, &errb)
	// The secret comes from the environment here.
	if code != 1 || !strings.Contains(errb.String(), "no fleet secret") {
		t.Fatalf("without a secret: exit %d, %s", code, errb.String())
	}
	t.Setenv("TERMD_FLEET_SECRET", servertest.FleetSecret)
	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{
		"-scenario", "connect", "-n", "50", "-addr", node.Addr, "-metrics", "off", "-src", "off",
		"-data", dir, "-json", js, "-plot", filepath.Join(dir, "plots"),
	}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	res, err := loadtest.ReadResult(js)
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts["connect_ok"] != 50 || res.Latency["hello"].Count() != 50 {
		t.Errorf("counts %v", res.Counts)
	}
	if !strings.Contains(out.String(), "hello") {
		t.Errorf("table:\n%s", out.String())
	}
	// `termload report` prints the saved result again.
	var rep bytes.Buffer
	if code := run(context.Background(), []string{"report", js}, &rep, &errb); code != 0 || !strings.Contains(rep.String(), "connect") {
		t.Errorf("report: exit %d\n%s", code, rep.String())
	}
}
