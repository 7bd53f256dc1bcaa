package download

import (
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/termd/termd/storage"
)

// Handler is the node's HTTP handler (Serve uses it; tests may mount it).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// GET patterns also match HEAD.
	mux.HandleFunc("GET "+artifactPath+"{sha}", s.serveArtifact)
	mux.HandleFunc("GET "+redirectPath+"{id}", s.serveRedirect)
	return mux
}

// serveArtifact answers GET and HEAD /a/{sha256}?d=&e=&t=: 403 for a
// missing, wrong or expired token, 410 for a valid token of a cancelled
// release (Options.Revoked), 404 for an artifact not stored, 503
// with Retry-After when max_concurrent downloads are running, otherwise
// the bytes with Range support (206 for a range, so a cut-off download
// resumes where it stopped).
func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request) {
	raw, err := hex.DecodeString(r.PathValue("sha"))
	if err != nil || len(raw) != 32 {
		s.m.result(resultNotFound)
		http.NotFound(w, r)
		return
	}
	sha := [32]byte(raw)
	switch checkToken(s.secret, sha, r.URL.Query(), s.now()) {
	case tokenInvalid:
		s.m.result(resultForbidden)
		http.Error(w, "invalid download token", http.StatusForbidden)
		return
	case tokenExpired:
		s.m.result(resultExpired)
		http.Error(w, "download token expired: query for the release again", http.StatusForbidden)
		return
	}
	if fn := s.revoked.Load(); fn != nil && (*fn)(sha, r.URL.Query().Get("d")) {
		s.m.result(resultRevoked)
		http.Error(w, "release cancelled: download withdrawn, discard what was downloaded", http.StatusGone)
		return
	}
	if r.Method == http.MethodGet {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			s.m.result(resultBusy)
			w.Header().Set("Retry-After", strconv.Itoa(busyRetryMin+rand.IntN(busyRetrySpread)))
			http.Error(w, "download node busy", http.StatusServiceUnavailable)
			return
		}
	}
	f, info, err := s.artifacts.Open(sha)
	if errors.Is(err, storage.ErrNotFound) {
		s.m.result(resultNotFound)
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.m.result(resultError)
		s.log.Error("download: open artifact", "sha256", hex.EncodeToString(sha[:]), "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	// A slot is held at most as long as a minimal rate needs.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(stallGrace +
		time.Duration(info.Size/minRateBytesPerSec)*time.Second))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	// The content never changes under its name: the ETag lets If-Range
	// resume safely, and caches may keep it (the token is in the URL).
	h.Set("ETag", `"`+hex.EncodeToString(sha[:])+`"`)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
	http.ServeContent(cw, r, "", info.Created, f)
	s.m.bytes.Add(int(cw.n))
	switch cw.status {
	case http.StatusOK:
		s.m.result(resultOK)
	case http.StatusPartialContent:
		s.m.result(resultPartial)
	case http.StatusNotModified:
		s.m.result(resultNotModified)
	case http.StatusRequestedRangeNotSatisfiable:
		s.m.result(resultBadRange)
	default:
		s.m.result(resultError)
	}
}

// serveRedirect answers GET and HEAD /r/{id} with a 302 to the external
// URL stored under id, or 404.
func (s *Server) serveRedirect(w http.ResponseWriter, r *http.Request) {
	u, ok := s.redirects.lookup(r.PathValue("id"))
	if !ok {
		s.m.redirectMissing.Inc()
		http.NotFound(w, r)
		return
	}
	s.m.redirectFound.Inc()
	http.Redirect(w, r, u, http.StatusFound)
}

// countingWriter records the status and counts body bytes; ReadFrom
// passes through so the file is still sent with sendfile.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.ResponseWriter.(io.ReaderFrom).ReadFrom(r)
	c.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Download results, the values of termd_download_requests_total's result.
const (
	resultOK          = "ok"
	resultPartial     = "partial"
	resultNotModified = "not_modified"
	resultBadRange    = "bad_range"
	resultForbidden   = "forbidden"
	resultExpired     = "expired"
	resultRevoked     = "revoked"
	resultNotFound    = "not_found"
	resultBusy        = "busy"
	resultError       = "error"
)

var allResults = []string{resultOK, resultPartial, resultNotModified, resultBadRange, resultForbidden,
	resultExpired, resultNotFound, resultBusy, resultError, resultRevoked}

// serverMetrics are the node's metrics (docs/operations.md).
type serverMetrics struct {
	set             *metrics.Set
	results         map[string]*metrics.Counter
	bytes           *metrics.Counter
	redirectFound   *metrics.Counter
	redirectMissing *metrics.Counter
}

func newMetrics(s *Server) *serverMetrics {
	m := &serverMetrics{set: metrics.NewSet(), results: map[string]*metrics.Counter{}}
	for _, r := range allResults {
		m.results[r] = m.set.NewCounter(`termd_download_requests_total{result="` + r + `"}`)
	}
	m.bytes = m.set.NewCounter("termd_download_bytes_total")
	m.set.NewGauge("termd_download_in_flight", func() float64 { return float64(len(s.slots)) })
	m.set.NewGauge("termd_download_max_concurrent", func() float64 { return float64(cap(s.slots)) })
	m.redirectFound = m.set.NewCounter(`termd_download_redirects_total{result="found"}`)
	m.redirectMissing = m.set.NewCounter(`termd_download_redirects_total{result="not_found"}`)
	return m
}

func (m *serverMetrics) result(r string) { m.results[r].Inc() }

// Metrics is the node's metric set.
func (s *Server) Metrics() *metrics.Set { return s.m.set }
