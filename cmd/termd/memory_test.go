package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol/client"
)

// heapAlloc forces a collection in the node (the heap profile's gc=1)
// and returns its live heap from /metrics, bytes.
func (n *node) heapAlloc() float64 {
	n.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.adminAddr+"/debug/pprof/heap?gc=1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	resp.Body.Close()
	return n.metricValue("go_memstats_heap_alloc_bytes")
}

// metricValue is an unlabelled metric of the node's /metrics as a
// number (metric, disk_test.go, reads it as text).
func (n *node) metricValue(name string) float64 {
	n.t.Helper()
	v := n.metric(name)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		n.t.Fatalf("%s in /metrics: %q", name, v)
	}
	return f
}

// TestHeapPerTerminal guards what holding a terminal costs a real termd
// process: the live heap it gains per authenticated, idle terminal,
// after a collection, with the terminals' presence written behind. That
// is gnet's connection (≈ 370 bytes with its addresses and table slot)
// plus termd's session, presence slot, online history, nonce and timer
// entries (≈ 480; the breakdown is in docs/performance.md). Each
// structure also has its own size test (server TestConnSize, auth's
// nonce slot, the write-behind's devicePresence, the history's
// TestMemoryPerDevice); this one catches growth none of them names.
//
// The figure is the increment from a first half of the terminals to all
// of them, so what termd builds once, at start-up or on the first
// connections (buffers, caches, pools), is in neither side: on a loaded
// machine part of it came after a baseline taken at rest, and the old
// whole-fleet figure rose to 1,800 bytes.
func TestHeapPerTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("connects 2,000 terminals")
	}
	terminals := 2000
	if s := os.Getenv("TERMD_MEM_TERMINALS"); s != "" {
		terminals, _ = strconv.Atoi(s)
	}
	n := newNode(t, "")
	n.start()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu      sync.Mutex
		clients []*client.Conn
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range clients {
			c.Close()
		}
	}()
	// connect opens terminals from..to-1 and waits until all to are online
	// and their presence is written behind; then it returns the live heap.
	connect := func(from, to int) float64 {
		t.Helper()
		var (
			wg   sync.WaitGroup
			errs []error
		)
		sem := make(chan struct{}, 64)
		for i := from; i < to; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := client.Dial(ctx, client.Config{Addr: n.tgp, DeviceID: fmt.Sprintf("mem-%05d", i),
					FleetSecret: []byte(testSecret), FW: "1.0.0", Model: "POS-1", NoHeartbeat: true})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				clients = append(clients, c)
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d of %d connects failed, first: %v", len(errs), to-from, errs[0])
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var st struct {
				Online int `json:"online"`
			}
			n.get("/v1/stats", &st)
			if st.Online == to && n.metricValue("termd_writebehind_pending") == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d online, %v devices pending in the write-behind", st.Online, to, n.metricValue("termd_writebehind_pending"))
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // two more flush intervals, the GC tuner at rest
		return n.heapAlloc()
	}
	half := connect(0, terminals/2)
	all := connect(terminals/2, terminals)
	per := (all - half) / float64(terminals-terminals/2)
	t.Logf("live heap %.1f MB with %d terminals, %.1f MB with %d: %.0f bytes per terminal", half/1e6, terminals/2, all/1e6, terminals, per)
	// 19,000 terminals measure ≈ 850 bytes (docs/performance.md); from
	// 1,000 to 2,000, where the maps' growth steps weigh more, 990–1,190
	// (also with other tests loading the machine). The bound is that plus
	// ≈ 200 bytes: a new per-terminal structure of that size fails it.
	if per > 1400 {
		t.Fatalf("%.0f bytes of live heap per terminal, over 1,400 (docs/performance.md, memory per terminal)", per)
	}
}
