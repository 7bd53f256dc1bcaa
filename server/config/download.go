package config

import (
	"net"
	"net/url"
	"strings"
	"time"
)

// Bounds and defaults of [download].
const (
	// DefaultDownloadMaxConcurrent is download.max_concurrent's default.
	DefaultDownloadMaxConcurrent = 64
	// DefaultDownloadTokenTTL is download.token_ttl's default: a terminal
	// offered a release at launch can download it (and resume) all day.
	DefaultDownloadTokenTTL = 24 * time.Hour
	// MinDownloadSecret is the shortest accepted download.secret, in bytes.
	MinDownloadSecret = 16
	// MaxDownloadURLBase is the longest download.url_base, in bytes: a
	// signed URL is url_base + "/a/" + 64 hex + "?d=" + a device id (≤ 64)
	// + "&e=" + 10 digits + "&t=" + 22 characters, and must fit in the
	// 256 bytes the spec allows an offer's url.
	MaxDownloadURLBase = 256 - 172
)

// Download configures termd's download node: the HTTP listener that
// serves uploaded artifacts to terminals over signed, expiring URLs
// (docs/upgrades.md, "Artifacts and downloads").
type Download struct {
	// Listen is the download listener's address, separate from the admin
	// API (terminals reach it; operators' API stays private). Default ""
	// = no download listener (-dev and examples/dev.toml: 127.0.0.1:7081).
	Listen string `toml:"listen" comment:"download listener address for terminals, empty = off (-dev: 127.0.0.1:7081)"`
	// URLBase is how terminals reach the listener, e.g.
	// "https://dl.example.com" behind a TLS proxy; URLs in offers start
	// with it. At most 84 bytes. Default "" = "http://" + the bound listen
	// address (required when listen is a wildcard address like 0.0.0.0).
	URLBase string `toml:"url_base" comment:"scheme://host[:port][/path] terminals download from, empty = http://<listen>"`
	// MaxConcurrent is how many downloads the listener serves at once;
	// beyond it a request gets 503 with Retry-After, which spreads a
	// fleet's downloads over time. Default 64.
	MaxConcurrent int `toml:"max_concurrent" comment:"downloads served at once; others get 503 + Retry-After"`
	// TokenTTL is how long a signed download URL stays valid after it was
	// handed out. Default 24h.
	TokenTTL Duration `toml:"token_ttl" comment:"validity of a signed download URL"`
	// Secret is the HMAC key of download tokens (raw string bytes, at
	// least 16). Default "" = generated on first start and kept in
	// <storage.dir>/download-secret (every node of a cluster that serves
	// the same URLs needs the same secret). Never logged.
	Secret string `toml:"secret" comment:"HMAC key of download URLs (>= 16 bytes), empty = generated in dir/download-secret"`
}

// DownloadDefaults is [download] with its defaults.
func DownloadDefaults() Download {
	return Download{MaxConcurrent: DefaultDownloadMaxConcurrent, TokenTTL: D(DefaultDownloadTokenTTL)}
}

// validateDownload checks [download].
func (c *Config) validateDownload(add func(string, ...any)) {
	d := &c.Download
	if d.MaxConcurrent < 1 {
		add("download.max_concurrent must be at least 1, got %d", d.MaxConcurrent)
	}
	if d.TokenTTL.Duration < time.Minute {
		add("download.token_ttl must be at least 1m, got %v", d.TokenTTL.Duration)
	}
	if d.Secret != "" && len(d.Secret) < MinDownloadSecret {
		add("download.secret is %d bytes; at least %d are required", len(d.Secret), MinDownloadSecret)
	}
	if d.Listen != "" {
		host, _, err := net.SplitHostPort(d.Listen)
		if err != nil {
			add("download.listen %q: %v", d.Listen, err)
		} else if d.URLBase == "" && (host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
			add("download.url_base must be set when download.listen %q is a wildcard address (terminals need a host to reach)", d.Listen)
		}
	}
	if d.URLBase != "" {
		u, err := url.Parse(d.URLBase)
		switch {
		case err != nil:
			add("download.url_base %q: %v", d.URLBase, err)
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
			add("download.url_base %q must be http(s)://host[:port][/path] without query", d.URLBase)
		case len(strings.TrimRight(d.URLBase, "/")) > MaxDownloadURLBase:
			add("download.url_base %q is %d bytes; at most %d fit a signed URL in 256 bytes", d.URLBase, len(d.URLBase), MaxDownloadURLBase)
		}
	}
}
