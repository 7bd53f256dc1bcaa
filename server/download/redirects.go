package download

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/termd/termd/storage"
)

// Redirect table layout and bounds.
const (
	// RedirectsDir holds one file per short URL under the data directory:
	// named by the id, containing the external URL.
	RedirectsDir = "redirects"
	// redirectIDBytes is the id's length in bytes of SHA-256 (hex in the
	// URL): 96 bits, so ids of distinct URLs do not collide in practice
	// and cannot be enumerated.
	redirectIDBytes = 12
	// MaxExternalURL bounds an external artifact URL (bytes).
	MaxExternalURL = 8 << 10
)

// redirects maps short ids to external URLs. An id is a digest of its
// URL, so adding the same URL twice gives the same id and the table
// grows only with distinct URLs; each mapping is a small file written
// durably before its short URL is handed out, so it survives restarts
// and kill -9. Lookups are cached in memory.
type redirects struct {
	dir   string
	space *storage.SpaceGuard
	mu    sync.Mutex
	cache map[string]string
}

func openRedirects(dataDir string, space *storage.SpaceGuard) (*redirects, error) {
	r := &redirects{dir: filepath.Join(dataDir, RedirectsDir), space: space, cache: map[string]string{}}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return nil, fmt.Errorf("download: redirects: %w", err)
	}
	return r, nil
}

// add stores u (an http or https URL) and returns its id.
func (r *redirects) add(u string) (string, error) {
	if len(u) > MaxExternalURL {
		return "", fmt.Errorf("%w: external URL is %d bytes, at most %d", storage.ErrInvalid, len(u), MaxExternalURL)
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("%w: external URL must be http(s)://host/...", storage.ErrInvalid)
	}
	id := digestID(u, redirectIDBytes)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cache[id]; ok {
		return id, nil
	}
	path := filepath.Join(r.dir, id)
	if b, err := os.ReadFile(path); err == nil && string(b) == u {
		r.cache[id] = u
		return id, nil
	}
	if r.space != nil {
		if err := r.space.Allow(); err != nil {
			return "", err
		}
	}
	if err := writeFileSync(path, []byte(u), 0o600); err != nil {
		return "", err
	}
	r.cache[id] = u
	return id, nil
}

// lookup returns the URL of id.
func (r *redirects) lookup(id string) (string, bool) {
	if len(id) != 2*redirectIDBytes || strings.Trim(id, "0123456789abcdef") != "" {
		return "", false
	}
	r.mu.Lock()
	u, ok := r.cache[id]
	r.mu.Unlock()
	if ok {
		return u, true
	}
	b, err := os.ReadFile(filepath.Join(r.dir, id))
	if errors.Is(err, os.ErrNotExist) || err != nil {
		return "", false
	}
	u = string(b)
	r.mu.Lock()
	r.cache[id] = u
	r.mu.Unlock()
	return u, true
}
