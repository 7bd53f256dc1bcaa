package config

import (
	"strings"
	"testing"
)

// TestValidateNamesKeyAndValue (issue 10 item 13): every refusal names
// the key and the bad value, including log settings and negative counts
// that used to pass.
func TestValidateNamesKeyAndValue(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"log level", func(c *Config) { c.Log.Level = "verbose" }, `log.level = "verbose"`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, `log.format = "xml"`},
		{"negative event loops", func(c *Config) { c.Server.EventLoops = -3 }, "server.event_loops = -3"},
		{"negative workers", func(c *Config) { c.Server.Workers = -1 }, "server.workers = -1"},
		{"negative max_connections", func(c *Config) { c.Server.MaxConnections = -5 }, "server.max_connections = -5"},
		{"zero work queue", func(c *Config) { c.Server.WorkQueue = 0 }, "server.work_queue = 0"},
		{"max frame", func(c *Config) { c.Server.MaxFrame = 100 }, "server.max_frame = 100"},
		{"hello timeout", func(c *Config) { c.Server.HelloTimeout = D(0) }, `server.hello_timeout = "0s"`},
		{"miss factor", func(c *Config) { c.Heartbeat.MissFactor = 0 }, "heartbeat.miss_factor = 0"},
		{"token scope", func(c *Config) {
			c.Admin.Tokens = []AdminToken{{Name: "ci", Scope: "admin", SHA256: strings.Repeat("ab", 32)}}
		}, `admin.tokens[0].scope "admin"`},
		{"token hash", func(c *Config) {
			c.Admin.Tokens = []AdminToken{{Name: "ci", Scope: ScopeRead, SHA256: "s3cret"}}
		}, `admin.tokens[0].sha256 "s3cret"`},
		{"token name reused", func(c *Config) {
			c.Admin.Tokens = []AdminToken{{Name: LegacyTokenName, Scope: ScopeRead, SHA256: strings.Repeat("ab", 32)}}
		}, `admin.tokens[0].name "admin" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	// Scoped tokens alone are enough.
	c := valid()
	c.Admin.Token = ""
	c.Admin.Tokens = []AdminToken{{Name: "ci", Scope: ScopeOperator, SHA256: strings.Repeat("AB", 32)}}
	if err := c.Validate(); err != nil {
		t.Fatalf("a config with only [[admin.tokens]]: %v", err)
	}
}

// TestRedact (issue 10 defect 9): -print-config shows no secret.
func TestRedact(t *testing.T) {
	c := valid()
	c.Services = []Service{{ID: "s", Env: []string{"PATH=/bin", "API_TOKEN=t0p", "DB_PASSWORD=pw"}}}
	b, err := c.Redact().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, secret := range []string{goodSecret, goodToken, "t0p", "=pw"} {
		if strings.Contains(out, secret) {
			t.Errorf("redacted config shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "PATH=/bin") || !strings.Contains(out, Redacted) {
		t.Errorf("redaction went too far or nowhere:\n%s", out)
	}
	if c.Auth.FleetSecret != goodSecret || c.Services[0].Env[1] != "API_TOKEN=t0p" {
		t.Error("Redact changed the original")
	}
}

// TestWarnings (issue 10 defect 9): an ACL rule with models and no
// devices trusts a self-reported value.
func TestWarnings(t *testing.T) {
	c := valid()
	c.Services = []Service{{ID: "s", ACL: []ACLRule{{Devices: []string{"pos-*"}, Models: []string{"X1"}}, {Models: []string{"X2"}}}}}
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], `acl[1]`) || !strings.Contains(w[0], "model alone") {
		t.Fatalf("warnings %q", w)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7080": true, "[::1]:7080": true, "localhost:7080": true,
		"0.0.0.0:7080": false, ":7080": false, "10.0.0.5:7080": false, "admin.example:7080": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}
