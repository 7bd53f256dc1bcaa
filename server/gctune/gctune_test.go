package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

var sink []byte

// TestRaisesUnderLoadAndReturnsAtRest allocates hard enough to run the
// collector many times a period, checks the percentage went up (and that
// the runtime has it), then stops allocating and checks it comes back to
// Base.
func TestRaisesUnderLoadAndReturnsAtRest(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	tu := New(Config{Base: 25, Max: 400, Period: 50 * time.Millisecond})
	if got := debug.SetGCPercent(25); got != 25 {
		t.Fatalf("New set GOGC %d, want 25", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tu.Run(ctx); close(done) }()

	deadline := time.Now().Add(10 * time.Second)
	for tu.Percent() <= 25 && time.Now().Before(deadline) {
		for range 1000 {
			sink = make([]byte, 16<<10)
		}
	}
	if p := tu.Percent(); p <= 25 || p > 400 {
		t.Fatalf("under load the percentage is %d, want in (25, 400]", p)
	}
	if tu.Raises() == 0 {
		t.Fatal("no raise counted")
	}
	if got := debug.SetGCPercent(tu.Percent()); got != tu.Percent() {
		t.Fatalf("runtime GOGC %d, tuner says %d", got, tu.Percent())
	}

	sink = nil
	runtime.GC()
	deadline = time.Now().Add(10 * time.Second)
	for tu.Percent() != 25 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := tu.Percent(); p != 25 {
		t.Fatalf("at rest the percentage is %d, want 25", p)
	}
	cancel()
	<-done
	if got := debug.SetGCPercent(old); got != 25 {
		t.Fatalf("after Run GOGC is %d, want Base 25", got)
	}
}

// TestOffWhenMaxNotAboveBase keeps Base whatever the load.
func TestOffWhenMaxNotAboveBase(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	tu := New(Config{Base: 50, Max: 50, Period: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			sink = make([]byte, 64<<10)
		}
	}()
	tu.Run(ctx)
	<-stopped
	if p := tu.Percent(); p != 50 {
		t.Fatalf("percentage %d, want 50", p)
	}
}

// TestBaseWhileSessionsGrow keeps Base while the session count grows,
// however much is allocated: terminals connecting add state, not garbage.
// It steps the tuner itself, once per round of growth, so a loaded
// machine cannot slip a period without growth in between (the version
// driven by Run's timer failed that way under -race at load 5–8).
func TestBaseWhileSessionsGrow(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	var sessions atomic.Int64
	tu := New(Config{Base: 25, Max: 400, Period: time.Hour, Sessions: sessions.Load})
	for round := range 20 {
		sessions.Add(100) // 100 new sessions per period and more
		for range 200 {
			sink = make([]byte, 16<<10)
		}
		tu.step()
		if p := tu.Percent(); p != 25 {
			t.Fatalf("round %d: percentage %d while sessions grow, want 25", round, p)
		}
	}
	// The same allocation without growth raises it: the check above is
	// not vacuous.
	for range 200 {
		sink = make([]byte, 16<<10)
	}
	tu.step()
	if p := tu.Percent(); p <= 25 {
		t.Fatalf("percentage %d after a period of allocation without growth, want above 25", p)
	}
}

// TestReturnsPagesOnComingToRest: the first period at rest after start,
// and the first after the sessions stop growing, hand freed pages back to
// the OS (counted by Returns); periods that stay at rest do not.
func TestReturnsPagesOnComingToRest(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	var sessions atomic.Int64
	tu := New(Config{Base: 25, Max: 400, Period: 20 * time.Millisecond, Sessions: sessions.Load})
	tu.step()
	if n := tu.Returns(); n != 1 {
		t.Fatalf("%d returns after the first period at rest, want 1", n)
	}
	tu.step()
	tu.step()
	if n := tu.Returns(); n != 1 {
		t.Fatalf("%d returns while staying at rest, want 1", n)
	}
	sessions.Add(1000)
	tu.step() // growing
	sessions.Add(1000)
	tu.step() // still growing
	if n := tu.Returns(); n != 1 {
		t.Fatalf("%d returns while sessions grow, want 1", n)
	}
	runtime.GC()
	tu.step() // grown: at rest again
	if n := tu.Returns(); n != 2 {
		t.Fatalf("%d returns after the sessions stopped growing, want 2", n)
	}
}
