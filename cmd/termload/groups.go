package main

// termload -scenario groups: device groups under load (docs/groups.md,
// docs/performance.md), on Go SDK clients rather than the lean engine:
//
//  1. switch storm: -n terminals join open group A, then switch between
//     A and B (B with member limit -limit) as fast as they can for
//     -duration; changes/s and refusals are counted, and afterwards the
//     admin API must show every terminal in exactly one of A and B and B
//     within its limit;
//  2. fan-out: the operator sends -messages messages to operator-only
//     group C holding every terminal; each carries its send time, and
//     every member's receive latency is recorded (p50/p99), with
//     -slow terminals not reading at all; -probes terminals heartbeat
//     all along, so the heartbeat p99 during the fan-outs shows.
//
//	termload -scenario groups -addr 127.0.0.1:7000 -admin http://127.0.0.1:7080 -token T -secret S -n 1000

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/admin/api"
)

type groupsOpts struct {
	addr, admin, token, secret, prefix string
	n, limit, messages, slow, probes   int
	concurrency                        int
	duration                           time.Duration
}

// isGroupsScenario reports whether args ask for the groups scenario.
func isGroupsScenario(args []string) bool {
	for i, a := range args {
		if a == "-scenario=groups" || a == "--scenario=groups" || (a == "-scenario" || a == "--scenario") && i+1 < len(args) && args[i+1] == "groups" {
			return true
		}
	}
	return false
}

func groupsScenario(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o groupsOpts
	fs := flag.NewFlagSet("termload -scenario groups", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("scenario", "groups", "groups")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:7000", "termd TGP address")
	fs.StringVar(&o.admin, "admin", "http://127.0.0.1:7080", "termd admin API base URL")
	fs.StringVar(&o.token, "token", "", "admin operator token")
	fs.StringVar(&o.secret, "secret", "", "fleet secret")
	fs.StringVar(&o.prefix, "prefix", "GL-", "device id prefix")
	fs.IntVar(&o.n, "n", 1000, "terminals")
	fs.IntVar(&o.limit, "limit", 0, "member limit of group B (0: n/2)")
	fs.IntVar(&o.messages, "messages", 20, "operator messages to the all-members group")
	fs.IntVar(&o.slow, "slow", 1, "terminals that never read during the fan-out")
	fs.IntVar(&o.probes, "probes", 20, "terminals that heartbeat every 100 ms throughout")
	fs.IntVar(&o.concurrency, "concurrency", 200, "simultaneous connects")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "switch storm duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.secret == "" || o.token == "" {
		return errors.New("-secret and -token are required")
	}
	if o.limit == 0 {
		o.limit = o.n / 2
	}
	run := fmt.Sprintf("%d", time.Now().Unix()%100000)
	ga, gb, gc := "A"+run, "B"+run, "C"+run
	for _, g := range []api.GroupCreate{{ID: ga, Policy: "open"}, {ID: gb, Policy: "open", Limit: o.limit}, {ID: gc}} {
		if err := o.call(ctx, "POST", "/v1/groups", g, nil); err != nil {
			return err
		}
	}
	terms, err := o.connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, t := range terms {
			t.c.Close()
		}
	}()
	fmt.Fprintf(stdout, "connected %d terminals\n", len(terms))

	// 1. Switch storm.
	var ok, full, busy, other atomic.Int64
	var firstErr atomic.Value
	stormCtx, cancel := context.WithTimeout(ctx, o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	for _, t := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.storm(stormCtx, ga, gb, &ok, &full, &busy, &other, &firstErr)
		}()
	}
	wg.Wait()
	cancel()
	el := time.Since(start)
	fmt.Fprintf(stdout, "switch storm: %d changes in %v = %.0f changes/s; %d refused full, %d shed (busy or rate limited, retried), %d other errors\n",
		ok.Load(), el.Round(time.Millisecond), float64(ok.Load())/el.Seconds(), full.Load(), busy.Load(), other.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(stdout, "  first other error: %v\n", e)
	}
	var ma, mb api.GroupMembers
	if err := o.call(ctx, "GET", "/v1/groups/"+ga+"/members", nil, &ma); err != nil {
		return err
	}
	if err := o.call(ctx, "GET", "/v1/groups/"+gb+"/members", nil, &mb); err != nil {
		return err
	}
	seen := map[string]int{}
	for _, m := range append(ma.Members, mb.Members...) {
		seen[m.DeviceID]++
	}
	both, neither, never := 0, 0, 0
	for _, t := range terms {
		if !t.joined {
			never++ // never got a change through: in no group, rightly
			if seen[t.id] != 0 {
				both++ // in a group it was never answered for: count as broken
			}
			continue
		}
		switch seen[t.id] {
		case 0:
			neither++
		case 2:
			both++
		}
	}
	verdict := "OK"
	if both != 0 || neither != 0 || len(mb.Members) > o.limit {
		verdict = "BROKEN"
	}
	fmt.Fprintf(stdout, "after the storm: A %d, B %d (limit %d), in both %d, in neither %d (never joined %d): %s\n",
		len(ma.Members), len(mb.Members), o.limit, both, neither, never, verdict)

	// 2. Fan-out to an operator-only group of every terminal.
	for _, t := range terms {
		if err := o.call(ctx, "PUT", "/v1/groups/"+gc+"/members/"+t.id, nil, nil); err != nil {
			return err
		}
	}
	for i := 0; i < o.slow && i < len(terms); i++ {
		terms[len(terms)-1-i].slow.Store(true)
	}
	probeCtx, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	var probeLat latencies
	var pwg sync.WaitGroup
	for i := 0; i < o.probes && i < len(terms); i++ {
		pwg.Add(1)
		go func() { defer pwg.Done(); terms[i].probe(probeCtx, &probeLat) }()
	}
	time.Sleep(time.Second)
	before := probeLat.snapshot()
	var msgLat latencies
	for _, t := range terms {
		t.lat = &msgLat
	}
	delivered := 0
	for m := 0; m < o.messages; m++ {
		payload := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
		var sent api.GroupSent
		if err := o.call(ctx, "POST", "/v1/groups/"+gc+"/send", api.GroupSend{Payload: payload}, &sent); err != nil {
			return err
		}
		delivered += sent.Delivered
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stopProbes()
	pwg.Wait()
	during := probeLat.snapshot()[len(before):]
	recv := msgLat.snapshot()
	fmt.Fprintf(stdout, "fan-out: %d messages to %d members (%d not reading): delivered %d of %d, received %d; latency send→receive p50 %v p99 %v max %v\n",
		o.messages, len(terms), o.slow, delivered, o.messages*(len(terms)), len(recv), pct(recv, 50), pct(recv, 99), pct(recv, 100))
	fmt.Fprintf(stdout, "heartbeat p99: %v before, %v during the fan-outs (%d probes)\n", pct(before, 99), pct(during, 99), o.probes)
	for _, g := range []string{ga, gb, gc} {
		_ = o.call(ctx, "DELETE", "/v1/groups/"+g, nil, nil)
	}
	return nil
}

type loadTerm struct {
	id     string
	c      *client.Conn
	slow   atomic.Bool
	lat    *latencies
	rid    uint64
	joined bool // a change of this terminal succeeded
}

func (o *groupsOpts) connect(ctx context.Context) ([]*loadTerm, error) {
	terms := make([]*loadTerm, o.n)
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range terms {
		t := &loadTerm{id: fmt.Sprintf("%s%06d", o.prefix, i)}
		terms[i] = t
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := client.Dial(ctx, client.Config{Addr: o.addr, DeviceID: t.id, FleetSecret: []byte(o.secret), FW: "1.0", Model: "LOAD",
				NoHeartbeat: true, OnPush: t.onPush})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			t.c = c
		}()
	}
	wg.Wait()
	return terms, firstErr
}

// onPush records a GROUP_MESSAGE's latency; a slow terminal blocks its
// reader instead (it stops reading its socket).
func (t *loadTerm) onPush(typ byte, _ uint16, body []byte) {
	if typ != protocol.TypeGroupMessage {
		return
	}
	for t.slow.Load() {
		time.Sleep(100 * time.Millisecond)
	}
	var m protocol.GroupMessage
	if protocol.DecodeBody(protocol.NewReader(nil), body, &m) != nil || len(m.Payload) != 8 || t.lat == nil {
		return
	}
	t.lat.add(time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(m.Payload))))
}

func (t *loadTerm) storm(ctx context.Context, ga, gb string, ok, full, busy, other *atomic.Int64, firstErr *atomic.Value) {
	fail := func(err error) {
		other.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	in := ""
	for ctx.Err() == nil {
		to := ga
		if in == ga {
			to = gb
		}
		var auth protocol.GroupAuthAck
		err := t.c.Do(ctx, &protocol.GroupAuth{GroupID: to}, &auth)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			t.rid++
			ch := &protocol.GroupChange{RequestID: t.rid, Op: protocol.GroupSwitch, From: in, To: to, Grant: auth.Grant}
			if in == "" {
				ch.Op, ch.From = protocol.GroupJoin, ""
			}
			var ack protocol.GroupChangeAck
			err = t.c.Do(context.WithoutCancel(ctx), ch, &ack)
		}
		switch protocol.StatusOf(err) {
		case protocol.OK:
			ok.Add(1)
			in = to
			t.joined = true
		case protocol.Unavailable, protocol.RateLimited:
			// Full group, or the server shedding load (busy): back off
			// as told and try again.
			wait := 10 * time.Millisecond
			var pe *protocol.Error
			if errors.As(err, &pe) && pe.RetryAfterMs > 0 {
				wait = time.Duration(pe.RetryAfterMs) * time.Millisecond
			}
			if errors.As(err, &pe) && pe.Message == "group full" {
				full.Add(1)
				wait = 10 * time.Millisecond // keep trying: members leave it all the time
			} else {
				busy.Add(1)
			}
			select { // RATE_LIMITED may say minutes (the per-device request_id quota)
			case <-ctx.Done():
			case <-time.After(wait):
			}
		default:
			fail(err)
			return
		}
	}
}

func (t *loadTerm) probe(ctx context.Context, l *latencies) {
	for ctx.Err() == nil {
		s := time.Now()
		var ack protocol.HeartbeatAck
		if err := t.c.Do(ctx, &protocol.Heartbeat{}, &ack); err != nil {
			return
		}
		l.add(time.Since(s))
		time.Sleep(100 * time.Millisecond)
	}
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) snapshot() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.d)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Round(10 * time.Microsecond)
}

// call does one admin API request.
func (o *groupsOpts) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, o.admin+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
