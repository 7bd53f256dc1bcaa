package config

import (
	"strings"
	"testing"
	"time"
)

// Each bad [download] value is reported with its key and value; good
// ones pass.
func TestValidateDownload(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*Download)
		want string // "" = valid
	}{
		{"defaults: off", func(*Download) {}, ""},
		{"loopback listener", func(d *Download) { d.Listen = "127.0.0.1:7081" }, ""},
		{"wildcard with url_base", func(d *Download) { d.Listen = "0.0.0.0:7081"; d.URLBase = "https://dl.example.com/fw/" }, ""},
		{"wildcard without url_base", func(d *Download) { d.Listen = "0.0.0.0:7081" }, `download.url_base must be set when download.listen "0.0.0.0:7081"`},
		{"empty host without url_base", func(d *Download) { d.Listen = ":7081" }, "download.url_base must be set"},
		{"listen without port", func(d *Download) { d.Listen = "127.0.0.1" }, `download.listen "127.0.0.1"`},
		{"url_base scheme", func(d *Download) { d.URLBase = "ftp://dl.example.com" }, `download.url_base "ftp://dl.example.com" must be http(s)`},
		{"url_base query", func(d *Download) { d.URLBase = "https://dl.example.com/?x=1" }, "without query"},
		{"url_base too long", func(d *Download) { d.URLBase = "https://" + strings.Repeat("d", MaxDownloadURLBase) }, "at most 84 fit"},
		{"max_concurrent", func(d *Download) { d.MaxConcurrent = 0 }, "download.max_concurrent must be at least 1, got 0"},
		{"token_ttl", func(d *Download) { d.TokenTTL = D(time.Second) }, "download.token_ttl must be at least 1m, got 1s"},
		{"short secret", func(d *Download) { d.Secret = "short" }, "download.secret is 5 bytes; at least 16"},
	} {
		c := valid()
		tt.mod(&c.Download)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
