package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/termd/termd/server/servertest"
)

// TestUnauthorizedNamesTokenSource (issue 10 item 13): a 401 says where
// the refused token was read from.
func TestUnauthorizedNamesTokenSource(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(file, []byte("stale-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	for _, tt := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{nil, []string{"--token", "wrong"}, "read from --token"},
		{map[string]string{"TERMD_ADMIN_TOKEN": "wrong"}, nil, "read from $TERMD_ADMIN_TOKEN"},
		{nil, []string{"--data", dir}, "read from " + file},
	} {
		args := append([]string{"stats", "--addr", e.srv.URL}, tt.args...)
		_, _, err := (*env)(nil).runTo(context.Background(), &out, &errOut, tt.vars, args...)
		if !isCode(err, "unauthorized") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("termctl %v: %v, want unauthorized naming %q", args, err, tt.want)
		}
	}
}

// TestControlWithDeviceKey (issue 10 item 13): a newcomer provisions a
// per-device key and uses it from termctl; a refused HELLO says whether
// the fleet secret or a device key signed it.
func TestControlWithDeviceKey(t *testing.T) {
	e, tgp := serviceEnv(t)
	const key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	e.mustRun(t, "set-key", "pos-7", "--key", key)
	term := []string{"control", "--addr-tgp", tgp, "--device", "pos-7"}

	out := e.mustRun(t, append(term, "--key", key, "spooler", "status")...)
	if !strings.Contains(out, "state: ") {
		t.Fatalf("control with --key:\n%s", out)
	}
	_, _, err := e.run(nil, append(term, "--secret", servertest.FleetSecret, "spooler", "status")...)
	if err == nil || !strings.Contains(err.Error(), "the fleet secret from --secret") || !strings.Contains(err.Error(), "--key") {
		t.Errorf("fleet secret for a keyed device: %v", err)
	}
	wrong := strings.Repeat("ab", 32)
	_, _, err = e.run(nil, append(term, "--key", wrong, "spooler", "status")...)
	if err == nil || !strings.Contains(err.Error(), "the per-device key from --key") {
		t.Errorf("wrong --key: %v", err)
	}
	_, _, err = e.run(nil, append(term, "--key", "xyz", "spooler", "status")...)
	if err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Errorf("malformed --key: %v", err)
	}

	// simulate takes --key too: one terminal connects with it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sOut, sErr syncBuffer
	done := make(chan error, 1)
	go func() {
		_, _, err := (*env)(nil).runTo(ctx, &sOut, &sErr, nil, "simulate", "-n", "1", "--addr-tgp", tgp,
			"--prefix", "pos-k", "--key", wrong, "--spread-src", "off")
		done <- err
	}()
	waitFor(t, "simulate to report a failure naming the key", func() bool {
		return strings.Contains(sOut.String(), "per-device key from --key")
	})
	cancel()
	<-done
}
