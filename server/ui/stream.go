package ui

// The console's live stream (GET /ui/stream): every console page opens
// it (ui.js) for the live online count, the toasts and the events page.
// It proxies the admin API's GET /v1/events with the session's token
// (a browser's EventSource cannot set an Authorization header) and
// aggregates: at most one message per streamTick with the counts per
// kind, up to maxSampled events one by one, and the online count read
// from GET /v1/stats when presence changed. A connect storm of thousands
// of events a second thus reaches a browser as two small messages a
// second. Toast-worthy events (upgrade failure digests, a rollout that
// paused itself, refused durable writes) go out at once.
//
// termd's loops never wait for this: the bus drops events for a
// subscriber whose queue is full and counts them (server/events), and
// the count reaches the browser as "dropped".

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/termd/termd/server/admin/api"
)

const (
	// streamTick is the aggregation window: at most one message per tick.
	streamTick = 500 * time.Millisecond
	// maxSampled bounds the events a message carries one by one; the
	// rest are only counted.
	maxSampled = 20
	// streamKeepalive is the period of the keepalive comment.
	streamKeepalive = 15 * time.Second
	// streamWriteTimeout drops a browser that stops reading.
	streamWriteTimeout = 30 * time.Second
	// maxToastsQueued bounds toasts waiting to be written.
	maxToastsQueued = 16
	// maxEventLine bounds one line of the API's stream (a digest lists
	// at most 50 failures).
	maxEventLine = 1 << 20
)

// tickMsg is the aggregated message the browser gets (event "tick").
type tickMsg struct {
	AtMs int64 `json:"at_ms"`
	// Online is the node's online count, when presence changed (or on the
	// first message); -1 when not read.
	Online int `json:"online"`
	// Counts are the events of the window by kind.
	Counts map[string]int `json:"counts"`
	// Events are up to maxSampled of them, as the API sent them.
	Events []json.RawMessage `json:"events"`
	// Omitted counts the window's events not in Events.
	Omitted int `json:"omitted"`
	// Dropped is the bus's running count of events this stream lost.
	Dropped uint64 `json:"dropped"`
}

// toastMsg is a pop-up (event "toast").
type toastMsg struct {
	Kind      string `json:"kind"`
	Title     string `json:"title"`
	Body      string `json:"body"`
	AtMs      int64  `json:"at_ms"`
	ReleaseID string `json:"release_id,omitempty"`
}

// aggregator collects one window of events from the parser goroutine.
type aggregator struct {
	mu       sync.Mutex
	counts   map[string]int
	events   []json.RawMessage
	omitted  int
	presence bool
	dropped  uint64
	toasts   chan toastMsg
}

func newAggregator() *aggregator {
	return &aggregator{counts: map[string]int{}, toasts: make(chan toastMsg, maxToastsQueued)}
}

// presenceKinds change the online count.
var presenceKinds = map[string]bool{"online": true, "offline": true, "replaced": true}

// add takes one event of the API's stream.
func (a *aggregator) add(kind string, data []byte) {
	if kind == api.EventDropped {
		var d struct{ Dropped uint64 }
		if json.Unmarshal(data, &d) == nil {
			a.mu.Lock()
			a.dropped = d.Dropped
			a.mu.Unlock()
		}
		return
	}
	if t, ok := toastOf(kind, data); ok {
		select {
		case a.toasts <- t:
		default: // a browser that many toasts behind gets the next ones
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.counts[kind]++
	a.presence = a.presence || presenceKinds[kind]
	if len(a.events) < maxSampled {
		a.events = append(a.events, json.RawMessage(bytes.Clone(data)))
	} else {
		a.omitted++
	}
}

// take returns the window's message and starts a new window; ok is false
// when nothing happened.
func (a *aggregator) take(now time.Time) (m tickMsg, presence, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.counts) == 0 {
		return m, false, false
	}
	m = tickMsg{AtMs: now.UnixMilli(), Online: -1, Counts: a.counts, Events: a.events, Omitted: a.omitted, Dropped: a.dropped}
	presence = a.presence
	a.counts, a.events, a.omitted, a.presence = map[string]int{}, nil, 0, false
	return m, presence, true
}

// toastOf says whether an event is shown as a toast on every page.
func toastOf(kind string, data []byte) (toastMsg, bool) {
	switch kind {
	case "upgrade_failure", "rollout", "storage":
	default:
		return toastMsg{}, false
	}
	var ev api.Event
	if json.Unmarshal(data, &ev) != nil {
		return toastMsg{}, false
	}
	t := toastMsg{Kind: kind, AtMs: ev.AtMs, ReleaseID: ev.Release}
	switch {
	case kind == "upgrade_failure" && ev.Digest != nil:
		d := ev.Digest
		t.Title = fmt.Sprintf("Upgrade failures: %s %s", d.AppID, d.Version)
		t.Body = fmt.Sprintf("%d failures on %d devices (release %s)", d.Failures, d.Devices, d.ReleaseID)
		t.ReleaseID = d.ReleaseID
	case kind == "rollout" && ev.State == "paused" && ev.Reason != api.PausedByOperator:
		t.Title = "Rollout paused itself"
		t.Body = fmt.Sprintf("release %s: %s", ev.Release, ev.Reason)
	case kind == "storage" && ev.State == "writes_refused":
		t.Title = "Durable writes refused"
		t.Body = "free disk space is below storage.min_free_mb: operator actions and reports are refused"
	default:
		return toastMsg{}, false
	}
	return t, true
}

// streamRoutes installs the live stream.
func (u *UI) streamRoutes() {
	u.mux.HandleFunc("GET "+Prefix+"stream", u.stream)
}

func (u *UI) stream(w http.ResponseWriter, r *http.Request) {
	s := u.session(r)
	if s == nil {
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(u.ctx, cancel) // Close ends every stream
	defer stop()

	body, status, err := u.openEvents(ctx, r, s)
	if err != nil {
		u.log.Warn("console stream failed", "operator", s.Name, "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	agg := newAggregator()
	parsed := make(chan struct{})
	go func() {
		defer close(parsed)
		parseEvents(body, agg)
	}()
	defer func() {
		cancel()
		_ = body.Close()
		<-parsed
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriter(w)
	send := func(event string, v any) bool {
		b, _ := json.Marshal(v)
		fmt.Fprintf(bw, "event: %s\ndata: %s\n\n", event, b)
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return bw.Flush() == nil && rc.Flush() == nil
	}
	online := func() int {
		var st api.Stats
		if (&Request{Request: r.WithContext(ctx), Session: s, u: u}).Get("/v1/stats", &st) != nil {
			return -1
		}
		return st.Online
	}
	if !send("tick", tickMsg{AtMs: time.Now().UnixMilli(), Online: online(), Counts: map[string]int{}}) {
		return
	}
	tick := time.NewTicker(streamTick)
	defer tick.Stop()
	keepalive := time.NewTicker(streamKeepalive)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-parsed:
			return // the API ended the stream (termd is stopping)
		case t := <-agg.toasts:
			if !send("toast", t) {
				return
			}
		case now := <-tick.C:
			m, presence, ok := agg.take(now)
			if !ok {
				continue
			}
			if presence {
				m.Online = online()
			}
			if !send("tick", m) {
				return
			}
		case <-keepalive.C:
			fmt.Fprint(bw, ": keepalive\n\n")
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			if bw.Flush() != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

// openEvents starts GET /v1/events in process with the session's token
// and returns its body, a pipe that ends when ctx does. A refusal is
// returned as an error with the API's status.
func (u *UI) openEvents(ctx context.Context, r *http.Request, s *Session) (io.ReadCloser, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return nil, http.StatusInternalServerError, err
	}
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Authorization", "Bearer "+s.token)
	pr, pw := io.Pipe()
	pw2 := &pipeWriter{h: http.Header{}, pw: pw, status: make(chan int, 1)}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		u.api.ServeHTTP(pw2, req)
		pw2.WriteHeader(http.StatusOK) // in case it wrote nothing
		_ = pw.Close()
	}()
	select {
	case code := <-pw2.status:
		if code == http.StatusOK {
			return pr, code, nil
		}
		b, _ := io.ReadAll(io.LimitReader(pr, 4096))
		_ = pr.Close()
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			return nil, code, errors.New(e.Message)
		}
		return nil, code, fmt.Errorf("event stream refused: HTTP %d", code)
	case <-ctx.Done():
		_ = pr.Close()
		return nil, http.StatusServiceUnavailable, ctx.Err()
	}
}

// pipeWriter is the ResponseWriter of the in-process event stream: the
// body goes into a pipe the proxy reads; the status is reported once.
type pipeWriter struct {
	h      http.Header
	pw     *io.PipeWriter
	status chan int
	once   sync.Once
}

func (p *pipeWriter) Header() http.Header { return p.h }
func (p *pipeWriter) WriteHeader(code int) {
	p.once.Do(func() { p.status <- code })
}
func (p *pipeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.pw.Write(b)
}

// Flush is a no-op: every Write reaches the reader directly.
func (p *pipeWriter) Flush() {}

// parseEvents reads Server-Sent Events until r ends and hands each to agg.
func parseEvents(r io.Reader, agg *aggregator) {
	br := bufio.NewReaderSize(r, 64<<10)
	var kind string
	var data []byte
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(line) > maxEventLine {
				return
			}
			long = append(long, line...)
			continue
		}
		if err != nil {
			return
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if kind != "" && len(data) > 0 {
				agg.add(kind, data)
			}
			kind, data = "", data[:0]
		case bytes.HasPrefix(line, []byte("event: ")):
			kind = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data[:0], line[len("data: "):]...)
		}
	}
}
