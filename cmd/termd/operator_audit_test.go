package main

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/server/admin/api"
)

// TestOperatorAuditKillNine: operator requests answered before a SIGKILL
// are all in the operator audit after the restart, because each record
// is committed before its answer goes out.
func TestOperatorAuditKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "")
	n.start()

	var (
		mu    sync.Mutex
		acked []string
	)
	killDuring(t, n, 4, func(client *http.Client, w, i int) bool {
		path := fmt.Sprintf("/v1/devices/k9op-%d-%d/block", w, i)
		req, _ := http.NewRequest("POST", "http://"+n.adminAddr+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			return false // killed
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent {
			mu.Lock()
			acked = append(acked, path)
			mu.Unlock()
		}
		return true
	})
	if len(acked) < 20 {
		t.Fatalf("only %d requests answered before the kill", len(acked))
	}
	n.start()

	recorded := map[string]bool{}
	before := ""
	for {
		var page api.OperatorAuditList
		n.get("/v1/operator-audit?limit=1000&operator=admin&method=POST"+before, &page)
		for _, r := range page.Records {
			if r.Status == http.StatusNoContent {
				recorded[r.Path] = true
			}
		}
		if page.NextBefore == 0 {
			break
		}
		before = "&before=" + url.QueryEscape(fmt.Sprint(page.NextBefore))
	}
	for _, p := range acked {
		if !recorded[p] {
			t.Fatalf("%s was answered 204 before the kill but is not in the operator audit (%d answered, %d recorded)",
				p, len(acked), len(recorded))
		}
	}
	t.Logf("%d requests answered before SIGKILL, all %d in the audit after the restart (%d recorded)", len(acked), len(acked), len(recorded))
}

// killDuring runs workers goroutines calling do(client, worker, i) for
// i = 0, 1, … until do returns false, SIGKILLs the node 700 ms in and
// waits for the workers to see it.
func killDuring(t *testing.T, n *node, workers int, do func(client *http.Client, w, i int) bool) {
	t.Helper()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !do(client, w, i) {
					return
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.cmd.Wait()
	close(stop)
	wg.Wait()
}
