package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

const (
	testSecret = "0123456789abcdef-test-secret"
	// testWait bounds each wait for a delivery.
	testWait = 15 * time.Second
)

// testConfig is a [notify] with short timings for tests.
func testConfig() config.Notify {
	c := config.Defaults().Notify
	c.DigestWindow = config.D(200 * time.Millisecond)
	c.MinBackoff = config.D(50 * time.Millisecond)
	c.MaxBackoff = config.D(200 * time.Millisecond)
	c.Timeout = config.D(5 * time.Second)
	return c
}

// clock is a settable offset on the real clock.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }
func testLog(t *testing.T) *slog.Logger  { return slog.New(slog.NewTextHandler(t.Output(), nil)) }
func openNotifier(t *testing.T, o Options) *Notifier {
	t.Helper()
	if o.Log == nil {
		o.Log = testLog(t)
	}
	n, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return n
}

// failure is the i-th failure event of release rel.
func failure(rel string, i int) Event {
	return Event{
		ID: fmt.Sprintf("report/%s/dev-%04d/1/7", rel, i), Kind: KindUpgradeFailed, ReleaseID: rel, AppID: "pos", Version: "2.14.03b",
		FromVersion: "2.13.9", DeviceID: fmt.Sprintf("dev-%04d", i), Model: []string{"pos-a", "pos-b"}[i%2], Attempt: 1, Stage: 7,
		Code: uint64(40 + i%3), Message: "checksum mismatch", AtMs: int64(1_700_000_000_000 + i),
	}
}

func TestWebhookDigestSignedRetriedStableID(t *testing.T) {
	hook := newHookReceiver(t, 2) // two 500s before it takes one
	cfg := testConfig()
	cfg.Events = false
	cfg.Webhooks = []config.Webhook{{Name: "ops", URL: hook.srv.URL, Secret: testSecret}}
	store := storage.NewMemory()
	n := openNotifier(t, Options{Config: cfg, Store: store})
	ctx := context.Background()
	for i := range 120 {
		if err := n.Enqueue(ctx, failure("r1", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Enqueue(ctx, failure("r1", 5)); err != nil { // a repeat: not counted twice
		t.Fatal(err)
	}
	var calls []hookCall
	for range 3 {
		calls = append(calls, hook.next(t, testWait))
	}
	for i, c := range calls {
		verify(t, c, testSecret)
		if c.delivery == "" || c.delivery != calls[0].delivery || c.payload.DeliveryID != c.delivery {
			t.Fatalf("attempt %d: delivery id %q / %q, want %q on every retry", i, c.delivery, c.payload.DeliveryID, calls[0].delivery)
		}
	}
	if calls[2].status != 200 {
		t.Fatalf("third attempt answered %d", calls[2].status)
	}
	d := calls[2].payload.Digest
	if d == nil || d.Failures != 120 || d.Devices != 120 || len(d.Items) != events.MaxDigestItems || d.Omitted != 70 ||
		d.ReleaseID != "r1" || d.Version != "2.14.03b" || d.ByModel["pos-a"] != 60 || d.ByCode["40"] != 40 || d.ByKind[KindUpgradeFailed] != 120 {
		t.Fatalf("digest = %+v", d)
	}
	if it := d.Items[0]; it.DeviceID != "dev-0000" || it.Code != 40 || it.Message != "checksum mismatch" || it.FromVersion != "2.13.9" {
		t.Fatalf("first item = %+v", it)
	}
	if !strings.Contains(calls[2].payload.Text, "120 upgrade failures") {
		t.Fatalf("text = %q", calls[2].payload.Text)
	}
	select {
	case c := <-hook.got:
		t.Fatalf("a fourth request after delivery: %+v", c.payload.Digest)
	case <-time.After(500 * time.Millisecond):
	}
	// The outbox shows them delivered, after three attempts.
	ds, _, err := store.ListOutbox(ctx, storage.OutboxFilter{State: storage.OutboxDelivered, Limit: 500})
	if err != nil || len(ds) != 120 || ds[0].Attempts != 3 || ds[0].Batch != calls[0].delivery {
		t.Fatalf("delivered = %d (%v), first %+v", len(ds), err, ds[0])
	}
}

func TestEmailDigestThroughRealSMTP(t *testing.T) {
	srv := newSMTPServer(t, 1) // one 451 first: retried
	host, port := srv.hostPort(t)
	cfg := testConfig()
	cfg.Events = false
	cfg.SMTP = config.SMTP{Host: host, Port: port, From: "termd@example.com", To: []string{"ops@example.com", "oncall@example.com"}, StartTLS: config.StartTLSOpportunistic}
	n := openNotifier(t, Options{Config: cfg, Store: storage.NewMemory()})
	for i := range 3 {
		if err := n.Enqueue(context.Background(), failure("rel-7", i)); err != nil {
			t.Fatal(err)
		}
	}
	m := srv.next(t, testWait)
	if m.from != "termd@example.com" || strings.Join(m.to, ",") != "ops@example.com,oncall@example.com" {
		t.Fatalf("envelope %q -> %v", m.from, m.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	if s := msg.Header.Get("Subject"); s != "[termd] 3 upgrade failures: pos 2.14.03b (release rel-7, 3 device(s))" {
		t.Fatalf("subject %q", s)
	}
	if id := msg.Header.Get(HeaderDelivery); len(id) != 32 || msg.Header.Get("Message-Id") != "<"+id+"@termd>" {
		t.Fatalf("delivery id %q, Message-Id %q", id, msg.Header.Get("Message-Id"))
	}
	raw, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	for _, want := range []string{"dev-0000", "dev-0002", "pos-b", "checksum mismatch", "By code: 40=1 41=1 42=1", "By model: pos-a=2 pos-b=1"} {
		if !strings.Contains(body, want) {
			t.Fatalf("mail body lacks %q:\n%s", want, body)
		}
	}
}

// TestStartTLSWhenOffered: with the default policy, a server offering
// STARTTLS gets the digest over TLS (verified against notify.smtp.ca_file),
// and a mandatory policy delivers to it too.
func TestStartTLSWhenOffered(t *testing.T) {
	tc, caFile := selfSignedCA(t)
	for _, policy := range []string{config.StartTLSOpportunistic, config.StartTLSMandatory} {
		t.Run(policy, func(t *testing.T) {
			srv := newSMTPServerTLS(t, 0, tc)
			host, port := srv.hostPort(t)
			cfg := testConfig()
			cfg.Events = false
			cfg.SMTP = config.SMTP{Host: host, Port: port, From: "termd@example.com", To: []string{"ops@example.com"}, StartTLS: policy, CAFile: caFile}
			n := openNotifier(t, Options{Config: cfg, Store: storage.NewMemory()})
			_ = n.Enqueue(context.Background(), failure("r-tls", 1))
			if m := srv.next(t, testWait); !m.tls || !strings.Contains(m.data, "1 upgrade failure") {
				t.Fatalf("mail over TLS %v:\n%s", m.tls, m.data)
			}
		})
	}
}

func TestMandatoryStartTLSRefusesPlainServer(t *testing.T) {
	srv := newSMTPServer(t, 0) // offers no STARTTLS
	host, port := srv.hostPort(t)
	cfg := testConfig()
	cfg.Events = false
	cfg.SMTP = config.SMTP{Host: host, Port: port, From: "termd@example.com", To: []string{"ops@example.com"}, StartTLS: config.StartTLSMandatory}
	store := storage.NewMemory()
	n := openNotifier(t, Options{Config: cfg, Store: store})
	if err := n.Enqueue(context.Background(), failure("r", 1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testWait)
	for {
		ds, _, _ := store.ListOutbox(context.Background(), storage.OutboxFilter{State: storage.OutboxPending})
		if len(ds) == 1 && ds[0].Attempts > 0 {
			if ds[0].LastError == "" {
				t.Fatal("failed attempt without an error")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt recorded: %+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case m := <-srv.got:
		t.Fatalf("mail sent in clear despite starttls = mandatory: %q", m.data)
	default:
	}
}

func TestEventDigestOnBus(t *testing.T) {
	bus := events.NewBus()
	sub := bus.Subscribe(16)
	defer sub.Close()
	n := openNotifier(t, Options{Config: testConfig(), Store: storage.NewMemory(), Bus: bus})
	for i := range 4 {
		_ = n.Enqueue(context.Background(), failure("r9", i))
	}
	select {
	case ev := <-sub.C:
		if ev.Kind != events.KindUpgradeFailure || ev.Digest == nil || ev.Digest.Failures != 4 || ev.Digest.ReleaseID != "r9" {
			t.Fatalf("event = %+v", ev)
		}
	case <-time.After(testWait):
		t.Fatal("no upgrade_failure event")
	}
	select {
	case ev := <-sub.C:
		t.Fatalf("a second event for one window: %+v", ev)
	case <-time.After(400 * time.Millisecond):
	}
}

func TestGiveUpAfterMaxAgeToldOnOtherChannels(t *testing.T) {
	hook := newHookReceiver(t, 1<<30) // always 500
	bus := events.NewBus()
	sub := bus.Subscribe(16)
	defer sub.Close()
	cfg := testConfig()
	cfg.MaxAge = config.D(time.Hour)
	cfg.Webhooks = []config.Webhook{{Name: "down", URL: hook.srv.URL, Secret: testSecret}}
	var clk clock
	store := storage.NewMemory()
	n := openNotifier(t, Options{Config: cfg, Store: store, Bus: bus, Now: clk.now})
	_ = n.Enqueue(context.Background(), failure("r1", 1))
	hook.next(t, testWait)
	if ev := <-sub.C; ev.Digest == nil || ev.Digest.ByKind[KindUpgradeFailed] != 1 {
		t.Fatalf("first event = %+v", ev)
	}
	clk.advance(2 * time.Hour) // past max_age: the next attempt is the last
	deadline := time.Now().Add(testWait)
	for {
		ds, _, _ := store.ListOutbox(context.Background(), storage.OutboxFilter{State: storage.OutboxFailed})
		if len(ds) == 1 {
			if ds[0].Channel != "webhook:down" || !strings.Contains(ds[0].LastError, "500") {
				t.Fatalf("failed delivery = %+v", ds[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("delivery not given up after max_age")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case ev := <-sub.C:
		if ev.Digest == nil || ev.Digest.ByKind[KindDeliveryFailed] != 1 || !strings.Contains(ev.Digest.Items[0].Message, "webhook:down gave up") {
			t.Fatalf("delivery problem event = %+v", ev.Digest)
		}
	case <-time.After(testWait):
		t.Fatal("the give-up was not told on the event stream")
	}
}

func TestBackoffBounded(t *testing.T) {
	n := &Notifier{cfg: config.Notify{MinBackoff: config.D(time.Second), MaxBackoff: config.D(10 * time.Second)}}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i, w := range want {
		if got := n.backoff(uint32(i)); got != w*time.Second {
			t.Fatalf("backoff(%d) = %v, want %v", i, got, w*time.Second)
		}
	}
	if got := n.backoff(1 << 31); got != 10*time.Second {
		t.Fatalf("backoff(huge) = %v", got)
	}
}

func TestZeroConfigGetsDefaults(t *testing.T) {
	n, err := Open(Options{Config: config.Notify{}, Store: storage.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	if n.backoff(0) != config.DefaultMinBackoff || n.backoff(40) != config.DefaultMaxBackoff || n.cfg.MaxAge.Duration != config.DefaultNotifyMaxAge || n.cfg.Timeout.Duration != config.DefaultNotifyTimout {
		t.Fatalf("zero config: %+v", n.cfg)
	}
	if len(n.Channels()) != 0 {
		t.Fatalf("channels of a zero config: %v", n.Channels())
	}
	if err := n.Enqueue(context.Background(), failure("r", 1)); err != nil {
		t.Fatal(err) // nothing configured: nothing stored, no error
	}
}

// A rollout's automatic pause joins its release's digest: named in the
// subject with its reason, counted by kind, not as a failure.
func TestRolloutPausedInDigest(t *testing.T) {
	bus := events.NewBus()
	sub := bus.Subscribe(16)
	defer sub.Close()
	n := openNotifier(t, Options{Config: testConfig(), Store: storage.NewMemory(), Bus: bus})
	for i := range 3 {
		_ = n.Enqueue(context.Background(), failure("r7", i))
	}
	_ = n.Enqueue(context.Background(), Event{ID: "rollout/r7/paused/1", Kind: KindRolloutPaused, ReleaseID: "r7", AppID: "pos", Version: "2.0",
		Message: "phase 1: 3 of 20 devices failed, above 5%"})
	select {
	case ev := <-sub.C:
		d := ev.Digest
		if d == nil || d.Failures != 3 || d.ByKind[KindRolloutPaused] != 1 || d.RolloutPaused != "phase 1: 3 of 20 devices failed, above 5%" {
			t.Fatalf("digest %+v", d)
		}
		if s := subject(d); !strings.HasPrefix(s, "[termd] ROLLOUT PAUSED (phase 1: 3 of 20 devices failed, above 5%), 3 upgrade failures") {
			t.Fatalf("subject %q", s)
		}
	case <-time.After(testWait):
		t.Fatal("no digest")
	}
}
