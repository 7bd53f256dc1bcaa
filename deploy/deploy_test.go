package deploy_test

// The production files are tested as an operator uses them: the example
// config goes through the same loading and validation as termd's own
// start (and through the real binary's -print-config), the unit through
// systemd's own verifier where systemd is installed, and `make install`
// is run into a staging directory.

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/termd/termd/server/config"
)

// Secrets as the environment file would hold them.
var secretEnv = map[string]string{
	"TERMD_FLEET_SECRET": "0123456789abcdef0123456789abcdef",
	"TERMD_ADMIN_TOKEN":  "fedcba9876543210fedcba9876543210",
}

func env(k string) string { return secretEnv[k] }

// minNOFILE is the smallest open-file limit the unit may set, in file
// descriptors: the reference machine's 20000 (docs/operations.md).
const minNOFILE = 20000

func TestExampleConfigValidates(t *testing.T) {
	cfg, err := config.Load("termd.toml")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	// Secrets never live in the file: without the environment termd must
	// refuse to start and name both.
	if cfg.Auth.FleetSecret != "" || cfg.Admin.Token != "" {
		t.Fatal("deploy/termd.toml contains a secret; secrets come from the environment file")
	}
	bare := cfg
	err = bare.Validate()
	if err == nil || !strings.Contains(err.Error(), "auth.fleet_secret") || !strings.Contains(err.Error(), "admin.token") {
		t.Fatalf("without env secrets Validate = %v, want both secrets named", err)
	}
	cfg.ApplyEnv(env)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with env secrets: %v", err)
	}

	// The deliberate settings.
	if cfg.Storage.Dir != "/var/lib/termd" {
		t.Errorf("storage.dir = %q, want /var/lib/termd", cfg.Storage.Dir)
	}
	if !cfg.Storage.SyncWrites {
		t.Error("storage.sync_writes is false: acknowledged records would not survive a power loss")
	}
	if cfg.Log.Format != "json" {
		t.Errorf("log.format = %q, want json", cfg.Log.Format)
	}
	ap, err := netip.ParseAddrPort(cfg.Admin.Listen)
	if err != nil || !ap.Addr().IsLoopback() {
		t.Errorf("admin.listen = %q, want a loopback address", cfg.Admin.Listen)
	}
	if len(cfg.Services) != 0 {
		t.Errorf("the example defines %d services; production services are the operator's to write", len(cfg.Services))
	}
	d := config.Defaults()
	if cfg.Server.MaxFrame != d.Server.MaxFrame || cfg.Server.MaxInFlight != d.Server.MaxInFlight ||
		cfg.Server.FrameRate != d.Server.FrameRate || cfg.Server.OutboundLimit != d.Server.OutboundLimit {
		t.Error("per-connection limits differ from the documented defaults (docs/security.md lists them)")
	}
}

// repoRoot is the module root, one level up.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildTermd builds the real termd binary into a temporary directory.
func buildTermd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "termd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/termd")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestExampleConfigPrintConfig(t *testing.T) {
	bin := buildTermd(t)
	cmd := exec.Command(bin, "-config", "termd.toml", "-print-config")
	cmd.Env = append(os.Environ(), "TERMD_FLEET_SECRET="+secretEnv["TERMD_FLEET_SECRET"],
		"TERMD_ADMIN_TOKEN="+secretEnv["TERMD_ADMIN_TOKEN"])
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("termd -config deploy/termd.toml -print-config: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"dir = '/var/lib/termd'", "format = 'json'", "listen = '127.0.0.1:7080'", "sync_writes = true"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("-print-config output lacks %q", want)
		}
	}
}

// unitDirectives reads key=value lines of a unit file (comments skipped).
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a directive: %q", path, line)
		}
		m[k] = append(m[k], v)
	}
	return m
}

func TestUnitHardening(t *testing.T) {
	d := unitDirectives(t, "termd.service")
	for k, want := range map[string]string{
		"User": "termd", "Group": "termd", "Restart": "on-failure",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/termd",
		"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
		"ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet": "",
		"SystemCallFilter": "@system-service", "MemoryDenyWriteExecute": "yes",
		"EnvironmentFile": "/etc/termd/termd.env", "StateDirectory": "termd",
		"ExecStart": "/usr/local/bin/termd -config /etc/termd/termd.toml",
	} {
		if got := d[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// One fd per terminal plus the reserve: below the reference machine's
	// 20000 the unit would shrink the fleet a node holds.
	if got := d["LimitNOFILE"]; len(got) != 1 {
		t.Errorf("LimitNOFILE = %q, want one limit", got)
	} else if n, err := strconv.Atoi(got[0]); err != nil || n < minNOFILE {
		t.Errorf("LimitNOFILE = %q, want a number >= %d", got[0], minNOFILE)
	}
}

// TestUnitVerifies runs systemd's own checker on the unit, with ExecStart
// pointed at a real binary (verify requires it to exist). Without
// systemd-analyze (a container without systemd) it cannot run.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd): unit not verified")
	}
	bin := buildTermd(t)
	unit, err := os.ReadFile("termd.service")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "termd.service")
	if err := os.WriteFile(p, bytes.ReplaceAll(unit, []byte("/usr/local/bin/termd"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", p).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMakeInstall stages `make install` in a temporary DESTDIR twice: the
// first run installs everything, the second must keep an operator's
// edited config.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is required to test `make install`")
	}
	dest := t.TempDir()
	install := func(prefix string) {
		t.Helper()
		cmd := exec.Command("make", "--no-print-directory", "install", "DESTDIR="+dest, "PREFIX="+prefix)
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
	}
	install("/usr/local")
	for path, mode := range map[string]os.FileMode{
		"usr/local/bin/termd":              0o755,
		"usr/local/bin/termctl":            0o755,
		"lib/systemd/system/termd.service": 0o644,
		"etc/termd/termd.toml":             0o644,
	} {
		st, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	example, _ := os.ReadFile("termd.toml")
	conf := filepath.Join(dest, "etc/termd/termd.toml")
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, example) {
		t.Error("installed termd.toml differs from deploy/termd.toml")
	}

	// An operator edits the config; a second install (another PREFIX)
	// keeps it and points the unit at the new binaries.
	mine := []byte("# the operator's own\n")
	if err := os.WriteFile(conf, mine, 0o640); err != nil {
		t.Fatal(err)
	}
	install("/opt/termd")
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, mine) {
		t.Error("make install overwrote an existing /etc/termd/termd.toml")
	}
	if _, err := os.Stat(filepath.Join(dest, "opt/termd/bin/termd")); err != nil {
		t.Errorf("PREFIX not honoured: %v", err)
	}
	unit := unitDirectives(t, filepath.Join(dest, "lib/systemd/system/termd.service"))
	if got := unit["ExecStart"]; len(got) != 1 || !strings.HasPrefix(got[0], "/opt/termd/bin/termd ") {
		t.Errorf("installed unit ExecStart = %q, want it under PREFIX /opt/termd", got)
	}
}
