package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/termd/termd/protocol"
)

// Defaults of the reconnect rule (spec §8).
const (
	DefaultBackoffBase   = time.Second       // 1 s × 2^k
	DefaultBackoffCap    = 300 * time.Second // min(300 s, 1 s × 2^k)
	DefaultStableSession = 60 * time.Second  // shorter sessions count as failures
	DefaultReplacedMin   = 60 * time.Second  // after GOAWAY 5, doubling…
	DefaultReplacedMax   = time.Hour         // …up to 1 h
	DefaultAuthWait      = time.Hour         // after HELLO refused 2 or 3
	// byeTimeout bounds the BYE that Run sends when its ctx ends.
	byeTimeout = 2 * time.Second
)

// Backoff implements the reconnect rule of spec §8: wait
// max(retry_after_ms, random(0, min(Cap, Base × 2^k))), where k counts
// consecutive failed connections and sessions shorter than StableSession;
// at least ReplacedMin after GOAWAY 5 on a live connection, doubling up to
// ReplacedMax while replacements repeat; at least AuthWait after a HELLO
// refused UNAUTHENTICATED or FORBIDDEN. Zero fields take the spec's
// values; tests shrink them. A Backoff is not safe for concurrent use.
type Backoff struct {
	// Base is the unit of the exponential term; zero → 1 s.
	Base time.Duration
	// Cap bounds the exponential term; zero → 300 s.
	Cap time.Duration
	// StableSession: a session at least this long resets k; zero → 60 s.
	StableSession time.Duration
	// ReplacedMin and ReplacedMax bound the wait after GOAWAY 5
	// (replaced); zero → 60 s and 1 h.
	ReplacedMin, ReplacedMax time.Duration
	// AuthWait is the least wait after HELLO was refused UNAUTHENTICATED
	// or FORBIDDEN; zero → 1 h.
	AuthWait time.Duration
	// Rand returns a uniform random integer in [0, n); nil → math/rand/v2.
	Rand func(n int64) int64

	k        int           // consecutive failures
	replaced time.Duration // last wait after GOAWAY 5, 0 when none
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Next returns how long to wait before connecting again. err is why the
// last attempt ended (Dial's error, or the session's); sessionLasted is
// how long its session was established, 0 when Dial failed.
func (b *Backoff) Next(err error, sessionLasted time.Duration) time.Duration {
	live := sessionLasted > 0
	stable := live && sessionLasted >= orDefault(b.StableSession, DefaultStableSession)
	if stable {
		b.k = 0
	} else {
		b.k++
	}
	capd := orDefault(b.Cap, DefaultBackoffCap)
	ceil := orDefault(b.Base, DefaultBackoffBase)
	for i := 0; i < b.k && ceil < capd; i++ {
		ceil *= 2
	}
	ceil = min(ceil, capd)
	wait := time.Duration(b.randN(int64(ceil) + 1))
	wait = max(wait, RetryAfter(err))

	var ga *GoawayError
	switch {
	case live && errors.As(err, &ga) && ga.Goaway.Code == protocol.Conflict:
		lo := orDefault(b.ReplacedMin, DefaultReplacedMin)
		if b.replaced == 0 {
			b.replaced = lo
		} else {
			b.replaced = min(b.replaced*2, orDefault(b.ReplacedMax, DefaultReplacedMax))
		}
		wait = max(wait, b.replaced)
	case stable:
		// A long session that ended for another reason: the device is no
		// longer fighting a twin.
		b.replaced = 0
	case !live && isAuthRefusal(err):
		wait = max(wait, orDefault(b.AuthWait, DefaultAuthWait))
	}
	return wait
}

// Reset forgets past failures.
func (b *Backoff) Reset() { b.k, b.replaced = 0, 0 }

func (b *Backoff) randN(n int64) int64 {
	if b.Rand != nil {
		return b.Rand(n)
	}
	return rand.Int64N(n)
}

// isAuthRefusal reports a HELLO refused UNAUTHENTICATED or FORBIDDEN (an
// ERROR frame is not a refusal: it ends a connection, not a login).
func isAuthRefusal(err error) bool {
	var e *protocol.Error
	return errors.As(err, &e) && (e.Code == protocol.Unauthenticated || e.Code == protocol.Forbidden)
}

// RetryAfter is the retry_after_ms carried by a refusal or GOAWAY in
// err's chain, 0 when there is none.
func RetryAfter(err error) time.Duration {
	var e *protocol.Error
	if errors.As(err, &e) {
		return time.Duration(e.RetryAfterMs) * time.Millisecond
	}
	var ga *GoawayError
	if errors.As(err, &ga) {
		return time.Duration(ga.Goaway.RetryAfterMs) * time.Millisecond
	}
	return 0
}

// Run keeps a terminal connected until ctx ends: it dials, runs session
// on each established connection, and after each failed dial or ended
// session waits as b says (nil → a default Backoff). session should
// return when c.Done() is closed or ctx ends; a nil session just waits for
// that. When the session function returns while the connection is still
// up, Run closes it (with BYE if ctx ended). Run returns ctx.Err().
func Run(ctx context.Context, cfg Config, b *Backoff, session func(ctx context.Context, c *Conn) error) error {
	if b == nil {
		b = &Backoff{}
	}
	log := cfg.logger().With("device_id", cfg.DeviceID)
	for {
		c, err := Dial(ctx, cfg)
		var lasted time.Duration
		if err == nil {
			start := time.Now()
			err = serve(ctx, c, session)
			lasted = max(time.Since(start), time.Nanosecond) // > 0: it was live
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := b.Next(err, lasted)
		log.Info("reconnecting", "err", err, "session", lasted, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// serve runs one session and returns why it ended.
func serve(ctx context.Context, c *Conn, session func(ctx context.Context, c *Conn) error) error {
	var serr error
	if session != nil {
		serr = session(ctx, c)
	} else {
		select {
		case <-c.Done():
		case <-ctx.Done():
		}
	}
	select {
	case <-c.Done():
		return c.Err()
	default:
	}
	if ctx.Err() != nil {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), byeTimeout)
		_ = c.Bye(bctx, "shutdown")
		cancel()
	}
	c.Close()
	return serr
}
