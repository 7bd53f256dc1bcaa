package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
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
	resp, err = http.Get("http://" + n.adminAddr + "/metrics")
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				n.t.Fatal(err)
			}
			return f
		}
	}
	n.t.Fatal("no go_memstats_heap_alloc_bytes in /metrics")
	return 0
}

// TestHeapPerTerminal guards what holding a terminal costs a real termd
// process: the live heap it gains per authenticated, idle terminal, after
// a collection, with the terminals' presence written behind. That is
// gnet's connection (≈ 340 bytes with its addresses) plus termd's
// session, presence slot, online history, nonce and timer entries (≈ 500;
// the breakdown is in docs/performance.md). Each structure also has its
// own size test (server TestConnSize, auth's nonce slot, the
// write-behind's devicePresence, the history's TestMemoryPerDevice); this
// one catches growth none of them names.
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
	// The baseline: a node at rest, as the terminals will find it.
	time.Sleep(300 * time.Millisecond)
	before := n.heapAlloc()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		clients []*client.Conn
		errs    []error
	)
	sem := make(chan struct{}, 64)
	for i := range terminals {
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
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	if len(errs) > 0 {
		t.Fatalf("%d of %d connects failed, first: %v", len(errs), terminals, errs[0])
	}
	// Wait until every terminal is online in the registry: the storm's
	// write-behind state has been flushed and let go.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st struct {
			Online int `json:"online"`
		}
		n.get("/v1/stats", &st)
		if st.Online == terminals {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d online", st.Online, terminals)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // two write-behind flushes
	after := n.heapAlloc()
	per := (after - before) / float64(terminals)
	t.Logf("live heap %.1f MB → %.1f MB with %d terminals: %.0f bytes per terminal", before/1e6, after/1e6, terminals, per)
	// 19,000 terminals measure ≈ 850 bytes (docs/performance.md); at
	// 2,000, where the maps' growth steps weigh more, 1,240–1,280 (8,000:
	// ≈ 1,000, TERMD_MEM_TERMINALS=8000 without -race: the race detector
	// allows 8,128 goroutines). The bound is that plus ≈ 120 bytes: a
	// new per-terminal structure of that size fails it.
	if per > 1400 {
		t.Fatalf("%.0f bytes of live heap per terminal, over 1,400 (docs/performance.md, memory per terminal)", per)
	}
}
