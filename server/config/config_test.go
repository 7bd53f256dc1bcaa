package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	goodSecret = "0123456789abcdef" // exactly MinFleetSecret bytes
	goodToken  = "admin-token"
)

// valid is the defaults plus what Validate requires outside -dev.
func valid() Config {
	c := Defaults()
	c.Auth.FleetSecret = goodSecret
	c.Admin.Token = goodToken
	return c
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "termd.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the error; nil = valid
		not  []string // substrings the error must not have
		n    int      // problems listed, one per line, when > 0
	}{
		{name: "defaults with secret and token", mod: func(*Config) {}},
		{
			name: "defaults alone: secret and token both reported",
			mod:  func(c *Config) { *c = Defaults() },
			want: []string{"auth.fleet_secret is not set", "admin.token is not set"},
			n:    2,
		},
		{
			name: "no secret",
			mod:  func(c *Config) { c.Auth.FleetSecret = "" },
			want: []string{"auth.fleet_secret is not set", "TERMD_FLEET_SECRET"},
			not:  []string{"admin.token"},
		},
		{
			name: "no token",
			mod:  func(c *Config) { c.Admin.Token = "" },
			want: []string{"admin.token is not set", "TERMD_ADMIN_TOKEN"},
			not:  []string{"fleet_secret"},
		},
		{
			name: "short secret",
			mod:  func(c *Config) { c.Auth.FleetSecret = goodSecret[:15] },
			want: []string{"auth.fleet_secret is 15 bytes; at least 16 are required"},
			not:  []string{"is not set"},
		},
		{name: "max_frame low", mod: func(c *Config) { c.Server.MaxFrame = 4095 }, want: []string{"server.max_frame"}},
		{name: "max_frame high", mod: func(c *Config) { c.Server.MaxFrame = 0x10000 }, want: []string{"server.max_frame"}},
		{name: "max_frame edges", mod: func(c *Config) { c.Server.MaxFrame = 0xFFFF }},
		{name: "max_in_flight 0", mod: func(c *Config) { c.Server.MaxInFlight = 0 }, want: []string{"server.max_in_flight"}},
		{name: "max_in_flight 17", mod: func(c *Config) { c.Server.MaxInFlight = 17 }, want: []string{"server.max_in_flight"}},
		{name: "max_in_flight 1", mod: func(c *Config) { c.Server.MaxInFlight = 1 }},
		{name: "frame_rate 0", mod: func(c *Config) { c.Server.FrameRate = 0 }, want: []string{"server.frame_rate"}},
		{name: "frame_burst 0", mod: func(c *Config) { c.Server.FrameBurst = 0 }, want: []string{"server.frame_burst"}},
		{name: "heartbeat interval 0", mod: func(c *Config) { c.Heartbeat.Interval = D(0) }, want: []string{"heartbeat.interval"}},
		{name: "miss_factor 0", mod: func(c *Config) { c.Heartbeat.MissFactor = 0 }, want: []string{"heartbeat.miss_factor"}},
		{name: "hello_timeout 0", mod: func(c *Config) { c.Server.HelloTimeout = D(0) }, want: []string{"server.hello_timeout"}},
		{name: "tick_interval negative", mod: func(c *Config) { c.Server.TickInterval = D(-time.Millisecond) }, want: []string{"server.tick_interval"}},
		{name: "nonce_capacity 0", mod: func(c *Config) { c.Auth.NonceCapacity = 0 }, want: []string{"auth.nonce_capacity"}},
		{name: "nonce_retention 0", mod: func(c *Config) { c.Auth.NonceRetention = D(0) }, want: []string{"auth.nonce_retention"}},
		{name: "replace_limit 0", mod: func(c *Config) { c.Auth.ReplaceLimit = 0 }, want: []string{"auth.replace_limit"}},
		{name: "alive_interval 0", mod: func(c *Config) { c.Storage.AliveInterval = D(0) }, want: []string{"storage.alive_interval"}},
		{name: "flush_interval negative", mod: func(c *Config) { c.Storage.FlushInterval = D(-time.Second) }, want: []string{"storage.flush_interval"}},
		{name: "clock_window 0", mod: func(c *Config) { c.Auth.ClockWindow = D(0) }, want: []string{"auth.clock_window"}},
		{name: "admin listen empty", mod: func(c *Config) { c.Admin.Listen = "" }, want: []string{"admin.listen is empty"}},
		{name: "max_pending_hello 0", mod: func(c *Config) { c.Server.MaxPendingHello = 0 }, want: []string{"server.max_pending_hello must be at least 1, got 0"}},
		{name: "max_pending_per_source negative", mod: func(c *Config) { c.Server.MaxPendingPerSource = -1 }, want: []string{"server.max_pending_per_source", "got -1"}},
		{name: "per-source limits off", mod: func(c *Config) {
			c.Server.MaxPendingPerSource, c.Server.HelloRatePerSource, c.Server.HelloBurstPerSource = 0, 0, 0
		}},
		{name: "hello_rate_per_source negative", mod: func(c *Config) { c.Server.HelloRatePerSource = -2 }, want: []string{"server.hello_rate_per_source", "got -2"}},
		{name: "hello_burst_per_source 0", mod: func(c *Config) { c.Server.HelloBurstPerSource = 0 }, want: []string{"server.hello_burst_per_source must be at least 1, got 0"}},
		{name: "source_limit_exempt bad", mod: func(c *Config) { c.Server.SourceLimitExempt = []string{"10.0.0.0/8", "10.0.0/8"} }, want: []string{`server.source_limit_exempt: "10.0.0/8" is not a CIDR`}},
		{name: "proxy_trusted bad", mod: func(c *Config) { c.Server.ProxyTrusted = []string{"lb.example"} }, want: []string{`server.proxy_trusted: "lb.example"`}},
		{name: "proxy_trusted address and CIDR", mod: func(c *Config) {
			c.Server.ProxyProtocol, c.Server.ProxyTrusted = true, []string{"10.1.2.3", "fd00::/8"}
		}},
		{
			name: "every problem in one error",
			mod: func(c *Config) {
				*c = Defaults()
				c.Server.MaxFrame = 1
				c.Auth.ReplaceLimit = 0
				c.Admin.Listen = ""
			},
			want: []string{"auth.fleet_secret", "admin.token", "server.max_frame", "auth.replace_limit", "admin.listen"},
			n:    5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want an error mentioning %q", tt.want)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(msg, n) {
					t.Errorf("error %q mentions %q", msg, n)
				}
			}
			// One line per problem after the heading.
			if lines := strings.Count(msg, "\n"); tt.n > 0 && lines != tt.n {
				t.Errorf("error has %d problem lines, want %d:\n%s", lines, tt.n, msg)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		mod     func(*Config) // applied to Defaults() for the expected result
		wantErr []string      // substrings of the error
	}{
		{name: "empty file is the defaults", body: "", mod: func(*Config) {}},
		{
			name: "overrides only what it sets",
			body: "[server]\nlisten = \"127.0.0.1:9000\"\nmax_in_flight = 4\n\n[auth]\nfleet_secret = \"s\"\n\n[storage]\nsync_writes = true\n\n[admin]\nopen_probes = false\n",
			mod: func(c *Config) {
				c.Server.Listen = "127.0.0.1:9000"
				c.Server.MaxInFlight = 4
				c.Auth.FleetSecret = "s"
				c.Storage.SyncWrites = true
				c.Admin.OpenProbes = false
			},
		},
		{
			name: "durations",
			body: "[server]\ntick_interval = \"250ms\"\nhello_timeout = \"1m30s\"\n[heartbeat]\ninterval = \"2s\"\n",
			mod: func(c *Config) {
				c.Server.TickInterval = D(250 * time.Millisecond)
				c.Server.HelloTimeout = D(90 * time.Second)
				c.Heartbeat.Interval = D(2 * time.Second)
			},
		},
		{name: "float", body: "[server]\nframe_rate = 12.5\n", mod: func(c *Config) { c.Server.FrameRate = 12.5 }},
		{name: "unknown key", body: "[server]\nlisten_addr = \"x\"\n", wantErr: []string{"listen_addr", "unknown field"}},
		{name: "unknown table", body: "[srever]\nlisten = \"x\"\n", wantErr: []string{"srever"}},
		{name: "unknown top-level key", body: "verbose = true\n", wantErr: []string{"verbose"}},
		{name: "bad duration", body: "[server]\ntick_interval = \"10 parsecs\"\n", wantErr: []string{"parsecs"}},
		{name: "duration without unit", body: "[server]\ntick_interval = \"250\"\n", wantErr: []string{"server.tick_interval", `"250"`, "with a unit"}},
		{name: "duration as a number", body: "[heartbeat]\ninterval = 30\n", wantErr: []string{"heartbeat.interval = 30", "with a unit"}},
		{name: "wrong type", body: "[server]\nmax_frame = \"big\"\n", wantErr: []string{"termd.toml"}},
		{name: "syntax error", body: "[server\n", wantErr: []string{"termd.toml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, tt.body)
			got, err := Load(p)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Load = nil error, want one mentioning %q", tt.wantErr)
				}
				for _, w := range append(tt.wantErr, p) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Defaults()
			tt.mod(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Load =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.toml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "30s", want: 30 * time.Second},
		{in: "1h2m3s", want: time.Hour + 2*time.Minute + 3*time.Second},
		{in: "0", want: 0},
		{in: "", wantErr: true},
		{in: "250", wantErr: true},
		{in: "fast", wantErr: true},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalText(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && d.Duration != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, want %v", tt.in, d.Duration, tt.want)
		}
		if err == nil {
			b, _ := d.MarshalText()
			var back Duration
			if err := back.UnmarshalText(b); err != nil || back != d {
				t.Errorf("MarshalText(%v) = %q does not parse back: %v, %v", d, b, back, err)
			}
		}
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		wantSecret string
		wantToken  string
	}{
		{name: "nothing set keeps the file's values", env: nil, wantSecret: "file-secret", wantToken: "file-token"},
		{name: "empty values do not clear", env: map[string]string{"TERMD_FLEET_SECRET": "", "TERMD_ADMIN_TOKEN": ""}, wantSecret: "file-secret", wantToken: "file-token"},
		{name: "secret", env: map[string]string{"TERMD_FLEET_SECRET": "env-secret"}, wantSecret: "env-secret", wantToken: "file-token"},
		{name: "token", env: map[string]string{"TERMD_ADMIN_TOKEN": "env-token"}, wantSecret: "file-secret", wantToken: "env-token"},
		{
			name:       "both",
			env:        map[string]string{"TERMD_FLEET_SECRET": "env-secret", "TERMD_ADMIN_TOKEN": "env-token"},
			wantSecret: "env-secret", wantToken: "env-token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			c.Auth.FleetSecret, c.Admin.Token = "file-secret", "file-token"
			c.ApplyEnv(func(k string) string { return tt.env[k] })
			if c.Auth.FleetSecret != tt.wantSecret || c.Admin.Token != tt.wantToken {
				t.Fatalf("secret, token = %q, %q; want %q, %q", c.Auth.FleetSecret, c.Admin.Token, tt.wantSecret, tt.wantToken)
			}
			rest := Defaults()
			rest.Auth.FleetSecret, rest.Admin.Token = c.Auth.FleetSecret, c.Admin.Token
			if !reflect.DeepEqual(c, rest) {
				t.Fatal("ApplyEnv changed something besides the secret and token")
			}
		})
	}
}

// perturb sets every leaf option of v to a value different from its
// default, so a round trip cannot pass by falling back to Defaults.
func perturb(t *testing.T, v reflect.Value, path string) {
	switch v.Type() {
	case reflect.TypeFor[Duration]():
		v.Set(reflect.ValueOf(D(v.Interface().(Duration).Duration + 1500*time.Millisecond)))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			perturb(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.String:
		if strings.HasSuffix(path, ".Command") || strings.HasSuffix(path, ".Dir") || strings.Contains(path, ".ReleasePublicKeys[") {
			// Load resolves relative service paths; an absolute one stays.
			v.SetString("/opt/x'\"\\ é" + path)
			return
		}
		v.SetString(v.String() + "-x'\"\\ é" + path)
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 7)
	case reflect.Float64:
		v.SetFloat(v.Float() + 1.25)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		// One perturbed element (a [[services]] table, an acl rule, a
		// string), so every field of the element type round-trips too.
		e := reflect.New(v.Type().Elem()).Elem()
		perturb(t, e, path+"[0]")
		v.Set(reflect.Append(v, e))
	default:
		t.Fatalf("%s: no perturbation for %s; extend the test", path, v.Type())
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	perturbed := Defaults()
	perturb(t, reflect.ValueOf(&perturbed).Elem(), "Config")
	for _, c := range []Config{Defaults(), valid(), perturbed, {}} {
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		got, err := Load(writeFile(t, string(b)))
		if err != nil {
			t.Fatalf("Load of Marshal's output: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v\n%s", got, c, b)
		}
	}
}

// tomlKeys lists "table.key" for every option of Config by its toml tags.
func tomlKeys(t *testing.T) (tables []string, keys []string) {
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		tf := ct.Field(i)
		table := strings.Split(tf.Tag.Get("toml"), ",")[0]
		if tf.Type.Kind() == reflect.Slice {
			continue // [[services]]: TestServiceKeys
		}
		if table == "" || tf.Type.Kind() != reflect.Struct {
			t.Fatalf("Config.%s: expected a tagged table struct", tf.Name)
		}
		tables = append(tables, table)
		keys = appendTableKeys(t, tf.Type, table, &tables, keys)
	}
	return tables, keys
}

// appendTableKeys appends table's keys; a nested table ([notify.smtp])
// adds itself and its keys, an array of tables ([[notify.webhook]],
// omitted when empty) is checked by its own tests.
func appendTableKeys(t *testing.T, tt reflect.Type, table string, tables *[]string, keys []string) []string {
	for j := range tt.NumField() {
		f := tt.Field(j)
		k := strings.Split(f.Tag.Get("toml"), ",")[0]
		if k == "" || k == "-" {
			t.Fatalf("%s.%s has no toml key", tt.Name(), f.Name)
		}
		switch {
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]():
			*tables = append(*tables, table+"."+k)
			keys = appendTableKeys(t, f.Type, table+"."+k, tables, keys)
		default:
			keys = append(keys, table+"."+k)
		}
	}
	return keys
}

func TestMarshalCommentsEveryOption(t *testing.T) {
	b, err := valid().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	seen := make(map[string]bool)
	table := ""
	for i, raw := range lines {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var name string
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[]")
			name = table
		} else {
			k, _, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("line %d: not a key or table: %q", i+1, raw)
			}
			name = table + "." + strings.TrimSpace(k)
		}
		seen[name] = true
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "# ") ||
			len(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[i-1]), "#"))) == 0 {
			t.Errorf("line %d %q is not preceded by a comment line", i+1, raw)
		}
	}
	tables, keys := tomlKeys(t)
	for _, name := range append(tables, keys...) {
		if !seen[name] {
			t.Errorf("option %s is missing from Marshal's output", name)
		}
	}
	if len(seen) != len(tables)+len(keys) {
		t.Errorf("Marshal wrote %d tables and keys, Config has %d", len(seen), len(tables)+len(keys))
	}
}

// Every field of a [[services]] table and of its acl rules has a toml key.
func TestServiceKeys(t *testing.T) {
	for _, st := range []reflect.Type{reflect.TypeFor[Service](), reflect.TypeFor[ACLRule]()} {
		for i := range st.NumField() {
			if k := strings.Split(st.Field(i).Tag.Get("toml"), ",")[0]; k == "" || k == "-" {
				t.Fatalf("%s.%s has no toml key", st.Name(), st.Field(i).Name)
			}
		}
	}
}
