package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

// sseReader reads an event stream line by line.
type sseReader struct {
	t  *testing.T
	br *bufio.Reader
}

// next returns the next event's name and data, skipping comments
// (returned with name ":" when wantComments).
func (s *sseReader) next(wantComments bool) (name, data string) {
	s.t.Helper()
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if name != "" || data != "" {
				return name, data
			}
		case strings.HasPrefix(line, ":"):
			if wantComments {
				return ":", strings.TrimSpace(line[1:])
			}
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
}

func openStream(t *testing.T, f *fixture) *sseReader {
	t.Helper()
	resp := f.do(t, "GET", "/v1/events", testToken, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseReader{t: t, br: bufio.NewReader(resp.Body)}
	if n, c := s.next(true); n != ":" || c != "subscribed" {
		t.Fatalf("first line %q %q", n, c)
	}
	return s
}

func TestEvents(t *testing.T) {
	f := newFixture(t, nil)
	f.h.keepalive = 50 * time.Millisecond
	s := openStream(t, f)
	if f.bus.Subscribers() != 1 {
		t.Fatalf("%d subscribers", f.bus.Subscribers())
	}
	f.bus.Publish(events.Event{Kind: events.KindOnline, DeviceID: "POS-1", SessionID: 9, At: 1700000000000, Remote: "10.0.0.1:4000"})
	f.bus.Publish(events.Event{Kind: events.KindOffline, DeviceID: "POS-1", SessionID: 9, At: 1700000001000, Reason: "timeout"})
	name, data := s.next(false)
	if name != "online" || data != `{"kind":"online","device_id":"POS-1","session_id":9,"at_ms":1700000000000,"remote":"10.0.0.1:4000"}` {
		t.Errorf("event %q %s", name, data)
	}
	name, data = s.next(false)
	var ev events.Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil || name != "offline" || ev.Reason != "timeout" {
		t.Errorf("event %q %s", name, data)
	}
	if n, c := s.next(true); n != ":" || c != "keepalive" {
		t.Errorf("expected a keepalive, got %q %q", n, c)
	}
}

func TestEventsUnavailableWithoutBus(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Bus = nil })
	expectError(t, f.do(t, "GET", "/v1/events", testToken, ""), 503, api.CodeUnavailable)
}

func TestWriteDropped(t *testing.T) {
	bus := events.NewBus()
	sub := bus.Subscribe(1)
	defer sub.Close()
	for range 4 {
		bus.Publish(events.Event{Kind: events.KindOnline, DeviceID: "X"})
	}
	var sb strings.Builder
	bw := bufio.NewWriter(&sb)
	reported := writeDropped(bw, sub, 0)
	reported = writeDropped(bw, sub, reported) // nothing new: nothing written
	bw.Flush()
	if reported != 3 || sb.String() != "event: dropped\ndata: {\"kind\":\"dropped\",\"dropped\":3}\n\n" {
		t.Errorf("reported %d, wrote %q", reported, sb.String())
	}
}

func TestBackup(t *testing.T) {
	f := newFixture(t, nil)
	resp := f.do(t, "GET", "/v1/backup", testToken, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("backup %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if b := readBody(t, resp); b != "BACKUP-BYTES" {
		t.Errorf("body %q", b)
	}
	if v := resp.Trailer.Get(api.BackupVersionHeader); v != "42" {
		t.Errorf("version trailer %q", v)
	}

	// A failure before the first byte is a JSON error.
	f = newFixture(t, func(o *Options) {
		o.Backup = func(ctx context.Context, w io.Writer) (uint64, error) { return 0, storage.ErrClosed }
	})
	expectError(t, f.do(t, "GET", "/v1/backup", testToken, ""), 503, api.CodeUnavailable)

	// A failure mid-stream aborts it: the client sees an error, no trailer.
	f = newFixture(t, func(o *Options) {
		o.Backup = func(ctx context.Context, w io.Writer) (uint64, error) {
			_, _ = io.WriteString(w, strings.Repeat("x", 100<<10))
			return 0, errors.New("disk error")
		}
	})
	resp = f.do(t, "GET", "/v1/backup", testToken, "")
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("a failed backup read to a clean EOF")
	}
	if v := resp.Trailer.Get(api.BackupVersionHeader); v != "" {
		t.Errorf("failed backup has version %q", v)
	}

	f = newFixture(t, func(o *Options) { o.Backup = nil })
	expectError(t, f.do(t, "GET", "/v1/backup", testToken, ""), 503, api.CodeUnavailable)
}

func TestServeStopsStreams(t *testing.T) {
	bus := events.NewBus()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, errc, err := Serve(ctx, "127.0.0.1:0", New(newFakeNode(), Options{Token: testToken, Bus: bus, Logger: quietLog}), quietLog)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+addr.String()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != ": subscribed\n" {
		t.Fatalf("first line %q", line)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop with an open event stream")
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("shutdown took %v", time.Since(start))
	}
	if _, open := <-errc; open {
		t.Error("error channel not closed")
	}
	if bus.Subscribers() != 0 {
		t.Errorf("%d subscribers left", bus.Subscribers())
	}
	if _, _, err := Serve(context.Background(), "256.0.0.1:0", nil, quietLog); err == nil {
		t.Error("Serve on a bad address did not fail")
	}
}
