package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// STARTTLS policies of [notify.smtp].
const (
	// StartTLSOpportunistic upgrades when the server offers STARTTLS and
	// sends in clear otherwise.
	StartTLSOpportunistic = "opportunistic"
	// StartTLSMandatory refuses to send unless the connection is upgraded.
	StartTLSMandatory = "mandatory"
	// StartTLSOff never upgrades (a relay on localhost).
	StartTLSOff = "off"
)

// Defaults and bounds of [notify].
const (
	DefaultDigestWindow = 60 * time.Second
	MaxDigestWindow     = time.Hour
	DefaultMinBackoff   = 5 * time.Second
	DefaultMaxBackoff   = 10 * time.Minute
	DefaultNotifyMaxAge = 72 * time.Hour
	DefaultNotifyKeep   = 7 * 24 * time.Hour
	DefaultNotifyTimout = 10 * time.Second
	DefaultSMTPPort     = 587
	// MinWebhookSecret is the shortest accepted webhook secret, in bytes:
	// the HMAC key receivers verify signatures with.
	MinWebhookSecret = 16
)

// webhookNameRe is what a webhook name may be: it becomes the channel
// "webhook:<name>" in the outbox and in metric names.
var webhookNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// Notify configures how operators are told of upgrade failures
// (docs/upgrades.md, "Notifications"): a durable outbox delivered at
// least once to each channel.
type Notify struct {
	// DigestWindow: failures of one release arriving within it become one
	// message per channel. Default 60s; 0 sends each failure on its own.
	DigestWindow Duration `toml:"digest_window" comment:"failures of one release within this become one message per channel"`
	// MinBackoff is the first retry delay; it doubles per failed attempt
	// up to MaxBackoff. Defaults 5s and 10m.
	MinBackoff Duration `toml:"min_backoff" comment:"first retry delay of a failed delivery (doubles per attempt)"`
	MaxBackoff Duration `toml:"max_backoff" comment:"longest retry delay"`
	// MaxAge is how long a delivery is retried before it is given up
	// (state failed, listed by termctl outbox --failed). Default 72h.
	MaxAge Duration `toml:"max_age" comment:"a delivery still failing after this is given up"`
	// Retention is how long delivered and given-up entries are kept.
	// Default 168h (7 days).
	Retention Duration `toml:"retention" comment:"how long delivered and given-up entries are kept"`
	// Timeout bounds one attempt (HTTP request, SMTP session). Default 10s.
	Timeout Duration `toml:"timeout" comment:"time allowed for one delivery attempt"`
	// Events publishes the digests on the admin event stream (kind
	// upgrade_failure). Default true.
	Events bool `toml:"events" comment:"publish digests on the admin event stream (kind upgrade_failure)"`
	// Webhooks are the [[notify.webhook]] tables.
	Webhooks []Webhook `toml:"webhook,omitempty" comment:"JSON POST receivers (an SMS gateway too, see docs/upgrades.md)"`
	// SMTP is the email channel; off while Host is empty.
	SMTP SMTP `toml:"smtp" comment:"email channel; off while host is empty"`
}

// Webhook is one [[notify.webhook]] table.
type Webhook struct {
	// Name identifies the webhook: 1-32 letters, digits, '.', '_', '-'.
	Name string `toml:"name" comment:"channel name (webhook:<name>)"`
	// URL is the http or https URL the JSON is POSTed to.
	URL string `toml:"url" comment:"http(s) URL the digest JSON is POSTed to"`
	// Secret is the HMAC-SHA256 key of X-Termd-Signature, at least 16
	// bytes. SecretEnv names an environment variable to read it from
	// instead (keeps it out of the file).
	Secret    string `toml:"secret,omitempty" comment:"HMAC-SHA256 key of X-Termd-Signature (>= 16 bytes)"`
	SecretEnv string `toml:"secret_env,omitempty" comment:"environment variable holding the secret"`
}

// SMTP is [notify.smtp].
type SMTP struct {
	// Host is the submission server; empty disables email.
	Host string `toml:"host" comment:"SMTP server; empty disables email"`
	// Port defaults to 587 (submission).
	Port int `toml:"port" comment:"SMTP port"`
	// Username and Password authenticate (SMTP AUTH, PLAIN or LOGIN as
	// offered) when Username is set. The password may come from the
	// environment variable TERMD_SMTP_PASSWORD instead.
	Username string `toml:"username" comment:"SMTP AUTH user; empty: no authentication"`
	Password string `toml:"password" comment:"SMTP AUTH password (or env TERMD_SMTP_PASSWORD)"`
	// From is the sender address; To the recipients.
	From string   `toml:"from" comment:"sender address"`
	To   []string `toml:"to" comment:"recipient addresses"`
	// StartTLS is "opportunistic" (default: upgrade when offered),
	// "mandatory" or "off".
	StartTLS string `toml:"starttls" comment:"opportunistic, mandatory or off"`
	// CAFile, when set, is an absolute path to PEM CA certificates that
	// are trusted for the server's certificate instead of the system's
	// (a relay with a private CA). Default "": the system roots.
	CAFile string `toml:"ca_file" comment:"PEM CA certificates trusted instead of the system roots (absolute path)"`
}

// LoadCAFile reads a PEM bundle of CA certificates.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

// defaultNotify is [notify]'s defaults.
func defaultNotify() Notify {
	return Notify{
		DigestWindow: D(DefaultDigestWindow), MinBackoff: D(DefaultMinBackoff), MaxBackoff: D(DefaultMaxBackoff),
		MaxAge: D(DefaultNotifyMaxAge), Retention: D(DefaultNotifyKeep), Timeout: D(DefaultNotifyTimout),
		Events: true, SMTP: SMTP{Port: DefaultSMTPPort, StartTLS: StartTLSOpportunistic},
	}
}

// normalizeNotify makes empty lists nil, as Defaults has them, so a
// loaded config compares equal to the one it was written from.
func (c *Config) normalizeNotify() {
	if len(c.Notify.Webhooks) == 0 {
		c.Notify.Webhooks = nil
	}
	if len(c.Notify.SMTP.To) == 0 {
		c.Notify.SMTP.To = nil
	}
}

// applyNotifyEnv fills secrets kept in the environment.
func (c *Config) applyNotifyEnv(getenv func(string) string) {
	if v := getenv("TERMD_SMTP_PASSWORD"); v != "" {
		c.Notify.SMTP.Password = v
	}
	for i := range c.Notify.Webhooks {
		if w := &c.Notify.Webhooks[i]; w.SecretEnv != "" {
			if v := getenv(w.SecretEnv); v != "" {
				w.Secret = v
			}
		}
	}
}

// validateNotify checks [notify], naming each bad key and value.
func (c *Config) validateNotify(add func(string, ...any)) {
	n := &c.Notify
	if d := n.DigestWindow.Duration; d < 0 || d > MaxDigestWindow {
		add("notify.digest_window must be 0-%s, not %s", MaxDigestWindow, d)
	}
	if n.MinBackoff.Duration < 100*time.Millisecond {
		add("notify.min_backoff must be at least 100ms, not %s", n.MinBackoff.Duration)
	}
	if n.MaxBackoff.Duration < n.MinBackoff.Duration {
		add("notify.max_backoff (%s) must be at least notify.min_backoff (%s)", n.MaxBackoff.Duration, n.MinBackoff.Duration)
	}
	if n.MaxAge.Duration < time.Minute {
		add("notify.max_age must be at least 1m, not %s", n.MaxAge.Duration)
	}
	if n.Retention.Duration < time.Hour {
		add("notify.retention must be at least 1h, not %s", n.Retention.Duration)
	}
	if n.Timeout.Duration < 100*time.Millisecond || n.Timeout.Duration > 10*time.Minute {
		add("notify.timeout must be 100ms-10m, not %s", n.Timeout.Duration)
	}
	seen := map[string]bool{}
	for i, w := range n.Webhooks {
		at := fmt.Sprintf("notify.webhook[%d]", i)
		if !webhookNameRe.MatchString(w.Name) {
			add("%s.name %q must be 1-32 letters, digits, '.', '_' or '-'", at, w.Name)
		} else if seen[w.Name] {
			add("%s.name %q is used twice", at, w.Name)
		}
		seen[w.Name] = true
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("%s.url %q must be an absolute http or https URL", at, w.URL)
		}
		if len(w.Secret) < MinWebhookSecret {
			add("%s.secret is %d bytes; at least %d are required (set secret, or secret_env and that variable)", at, len(w.Secret), MinWebhookSecret)
		}
	}
	s := &n.SMTP
	if s.Host == "" {
		return
	}
	if s.Port < 1 || s.Port > 65535 {
		add("notify.smtp.port must be 1-65535, not %d", s.Port)
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		add("notify.smtp.from %q is not an address: %v", s.From, err)
	}
	if len(s.To) == 0 {
		add("notify.smtp.to is empty (host is set)")
	}
	for _, to := range s.To {
		if _, err := mail.ParseAddress(to); err != nil {
			add("notify.smtp.to %q is not an address: %v", to, err)
		}
	}
	switch s.StartTLS {
	case StartTLSOpportunistic, StartTLSMandatory, StartTLSOff:
	default:
		add("notify.smtp.starttls must be opportunistic, mandatory or off, not %q", s.StartTLS)
	}
	if s.CAFile != "" {
		if !filepath.IsAbs(s.CAFile) {
			add("notify.smtp.ca_file %q must be an absolute path", s.CAFile)
		} else if _, err := LoadCAFile(s.CAFile); err != nil {
			add("notify.smtp.ca_file %q: %v", s.CAFile, err)
		}
	}
	if s.Username != "" && s.Password == "" {
		add("notify.smtp.password is empty while notify.smtp.username %q is set (set it, or TERMD_SMTP_PASSWORD)", s.Username)
	}
}
