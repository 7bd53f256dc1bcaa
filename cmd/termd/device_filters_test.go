package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/termd/termd/server/admin/api"
)

// TestDeviceFiltersKillNine: every saved device search answered before a
// SIGKILL is there after the restart, with its query or a later one (a
// save in flight at the kill may have been committed unanswered).
func TestDeviceFiltersKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "")
	n.start()

	const workers, names = 4, 25 // 100 filters, under the node's bound
	var (
		mu    sync.Mutex
		acked = map[string]int{} // name → the last i answered
	)
	killDuring(t, n, workers, func(client *http.Client, w, i int) bool {
		name := fmt.Sprintf("k9-%d-%02d", w, i%names)
		body := fmt.Sprintf(`{"query":"id=w%d-%d"}`, w, i)
		req, _ := http.NewRequest("PUT", "http://"+n.adminAddr+"/v1/device-filters/"+name, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := client.Do(req)
		if err != nil {
			return false // killed
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
			mu.Lock()
			acked[name] = i
			mu.Unlock()
		}
		return true
	})
	if len(acked) < workers*names/2 {
		t.Fatalf("only %d names saved before the kill", len(acked))
	}
	n.start()

	var l api.DeviceFilterList
	n.get("/v1/device-filters", &l)
	stored := map[string]int{}
	for _, f := range l.Filters {
		_, num, _ := strings.Cut(strings.TrimPrefix(f.Query, "id=w"), "-")
		i, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("filter %s has query %q", f.Name, f.Query)
		}
		stored[f.Name] = i
	}
	saves := 0
	for name, i := range acked {
		got, ok := stored[name]
		if !ok || got < i {
			t.Fatalf("%s was answered with save %d before the kill, but after the restart holds %d (present %v)", name, i, got, ok)
		}
		saves += i/names + 1
	}
	t.Logf("≈%d saves answered before SIGKILL over %d names; every name holds its last answered query or a later one", saves, len(acked))
}
