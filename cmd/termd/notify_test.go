package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/notify"
	"github.com/termd/termd/storage"
)

const hookSecret = "termd-test-webhook-secret"

// mailSink is a go-smtp server on loopback handing over each message.
type mailSink struct{ got chan string }

type mailSession struct{ s *mailSink }

func (mailSession) Reset()                               {}
func (mailSession) Logout() error                        { return nil }
func (mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (m mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err == nil {
		m.s.got <- string(b)
	}
	return err
}

func startMailSink(t *testing.T) (*mailSink, string) {
	s := &mailSink{got: make(chan string, 10)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return mailSession{s}, nil }))
	srv.Domain = "localhost"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Logf("smtp: %v", err)
		}
	}()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return s, l.Addr().String()
}

// TestNotificationsLeftByAKilledTermdAreDelivered starts termd on a data
// dir holding an undelivered failure (what a termd killed before its
// digest window ended leaves): the real process delivers it to a webhook
// receiver and an SMTP server started by the test, and GET /v1/outbox
// shows it delivered.
func TestNotificationsLeftByAKilledTermdAreDelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	hooks := make(chan *http.Request, 10)
	bodies := make(chan []byte, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- r
		bodies <- b
	}))
	defer hook.Close()
	sink, smtpAddr := startMailSink(t)
	host, port, _ := net.SplitHostPort(smtpAddr)
	n := newNode(t, `
[notify]
digest_window = "1s"
[[notify.webhook]]
name = "ops"
url = "`+hook.URL+`"
secret = "`+hookSecret+`"
[notify.smtp]
host = "`+host+`"
port = `+port+`
from = "termd@example.com"
to = ["ops@example.com"]
starttls = "off"
`)
	// The outbox as a killed termd left it.
	b, err := storage.OpenBadger(filepath.Join(n.dir, "data", dbDir), storage.BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev := notify.Event{ID: "report/rel-1/POS-1/1/7", Kind: notify.KindUpgradeFailed, ReleaseID: "rel-1", AppID: "pos", Version: "2.0",
		DeviceID: "POS-1", Model: "P400", Attempt: 1, Stage: 7, Code: 2, Message: "flash write failed", AtMs: time.Now().UnixMilli()}
	payload, _ := json.Marshal(ev)
	entry := storage.OutboxEntry{ID: ev.ID, Group: ev.ReleaseID, Kind: ev.Kind, At: ev.AtMs, Channels: []string{"event", "smtp", "webhook:ops"}, Payload: payload}
	if _, err := b.EnqueueOutbox(context.Background(), entry, ev.AtMs); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	n.start()
	select {
	case r := <-hooks:
		body := <-bodies
		if got, want := r.Header.Get(notify.HeaderSignature), notify.Sign([]byte(hookSecret), body); got != want {
			t.Fatalf("signature %q, want %q", got, want)
		}
		var p notify.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil || p.Digest == nil || p.Digest.Failures != 1 || p.Digest.Items[0].DeviceID != "POS-1" ||
			p.DeliveryID != r.Header.Get(notify.HeaderDelivery) {
			t.Fatalf("webhook payload %s (%v)", body, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no webhook from termd:\n%s", n.out.String())
	}
	select {
	case m := <-sink.got:
		if !strings.Contains(m, "1 upgrade failure: pos 2.0 (release rel-1") || !strings.Contains(m, "flash write failed") {
			t.Fatalf("mail:\n%s", m)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no mail from termd:\n%s", n.out.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page api.OutboxList
		n.get("/v1/outbox?state=delivered", &page)
		if len(page.Deliveries) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox after delivery: %+v", page)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var open api.OutboxList
	n.get("/v1/outbox", &open)
	if len(open.Deliveries) != 0 {
		t.Fatalf("pending or failed after delivery: %+v", open.Deliveries)
	}
}
