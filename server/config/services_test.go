package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func goodService() Service {
	return Service{ID: "price-sync", Kind: KindOneshot, Command: "/opt/pos/bin/price-sync",
		ACL: []ACLRule{{Devices: []string{"pos-*"}}}}
}

func TestValidateServices(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{name: "good", mod: func(c *Config) {}},
		{name: "good daemon with everything", mod: func(c *Config) {
			c.Services[0] = Service{ID: "spooler", Kind: KindDaemon, Command: "/usr/sbin/spooler", Restart: RestartOnFailure,
				Autostart: true, OnShutdown: ShutdownLeave, OnStart: StartStop, Env: []string{"PATH=/bin"}, EnvInherit: []string{"TZ"},
				ArgPatterns: []string{`[0-9]+`}, ACL: []ACLRule{{Models: []string{"K1?"}, Ops: []string{OpRestart}}}}
		}},
		{name: "bad id", mod: func(c *Config) { c.Services[0].ID = "price sync" }, want: []string{`id "price sync" must be`}},
		{name: "empty id", mod: func(c *Config) { c.Services[0].ID = "" }, want: []string{`services[0]: id "" must be`}},
		{name: "duplicate id", mod: func(c *Config) { c.Services = append(c.Services, goodService()) }, want: []string{"used twice"}},
		{name: "kind", mod: func(c *Config) { c.Services[0].Kind = "cron" }, want: []string{`kind = "cron" must be`}},
		{name: "relative command", mod: func(c *Config) { c.Services[0].Command = "bin/sync" }, want: []string{`command = "bin/sync" must be an absolute path`}},
		{name: "shell line as command", mod: func(c *Config) { c.Services[0].Command = "sync --all; reboot" }, want: []string{`command = "sync --all; reboot" must be`}},
		{name: "env", mod: func(c *Config) { c.Services[0].Env = []string{"NOEQUALS"} }, want: []string{"not NAME=value"}},
		{name: "env_inherit", mod: func(c *Config) { c.Services[0].EnvInherit = []string{"A-B"} }, want: []string{"env_inherit name"}},
		{name: "ops", mod: func(c *Config) { c.Services[0].Ops = []string{"kill"} }, want: []string{`unknown operation "kill"`}},
		{name: "acl ops", mod: func(c *Config) { c.Services[0].ACL[0].Ops = []string{"reboot"} }, want: []string{"acl[0].ops"}},
		{name: "acl pattern", mod: func(c *Config) { c.Services[0].ACL[0].Devices = []string{"pos-["} }, want: []string{"bad pattern"}},
		{name: "arg pattern", mod: func(c *Config) { c.Services[0].ArgPatterns = []string{"([0-9]"} }, want: []string{"arg_patterns"}},
		{name: "nine arg patterns", mod: func(c *Config) { c.Services[0].ArgPatterns = make([]string, 9) }, want: []string{"at most 8"}},
		{name: "negative grace", mod: func(c *Config) { c.Services[0].StopGrace = D(-time.Second) }, want: []string{`stop_grace = "-1s" must be a positive duration`}},
		{name: "restart on oneshot", mod: func(c *Config) { c.Services[0].Restart = RestartOnFailure }, want: []string{"daemons only"}},
		{name: "restart policy", mod: func(c *Config) { c.Services[0].Restart = "always" }, want: []string{`restart = "always" must be`}},
		{name: "output_max", mod: func(c *Config) { c.Services[0].OutputMax = 100 }, want: []string{"output_max = 100"}},
		{name: "daemon max_concurrent", mod: func(c *Config) {
			c.Services[0].Kind, c.Services[0].MaxConcurrent = KindDaemon, 2
		}, want: []string{"max_concurrent = 2"}},
		{name: "on_shutdown", mod: func(c *Config) { c.Services[0].OnShutdown = "kill" }, want: []string{`on_shutdown = "kill"`}},
		{name: "on_start", mod: func(c *Config) { c.Services[0].OnStart = "ignore" }, want: []string{`on_start = "ignore"`}},
		{name: "autostart oneshot", mod: func(c *Config) { c.Services[0].Autostart = true }, want: []string{"autostart applies to daemons only"}},
		{name: "request_id_window", mod: func(c *Config) { c.Control.RequestIDWindow = D(time.Minute) }, want: []string{`request_id_window = "1m0s"`}},
		{name: "request_ids_per_device", mod: func(c *Config) { c.Control.RequestIDsPerDevice = -1 }, want: []string{"control.request_ids_per_device", "-1"}},
		{name: "audit_max_records", mod: func(c *Config) { c.Control.AuditMaxRecords = 10 }, want: []string{"control.audit_max_records", "10"}},
		{name: "refusal_window", mod: func(c *Config) { c.Control.RefusalWindow = D(time.Millisecond) }, want: []string{"control.refusal_window", "1ms"}},
		{name: "max_timeout", mod: func(c *Config) { c.Control.MaxTimeout = D(time.Millisecond) }, want: []string{`max_timeout = "1ms"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			c.Services = []Service{goodService()}
			tt.mod(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// Relative command and dir paths in a file are resolved against the
// file's directory; defaults apply where a table leaves fields out.
func TestLoadServices(t *testing.T) {
	p := writeFile(t, `
[control]
audit_retention = "720h"

[[services]]
id = "spooler"
kind = "daemon"
command = "bin/spooler"
dir = "work"
  [[services.acl]]
  devices = ["kiosk-*"]
  ops = ["restart"]

[[services]]
id = "sync"
kind = "oneshot"
command = "/opt/sync"
`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Dir(p)
	if len(c.Services) != 2 || c.Services[0].Command != filepath.Join(base, "bin/spooler") ||
		c.Services[0].Dir != filepath.Join(base, "work") || c.Services[1].Command != "/opt/sync" {
		t.Fatalf("services: %+v", c.Services)
	}
	if c.Control.AuditRetention.Duration != 720*time.Hour {
		t.Fatalf("control: %+v", c.Control)
	}
	d := c.Services[0].Effective()
	if d.StopGrace.Duration != 10*time.Second || len(d.Ops) != 4 || d.OnStart != StartAdopt || d.OutputMax != 1<<20 {
		t.Fatalf("daemon defaults: %+v", d)
	}
	o := c.Services[1].Effective()
	if len(o.Ops) != 2 || o.MaxConcurrent != 1 || o.OutputMax != 64<<10 {
		t.Fatalf("oneshot defaults: %+v", o)
	}
	if got := c.Control.Effective("/data").ServicesDir; got != "/data/services" {
		t.Fatalf("services_dir default %q", got)
	}
	c.Auth.FleetSecret, c.Admin.Token = goodSecret, goodToken
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
