package lifecycle

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Wait returns nil once the group is done, and ctx's error when ctx ends
// first.
func TestWait(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { time.Sleep(10 * time.Millisecond); wg.Done() }()
	if err := Wait(context.Background(), &wg); err != nil {
		t.Fatalf("done group: %v", err)
	}

	var stuck sync.WaitGroup
	stuck.Add(1)
	defer stuck.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := Wait(ctx, &stuck); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stuck group: got %v, want the deadline", err)
	}
}
