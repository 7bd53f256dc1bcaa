package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// The digest is exactly the documented message, byte by byte.
func TestReleaseDigest(t *testing.T) {
	var art [SHA256Size]byte
	for i := range art {
		art[i] = byte(i)
	}
	var msg bytes.Buffer
	msg.WriteString("TGP1 release\x00pos\x002.14.3\x00")
	msg.Write(art[:])
	msg.Write([]byte{0, 0, 0, 0, 0, 0x10, 0, 1})
	want := sha256.Sum256(msg.Bytes())
	if got := ReleaseDigest("pos", "2.14.3", art, 0x100001); got != want {
		t.Fatalf("digest %s, want %s", hex.EncodeToString(got[:]), hex.EncodeToString(want[:]))
	}
}

// A signature verifies for exactly what it signed, with the right key
// among several pinned; keys survive their PEM round trip.
func TestReleaseSig(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	privPEM, pubPEM, err := MarshalReleaseKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ParseReleasePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParseReleasePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	art := sha256.Sum256([]byte("firmware"))
	sig, err := SignRelease(priv, "pos", "2.0.0", art, 8)
	if err != nil || len(sig) != ReleaseSigSize {
		t.Fatalf("sign: %d bytes, %v", len(sig), err)
	}
	if !VerifyReleaseSigAny([]*ecdsa.PublicKey{&other.PublicKey, pub}, "pos", "2.0.0", art, 8, sig) {
		t.Fatal("valid signature refused")
	}
	bad := append([]byte(nil), sig...)
	bad[10] ^= 1
	tampered := art
	tampered[0] ^= 1
	for name, ok := range map[string]bool{
		"other key":      VerifyReleaseSig(&other.PublicKey, "pos", "2.0.0", art, 8, sig),
		"other app":      VerifyReleaseSig(pub, "kiosk", "2.0.0", art, 8, sig),
		"other version":  VerifyReleaseSig(pub, "pos", "2.0.1", art, 8, sig),
		"other artifact": VerifyReleaseSig(pub, "pos", "2.0.0", tampered, 8, sig),
		"other size":     VerifyReleaseSig(pub, "pos", "2.0.0", art, 9, sig),
		"flipped bit":    VerifyReleaseSig(pub, "pos", "2.0.0", art, 8, bad),
		"empty":          VerifyReleaseSig(pub, "pos", "2.0.0", art, 8, nil),
		"no key":         VerifyReleaseSig(nil, "pos", "2.0.0", art, 8, sig),
		"no pinned keys": VerifyReleaseSigAny(nil, "pos", "2.0.0", art, 8, sig),
	} {
		if ok {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := ParseReleasePublicKey(privPEM); err == nil {
		t.Fatal("a private key parsed as a public key")
	}
}
