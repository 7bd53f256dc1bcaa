package download

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// A valid token of a revoked (sha, device) is refused with 410 Gone and
// counted; the same artifact still downloads for another device, an
// invalid token stays 403, and revocation is asked only after the token
// verifies.
func TestRevokedDownloadGone(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	sha := n.put(t, []byte("withdrawn artifact"))
	var mu sync.Mutex
	var asked []string
	n.SetRevoked(func(s [32]byte, dev string) bool {
		mu.Lock()
		asked = append(asked, dev)
		mu.Unlock()
		return s == sha && dev == "pos-1"
	})
	u := n.URL(sha, "pos-1")
	for _, m := range []string{"GET", "HEAD"} {
		if resp, b := get(t, m, u); resp.StatusCode != http.StatusGone || (m == "GET" && !strings.Contains(string(b), "cancelled")) {
			t.Fatalf("%s revoked token: %s %q", m, resp.Status, b)
		}
	}
	if resp, b := get(t, "GET", n.URL(sha, "pos-2")); resp.StatusCode != 200 || string(b) != "withdrawn artifact" {
		t.Fatalf("other device: %s %q", resp.Status, b)
	}
	if resp, _ := get(t, "GET", strings.Replace(u, "d=pos-1", "d=pos-3", 1)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged token: %s", resp.Status)
	}
	mu.Lock()
	if strings.Contains(strings.Join(asked, ","), "pos-3") {
		t.Error("Revoked asked about a token that does not verify")
	}
	mu.Unlock()
	if !metricHas(n, `termd_download_requests_total{result="revoked"} 2`) {
		t.Errorf("revoked not counted:\n%s", metricText(n))
	}
	n.SetRevoked(nil)
	if resp, _ := get(t, "GET", u); resp.StatusCode != 200 {
		t.Fatalf("after SetRevoked(nil): %s", resp.Status)
	}
}
