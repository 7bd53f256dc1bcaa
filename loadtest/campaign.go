package loadtest

// The campaign scenario's terminal side (spec §6.2): each terminal sends
// a launch UPGRADE_QUERY, whose answer names the scheduled campaign that
// governs termload-app; then SCHEDULE_REQUEST with its coordinates
// (random in a bounding box, fixed per device id) and system id; then it
// heartbeats until its slot starts by the server's clock (SCHEDULE_ACK's
// slot_start_ms, converted with the offset of HELLO_OK's server time)
// and sends UPGRADE_CHECK. TOO_EARLY waits wait_ms and checks again;
// PROCEED (optionally followed by an HTTP GET of the url), UP_TO_DATE
// and MISSED end the terminal's campaign. UNAVAILABLE (no capacity)
// waits retry_after_ms and asks again. Each step sends at the terminal's
// next open-loop slot (-rate) once it is allowed to; between steps a
// terminal heartbeats every HBEvery, and sends nothing in the other
// slots. Every retry is bounded in count.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/termd/termd/protocol"
)

// Campaign scenario bounds.
const (
	// maxScheduleTries bounds a terminal's SCHEDULE_REQUESTs (the first
	// and the retries after UNAVAILABLE or another refusal).
	maxScheduleTries = 8
	// maxCheckTries bounds a terminal's UPGRADE_CHECKs (TOO_EARLY and
	// refusals answered by waiting).
	maxCheckTries = 8
	// maxQueryTries bounds the launch UPGRADE_QUERY's retries.
	maxQueryTries = 4
	// maxRetryWait caps any wait a server asks for (retry_after_ms,
	// wait_ms), so a run stays bounded in time.
	maxRetryWait = 2 * time.Minute
	// refusalWait is the wait after a refusal without retry_after_ms.
	refusalWait = time.Second
	// maxDownloads bounds a process's concurrent downloads (-campaign-download).
	maxDownloads = 64
	// downloadTimeout bounds one download.
	downloadTimeout = 2 * time.Minute
	// DefaultCampaignBox is -campaign-box's default: Europe.
	DefaultCampaignBox = "35,-10,60,30"
	// DefaultSystemID is -system-id's default.
	DefaultSystemID = "LOAD"
)

// kindIdle is a slot in which the terminal sends nothing (a campaign
// terminal waiting between its heartbeats). Not a request kind.
const kindIdle uint8 = 255

// CampaignPlan is the campaign scenario's parameters.
type CampaignPlan struct {
	// MinLat, MinLon, MaxLat, MaxLon bound the terminals' coordinates.
	MinLat, MinLon, MaxLat, MaxLon float64
	SystemID                       string
	// HBEvery is how often a terminal heartbeats between its steps.
	HBEvery time.Duration
	// Download makes a PROCEED's url fetched (and its sha256 checked).
	Download bool
	// SharePct is the percentage of terminals in the campaign: terminal
	// i (counted over every process: Offset + its index) takes part when
	// i % 100 < SharePct; the others only heartbeat, at every slot.
	SharePct int
	Offset   int
}

// in reports whether terminal index (of this process) takes part.
func (p *CampaignPlan) in(index int) bool { return (p.Offset+index)%100 < p.SharePct }

// ParseBox reads "minLat,minLon,maxLat,maxLon" (degrees) into p.
func (p *CampaignPlan) ParseBox(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return fmt.Errorf("-campaign-box %q: want minLat,minLon,maxLat,maxLon", s)
	}
	var v [4]float64
	for i, part := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("-campaign-box %q: %q is not a number", s, part)
		}
		v[i] = f
	}
	if v[0] < -protocol.MaxLatitude || v[2] > protocol.MaxLatitude || v[0] > v[2] ||
		v[1] < -protocol.MaxLongitude || v[3] > protocol.MaxLongitude || v[1] > v[3] {
		return fmt.Errorf("-campaign-box %q: want -90 ≤ minLat ≤ maxLat ≤ 90 and -180 ≤ minLon ≤ maxLon ≤ 180", s)
	}
	p.MinLat, p.MinLon, p.MaxLat, p.MaxLon = v[0], v[1], v[2], v[3]
	return nil
}

// Coords is the terminal with device id's coordinates: uniform in the
// box, the same for the same id in every run (and every -procs split).
func (p *CampaignPlan) Coords(id string) (lat, lon float64) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	x := h.Sum64()
	// Two 32-bit halves, each mixed, as fractions in [0, 1).
	a := mix64(x) >> 32
	b := mix64(x^0x9e3779b97f4a7c15) >> 32
	lat = p.MinLat + (p.MaxLat-p.MinLat)*float64(a)/(1<<32)
	lon = p.MinLon + (p.MaxLon-p.MinLon)*float64(b)/(1<<32)
	return lat, lon
}

// mix64 is splitmix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Campaigner is implemented by protocols that can run the campaign scenario.
type Campaigner interface {
	// SetCampaign gives the protocol the scenario's parameters, before
	// the run.
	SetCampaign(plan *CampaignPlan)
	// CampaignKind is the kind of terminal t's next slot: its next step,
	// a heartbeat, or kindIdle.
	CampaignKind(t *Term) uint8
	// CampaignDone is how many terminals ended their campaign.
	CampaignDone() int64
	// Placing reports whether a SCHEDULE_REQUEST of this process awaits
	// its answer: heartbeats answered then are also recorded as
	// KindHeartbeatPlacing.
	Placing() bool
	// CampaignTally adds the scenario's own figures to res once the
	// engine stopped.
	CampaignTally(res *Result)
}

// Campaign steps.
const (
	campQuery    = iota // launch UPGRADE_QUERY
	campSchedule        // SCHEDULE_REQUEST
	campWait            // heartbeat until the slot, then UPGRADE_CHECK
	campDone
)

// campState is one session's progress through the campaign scenario.
type campState struct {
	init    bool
	hbOnly  bool // not in the campaign: a heartbeat at every slot
	step    uint8
	waiting bool
	tries   uint8
	// campaign and resv are the campaign's and the reservation's ids.
	campaign, resv string
	// slotStart and notBefore are local unix ms: the slot's start, and
	// the earliest moment of the next step (a server-asked wait).
	slotStart, notBefore int64
	lastHB               int64 // local unix ms of the last heartbeat
}

// campStats are one process's campaign figures (every event loop adds).
type campStats struct {
	done atomic.Int64
	// schedFirst is the first SCHEDULE_REQUEST's send and schedLast the
	// last placement's answer, unix ns; placed counts placements.
	schedFirst, schedLast atomic.Int64
	placed                atomic.Uint64
	// placing is the SCHEDULE_REQUESTs awaiting their answer.
	placing atomic.Int64

	dlSem                         chan struct{}
	dlWG                          sync.WaitGroup
	dlOK, dlFailed, dlBad, dlBusy atomic.Uint64
	dlBytes                       atomic.Uint64
	dlLat                         *Histogram
}

// SetCampaign implements Campaigner.
func (p *tgpProto) SetCampaign(plan *CampaignPlan) {
	p.camp = plan
	p.cst = &campStats{dlSem: make(chan struct{}, maxDownloads), dlLat: NewHistogram()}
}

// CampaignDone implements Campaigner.
func (p *tgpProto) CampaignDone() int64 {
	if p.cst == nil {
		return 0
	}
	return p.cst.done.Load()
}

// Placing implements Campaigner.
func (p *tgpProto) Placing() bool { return p.cst != nil && p.cst.placing.Load() > 0 }

// KindHeartbeatPlacing is the campaign scenario's latency of heartbeats
// answered while placements were in flight (also counted in heartbeat).
const KindHeartbeatPlacing = "heartbeat_while_placing"

// CampaignKind implements Campaigner.
func (p *tgpProto) CampaignKind(t *Term) uint8 {
	s, ok := t.State.(*tgpSession)
	if !ok || !s.live || p.camp == nil {
		return kindHeartbeat
	}
	c := &s.camp
	now := time.Now().UnixMilli()
	if !c.init {
		// The first heartbeat at a point of [0, HBEvery) that depends on
		// the terminal, so a fleet does not beat in step.
		c.init = true
		c.lastHB = now - int64(phaseOf(t.Index)*float64(p.camp.HBEvery.Milliseconds()))
		if !p.camp.in(t.Index) {
			c.hbOnly = true
			p.end(c)
		}
	}
	if c.hbOnly {
		return kindHeartbeat
	}
	if !c.waiting && now >= c.notBefore {
		switch c.step {
		case campQuery:
			return kindUpgradeQuery
		case campSchedule:
			return kindSchedule
		case campWait:
			if now >= c.slotStart {
				return kindUpgradeCheck
			}
		}
	}
	if now-c.lastHB >= p.camp.HBEvery.Milliseconds() {
		c.lastHB = now
		return kindHeartbeat
	}
	return kindIdle
}

// campaignRequest encodes the session's next campaign request (kind
// KindUpgradeQuery, KindSchedule or KindUpgradeCheck); false when it has
// none.
func (p *tgpProto) campaignRequest(t *Term, sc *tgpScratch, s *tgpSession, kind string) (protocol.Message, bool) {
	c := &s.camp
	if p.camp == nil || c.waiting {
		return nil, false
	}
	switch {
	case kind == KindUpgradeQuery && c.step == campQuery:
		sc.uqLaunch = protocol.UpgradeQuery{AppID: tgpAppID, Version: tgpVersion, Launch: true}
		c.waiting = true
		return &sc.uqLaunch, true
	case kind == KindSchedule && c.step == campSchedule:
		lat, lon := p.camp.Coords(t.ID)
		sc.sched = protocol.ScheduleRequest{CampaignID: c.campaign, Version: tgpVersion, HasLoc: true, Lat: lat, Lon: lon, SystemID: p.camp.SystemID}
		c.waiting = true
		p.cst.placing.Add(1)
		ns := time.Now().UnixNano()
		for {
			f := p.cst.schedFirst.Load()
			if (f != 0 && f <= ns) || p.cst.schedFirst.CompareAndSwap(f, ns) {
				break
			}
		}
		return &sc.sched, true
	case kind == KindUpgradeCheck && c.step == campWait:
		sc.check = protocol.UpgradeCheck{ReservationID: c.resv, Version: tgpVersion}
		c.waiting = true
		return &sc.check, true
	}
	return nil, false
}

// Notes of the campaign scenario: counts in the result.
const (
	noteNoCampaign  = "campaign:no_campaign"
	notePlaced      = "campaign:placed"
	noteGaveUp      = "campaign:gave_up"
	noteProceed     = "decision:PROCEED"
	noteUpToDate    = "decision:UP_TO_DATE"
	noteTooEarly    = "decision:TOO_EARLY"
	noteMissed      = "decision:MISSED"
	noteDecisionBad = "decision:unknown"
)

// retryWait is how long to wait after a refusal, ms.
func retryWait(ref *protocol.Refusal) int64 {
	if ref.Err != nil && ref.Err.RetryAfterMs > 0 {
		return min(int64(ref.Err.RetryAfterMs), maxRetryWait.Milliseconds())
	}
	return refusalWait.Milliseconds()
}

// end ends the terminal's campaign, once.
func (p *tgpProto) end(c *campState) {
	if c.step != campDone {
		c.step = campDone
		p.cst.done.Add(1)
	}
}

// refused handles a refusal of the current step: wait and retry, up to
// limit tries, then give up. It returns the note to count.
func (p *tgpProto) refused(c *campState, ref *protocol.Refusal, limit uint8) string {
	c.tries++
	if c.tries >= limit {
		p.end(c)
		return noteGaveUp
	}
	c.notBefore = time.Now().UnixMilli() + retryWait(ref)
	return ""
}

// queryAnswered moves the campaign on after the launch query's answer.
func (p *tgpProto) queryAnswered(s *tgpSession, status protocol.Code, sc *tgpScratch) string {
	c := &s.camp
	if p.camp == nil || !c.waiting || c.step != campQuery {
		return ""
	}
	c.waiting = false
	switch {
	case status != protocol.OK:
		return p.refused(c, &sc.ref, maxQueryTries)
	case sc.uqAck.Campaign == nil:
		p.end(c)
		return noteNoCampaign
	}
	c.campaign, c.step, c.tries = sc.uqAck.Campaign.CampaignID, campSchedule, 0
	return ""
}

// scheduleAnswered moves the campaign on after SCHEDULE_ACK.
func (p *tgpProto) scheduleAnswered(s *tgpSession, status protocol.Code, sc *tgpScratch) string {
	c := &s.camp
	if p.camp == nil || !c.waiting || c.step != campSchedule {
		return ""
	}
	c.waiting = false
	p.cst.placing.Add(-1)
	if status != protocol.OK {
		return p.refused(c, &sc.ref, maxScheduleTries)
	}
	ns := time.Now().UnixNano()
	for {
		l := p.cst.schedLast.Load()
		if l >= ns || p.cst.schedLast.CompareAndSwap(l, ns) {
			break
		}
	}
	p.cst.placed.Add(1)
	a := &sc.schedAck
	c.resv, c.step, c.tries = a.ReservationID, campWait, 0
	c.slotStart = int64(a.SlotStartMs) - s.srvOff
	return notePlaced
}

// checkAnswered moves the campaign on after UPGRADE_CHECK_ACK.
func (p *tgpProto) checkAnswered(t *Term, s *tgpSession, status protocol.Code, sc *tgpScratch) string {
	c := &s.camp
	if p.camp == nil || !c.waiting || c.step != campWait {
		return ""
	}
	c.waiting = false
	if status != protocol.OK {
		return p.refused(c, &sc.ref, maxCheckTries)
	}
	a := &sc.checkAck
	switch a.Decision {
	case protocol.DecisionTooEarly:
		c.tries++
		if c.tries >= maxCheckTries {
			p.end(c)
			return noteGaveUp
		}
		c.notBefore = time.Now().UnixMilli() + min(int64(a.WaitMs), maxRetryWait.Milliseconds())
		return noteTooEarly
	case protocol.DecisionProceed:
		p.end(c)
		if p.camp.Download {
			p.download(t.ID, a.URL, a.SHA256, a.Size)
		}
		return noteProceed
	case protocol.DecisionUpToDate:
		p.end(c)
		return noteUpToDate
	case protocol.DecisionMissed:
		p.end(c)
		return noteMissed
	}
	p.end(c)
	return noteDecisionBad
}

// download fetches a PROCEED's url in the background (bounded by
// maxDownloads; beyond that it is counted and skipped) and checks the
// bytes against sha256 and size.
func (p *tgpProto) download(id, url string, sum []byte, size uint64) {
	st := p.cst
	select {
	case st.dlSem <- struct{}{}:
	default:
		st.dlBusy.Add(1)
		return
	}
	st.dlWG.Add(1)
	go func() {
		defer st.dlWG.Done()
		defer func() { <-st.dlSem }()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), downloadTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			st.dlFailed.Add(1)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			st.dlFailed.Add(1)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			_, _ = io.Copy(io.Discard, resp.Body)
			st.dlFailed.Add(1)
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		st.dlBytes.Add(uint64(max(n, 0)))
		switch {
		case err != nil:
			st.dlFailed.Add(1)
		case uint64(n) != size || !bytes.Equal(h.Sum(nil), sum):
			st.dlBad.Add(1)
		default:
			st.dlOK.Add(1)
			st.dlLat.Record(time.Since(start).Microseconds())
		}
	}()
}

// CampaignTally implements Campaigner: the placement span and the
// downloads (waiting up to downloadTimeout for those still running).
func (p *tgpProto) CampaignTally(res *Result) {
	st := p.cst
	if st == nil {
		return
	}
	done := make(chan struct{})
	go func() { st.dlWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(downloadTimeout):
		res.Counts["download_unfinished"]++
	}
	if f, l := st.schedFirst.Load(), st.schedLast.Load(); st.placed.Load() > 0 && f > 0 && l >= f {
		if res.Spans == nil {
			res.Spans = map[string]Span{}
		}
		res.Spans[SpanPlacement] = Span{First: time.Unix(0, f), Last: time.Unix(0, l), N: st.placed.Load()}
	}
	for k, v := range map[string]uint64{
		"download_ok": st.dlOK.Load(), "download_failed": st.dlFailed.Load(),
		"download_bad_digest": st.dlBad.Load(), "download_skipped_busy": st.dlBusy.Load(), "download_bytes": st.dlBytes.Load(),
	} {
		if v > 0 {
			res.Counts[k] += v
		}
	}
	if st.dlLat.Count() > 0 {
		res.Latency["download"] = st.dlLat
	}
}
