package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
)

// Webhook headers.
const (
	// HeaderDelivery carries the delivery id, the same on every retry.
	HeaderDelivery = "X-Termd-Delivery"
	// HeaderSignature is "sha256=" + hex HMAC-SHA256(secret, body).
	HeaderSignature = "X-Termd-Signature"
	// HeaderEvent names the payload's type.
	HeaderEvent = "X-Termd-Event"
	// maxErrorBody is how much of a refusing receiver's body is kept in
	// the delivery's last error (bytes).
	maxErrorBody = 256
)

// WebhookPayload is the JSON body POSTed to webhooks.
type WebhookPayload struct {
	// Type is "upgrade_failure".
	Type string `json:"type"`
	// DeliveryID equals the X-Termd-Delivery header.
	DeliveryID string                `json:"delivery_id"`
	Digest     *events.FailureDigest `json:"digest"`
	// Text is the one-line summary (ready for an SMS gateway).
	Text string `json:"text"`
}

// webhook POSTs digests to one URL.
type webhook struct {
	url    string
	secret []byte
	client *http.Client
}

func newWebhook(w config.Webhook, timeout time.Duration) *webhook {
	return &webhook{url: w.URL, secret: []byte(w.Secret), client: &http.Client{
		Timeout: timeout,
		// A redirect would resend the body elsewhere unsigned-for: refuse.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Sign returns the X-Termd-Signature value of body under secret, for
// receivers to compare with hmac.Equal.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *webhook) send(ctx context.Context, d *events.FailureDigest) error {
	body, err := json.Marshal(WebhookPayload{Type: string(events.KindUpgradeFailure), DeliveryID: d.ID, Digest: d, Text: subject(d)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "termd-notify")
	req.Header.Set(HeaderDelivery, d.ID)
	req.Header.Set(HeaderEvent, string(events.KindUpgradeFailure))
	req.Header.Set(HeaderSignature, Sign(w.secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s: %q", resp.Status, msg)
	}
	return nil
}
