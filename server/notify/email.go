package notify

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
)

// email sends digests through an SMTP server with go-mail (STARTTLS,
// SMTP AUTH discovery, MIME and header encoding done by a maintained
// library rather than by hand).
type email struct {
	cfg     config.SMTP
	timeout time.Duration
	tls     *tls.Config
}

func newEmail(cfg config.SMTP, timeout time.Duration) (*email, error) {
	e := &email{cfg: cfg, timeout: timeout, tls: &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}}
	if cfg.CAFile != "" {
		pool, err := config.LoadCAFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp: ca_file %s: %w", cfg.CAFile, err)
		}
		e.tls.RootCAs = pool
	}
	if _, err := e.client(); err != nil { // option errors show at start
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return e, nil
}

// client returns a go-mail client for one session.
func (e *email) client() (*mail.Client, error) {
	policy := mail.TLSOpportunistic
	switch e.cfg.StartTLS {
	case config.StartTLSMandatory:
		policy = mail.TLSMandatory
	case config.StartTLSOff:
		policy = mail.NoTLS
	}
	opts := []mail.Option{mail.WithPort(e.cfg.Port), mail.WithTLSPolicy(policy), mail.WithTimeout(e.timeout), mail.WithTLSConfig(e.tls)}
	if e.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(e.cfg.Username), mail.WithPassword(e.cfg.Password))
	}
	return mail.NewClient(e.cfg.Host, opts...)
}

func (e *email) send(ctx context.Context, d *events.FailureDigest) error {
	m := mail.NewMsg()
	if err := m.From(e.cfg.From); err != nil {
		return err
	}
	if err := m.To(e.cfg.To...); err != nil {
		return err
	}
	m.Subject(subject(d))
	// The delivery id makes a resent digest recognisable as the same
	// message (mail clients thread or de-duplicate on Message-ID).
	m.SetMessageIDWithValue(d.ID + "@termd")
	m.SetGenHeader(mail.Header(HeaderDelivery), d.ID)
	m.SetDate()
	m.SetBodyString(mail.TypeTextPlain, text(d))
	c, err := e.client()
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, m)
}
