package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/protocol"
)

// signedOffer is an offer of artifact for app "pos" signed by key.
func signedOffer(t *testing.T, key *ecdsa.PrivateKey, version string, artifact []byte) *protocol.Offer {
	t.Helper()
	o := &protocol.Offer{ReleaseID: "rel-1", Version: version, URL: "http://x/a", SHA256: sha256.Sum256(artifact), Size: uint64(len(artifact))}
	sig, err := protocol.SignRelease(key, "pos", version, o.SHA256, o.Size)
	if err != nil {
		t.Fatal(err)
	}
	o.ReleaseSig = sig
	return o
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The SDK accepts exactly a correctly signed, newer offer: unsigned,
// badly signed, tampered and not-newer offers are refused, and a key
// being rotated in is accepted next to the old one.
func TestVerifyOffer(t *testing.T) {
	key, other := newKey(t), newKey(t)
	pinned := []*ecdsa.PublicKey{&key.PublicKey}
	art := []byte("firmware image")
	good := signedOffer(t, key, "2.14.03b", art)

	cases := []struct {
		name    string
		offer   func() *protocol.Offer
		app     string
		running string
		keys    []*ecdsa.PublicKey
		want    error
	}{
		{"signed and newer", func() *protocol.Offer { return good }, "pos", "2.14.03", pinned, nil},
		{"running unparsable", func() *protocol.Offer { return good }, "pos", "", pinned, nil},
		{"rotation: signed by the second pinned key", func() *protocol.Offer { return signedOffer(t, other, "3.0", art) }, "pos", "2.0", []*ecdsa.PublicKey{&key.PublicKey, &other.PublicKey}, nil},
		{"no pinned key", func() *protocol.Offer { return good }, "pos", "1.0", nil, ErrNoReleaseKeys},
		{"unsigned", func() *protocol.Offer { o := *good; o.ReleaseSig = nil; return &o }, "pos", "1.0", pinned, ErrOfferUnsigned},
		{"signed by an unpinned key", func() *protocol.Offer { return signedOffer(t, other, "3.0", art) }, "pos", "1.0", pinned, ErrOfferBadSig},
		{"signature bit flipped", func() *protocol.Offer {
			o := *good
			o.ReleaseSig = bytes.Clone(good.ReleaseSig)
			o.ReleaseSig[10] ^= 1
			return &o
		}, "pos", "1.0", pinned, ErrOfferBadSig},
		{"signature truncated", func() *protocol.Offer { o := *good; o.ReleaseSig = good.ReleaseSig[:63]; return &o }, "pos", "1.0", pinned, ErrOfferBadSig},
		{"version tampered", func() *protocol.Offer { o := *good; o.Version = "9.0.0"; return &o }, "pos", "1.0", pinned, ErrOfferBadSig},
		{"sha256 tampered", func() *protocol.Offer { o := *good; o.SHA256[0] ^= 1; return &o }, "pos", "1.0", pinned, ErrOfferBadSig},
		{"size tampered", func() *protocol.Offer { o := *good; o.Size++; return &o }, "pos", "1.0", pinned, ErrOfferBadSig},
		{"another app's release", func() *protocol.Offer { return good }, "kiosk", "1.0", pinned, ErrOfferBadSig},
		{"same version", func() *protocol.Offer { return good }, "pos", "v2.14.3B", pinned, ErrOfferNotNewer},
		{"older version", func() *protocol.Offer { return good }, "pos", "2.14.04", pinned, ErrOfferNotNewer},
		{"offer version unparsable", func() *protocol.Offer { return signedOffer(t, key, "1.2.3.4", art) }, "pos", "", pinned, ErrOfferNotNewer},
	}
	for _, c := range cases {
		err := VerifyOffer(c.offer(), c.app, c.running, c.keys)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: VerifyOffer = %v, want %v", c.name, err, c.want)
		}
	}
}

// VerifyArtifact accepts the exact bytes and refuses a flipped byte, a
// short and a long artifact.
func TestVerifyArtifact(t *testing.T) {
	art := bytes.Repeat([]byte("0123456789"), 1000)
	o := signedOffer(t, newKey(t), "1.0", art)
	if err := VerifyArtifact(bytes.NewReader(art), o); err != nil {
		t.Fatalf("exact bytes: %v", err)
	}
	flipped := bytes.Clone(art)
	flipped[5000] ^= 0x80
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"flipped byte": {flipped, ErrArtifactDigest},
		"short":        {art[:len(art)-1], ErrArtifactSize},
		"long":         {append(bytes.Clone(art), 'x'), ErrArtifactSize},
		"empty":        {nil, ErrArtifactSize},
	} {
		if err := VerifyArtifact(bytes.NewReader(c.b), o); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "fw")
	os.WriteFile(path, flipped, 0o600)
	if err := VerifyArtifactFile(path, o); !errors.Is(err, ErrArtifactDigest) {
		t.Errorf("file with a flipped byte: %v", err)
	}
}

// artifactServer serves body with http.ServeContent (Range support) and
// records each request's Range header.
type artifactServer struct {
	mu     sync.Mutex
	body   []byte
	ranges []string
	busy   bool
}

func (s *artifactServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	body, busy := s.body, s.busy
	s.mu.Unlock()
	if busy {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// A download interrupted part-way resumes with a Range request and only
// fetches the rest; the result verifies and replaces the .part.
func TestDownloadArtifactResumes(t *testing.T) {
	art := bytes.Repeat([]byte("termd firmware "), 10000)
	o := signedOffer(t, newKey(t), "1.0", art)
	as := &artifactServer{body: art}
	srv := httptest.NewServer(as)
	defer srv.Close()
	dst := filepath.Join(t.TempDir(), "fw.bin")
	half := len(art) / 2
	if err := os.WriteFile(dst+partSuffix, art[:half], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := DownloadArtifact(context.Background(), srv.Client(), srv.URL+"/a", dst, o); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, art) {
		t.Fatal("downloaded bytes differ")
	}
	if _, err := os.Stat(dst + partSuffix); !os.IsNotExist(err) {
		t.Fatalf(".part left behind: %v", err)
	}
	if len(as.ranges) != 1 || as.ranges[0] != "bytes=75000-" {
		t.Fatalf("ranges requested %q, want one resume at %d", as.ranges, half)
	}
}

// A server that sends tampered bytes gets the download refused and its
// .part removed; a busy server's 503 carries Retry-After.
func TestDownloadArtifactRefusesTampered(t *testing.T) {
	art := bytes.Repeat([]byte("x"), 4096)
	o := signedOffer(t, newKey(t), "1.0", art)
	bad := bytes.Clone(art)
	bad[100] = 'y'
	as := &artifactServer{body: bad}
	srv := httptest.NewServer(as)
	defer srv.Close()
	dst := filepath.Join(t.TempDir(), "fw.bin")
	if err := DownloadArtifact(context.Background(), srv.Client(), srv.URL, dst, o); !errors.Is(err, ErrArtifactDigest) {
		t.Fatalf("tampered: %v", err)
	}
	for _, p := range []string{dst, dst + partSuffix} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a refused download", p)
		}
	}
	as.mu.Lock()
	as.busy = true
	as.mu.Unlock()
	var be *DownloadBusyError
	if err := DownloadArtifact(context.Background(), srv.Client(), srv.URL, dst, o); !errors.As(err, &be) || be.RetryAfter != 7 {
		t.Fatalf("busy: %v", err)
	}
}
