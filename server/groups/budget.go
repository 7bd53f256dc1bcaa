package groups

import (
	"math"
	"sync"
	"time"
)

// budgets are the per-sender GROUP_SEND token buckets (spec §7: default
// 1 message/s, burst 10). Buckets that refilled are dropped by sweep, so
// memory follows the recent senders only.
type budgets struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	m     map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newBudgets(rate float64, burst int) *budgets {
	return &budgets{rate: rate, burst: float64(burst), m: map[string]*bucket{}}
}

// take spends one token of sender at now; when none is left it returns
// the wait until one is.
func (b *budgets) take(sender string, now time.Time) (ok bool, retry time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.m[sender]
	if k == nil {
		k = &bucket{tokens: b.burst, at: now}
		b.m[sender] = k
	}
	k.tokens = math.Min(b.burst, k.tokens+now.Sub(k.at).Seconds()*b.rate)
	k.at = now
	if k.tokens >= 1 {
		k.tokens--
		return true, 0
	}
	return false, time.Duration((1 - k.tokens) / b.rate * float64(time.Second))
}

// sweep forgets buckets that are full again.
func (b *budgets) sweep(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, k := range b.m {
		if k.tokens+now.Sub(k.at).Seconds()*b.rate >= b.burst {
			delete(b.m, id)
		}
	}
}
