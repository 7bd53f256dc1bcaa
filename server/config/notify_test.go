package config

import (
	"strings"
	"testing"
	"time"
)

func TestNotifyValidate(t *testing.T) {
	hook := Webhook{Name: "ops", URL: "https://hooks.example/termd", Secret: strings.Repeat("s", MinWebhookSecret)}
	smtp := SMTP{Host: "mail.example", Port: 587, From: "termd@example.com", To: []string{"ops@example.com"}, StartTLS: StartTLSMandatory}
	tests := []struct {
		name string
		mod  func(n *Notify)
		want string // "" = valid
	}{
		{"defaults", func(n *Notify) {}, ""},
		{"full", func(n *Notify) { n.Webhooks = []Webhook{hook}; n.SMTP = smtp }, ""},
		{"window", func(n *Notify) { n.DigestWindow = D(2 * time.Hour) }, "notify.digest_window must be 0-1h0m0s, not 2h0m0s"},
		{"backoff", func(n *Notify) { n.MaxBackoff = D(time.Second) }, "notify.max_backoff (1s) must be at least notify.min_backoff (5s)"},
		{"max age", func(n *Notify) { n.MaxAge = D(time.Second) }, "notify.max_age must be at least 1m, not 1s"},
		{"hook name", func(n *Notify) { h := hook; h.Name = "a b"; n.Webhooks = []Webhook{h} }, `notify.webhook[0].name "a b"`},
		{"hook twice", func(n *Notify) { n.Webhooks = []Webhook{hook, hook} }, `notify.webhook[1].name "ops" is used twice`},
		{"hook url", func(n *Notify) { h := hook; h.URL = "ftp://x"; n.Webhooks = []Webhook{h} }, `notify.webhook[0].url "ftp://x"`},
		{"hook secret", func(n *Notify) { h := hook; h.Secret = "short"; n.Webhooks = []Webhook{h} }, "notify.webhook[0].secret is 5 bytes"},
		{"smtp port", func(n *Notify) { n.SMTP = smtp; n.SMTP.Port = 0 }, "notify.smtp.port must be 1-65535, not 0"},
		{"smtp from", func(n *Notify) { n.SMTP = smtp; n.SMTP.From = "nobody" }, `notify.smtp.from "nobody"`},
		{"smtp to", func(n *Notify) { n.SMTP = smtp; n.SMTP.To = nil }, "notify.smtp.to is empty"},
		{"smtp tls", func(n *Notify) { n.SMTP = smtp; n.SMTP.StartTLS = "always" }, `notify.smtp.starttls must be opportunistic, mandatory or off, not "always"`},
		{"smtp ca relative", func(n *Notify) { n.SMTP = smtp; n.SMTP.CAFile = "ca.pem" }, `notify.smtp.ca_file "ca.pem" must be an absolute path`},
		{"smtp ca missing", func(n *Notify) { n.SMTP = smtp; n.SMTP.CAFile = "/nonexistent/ca.pem" }, `notify.smtp.ca_file "/nonexistent/ca.pem"`},
		{"smtp password", func(n *Notify) { n.SMTP = smtp; n.SMTP.Username = "u" }, "notify.smtp.password is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mod(&c.Notify)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNotifySecretsFromEnv(t *testing.T) {
	c := valid()
	c.Notify.Webhooks = []Webhook{{Name: "sms", URL: "http://127.0.0.1:9/sms", SecretEnv: "SMS_HOOK_SECRET"}}
	c.Notify.SMTP = SMTP{Host: "h", Port: 25, Username: "u", From: "a@b.c", To: []string{"d@e.f"}, StartTLS: StartTLSOff}
	if err := c.Validate(); err == nil {
		t.Fatal("valid without the secrets")
	}
	env := map[string]string{"SMS_HOOK_SECRET": strings.Repeat("k", 32), "TERMD_SMTP_PASSWORD": "pw"}
	c.ApplyEnv(func(k string) string { return env[k] })
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Notify.SMTP.Password != "pw" || c.Notify.Webhooks[0].Secret != env["SMS_HOOK_SECRET"] {
		t.Fatalf("secrets not applied: %+v", c.Notify)
	}
}
