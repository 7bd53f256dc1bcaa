// Package lifecycle holds what the server's features share in their life
// cycle (Open, Start, Close): each feature (control, groups, upgrade,
// schedule) stops its own background work, and this is only the bounded
// wait for that work, so the features stay independent of one another.
package lifecycle

import (
	"context"
	"sync"
)

// Wait waits for wg, or until ctx ends: it returns nil when wg is done
// first, and ctx.Err() otherwise. A wait that ctx cuts short leaves one
// goroutine waiting for wg: a Close whose deadline passed must still
// return, and the work it waited for ends on its own.
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
