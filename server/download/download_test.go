package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

// node is a download node serving over real HTTP on loopback, with a
// clock the test moves.
type node struct {
	*Server
	dir   string
	arts  *storage.Artifacts
	clock atomic.Int64 // unix nanoseconds
}

func startNode(t *testing.T, dir string, mutate func(*config.Download)) *node {
	t.Helper()
	n := &node{dir: dir}
	n.clock.Store(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC).UnixNano())
	arts, err := storage.OpenArtifacts(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.arts = arts
	cfg := config.DownloadDefaults()
	cfg.Listen = "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	n.Server, err = Open(Options{Config: cfg, DataDir: dir, Artifacts: arts, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return time.Unix(0, n.clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return n
}

func (n *node) put(t *testing.T, b []byte) [32]byte {
	t.Helper()
	info, err := n.arts.Put(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return info.SHA256
}

func get(t *testing.T, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func artifact(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// A download stopped part-way resumes with a Range request, both by hand
// and with the SDK's DownloadArtifact, and the result verifies.
func TestRangeResume(t *testing.T) {
	n := startNode(t, t.TempDir(), nil)
	art := artifact(300_000)
	sha := n.put(t, art)
	u := n.URL(sha, "pos-1")
	if len(u) > 256 || !strings.HasPrefix(u, n.Base()+"/a/") {
		t.Fatalf("URL %q", u)
	}
	resp, first := get(t, "GET", u, "Range", "bytes=0-99999")
	if resp.StatusCode != http.StatusPartialContent || len(first) != 100_000 {
		t.Fatalf("first range: %s, %d bytes", resp.Status, len(first))
	}
	resp, rest := get(t, "GET", u, "Range", "bytes=100000-", "If-Range", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != "bytes 100000-299999/300000" {
		t.Fatalf("resume: %s %q", resp.Status, resp.Header.Get("Content-Range"))
	}
	if !bytes.Equal(append(first, rest...), art) {
		t.Fatal("resumed bytes differ")
	}

	// The SDK resumes a .part the same way and verifies the whole.
	offer := &protocol.Offer{SHA256: sha256.Sum256(art), Size: uint64(len(art))}
	dst := filepath.Join(t.TempDir(), "fw")
	os.WriteFile(dst+".part", art[:123_456], 0o600)
	if err := client.DownloadArtifact(context.Background(), nil, u, dst, offer); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, art) {
		t.Fatal("SDK download differs")
	}
	// HEAD: the size and Range support, no body.
	resp, body := get(t, "HEAD", u)
	if resp.StatusCode != 200 || resp.ContentLength != 300_000 || resp.Header.Get("Accept-Ranges") != "bytes" || len(body) != 0 {
		t.Fatalf("HEAD: %s len %d ranges %q body %d", resp.Status, resp.ContentLength, resp.Header.Get("Accept-Ranges"), len(body))
	}
	if !metricHas(n, `termd_download_requests_total{result="partial"} 3`) || !metricHas(n, "termd_download_bytes_total 476544") {
		t.Errorf("metrics:\n%s", metricText(n))
	}
}

// Only the exact URL works: a token changed in any part, moved to another
// artifact or device, or expired, is refused with 403; a valid token for
// an artifact not stored is 404.
func TestTokenRefused(t *testing.T) {
	n := startNode(t, t.TempDir(), func(c *config.Download) { c.TokenTTL = config.D(time.Hour) })
	sha := n.put(t, []byte("artifact one"))
	other := n.put(t, []byte("artifact two"))
	u := n.URL(sha, "pos-1")
	if resp, b := get(t, "GET", u); resp.StatusCode != 200 || string(b) != "artifact one" {
		t.Fatalf("valid URL: %s %q", resp.Status, b)
	}
	q := u[strings.Index(u, "?"):]
	tok := u[strings.Index(u, "&t=")+3:]
	flipped := []byte(tok)
	flipped[3] ^= 1
	if flipped[3] == '-' || flipped[3] == '_' {
		flipped[3] = 'A'
	}
	exp := u[strings.Index(u, "&e=")+3 : strings.Index(u, "&t=")]
	later, _ := strconv.ParseInt(exp, 10, 64)
	for name, bad := range map[string]string{
		"token flipped":      strings.Replace(u, tok, string(flipped), 1),
		"token truncated":    u[:len(u)-1],
		"other device":       strings.Replace(u, "d=pos-1", "d=pos-2", 1),
		"expiry extended":    strings.Replace(u, "e="+exp, "e="+strconv.FormatInt(later+3600, 10), 1),
		"other artifact":     fmt.Sprintf("%s/a/%x%s", n.Base(), other, q),
		"no token":           fmt.Sprintf("%s/a/%x", n.Base(), sha),
		"token of nothing":   fmt.Sprintf("%s/a/%x?d=pos-1&e=%s&t=", n.Base(), sha, exp),
		"expiry not numeric": strings.Replace(u, "e="+exp, "e=x", 1),
	} {
		if resp, _ := get(t, "GET", bad); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s", name, resp.Status)
		}
	}
	missing := sha256.Sum256([]byte("never uploaded"))
	if resp, _ := get(t, "GET", n.URL(missing, "pos-1")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown artifact: %s", resp.Status)
	}
	if resp, _ := get(t, "GET", n.Base()+"/a/zz"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bad digest: %s", resp.Status)
	}
	// An hour and a second later the URL has expired.
	n.clock.Add(int64(time.Hour + time.Second))
	if resp, b := get(t, "GET", u); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "expired") {
		t.Errorf("expired: %s %q", resp.Status, b)
	}
	if !metricHas(n, `termd_download_requests_total{result="expired"} 1`) || !metricHas(n, `termd_download_requests_total{result="forbidden"} 8`) {
		t.Errorf("metrics:\n%s", metricText(n))
	}
}

// Beyond max_concurrent downloads in flight a request gets 503 with
// Retry-After (HEAD is not counted); a slot freed is used again.
func TestConcurrencyCap(t *testing.T) {
	n := startNode(t, t.TempDir(), func(c *config.Download) { c.MaxConcurrent = 1 })
	// Large enough that the server blocks on the socket while the client
	// does not read (loopback buffers hold a few MiB).
	big := artifact(48 << 20)
	sha := n.put(t, big)
	u := n.URL(sha, "pos-1")
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(n.slots) != 1; {
		if time.Now().After(deadline) {
			t.Fatal("first download never took its slot")
		}
		time.Sleep(10 * time.Millisecond)
	}
	busy, _ := get(t, "GET", u)
	ra, _ := strconv.Atoi(busy.Header.Get("Retry-After"))
	if busy.StatusCode != http.StatusServiceUnavailable || ra < busyRetryMin || ra >= busyRetryMin+busyRetrySpread {
		t.Fatalf("second download: %s Retry-After %q", busy.Status, busy.Header.Get("Retry-After"))
	}
	if head, _ := get(t, "HEAD", u); head.StatusCode != 200 {
		t.Fatalf("HEAD while busy: %s", head.Status)
	}
	if !metricHas(n, "termd_download_in_flight 1") {
		t.Errorf("metrics:\n%s", metricText(n))
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("first download: %v, %d bytes", err, len(got))
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		r, _ := get(t, "GET", u, "Range", "bytes=0-9")
		if r.StatusCode == http.StatusPartialContent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %s", r.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !metricHas(n, `termd_download_requests_total{result="busy"} 1`) {
		t.Errorf("metrics:\n%s", metricText(n))
	}
}

// Short external URLs are returned as they are; long ones get a short
// termd URL that redirects, is the same for the same URL, and survives a
// restart of the node; the token secret survives too.
func TestShortURLAndRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, nil)
	short := "https://cdn.example/fw.bin"
	if got, err := n.ShortURL(short); err != nil || got != short {
		t.Fatalf("ShortURL(short) = %q, %v", got, err)
	}
	long := "https://cdn.example/" + strings.Repeat("x", 300) + "/fw.bin?sig=abc"
	s1, err := n.ShortURL(long)
	if err != nil || len(s1) > 256 || !strings.HasPrefix(s1, n.Base()+"/r/") {
		t.Fatalf("ShortURL(long) = %q, %v", s1, err)
	}
	if s2, _ := n.ShortURL(long); s2 != s1 {
		t.Fatalf("same URL, two ids: %q %q", s1, s2)
	}
	for _, bad := range []string{"ftp://x/" + strings.Repeat("y", 300), strings.Repeat("z", 300), "https://h/" + strings.Repeat("q", MaxExternalURL)} {
		if _, err := n.ShortURL(bad); err == nil {
			t.Errorf("ShortURL(%.20q...) accepted", bad)
		}
	}
	sha := n.put(t, []byte("fw"))
	signed := n.URL(sha, "pos-1")

	// A second node on the same data dir (as after a restart).
	m := startNode(t, dir, nil)
	path := s1[len(n.Base()):]
	resp, _ := get(t, "GET", m.Base()+path)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != long {
		t.Fatalf("redirect after restart: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := get(t, "GET", m.Base()+"/r/0123456789abcdef01234567"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown redirect: %s", resp.Status)
	}
	if resp, b := get(t, "GET", m.Base()+signed[len(n.Base()):]); resp.StatusCode != 200 || string(b) != "fw" {
		t.Errorf("URL signed before the restart: %s", resp.Status)
	}
	if st, err := os.Stat(filepath.Join(dir, SecretFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("secret file: %v", err)
	}
}

// The longest url_base and device id still give URLs within 256 bytes.
func TestURLBound(t *testing.T) {
	dir := t.TempDir()
	arts, _ := storage.OpenArtifacts(dir, nil)
	cfg := config.DownloadDefaults()
	cfg.URLBase = "https://" + strings.Repeat("d", config.MaxDownloadURLBase-len("https://"))
	s, err := Open(Options{Config: cfg, DataDir: dir, Artifacts: arts})
	if err != nil {
		t.Fatal(err)
	}
	u := s.URL([32]byte{1}, strings.Repeat("D", protocol.MaxID))
	if len(u) != 256 {
		t.Fatalf("longest URL is %d bytes, want exactly 256", len(u))
	}
}

func metricText(n *node) string {
	var b bytes.Buffer
	n.Metrics().WritePrometheus(&b)
	return b.String()
}

func metricHas(n *node, line string) bool { return strings.Contains(metricText(n), line+"\n") }
