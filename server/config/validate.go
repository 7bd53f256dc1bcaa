package config

// This file holds the checks that name each bad key and value, the
// warnings a valid but risky configuration earns, and the redacted form
// -print-config shows.

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
)

// Log levels and formats Validate accepts.
var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
)

// validateValues checks what the older checks in Validate leave out:
// the log settings and every count and duration that must not be
// negative, each refusal naming its key and value.
func (c *Config) validateValues(add func(string, ...any)) {
	if !contains(logLevels, c.Log.Level) {
		add("log.level = %q must be one of %s", c.Log.Level, strings.Join(logLevels, ", "))
	}
	if !contains(logFormats, c.Log.Format) {
		add("log.format = %q must be one of %s", c.Log.Format, strings.Join(logFormats, ", "))
	}
	for _, n := range []struct {
		key string
		v   int
	}{
		{"server.event_loops", c.Server.EventLoops},
		{"server.max_connections", c.Server.MaxConnections},
		{"server.fd_reserve", c.Server.FDReserve},
		{"server.max_sessions", c.Server.MaxSessions},
		{"server.workers", c.Server.Workers},
		{"server.gc_percent", c.Server.GCPercent},
		{"server.gc_percent_max", c.Server.GCPercentMax},
		{"admin.event_buffer", c.Admin.EventBuffer},
	} {
		if n.v < 0 {
			add("%s = %d must not be negative", n.key, n.v)
		}
	}
	for _, n := range []struct {
		key string
		v   int
	}{
		{"server.max_pending_hello", c.Server.MaxPendingHello},
		{"server.outbound_limit", c.Server.OutboundLimit},
		{"server.work_queue", c.Server.WorkQueue},
		{"server.listen_backlog", c.Server.ListenBacklog},
	} {
		if n.v < 1 {
			add("%s = %d must be at least 1", n.key, n.v)
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"server.shutdown_grace", c.Server.ShutdownGrace},
	} {
		if d.v.Duration < 0 {
			add("%s = %q must not be negative", d.key, d.v.String())
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"auth.replace_window", c.Auth.ReplaceWindow},
		{"auth.duplicate_cooldown", c.Auth.DuplicateCooldown},
		{"storage.seen_interval", c.Storage.SeenInterval},
		{"storage.gc_interval", c.Storage.GCInterval},
	} {
		if d.v.Duration <= 0 {
			add("%s = %q must be a positive duration", d.key, d.v.String())
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Warnings are what a valid configuration may still get wrong; termd
// logs them at startup.
func (c *Config) Warnings() []string {
	var out []string
	for i, s := range c.Services {
		for j, r := range s.ACL {
			if len(r.Models) > 0 && len(r.Devices) == 0 {
				out = append(out, fmt.Sprintf("service %q acl[%d] trusts the model alone (models = %q, no devices): "+
					"the model is self-reported in HELLO, so any terminal with valid credentials can claim it; add devices patterns",
					serviceName(s.ID, i), j, r.Models))
			}
		}
	}
	return out
}

func serviceName(id string, i int) string {
	if id != "" {
		return id
	}
	return fmt.Sprintf("services[%d]", i)
}

// IsLoopback reports whether a listen address ("host:port") binds only
// loopback interfaces. A host name or an unspecified address is not.
func IsLoopback(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return strings.HasPrefix(addr, "localhost:")
	}
	return ap.Addr().Unmap().IsLoopback()
}

// Redacted is the placeholder -print-config shows for secrets.
const Redacted = "<redacted>"

// secretEnvRe matches service environment variable names whose values
// are redacted by Redact.
var secretEnvRe = regexp.MustCompile(`(?i)(secret|token|passw|key|credential)`)

// Redact returns c with every secret replaced by Redacted: the fleet
// secret, admin.token, and service environment values whose name says
// secret, token, password, key or credential. Token hashes stay: they
// are not secrets and operators compare them.
func (c Config) Redact() Config {
	if c.Auth.FleetSecret != "" {
		c.Auth.FleetSecret = Redacted
	}
	if c.Admin.Token != "" {
		c.Admin.Token = Redacted
	}
	svcs := make([]Service, len(c.Services))
	for i, s := range c.Services {
		if len(s.Env) > 0 {
			env := make([]string, len(s.Env))
			for j, kv := range s.Env {
				k, _, _ := strings.Cut(kv, "=")
				if secretEnvRe.MatchString(k) {
					kv = k + "=" + Redacted
				}
				env[j] = kv
			}
			s.Env = env
		}
		svcs[i] = s
	}
	if c.Services != nil {
		c.Services = svcs
	}
	return c
}

// durationKey names the first key in the decoded document m whose field
// in t (a struct) is a Duration but whose value is not a string (such as
// `hello_timeout = 30`), which the TOML decoder reports without its key.
func durationKey(m map[string]any, t reflect.Type, prefix string) (key string, val any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		v, ok := m[name]
		if name == "" || !ok {
			continue
		}
		switch {
		case f.Type == reflect.TypeOf(Duration{}):
			if _, isStr := v.(string); !isStr {
				return prefix + name, v
			}
		case f.Type.Kind() == reflect.Struct:
			if sub, ok := v.(map[string]any); ok {
				if k, bad := durationKey(sub, f.Type, prefix+name+"."); k != "" {
					return k, bad
				}
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			list, _ := v.([]any)
			for j, e := range list {
				if sub, ok := e.(map[string]any); ok {
					if k, bad := durationKey(sub, f.Type.Elem(), fmt.Sprintf("%s%s[%d].", prefix, name, j)); k != "" {
						return k, bad
					}
				}
			}
		}
	}
	return "", nil
}
