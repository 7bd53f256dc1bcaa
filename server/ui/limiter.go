package ui

// Slowing down token guessing at the sign-in form: per source address,
// the first few failures are free, then each further failure makes that
// address wait twice as long before the next attempt is even checked
// (up to a minute). The table is bounded; an address that has not
// failed for a while is forgotten.

import (
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	// freeFailures are the failed sign-ins an address may make before it
	// has to wait.
	freeFailures = 3
	// firstWait is the wait after the first failure beyond freeFailures;
	// each further failure doubles it, up to maxWait.
	firstWait = time.Second
	maxWait   = time.Minute
	// forgetAfter drops an address that has not failed for this long.
	forgetAfter = 15 * time.Minute
	// maxLimited bounds the addresses remembered; at the bound the one
	// that failed longest ago is forgotten.
	maxLimited = 10000
)

type loginLimiter struct {
	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	n     int
	last  time.Time
	until time.Time // no attempt is checked before this
}

func newLoginLimiter() *loginLimiter { return &loginLimiter{m: map[string]*failures{}} }

// sourceOf is the address sign-ins are counted by: the peer's IP. Behind
// a reverse proxy every operator shares the proxy's address, so one
// guesser slows everyone down, which errs on the safe side.
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// wait returns how long src must still wait before an attempt.
func (l *loginLimiter) wait(src string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[src]
	if f == nil || !now.Before(f.until) {
		return 0
	}
	return f.until.Sub(now)
}

// failed counts a failed sign-in from src.
func (l *loginLimiter) failed(src string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[src]
	if f != nil && now.Sub(f.last) > forgetAfter {
		f = nil
	}
	if f == nil {
		if len(l.m) >= maxLimited {
			l.evict(now)
		}
		f = &failures{}
		l.m[src] = f
	}
	f.n++
	f.last = now
	if f.n > freeFailures {
		d := firstWait << min(f.n-freeFailures-1, 16)
		f.until = now.Add(min(d, maxWait))
	}
}

// succeeded forgets src's failures.
func (l *loginLimiter) succeeded(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, src)
}

// evict drops forgotten addresses and, if none was, the one that failed
// longest ago. Called with mu held, only when the table is full.
func (l *loginLimiter) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for src, f := range l.m {
		if now.Sub(f.last) > forgetAfter {
			delete(l.m, src)
			continue
		}
		if oldest == "" || f.last.Before(oldestAt) {
			oldest, oldestAt = src, f.last
		}
	}
	if len(l.m) >= maxLimited && oldest != "" {
		delete(l.m, oldest)
	}
}

func (l *loginLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
