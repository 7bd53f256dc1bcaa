package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/termd/termd/protocol"
)

// Why an offer or a downloaded artifact is refused. A terminal that gets
// one of these installs nothing (spec §6.1: a terminal with a pinned
// release key MUST refuse an unsigned or badly signed release).
var (
	// ErrNoReleaseKeys: VerifyOffer was given no pinned key. Firmware
	// pins at least one; refusing here keeps a build that forgot to pin
	// from accepting anything the server sends.
	ErrNoReleaseKeys = errors.New("client: no pinned release public key")
	// ErrOfferUnsigned: the offer carries no release_sig.
	ErrOfferUnsigned = errors.New("client: offer is unsigned")
	// ErrOfferBadSig: release_sig does not verify with any pinned key
	// for this app, version, sha256 and size.
	ErrOfferBadSig = errors.New("client: offer's release_sig does not verify")
	// ErrOfferNotNewer: the offered version is not newer than the one
	// running (or does not parse), so installing it would be a downgrade
	// or a reinstall that the server should not have offered.
	ErrOfferNotNewer = errors.New("client: offer is not newer than the running version")
	// ErrArtifactSize: the downloaded artifact's size differs from the
	// offer's.
	ErrArtifactSize = errors.New("client: artifact size does not match the offer")
	// ErrArtifactDigest: the downloaded artifact's SHA-256 differs from
	// the offer's.
	ErrArtifactDigest = errors.New("client: artifact sha256 does not match the offer")
)

// VerifyOffer checks an UPGRADE_QUERY_ACK offer for appID before anything
// is downloaded: release_sig must verify with one of keys (the release
// public keys pinned in firmware; several while a key is rotated), and
// the offered version must be newer than running, the version installed
// now, in the order of protocol.CompareVersions (a running version that
// does not parse is older than any offer). The signature binds app,
// version, sha256 and size, so after VerifyOffer a terminal needs only
// VerifyArtifact on the downloaded bytes; the URL is not signed and need
// not be trusted.
func VerifyOffer(o *protocol.Offer, appID, running string, keys []*ecdsa.PublicKey) error {
	if len(keys) == 0 {
		return ErrNoReleaseKeys
	}
	if len(o.ReleaseSig) == 0 {
		return fmt.Errorf("%w: release %s %s", ErrOfferUnsigned, o.ReleaseID, o.Version)
	}
	if !protocol.VerifyReleaseSigAny(keys, appID, o.Version, o.SHA256, o.Size, o.ReleaseSig) {
		return fmt.Errorf("%w: release %s %s", ErrOfferBadSig, o.ReleaseID, o.Version)
	}
	if _, err := protocol.NormalizeVersion(o.Version); err != nil {
		return fmt.Errorf("%w: %v", ErrOfferNotNewer, err)
	}
	if c, _ := protocol.CompareVersions(o.Version, running); c <= 0 {
		return fmt.Errorf("%w: offered %q, running %q", ErrOfferNotNewer, o.Version, running)
	}
	return nil
}

// VerifyArtifact reads r to its end, streaming (nothing is held in
// memory), and checks that it is exactly o.Size bytes with SHA-256
// o.SHA256. It reads at most o.Size+1 bytes, so an endless or oversized
// body is refused without reading it all.
func VerifyArtifact(r io.Reader, o *protocol.Offer) error {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, int64(min(o.Size, 1<<62))+1))
	if err != nil {
		return err
	}
	if uint64(n) != o.Size {
		return fmt.Errorf("%w: got %d bytes or more, want %d", ErrArtifactSize, n, o.Size)
	}
	var got [protocol.SHA256Size]byte
	h.Sum(got[:0])
	if got != o.SHA256 {
		return fmt.Errorf("%w: got %x, want %x", ErrArtifactDigest, got, o.SHA256)
	}
	return nil
}

// VerifyArtifactFile is VerifyArtifact on the file at path.
func VerifyArtifactFile(path string, o *protocol.Offer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return VerifyArtifact(f, o)
}

// partSuffix names the file a download is written to until it verifies.
const partSuffix = ".part"

// DownloadArtifact fetches o's artifact from url to path, resuming: the
// bytes go to path+".part", and a .part left by an interrupted earlier
// call is continued with a Range request (HTTP 206) rather than started
// again, as a terminal on a metered or flaky link needs. Once the .part
// holds o.Size bytes it is verified with VerifyArtifactFile and renamed
// to path; a .part that does not verify is removed, so the next call
// starts afresh. hc nil means http.DefaultClient. A 503 from a busy
// download node is returned as an error carrying its Retry-After (see
// DownloadBusyError); the caller waits and calls again.
func DownloadArtifact(ctx context.Context, hc *http.Client, url, path string, o *protocol.Offer) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	part := path + partSuffix
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if uint64(have) > o.Size {
		// Longer than the artifact: not a prefix of it.
		if err := f.Truncate(0); err != nil {
			return err
		}
		have = 0
	}
	if uint64(have) < o.Size {
		if err := fetchRest(ctx, hc, url, f, have, o.Size); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := VerifyArtifactFile(part, o); err != nil {
		os.Remove(part)
		return err
	}
	return os.Rename(part, path)
}

// DownloadBusyError is a download node's 503: come back after RetryAfter
// seconds (0 when the node did not say).
type DownloadBusyError struct{ RetryAfter int }

// Error implements error.
func (e *DownloadBusyError) Error() string {
	return fmt.Sprintf("client: download node busy, retry after %d s", e.RetryAfter)
}

// fetchRest appends bytes [have, size) of url to f.
func fetchRest(ctx context.Context, hc *http.Client, url string, f *os.File, have int64, size uint64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		// Continues where the .part ends.
	case resp.StatusCode == http.StatusOK:
		// The server ignored the Range (or there was none): start over.
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		have = 0
	case resp.StatusCode == http.StatusServiceUnavailable:
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &DownloadBusyError{RetryAfter: ra}
	default:
		return fmt.Errorf("client: download %s: HTTP %s", url, resp.Status)
	}
	// Never write past the artifact's size, whatever the server sends.
	_, err = io.Copy(f, io.LimitReader(resp.Body, int64(size)-have))
	return err
}
