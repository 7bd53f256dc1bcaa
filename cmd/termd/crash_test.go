package main

import (
	"os"
	"testing"
	"time"

	"github.com/termd/termd/loadtest/crash"
)

// The short crash test: a real termd (this test binary) under recorders
// and mixed load, killed with SIGKILL three times at random moments;
// every acknowledged durable record must survive and no invariant break.
// `make crash-test` runs the long one (20 kills).
func TestCrashShort(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	rep, err := crash.Run(t.Context(), crash.Options{
		Command: []string{os.Args[0]}, Env: []string{"TERMD_TEST_MAIN=1"},
		Kills: 3, Terminals: 8, Load: 100, MinUp: 500 * time.Millisecond, MaxUp: 1500 * time.Millisecond,
		Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if !rep.OK() || rep.Acknowledged == 0 {
		t.Fatal(rep)
	}
}
