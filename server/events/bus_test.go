package events

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// publishWithin publishes ev and fails if Publish does not return in d:
// Publish runs on event loops and must never block.
func publishWithin(t *testing.T, b *Bus, ev Event, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		b.Publish(ev)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Publish(%+v) blocked", ev)
	}
}

func TestBusDelivery(t *testing.T) {
	tests := []struct {
		name        string
		sizes       []int // queue size of each subscriber
		publish     int
		wantGot     []int // events received by each subscriber
		wantDropped []uint64
	}{
		{name: "no subscribers", sizes: nil, publish: 3},
		{name: "room for all", sizes: []int{4, 8}, publish: 4, wantGot: []int{4, 4}, wantDropped: []uint64{0, 0}},
		{name: "a full subscriber drops", sizes: []int{2, 8}, publish: 5, wantGot: []int{2, 5}, wantDropped: []uint64{3, 0}},
		{name: "unbuffered subscriber drops everything", sizes: []int{0, 1}, publish: 3, wantGot: []int{0, 1}, wantDropped: []uint64{3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBus()
			subs := make([]*Subscription, len(tt.sizes))
			for i, n := range tt.sizes {
				subs[i] = b.Subscribe(n)
			}
			if b.Subscribers() != len(subs) {
				t.Fatalf("Subscribers = %d, want %d", b.Subscribers(), len(subs))
			}
			for i := range tt.publish {
				publishWithin(t, b, Event{Kind: KindOnline, DeviceID: fmt.Sprintf("T-%d", i), SessionID: uint64(i)}, 2*time.Second)
			}
			var total uint64
			for i, s := range subs {
				if got := s.Dropped(); got != tt.wantDropped[i] {
					t.Errorf("subscriber %d: Dropped = %d, want %d", i, got, tt.wantDropped[i])
				}
				total += tt.wantDropped[i]
				s.Close()
				// The first events are kept, in order; the overflow is lost.
				n := 0
				for ev := range s.C {
					if want := fmt.Sprintf("T-%d", n); ev.DeviceID != want || ev.SessionID != uint64(n) || ev.Kind != KindOnline {
						t.Errorf("subscriber %d event %d = %+v, want %s", i, n, ev, want)
					}
					n++
				}
				if n != tt.wantGot[i] {
					t.Errorf("subscriber %d received %d events, want %d", i, n, tt.wantGot[i])
				}
			}
			if b.Dropped() != total {
				t.Errorf("Bus.Dropped = %d, want %d", b.Dropped(), total)
			}
		})
	}
}

func TestBusFullSubscriberDoesNotBlockOthers(t *testing.T) {
	b := NewBus()
	stuck := b.Subscribe(1)
	defer stuck.Close()
	live := b.Subscribe(1)
	defer live.Close()
	for i := range 1000 {
		publishWithin(t, b, Event{Kind: KindOffline, DeviceID: "T-1", SessionID: uint64(i)}, 2*time.Second)
		select {
		case ev := <-live.C:
			if ev.SessionID != uint64(i) {
				t.Fatalf("live subscriber got %+v, want session %d", ev, i)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("live subscriber missed event %d", i)
		}
	}
	if stuck.Dropped() != 999 || live.Dropped() != 0 || b.Dropped() != 999 {
		t.Fatalf("dropped: stuck %d, live %d, bus %d; want 999, 0, 999", stuck.Dropped(), live.Dropped(), b.Dropped())
	}
}

func TestBusClose(t *testing.T) {
	b := NewBus()
	a := b.Subscribe(4)
	c := b.Subscribe(4)
	if b.Subscribers() != 2 {
		t.Fatalf("Subscribers = %d, want 2", b.Subscribers())
	}
	a.Close()
	a.Close() // double Close is safe
	if b.Subscribers() != 1 {
		t.Fatalf("Subscribers after Close = %d, want 1", b.Subscribers())
	}
	select {
	case _, ok := <-a.C:
		if ok {
			t.Fatal("closed subscription received an event")
		}
	default:
		t.Fatal("C not closed by Close")
	}
	// A closed subscription gets nothing and counts no drops.
	publishWithin(t, b, Event{Kind: KindReplaced, DeviceID: "T-1"}, 2*time.Second)
	if a.Dropped() != 0 || b.Dropped() != 0 {
		t.Fatalf("drops after Close: sub %d, bus %d", a.Dropped(), b.Dropped())
	}
	if ev := <-c.C; ev.Kind != KindReplaced {
		t.Fatalf("remaining subscriber got %+v", ev)
	}
	c.Close()
	if b.Subscribers() != 0 {
		t.Fatalf("Subscribers = %d, want 0", b.Subscribers())
	}
}

// TestBusConcurrent: Publish, Subscribe and Close from many goroutines
// never send on a closed channel, and every event is either delivered or
// counted as dropped.
func TestBusConcurrent(t *testing.T) {
	b := NewBus()
	const publishers, perPublisher = 4, 500
	long := b.Subscribe(8)
	var received int
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for range long.C {
			received++
		}
	}()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				b.Publish(Event{Kind: KindOnline, DeviceID: fmt.Sprintf("T-%d-%d", p, i)})
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 200 {
				s := b.Subscribe(1)
				_ = s.Dropped()
				_ = b.Subscribers()
				s.Close()
			}
		})
	}
	wg.Wait()
	dropped := long.Dropped()
	long.Close()
	<-recvDone
	if got := uint64(received) + dropped; got != publishers*perPublisher {
		t.Fatalf("received %d + dropped %d = %d, want %d", received, dropped, got, publishers*perPublisher)
	}
	if b.Subscribers() != 0 {
		t.Fatalf("Subscribers = %d, want 0", b.Subscribers())
	}
	if b.Dropped() < dropped {
		t.Fatalf("Bus.Dropped %d < the long subscriber's %d", b.Dropped(), dropped)
	}
}
