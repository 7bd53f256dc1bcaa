package presence

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func entry(id string, session uint64) *Entry {
	return &Entry{DeviceID: id, SessionID: session, Since: int64(session) * 1000}
}

func TestRegisterUnregister(t *testing.T) {
	type op struct {
		unregister bool
		id         string
		session    uint64
		wantOld    uint64 // Register: replaced session, 0 = none
		wantOK     bool   // Unregister
		online     int
	}
	reg := func(id string, s, old uint64, online int) op {
		return op{id: id, session: s, wantOld: old, online: online}
	}
	unreg := func(id string, s uint64, ok bool, online int) op {
		return op{unregister: true, id: id, session: s, wantOK: ok, online: online}
	}
	tests := []struct {
		name string
		ops  []op
		live map[string]uint64 // device → session expected by Get at the end
	}{
		{
			name: "register and unregister",
			ops:  []op{reg("T-1", 1, 0, 1), unreg("T-1", 1, true, 0), unreg("T-1", 1, false, 0)},
		},
		{
			name: "replacement returns the old entry and keeps the count",
			ops:  []op{reg("T-1", 1, 0, 1), reg("T-1", 2, 1, 1), reg("T-1", 3, 2, 1)},
			live: map[string]uint64{"T-1": 3},
		},
		{
			name: "the replaced session's late close does not take the device offline",
			ops:  []op{reg("T-1", 1, 0, 1), reg("T-1", 2, 1, 1), unreg("T-1", 1, false, 1)},
			live: map[string]uint64{"T-1": 2},
		},
		{
			name: "the new session's close does",
			ops:  []op{reg("T-1", 1, 0, 1), reg("T-1", 2, 1, 1), unreg("T-1", 2, true, 0), reg("T-1", 3, 0, 1)},
			live: map[string]uint64{"T-1": 3},
		},
		{
			name: "unknown device",
			ops:  []op{reg("T-1", 1, 0, 1), unreg("T-2", 1, false, 1)},
			live: map[string]uint64{"T-1": 1},
		},
		{
			name: "several devices",
			ops: []op{
				reg("T-1", 1, 0, 1), reg("T-2", 1, 0, 2), reg("T-3", 5, 0, 3),
				unreg("T-2", 1, true, 2), reg("T-3", 6, 5, 2),
			},
			live: map[string]uint64{"T-1": 1, "T-3": 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := NewTable()
			for i, o := range tt.ops {
				if o.unregister {
					if ok := tb.Unregister(o.id, o.session); ok != o.wantOK {
						t.Fatalf("op %d: Unregister(%s, %d) = %v, want %v", i, o.id, o.session, ok, o.wantOK)
					}
				} else {
					e := entry(o.id, o.session)
					old := tb.Register(e)
					switch {
					case o.wantOld == 0 && old != nil:
						t.Fatalf("op %d: Register replaced session %d, want none", i, old.SessionID)
					case o.wantOld != 0 && (old == nil || old.SessionID != o.wantOld || old.DeviceID != o.id):
						t.Fatalf("op %d: Register replaced %+v, want session %d", i, old, o.wantOld)
					}
					if tb.Get(o.id) != e {
						t.Fatalf("op %d: Get does not return the registered entry", i)
					}
				}
				if got := tb.Online(); got != o.online {
					t.Fatalf("op %d: Online = %d, want %d", i, got, o.online)
				}
			}
			for _, id := range []string{"T-1", "T-2", "T-3"} {
				e := tb.Get(id)
				want, ok := tt.live[id]
				switch {
				case !ok && e != nil:
					t.Errorf("%s online with session %d, want offline", id, e.SessionID)
				case ok && (e == nil || e.SessionID != want):
					t.Errorf("%s = %+v, want session %d", id, e, want)
				}
			}
		})
	}
}

func TestEntryFields(t *testing.T) {
	tb := NewTable()
	e := &Entry{DeviceID: "T-1", SessionID: 1, Since: 5000}
	e.Touch(1) // Register starts LastSeen at Since.
	tb.Register(e)
	if got := e.LastSeen(); got != 5000 {
		t.Fatalf("LastSeen after Register = %d, want Since 5000", got)
	}
	if e.Status() != nil {
		t.Fatalf("Status before SetStatus = %x, want nil", e.Status())
	}
	tests := []struct {
		touch  int64
		status []byte
	}{
		{touch: 6000, status: []byte{0x80}},
		{touch: 7000, status: []byte{0x81, 0xa1, 'k', 0x01}},
		{touch: 7000, status: nil},
	}
	for _, tt := range tests {
		e.Touch(tt.touch)
		e.SetStatus(tt.status)
		if got := e.LastSeen(); got != tt.touch {
			t.Errorf("LastSeen = %d, want %d", got, tt.touch)
		}
		if got := e.Status(); !bytes.Equal(got, tt.status) {
			t.Errorf("Status = %x, want %x", got, tt.status)
		}
	}
}

func TestPage(t *testing.T) {
	tb := NewTable()
	var ids []string
	for i := range 150 {
		id := fmt.Sprintf("T-%03d", (i*37)%150) // registered out of order
		ids = append(ids, id)
		tb.Register(entry(id, uint64(i+1)))
	}
	slices.Sort(ids)
	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{after: "", limit: 3, want: ids[:3]},
		{after: "", limit: 150, want: ids},
		{after: "", limit: 1000, want: ids},
		{after: "", limit: 0, want: nil},
		{after: ids[0], limit: 2, want: ids[1:3]},
		{after: "T-099", limit: 10, want: ids[100:110]},
		{after: "T-0995", limit: 1, want: ids[100:101]}, // cursor between ids
		{after: ids[148], limit: 10, want: ids[149:]},
		{after: ids[149], limit: 10, want: nil},
		{after: "U", limit: 10, want: nil},
	}
	for _, tt := range tests {
		var got []string
		for _, e := range tb.Page(tt.after, tt.limit) {
			got = append(got, e.DeviceID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Page(%q, %d) = %v, want %v", tt.after, tt.limit, got, tt.want)
		}
	}
	// Walking with the cursor visits every device exactly once, in order.
	var walked []string
	for after := ""; ; {
		p := tb.Page(after, 7)
		if len(p) == 0 {
			break
		}
		for _, e := range p {
			walked = append(walked, e.DeviceID)
		}
		after = p[len(p)-1].DeviceID
	}
	if !slices.Equal(walked, ids) {
		t.Fatalf("cursor walk = %v, want %v", walked, ids)
	}
	// Offline devices drop out of pages.
	tb.Unregister(ids[1], tb.Get(ids[1]).SessionID)
	var got []string
	for _, e := range tb.Page("", 3) {
		got = append(got, e.DeviceID)
	}
	if want := []string{ids[0], ids[2], ids[3]}; !slices.Equal(got, want) {
		t.Fatalf("Page after Unregister = %v, want %v", got, want)
	}
}

func TestEach(t *testing.T) {
	tests := []struct {
		devices   int
		stopAfter int // fn returns false on this call; 0 = never
		wantCalls int
	}{
		{devices: 0, wantCalls: 0},
		{devices: 1, wantCalls: 1},
		{devices: 500, wantCalls: 500},
		{devices: 500, stopAfter: 1, wantCalls: 1},
		{devices: 500, stopAfter: 200, wantCalls: 200},
	}
	for _, tt := range tests {
		tb := NewTable()
		for i := range tt.devices {
			tb.Register(entry(fmt.Sprintf("T-%d", i), uint64(i+1)))
		}
		seen := make(map[string]int)
		calls := 0
		tb.Each(func(e *Entry) bool {
			calls++
			seen[e.DeviceID]++
			return calls != tt.stopAfter
		})
		if calls != tt.wantCalls {
			t.Errorf("%d devices, stop at %d: %d calls, want %d", tt.devices, tt.stopAfter, calls, tt.wantCalls)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s visited %d times", id, n)
			}
		}
		if tt.stopAfter == 0 && len(seen) != tt.devices {
			t.Errorf("visited %d devices, want %d", len(seen), tt.devices)
		}
	}
}

// TestEachAllowsTableCalls: fn may use the table (Each does not hold a
// shard lock while calling it).
func TestEachAllowsTableCalls(t *testing.T) {
	tb := NewTable()
	for i := range 100 {
		tb.Register(entry(fmt.Sprintf("T-%d", i), 1))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tb.Each(func(e *Entry) bool {
			tb.Unregister(e.DeviceID, e.SessionID)
			return true
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Each deadlocked: fn called under a shard lock")
	}
	if tb.Online() != 0 {
		t.Fatalf("Online = %d after unregistering from Each", tb.Online())
	}
}

func TestConcurrentRegisterUnregister(t *testing.T) {
	const (
		workers = 16
		devices = 64 // shared by all workers
		rounds  = 300
	)
	tb := NewTable()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				id := fmt.Sprintf("T-%d", (w*7+r)%devices)
				sid := uint64(w*rounds + r + 1)
				e := entry(id, sid)
				tb.Register(e)
				e.Touch(int64(r))
				e.SetStatus([]byte{byte(r)})
				_ = tb.Get(id)
				_ = tb.Online()
				if r%3 != 0 {
					tb.Unregister(id, sid)
				}
				if r%50 == 0 {
					_ = tb.Page("", 10)
					tb.Each(func(e *Entry) bool { _ = e.LastSeen(); _ = e.Status(); return true })
				}
			}
		})
	}
	wg.Wait()
	n := 0
	tb.Each(func(*Entry) bool { n++; return true })
	if tb.Online() != n {
		t.Fatalf("Online = %d, but %d entries are in the table", tb.Online(), n)
	}
	// Unregister the survivors: the count must come back to exactly 0.
	tb.Each(func(e *Entry) bool {
		if !tb.Unregister(e.DeviceID, e.SessionID) {
			t.Errorf("could not unregister %s", e.DeviceID)
		}
		return true
	})
	if tb.Online() != 0 {
		t.Fatalf("Online = %d after unregistering everything", tb.Online())
	}
}

func TestConcurrentDistinctDevices(t *testing.T) {
	const workers, per = 8, 500
	tb := NewTable()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				id := fmt.Sprintf("W%d-%d", w, i)
				tb.Register(entry(id, 1))
				tb.Register(entry(id, 2)) // replacement: no change in count
				if i%2 == 0 {
					tb.Unregister(id, 1) // stale: no effect
					tb.Unregister(id, 2)
				}
			}
		})
	}
	wg.Wait()
	if want := workers * per / 2; tb.Online() != want {
		t.Fatalf("Online = %d, want %d", tb.Online(), want)
	}
	if got := len(tb.Page("", workers*per)); got != workers*per/2 {
		t.Fatalf("Page returned %d entries, want %d", got, workers*per/2)
	}
}
