package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// [groups] loads from TOML, and bad values are refused by Validate.
func TestGroupsSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.toml")
	if err := os.WriteFile(p, []byte("[groups]\nsend_size_limit = 50\nsend_rate = 0.5\nsend_burst = 3\nsync_rate = 100\nkey_rotation = \"1h\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Groups
	if g.SendSizeLimit != 50 || g.SendRate != 0.5 || g.SendBurst != 3 || g.SyncRate != 100 || g.KeyRotation.Duration != time.Hour {
		t.Fatalf("loaded %+v", g)
	}
	valid := func(g Groups) error {
		c := Defaults()
		c.Auth.FleetSecret, c.Admin.Token = "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"
		c.Groups = g
		return c.Validate()
	}
	for _, bad := range []Groups{{SendBurst: -1}, {SyncRate: -5}, {KeyRotation: D(time.Minute)}} {
		if err := valid(bad); err == nil || !strings.Contains(err.Error(), "groups") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if err := valid(Groups{}); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
