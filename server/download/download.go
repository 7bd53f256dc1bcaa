// Package download is termd's download node: an HTTP listener, separate
// from the admin API, that serves the artifact store to terminals over
// signed, expiring URLs, with Range requests for resumable downloads, a
// cap on concurrent downloads (503 + Retry-After beyond it), and short
// redirect URLs for external artifact URLs too long for an offer.
package download

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

// Files under the data directory.
const (
	// SecretFile holds the generated download.secret when none is set.
	SecretFile = "download-secret"
	// generatedSecretBytes is the entropy of a generated secret.
	generatedSecretBytes = 32
)

// Listener timeouts and pacing.
const (
	// readHeaderTimeout bounds a request's header block.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections idle this long.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes bounds a request's header block.
	maxHeaderBytes = 16 << 10
	// shutdownTimeout is how long Serve's shutdown waits for downloads
	// in flight before cutting them off (terminals resume with Range).
	shutdownTimeout = 5 * time.Second
	// minRateBytesPerSec and stallGrace bound how long one download may
	// hold a slot: it must average at least 1 KiB/s after a minute's
	// grace, so a stalled terminal cannot keep a slot forever.
	minRateBytesPerSec = 1 << 10
	stallGrace         = time.Minute
	// busyRetryMin and busyRetrySpread make a 503's Retry-After uniform in
	// [30 s, 90 s): terminals turned away together come back spread out.
	busyRetryMin    = 30
	busyRetrySpread = 60
)

// Options configure a download node.
type Options struct {
	Config    config.Download
	DataDir   string // storage.dir: the secret file and the redirect table
	Artifacts *storage.Artifacts
	// Space guards the redirect table's writes (nil: unguarded).
	Space *storage.SpaceGuard
	Log   *slog.Logger
	// Now is the clock of token expiry (nil: time.Now).
	Now func() time.Time
	// Revoked, consulted after a token verifies, refuses a download of
	// sha by deviceID whose release was cancelled (410 Gone); nil: none
	// are. SetRevoked sets it after Open. It must not block (memory only).
	Revoked func(sha [32]byte, deviceID string) bool
}

// Server is a download node. Open binds its listener; Serve serves it.
// Stat, URL and ShortURL are what the upgrade feature calls; they work
// without a listener too (URLs then name url_base).
type Server struct {
	cfg       config.Download
	artifacts *storage.Artifacts
	log       *slog.Logger
	now       func() time.Time
	secret    []byte
	base      string // url_base without a trailing slash
	ln        net.Listener
	slots     chan struct{}
	redirects *redirects
	m         *serverMetrics
	revoked   atomic.Pointer[func(sha [32]byte, deviceID string) bool]
}

// Open prepares a download node: it loads or generates the token secret,
// opens the redirect table and, when download.listen is set, binds the
// listener (so the bound address, and the default url_base, are known at
// once; port 0 works in tests).
func Open(opts Options) (*Server, error) {
	s := &Server{
		cfg: opts.Config, artifacts: opts.Artifacts, log: opts.Log, now: opts.Now,
		slots: make(chan struct{}, max(opts.Config.MaxConcurrent, 1)),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	secret, err := loadSecret(opts.Config.Secret, opts.DataDir)
	if err != nil {
		return nil, err
	}
	s.secret = secret
	if s.redirects, err = openRedirects(opts.DataDir, opts.Space); err != nil {
		return nil, err
	}
	s.base = strings.TrimRight(opts.Config.URLBase, "/")
	if opts.Config.Listen != "" {
		if s.ln, err = net.Listen("tcp", opts.Config.Listen); err != nil {
			return nil, fmt.Errorf("download listener: %w", err)
		}
		if s.base == "" {
			s.base = "http://" + s.ln.Addr().String()
		}
	}
	s.m = newMetrics(s)
	s.SetRevoked(opts.Revoked)
	return s, nil
}

// SetRevoked sets Options.Revoked (the release service opens after the
// download node it uses); nil: no download is revoked.
func (s *Server) SetRevoked(fn func(sha [32]byte, deviceID string) bool) {
	if fn == nil {
		s.revoked.Store(nil)
		return
	}
	s.revoked.Store(&fn)
}

// loadSecret is the configured secret, else the one stored in the data
// directory, else a new one stored there (0600) before it is used, so
// URLs handed out stay valid across restarts.
func loadSecret(configured, dataDir string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	path := filepath.Join(dataDir, SecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < config.MinDownloadSecret {
			return nil, fmt.Errorf("%s holds %d bytes; at least %d are required", path, len(s), config.MinDownloadSecret)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	raw := make([]byte, generatedSecretBytes)
	_, _ = rand.Read(raw)
	s := hex.EncodeToString(raw)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := writeFileSync(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// Addr is the bound listener address (nil without a listener).
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Base is the URL prefix of the node's URLs.
func (s *Server) Base() string { return s.base }

// Stat reports an uploaded artifact's size.
func (s *Server) Stat(sha [32]byte) (size int64, ok bool) {
	info, err := s.artifacts.Stat(sha)
	if err != nil {
		return 0, false
	}
	return info.Size, true
}

// URL is a signed, expiring download URL of sha for deviceID (≤ 256
// bytes for a valid device id: config.MaxDownloadURLBase keeps url_base
// short enough). It expires download.token_ttl from now. It is "" when
// the node has neither a listener nor a url_base: nothing could serve it.
func (s *Server) URL(sha [32]byte, deviceID string) string {
	if s.base == "" {
		return ""
	}
	exp := s.now().Add(s.cfg.TokenTTL.Duration).Unix()
	return s.base + artifactPath + hex.EncodeToString(sha[:]) + "?" + queryOf(deviceID, exp, token(s.secret, sha, deviceID, exp))
}

// URLUntil is URL expiring at exp instead of token_ttl from now (a
// scheduled campaign's slot end plus its grace), and its token.
func (s *Server) URLUntil(sha [32]byte, deviceID string, exp time.Time) (url, tok string) {
	if s.base == "" {
		return "", ""
	}
	return SignURL(s.base, s.secret, sha, deviceID, exp)
}

// InFlight is how many downloads the node serves now.
func (s *Server) InFlight() int64 { return int64(len(s.slots)) }

// TokenSecret is the HMAC key of this node's tokens (for other nodes that
// share it).
func (s *Server) TokenSecret() []byte { return s.secret }

// SignURL builds the download URL of sha for deviceID on the node at
// base, with a token under secret expiring at exp — what termd's node
// verifies, and what another node sharing the construction verifies with
// its own secret (docs/scheduling.md). It returns the URL and the token.
func SignURL(base string, secret []byte, sha [32]byte, deviceID string, exp time.Time) (url, tok string) {
	e := exp.Unix()
	tok = token(secret, sha, deviceID, e)
	return strings.TrimSuffix(base, "/") + artifactPath + hex.EncodeToString(sha[:]) + "?" + queryOf(deviceID, e, tok), tok
}

// ShortURL returns u itself when ≤ 256 bytes, else a short termd
// redirect URL to u (stored durably before it is returned).
func (s *Server) ShortURL(u string) (string, error) {
	if len(u) <= maxOfferURL {
		return u, nil
	}
	if s.base == "" {
		return "", fmt.Errorf("%w: external URL over %d bytes needs a short redirect, and this node has no download listener or url_base", storage.ErrInvalid, maxOfferURL)
	}
	id, err := s.redirects.add(u)
	if err != nil {
		return "", err
	}
	return s.base + redirectPath + id, nil
}

// Serve serves the listener until ctx ends, then stops accepting and
// gives downloads in flight shutdownTimeout to finish (a terminal cut
// off resumes with a Range request). Without a listener it returns nil
// at once.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(s.ln) }()
	s.log.Info("download listener", "addr", s.ln.Addr().String(), "url_base", s.base, "max_concurrent", s.cfg.MaxConcurrent)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close releases the listener when Serve was never called.
func (s *Server) Close() error {
	if s.ln == nil {
		return nil
	}
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// writeFileSync writes a new file through a temporary name, synced and
// renamed, so a crash leaves the old content or the new, never half.
func writeFileSync(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// digestID is a short, stable id of s: the first idBytes of its SHA-256,
// hex.
func digestID(s string, idBytes int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:idBytes])
}
