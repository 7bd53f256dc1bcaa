package client

// Scheduled campaigns (spec §6.2): what a terminal does between the
// `campaign` of an UPGRADE_QUERY_ACK and a verified artifact on disk.
//
//	UPGRADE_QUERY_ACK campaign ──► Schedule (SCHEDULE_REQUEST, retried on UNAVAILABLE)
//	  ──► WaitAndCheckIn (session kept alive until a random point early in
//	      the slot, UPGRADE_CHECK, TOO_EARLY waited out, MISSED → Schedule again)
//	  ──► OfferFromCheck + VerifyOffer (release_sig against pinned keys)
//	  ──► DownloadArtifact (resumed .part) + VerifyArtifact (sha256, size)
//	  ──► UPGRADE_REPORT DOWNLOADING … DOWNLOADED under the campaign's release_id
//
// RunCampaign strings the steps together; each is also usable on its own.
// Installing, the restart and the INSTALLING/SUCCEEDED/FAILED reports that
// follow are the firmware's (Conn.Report sends them).

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/termd/termd/protocol"
)

// Location is where the terminal is, in degrees, for SCHEDULE_REQUEST:
// the server places it in the nearest cluster of download nodes.
type Location struct{ Lat, Lon float64 }

// Errors of the campaign flow. Refusals by the server are returned as the
// *protocol.Error of the response (errors.Is(err, protocol.NotFound),
// protocol.Expired, …).
var (
	// ErrSlotMissed: the check-in came after the slot ended (MISSED). The
	// server released the reservation; Schedule again for a new slot.
	// Returned as a *MissedError.
	ErrSlotMissed = errors.New("client: download slot missed, schedule again")
	// ErrStillTooEarly: the server kept answering TOO_EARLY after
	// CheckInOptions.MaxTooEarly waits (a server bug or a clock that
	// jumps); Schedule again later.
	ErrStillTooEarly = errors.New("client: still too early after the allowed check-ins")
	// ErrNoReleaseID: neither SCHEDULE_ACK nor the campaign named the
	// release to report under.
	ErrNoReleaseID = errors.New("client: campaign names no release_id to report under")
)

// MissedError is the MISSED decision of UPGRADE_CHECK_ACK for a
// reservation; errors.Is(err, ErrSlotMissed) matches it.
type MissedError struct{ ReservationID string }

// Error implements error.
func (e *MissedError) Error() string {
	return "client: download slot of reservation " + e.ReservationID + " missed, schedule again"
}

// Unwrap lets errors.Is match ErrSlotMissed.
func (e *MissedError) Unwrap() error { return ErrSlotMissed }

// UPGRADE_REPORT codes RunCampaign sends with a FAILED report. The spec
// leaves codes to the terminal; these are the SDK's.
const (
	// FailBadSignature: release_sig does not verify with a pinned key, the
	// release is unsigned, or it is not newer than the running version.
	FailBadSignature uint64 = 1
	// FailBadArtifact: the downloaded bytes do not have the signed sha256
	// or size.
	FailBadArtifact uint64 = 2
)

// Defaults of CheckInOptions, CampaignParams and the retries.
const (
	// DefaultSlotSpread is the share of the slot, from its start, in
	// which a terminal checks in at a uniformly random point, so a slot's
	// terminals do not all arrive in its first millisecond.
	DefaultSlotSpread = 0.25
	// DefaultMaxSlotSpread bounds that spread however long the slot is:
	// the rest of the slot is for the download itself.
	DefaultMaxSlotSpread = 5 * time.Minute
	// DefaultMaxTooEarly is how many TOO_EARLY answers WaitAndCheckIn
	// waits out before giving up with ErrStillTooEarly.
	DefaultMaxTooEarly = 5
	// DefaultMaxReschedules is how many times RunCampaign schedules again
	// after MISSED.
	DefaultMaxReschedules = 3
	// DefaultDownloadTries is how many times RunCampaign starts or
	// resumes a download that broke off before it gives up.
	DefaultDownloadTries = 8
	// DefaultDownloadBackoff is the first wait after a broken download,
	// doubling up to maxDownloadBackoff.
	DefaultDownloadBackoff = time.Second
	// DefaultBusyWait is the wait after a 503 without Retry-After.
	DefaultBusyWait = 30 * time.Second

	maxDownloadBackoff = time.Minute
	// refusedWaitMin and refusedWaitMax bound the wait after an
	// UNAVAILABLE or RATE_LIMITED that carried no retry_after_ms: 1 s,
	// doubling, up to 5 min.
	refusedWaitMin = time.Second
	refusedWaitMax = 5 * time.Minute
	// retryJitter is the random share added to every wait the server
	// asked for, so terminals refused together do not return in step.
	retryJitter = 0.2
	// maxSleepChunk is how long a wait for a slot goes without reading
	// the server clock offset again (heartbeat acks refine it).
	maxSleepChunk = time.Minute
)

// ServerNow is the server's clock as the terminal estimates it: the local
// clock (Config.Now) plus ServerTimeOffset. Slot times are server times,
// so a terminal whose own clock is wrong still arrives in its slot.
func (c *Conn) ServerNow() time.Time { return c.cfg.now().Add(c.ServerTimeOffset()) }

// Schedule sends SCHEDULE_REQUEST for campaignID (spec §6.2): version is
// the version of the app installed now, loc the terminal's position (nil:
// the server uses the device's registered location), systemID what the
// download nodes must serve. The answer is the reserved slot; asking
// again before the slot ends returns the same reservation, so Schedule is
// safe to repeat (after a reconnect, say).
//
// UNAVAILABLE (no capacity left) and RATE_LIMITED are retried after the
// retry_after_ms the server sent plus up to 20% random jitter (without
// one: 1 s, doubling, up to 5 min) until ctx ends; the error then wraps
// both ctx's error and the last refusal. Any other refusal is returned at
// once: NOT_FOUND (the device is not in the campaign), EXPIRED (its last
// window is over).
func (c *Conn) Schedule(ctx context.Context, campaignID, version string, loc *Location, systemID string) (*protocol.ScheduleAck, error) {
	req := &protocol.ScheduleRequest{CampaignID: campaignID, Version: version, SystemID: systemID}
	if loc != nil {
		req.HasLoc, req.Lat, req.Lon = true, loc.Lat, loc.Lon
	}
	ack := &protocol.ScheduleAck{}
	err := c.retryRefused(ctx, "schedule "+campaignID, nil, func() error { return c.Do(ctx, req, ack) })
	if err != nil {
		return nil, err
	}
	return ack, nil
}

// CheckInOptions tunes WaitAndCheckIn. The zero value is the defaults.
type CheckInOptions struct {
	// Spread is the share of the slot, from its start, in which the
	// check-in happens at a uniformly random point; 0 → DefaultSlotSpread,
	// negative → exactly at the slot's start.
	Spread float64
	// MaxSpread bounds Spread × slot length; 0 → DefaultMaxSlotSpread.
	MaxSpread time.Duration
	// MaxTooEarly is how many TOO_EARLY answers are waited out; 0 →
	// DefaultMaxTooEarly.
	MaxTooEarly int
	// Rand returns a uniform random integer in [0, n); nil → math/rand/v2.
	Rand func(n int64) int64
}

// spread is the span at the start of a slot of length slot in which the
// terminal checks in.
func (o *CheckInOptions) spread(slot time.Duration) time.Duration {
	f := o.Spread
	switch {
	case f < 0:
		return 0
	case f == 0:
		f = DefaultSlotSpread
	case f > 1:
		f = 1
	}
	return min(time.Duration(float64(slot)*f), orDefault(o.MaxSpread, DefaultMaxSlotSpread))
}

// WaitAndCheckIn waits for the slot of ack (a SCHEDULE_ACK) and checks in
// with UPGRADE_CHECK, version being the version installed now. It waits
// until a random point in the first part of the slot (CheckInOptions),
// measured on the server's clock (ServerNow), so the terminal's own clock
// skew does not matter. Meanwhile the session is kept alive: the Conn's
// heartbeat loop runs by itself, and on a Conn dialled with NoHeartbeat
// the wait sends the heartbeats itself. If the session ends, the wait
// returns its error (Conn.Err): reconnect and call Schedule again, which
// returns the same reservation.
//
// It returns the ack of a PROCEED (download now: url, token, sha256, size,
// release_sig; see OfferFromCheck) or an UP_TO_DATE (nothing to do; the
// reservation is released). TOO_EARLY is waited out (wait_ms plus a
// random point of the spread) and the check-in repeated, at most
// MaxTooEarly times (then ErrStillTooEarly). MISSED is returned as a
// *MissedError (errors.Is(err, ErrSlotMissed)): Schedule again.
// UNAVAILABLE (the campaign or its release is paused; the reservation is
// kept) is retried as Schedule retries it, until ctx ends; NOT_FOUND (the
// reservation is unknown or released: Schedule again) and EXPIRED (the
// campaign was cancelled or has ended: give up) are returned.
func (c *Conn) WaitAndCheckIn(ctx context.Context, ack *protocol.ScheduleAck, version string, opts CheckInOptions) (*protocol.UpgradeCheckAck, error) {
	var slot time.Duration
	if ack.SlotEndMs > ack.SlotStartMs {
		slot = time.Duration(ack.SlotEndMs-ack.SlotStartMs) * time.Millisecond
	}
	spread := opts.spread(slot)
	at := time.UnixMilli(int64(min(ack.SlotStartMs, 1<<62))).Add(randDuration(opts.Rand, spread))
	if err := c.sleepUntilServer(ctx, at); err != nil {
		return nil, err
	}
	req := &protocol.UpgradeCheck{ReservationID: ack.ReservationID, Version: version}
	maxEarly := opts.MaxTooEarly
	if maxEarly <= 0 {
		maxEarly = DefaultMaxTooEarly
	}
	for early := 0; ; {
		chk := &protocol.UpgradeCheckAck{}
		err := c.retryRefused(ctx, "upgrade check "+ack.ReservationID, opts.Rand, func() error { return c.Do(ctx, req, chk) })
		if err != nil {
			return nil, err
		}
		switch chk.Decision {
		case protocol.DecisionProceed, protocol.DecisionUpToDate:
			return chk, nil
		case protocol.DecisionMissed:
			return nil, &MissedError{ReservationID: ack.ReservationID}
		}
		// TOO_EARLY: the server's clock says the slot has not begun.
		if early++; early > maxEarly {
			return nil, fmt.Errorf("%w: reservation %s, %d answers", ErrStillTooEarly, ack.ReservationID, early)
		}
		wait := time.Duration(min(chk.WaitMs, 1<<40))*time.Millisecond + randDuration(opts.Rand, spread)
		c.log.Debug("check-in too early", "reservation_id", ack.ReservationID, "wait_ms", chk.WaitMs, "wait", wait)
		if err := c.sleepAlive(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// OfferFromCheck is the release a PROCEED check-in lets the terminal
// download, as a protocol.Offer, so VerifyOffer, VerifyArtifact and
// DownloadArtifact apply to it. UPGRADE_CHECK_ACK does not repeat the
// version, and release_sig binds it: version is the campaign's (the
// `campaign` of UPGRADE_QUERY_ACK), releaseID SCHEDULE_ACK's. URL is
// chk's url with the token (DownloadURL).
func OfferFromCheck(releaseID, version string, chk *protocol.UpgradeCheckAck) (*protocol.Offer, error) {
	if chk.Decision != protocol.DecisionProceed {
		return nil, fmt.Errorf("client: check-in decision %d is not PROCEED", chk.Decision)
	}
	if len(chk.SHA256) != protocol.SHA256Size {
		return nil, fmt.Errorf("%w: PROCEED without a sha256", ErrMalformed)
	}
	o := &protocol.Offer{
		ReleaseID:  releaseID,
		Version:    version,
		URL:        DownloadURL(chk.URL, chk.Token),
		Size:       chk.Size,
		Mandatory:  true,
		ReleaseSig: chk.ReleaseSig,
	}
	copy(o.SHA256[:], chk.SHA256)
	return o, nil
}

// DownloadURL is the URL a terminal fetches for a PROCEED: rawURL when the
// token is empty or already one of its query values (termd's node puts
// it there, as `t`), else rawURL with `token=<token>` added to its query,
// which is how the SDK hands the token to a node that did not embed it.
// A URL that does not parse is returned as it is.
func DownloadURL(rawURL, token string) string {
	if token == "" {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	q := u.Query()
	for _, vs := range q {
		for _, v := range vs {
			if v == token {
				return rawURL
			}
		}
	}
	q.Set("token", token)
	u.RawQuery = q.Encode()
	return u.String()
}

// Report sends one UPGRADE_REPORT and waits until the server has stored
// it (UPGRADE_REPORT_ACK). UNAVAILABLE and RATE_LIMITED are retried as
// Schedule retries them; other refusals are returned (NOT_FOUND: unknown
// release; FORBIDDEN: never offered to this device).
func (c *Conn) Report(ctx context.Context, r *protocol.UpgradeReport) error {
	ack := protocol.Ack{AckType: protocol.Response(protocol.TypeUpgradeReport)}
	return c.retryRefused(ctx, "report "+r.ReleaseID, nil, func() error { return c.Do(ctx, r, &ack) })
}

// CampaignParams is what RunCampaign needs besides the campaign.
type CampaignParams struct {
	// AppID is the app the campaign upgrades; release_sig binds it.
	AppID string
	// Running is the version of AppID installed now.
	Running string
	// SystemID is sent in SCHEDULE_REQUEST: the system the download nodes
	// must serve.
	SystemID string
	// Loc is the terminal's position; nil → the server uses the device's
	// registered location.
	Loc *Location
	// Keys are the release public keys pinned in firmware; at least one
	// (VerifyOffer refuses otherwise).
	Keys []*ecdsa.PublicKey
	// Path is where the verified artifact is written (a .part next to it
	// while downloading). An artifact already at Path that verifies is
	// not downloaded again.
	Path string
	// Attempt is the terminal's try number for this release, from 1, kept
	// across reboots (UPGRADE_REPORT's attempt).
	Attempt uint64
	// HTTP fetches the artifact; nil → http.DefaultClient.
	HTTP *http.Client
	// CheckIn tunes the wait and check-in.
	CheckIn CheckInOptions
	// MaxReschedules is how many times a MISSED slot is scheduled again;
	// 0 → DefaultMaxReschedules, negative → never.
	MaxReschedules int
	// DownloadTries is how many times a download that broke off is started
	// or resumed; 0 → DefaultDownloadTries.
	DownloadTries int
	// DownloadBackoff is the first wait after a broken download, doubling
	// up to 1 min; 0 → DefaultDownloadBackoff. A busy node's Retry-After
	// (DefaultBusyWait when it sent none) is waited instead.
	DownloadBackoff time.Duration
}

// CampaignResult is how RunCampaign ended. With UpToDate nothing was
// downloaded or reported; otherwise the artifact at Path is verified and
// DOWNLOADED was reported under ReleaseID.
type CampaignResult struct {
	UpToDate bool
	// ReleaseID is the release reported under; the firmware reports
	// INSTALLING, SUCCEEDED or FAILED under it with the same Attempt.
	ReleaseID string
	Version   string
	Path      string
	// Offer is the verified release (OfferFromCheck).
	Offer *protocol.Offer
	// Reservation and Check are the last SCHEDULE_ACK and UPGRADE_CHECK_ACK.
	Reservation *protocol.ScheduleAck
	Check       *protocol.UpgradeCheckAck
}

// RunCampaign is the terminal's side of a scheduled campaign (spec §6.2)
// from the `campaign` of UPGRADE_QUERY_ACK to a verified artifact:
//
//  1. Schedule (UNAVAILABLE retried as the server asks);
//  2. WaitAndCheckIn: the session is kept alive until a random point
//     early in the slot; TOO_EARLY is waited out; MISSED schedules again
//     (at most MaxReschedules times); UP_TO_DATE ends here;
//  3. PROCEED: OfferFromCheck, then VerifyOffer against p.Keys before a
//     byte is fetched; a refusal is reported FAILED (FailBadSignature);
//  4. UPGRADE_REPORT DOWNLOADING, DownloadArtifact from the PROCEED url
//     with the token (DownloadURL), resuming after a cut (DOWNLOADING is
//     repeated with the progress so far) and waiting out a busy node;
//     bytes that do not match the signed sha256 and size are reported
//     FAILED (FailBadArtifact) and removed;
//  5. UPGRADE_REPORT DOWNLOADED, and control returns to the caller, who
//     installs and reports the later stages under result.ReleaseID.
//
// Reports go under SCHEDULE_ACK's release_id (camp.ReleaseID when the
// server sent none) with p.Attempt. A download that keeps breaking off is
// returned as an error without a FAILED report: calling RunCampaign again
// before the slot (plus the server's grace period) ends gets the same
// reservation and resumes the .part. ctx bounds everything, the wait for
// the slot included. A Conn dialled with NoHeartbeat is heartbeaten
// while RunCampaign waits, not during a download: a long download on such
// a Conn needs the caller's heartbeats.
func RunCampaign(ctx context.Context, c *Conn, camp *protocol.Campaign, p CampaignParams) (*CampaignResult, error) {
	if p.Attempt == 0 {
		return nil, errors.New("client: CampaignParams.Attempt starts at 1")
	}
	if p.Path == "" {
		return nil, errors.New("client: CampaignParams.Path is empty")
	}
	maxRe := p.MaxReschedules
	if maxRe == 0 {
		maxRe = DefaultMaxReschedules
	}
	res := &CampaignResult{Version: camp.Version, Path: p.Path}
	for missed := 0; ; missed++ {
		ack, err := c.Schedule(ctx, camp.CampaignID, p.Running, p.Loc, p.SystemID)
		if err != nil {
			return nil, err
		}
		res.Reservation = ack
		chk, err := c.WaitAndCheckIn(ctx, ack, p.Running, p.CheckIn)
		if errors.Is(err, ErrSlotMissed) && missed < maxRe {
			c.log.Info("campaign slot missed; scheduling again", "campaign_id", camp.CampaignID, "reservation_id", ack.ReservationID)
			continue
		}
		if err != nil {
			return nil, err
		}
		res.Check = chk
		break
	}
	if res.Check.Decision == protocol.DecisionUpToDate {
		res.UpToDate = true
		return res, nil
	}
	res.ReleaseID = res.Reservation.ReleaseID
	if res.ReleaseID == "" {
		res.ReleaseID = camp.ReleaseID
	}
	if res.ReleaseID == "" {
		return nil, ErrNoReleaseID
	}
	offer, err := OfferFromCheck(res.ReleaseID, camp.Version, res.Check)
	if err != nil {
		return nil, err
	}
	res.Offer = offer
	report := func(stage, progress uint8, code uint64, msg string) error {
		return c.Report(ctx, &protocol.UpgradeReport{ReleaseID: res.ReleaseID, Attempt: p.Attempt,
			Stage: stage, Progress: progress, Code: code, Message: msg})
	}
	if err := VerifyOffer(offer, p.AppID, p.Running, p.Keys); err != nil {
		if errors.Is(err, ErrNoReleaseKeys) {
			return nil, err // the firmware's fault, not the release's
		}
		return nil, errors.Join(err, report(protocol.StageFailed, 0, FailBadSignature, err.Error()))
	}
	if VerifyArtifactFile(p.Path, offer) == nil {
		// Downloaded before (a reboot after the download, say).
		return res, report(protocol.StageDownloaded, protocol.MaxProgress, 0, "")
	}
	if err := report(protocol.StageDownloading, partProgress(p.Path, offer.Size), 0, ""); err != nil {
		return nil, err
	}
	if err := c.download(ctx, offer, &p, report); err != nil {
		if errors.Is(err, ErrArtifactDigest) || errors.Is(err, ErrArtifactSize) {
			return nil, errors.Join(err, report(protocol.StageFailed, 0, FailBadArtifact, err.Error()))
		}
		return nil, err
	}
	if err := report(protocol.StageDownloaded, protocol.MaxProgress, 0, ""); err != nil {
		return nil, err
	}
	return res, nil
}

// download runs DownloadArtifact until the artifact is verified at
// p.Path, resuming after a cut and waiting out a busy node, at most
// p.DownloadTries times.
func (c *Conn) download(ctx context.Context, o *protocol.Offer, p *CampaignParams, report func(stage, progress uint8, code uint64, msg string) error) error {
	tries := p.DownloadTries
	if tries <= 0 {
		tries = DefaultDownloadTries
	}
	backoff := orDefault(p.DownloadBackoff, DefaultDownloadBackoff)
	for try := 1; ; try++ {
		err := DownloadArtifact(ctx, p.HTTP, o.URL, p.Path, o)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrArtifactDigest), errors.Is(err, ErrArtifactSize), ctx.Err() != nil:
			return err
		case try >= tries:
			return fmt.Errorf("client: download of release %s failed %d times: %w", o.ReleaseID, try, err)
		}
		wait := backoff
		var busy *DownloadBusyError
		if errors.As(err, &busy) {
			wait = DefaultBusyWait
			if busy.RetryAfter > 0 {
				wait = time.Duration(busy.RetryAfter) * time.Second
			}
		} else {
			backoff = min(2*backoff, maxDownloadBackoff)
		}
		wait += randDuration(nil, time.Duration(float64(wait)*retryJitter))
		c.log.Info("download interrupted; resuming", "release_id", o.ReleaseID, "try", try, "wait", wait, "err", err)
		if err := c.sleepAlive(ctx, wait); err != nil {
			return err
		}
		if err := report(protocol.StageDownloading, partProgress(p.Path, o.Size), 0, ""); err != nil {
			return err
		}
	}
}

// partProgress is the share of size already in path's .part, in percent,
// below 100 (100 is DOWNLOADED's).
func partProgress(path string, size uint64) uint8 {
	fi, err := os.Stat(path + partSuffix)
	if err != nil || size == 0 || fi.Size() <= 0 {
		return 0
	}
	return uint8(min(uint64(fi.Size())*100/size, protocol.MaxProgress-1))
}

// retryRefused runs op until it returns anything but UNAVAILABLE or
// RATE_LIMITED, waiting between tries as the refusal asked (plus jitter),
// or until ctx or the session ends.
func (c *Conn) retryRefused(ctx context.Context, what string, rnd func(int64) int64, op func() error) error {
	fallback := refusedWaitMin
	for {
		err := op()
		var pe *protocol.Error
		if err == nil || !errors.As(err, &pe) || pe.Code != protocol.Unavailable && pe.Code != protocol.RateLimited {
			return err
		}
		wait := RetryAfter(err)
		if wait <= 0 {
			wait, fallback = fallback, min(2*fallback, refusedWaitMax)
		}
		wait += randDuration(rnd, time.Duration(float64(wait)*retryJitter))
		c.log.Info("refused; retrying", "what", what, "err", err, "wait", wait)
		if serr := c.sleepAlive(ctx, wait); serr != nil {
			return fmt.Errorf("client: %s: %w (last refusal: %w)", what, serr, err)
		}
	}
}

// sleepUntilServer waits until the server's clock (ServerNow) reads at,
// keeping the session alive. It re-reads the clock offset at least every
// maxSleepChunk, as heartbeat acks refine it.
func (c *Conn) sleepUntilServer(ctx context.Context, at time.Time) error {
	for {
		d := at.Sub(c.ServerNow())
		if d <= 0 {
			return nil
		}
		if err := c.sleepAlive(ctx, min(d, maxSleepChunk)); err != nil {
			return err
		}
	}
}

// sleepAlive waits d unless ctx or the session ends first (then it
// returns why). On a Conn without its own heartbeat loop (NoHeartbeat) it
// heartbeats meanwhile, at the spec's spread of the interval, so the
// session outlives a long wait.
func (c *Conn) sleepAlive(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	var beat <-chan time.Time
	var bt *time.Timer
	if c.cfg.NoHeartbeat {
		bt = time.NewTimer(jitter(c.HBInterval(), firstBeatLow))
		defer bt.Stop()
		beat = bt.C
	}
	for {
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return c.Err()
		case <-beat:
			hctx, cancel := context.WithTimeout(ctx, min(c.HBInterval(), maxAckWait))
			_, err := c.Heartbeat(hctx)
			cancel()
			switch {
			case err == nil, ctx.Err() != nil:
				// ctx's end is reported by the next select.
			case RetryAfter(err) == 0:
				return fmt.Errorf("client: heartbeat while waiting: %w", err)
			}
			bt.Reset(max(jitter(c.HBInterval(), nextBeatLow), RetryAfter(err)))
		}
	}
}

// randDuration is a uniform random duration in [0, d].
func randDuration(rnd func(int64) int64, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if rnd != nil {
		return time.Duration(rnd(int64(d) + 1))
	}
	return rand.N(d + 1)
}
