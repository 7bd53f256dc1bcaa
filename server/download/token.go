package download

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"strconv"
	"time"
)

// URL layout.
const (
	artifactPath = "/a/"
	redirectPath = "/r/"
	// maxOfferURL is the spec's bound on an offer's url (bytes).
	maxOfferURL = 256
	// tokenBytes is how much of the HMAC-SHA256 a URL carries: 128 bits
	// are far beyond guessing, and keep a URL within 256 bytes.
	tokenBytes = 16
)

// token is the download token of (sha, device, expiry):
// HMAC-SHA256(secret, sha256 ‖ device_id ‖ be64(expiry unix seconds)),
// its first tokenBytes, base64url without padding. The two fixed-length
// fields around the device id keep the message unambiguous.
func token(secret []byte, sha [32]byte, device string, exp int64) string {
	return base64.RawURLEncoding.EncodeToString(tokenMAC(secret, sha, device, exp))
}

func tokenMAC(secret []byte, sha [32]byte, device string, exp int64) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(sha[:])
	m.Write([]byte(device))
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(exp))
	m.Write(e[:])
	return m.Sum(nil)[:tokenBytes]
}

// queryOf is the query string of a signed URL. Device ids are
// [A-Za-z0-9._:-] (spec), so they need no escaping; Escape is kept for
// any other caller's safety.
func queryOf(device string, exp int64, tok string) string {
	return "d=" + url.QueryEscape(device) + "&e=" + strconv.FormatInt(exp, 10) + "&t=" + tok
}

// tokenVerdict is why a request's token was accepted or not.
type tokenVerdict int

const (
	tokenOK tokenVerdict = iota
	tokenInvalid
	tokenExpired
)

// checkToken verifies a request's d, e and t for sha at now, in constant
// time over the MAC. A token is checked before the artifact is looked
// up, so an unsigned request learns nothing about what is stored.
func checkToken(secret []byte, sha [32]byte, q url.Values, now time.Time) tokenVerdict {
	device, es, ts := q.Get("d"), q.Get("e"), q.Get("t")
	exp, err := strconv.ParseInt(es, 10, 64)
	if err != nil || device == "" {
		return tokenInvalid
	}
	got, err := base64.RawURLEncoding.DecodeString(ts)
	if err != nil || len(got) != tokenBytes {
		return tokenInvalid
	}
	if !hmac.Equal(got, tokenMAC(secret, sha, device, exp)) {
		return tokenInvalid
	}
	if now.Unix() > exp {
		return tokenExpired
	}
	return tokenOK
}
