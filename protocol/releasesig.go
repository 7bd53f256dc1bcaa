package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// ReleaseSigSize is the size of release_sig: r ‖ s of an ECDSA P-256
// signature, 32 bytes each, big-endian.
const ReleaseSigSize = 64

// releaseSigLabel starts the signed message, so a release key signs
// nothing else by accident.
const releaseSigLabel = "TGP1 release"

// ReleaseDigest is the SHA-256 that release_sig signs (docs/protocol.md,
// UPGRADE_QUERY_ACK): "TGP1 release" ‖ 0x00 ‖ app_id ‖ 0x00 ‖ version ‖
// 0x00 ‖ sha256 ‖ be64(size). It binds the app, the version and the
// artifact, not the models a release targets.
func ReleaseDigest(appID, version string, artifact [SHA256Size]byte, size uint64) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(releaseSigLabel))
	h.Write([]byte{0})
	h.Write([]byte(appID))
	h.Write([]byte{0})
	h.Write([]byte(version))
	h.Write([]byte{0})
	h.Write(artifact[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], size)
	h.Write(n[:])
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// SignRelease makes release_sig with the operators' offline release key.
func SignRelease(key *ecdsa.PrivateKey, appID, version string, artifact [SHA256Size]byte, size uint64) ([]byte, error) {
	if key.Curve != elliptic.P256() {
		return nil, errors.New("release key must be ECDSA P-256")
	}
	d := ReleaseDigest(appID, version, artifact, size)
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, ReleaseSigSize)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}

// VerifyReleaseSig reports whether sig is a valid release_sig of the
// release by key.
func VerifyReleaseSig(key *ecdsa.PublicKey, appID, version string, artifact [SHA256Size]byte, size uint64, sig []byte) bool {
	if key == nil || len(sig) != ReleaseSigSize || key.Curve != elliptic.P256() {
		return false
	}
	d := ReleaseDigest(appID, version, artifact, size)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(key, d[:], r, s)
}

// VerifyReleaseSigAny reports whether sig verifies with one of keys (a
// terminal pins several while a release key is being rotated).
func VerifyReleaseSigAny(keys []*ecdsa.PublicKey, appID, version string, artifact [SHA256Size]byte, size uint64, sig []byte) bool {
	for _, k := range keys {
		if VerifyReleaseSig(k, appID, version, artifact, size, sig) {
			return true
		}
	}
	return false
}

// ParseReleasePublicKey reads a release public key: PEM "PUBLIC KEY"
// (PKIX), ECDSA P-256.
func ParseReleasePublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("release public key: want a PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("release public key: %w", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("release public key: not ECDSA P-256")
	}
	return ek, nil
}

// ParseReleasePrivateKey reads a release private key: PEM "PRIVATE KEY"
// (PKCS#8) or "EC PRIVATE KEY" (SEC 1), ECDSA P-256.
func ParseReleasePrivateKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("release private key: no PEM block")
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("release private key: unexpected PEM block %q", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("release private key: %w", err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("release private key: not ECDSA P-256")
	}
	return ek, nil
}

// MarshalReleaseKeys encodes a key pair as PEM: the private key as
// PKCS#8 "PRIVATE KEY", the public key as PKIX "PUBLIC KEY".
func MarshalReleaseKeys(key *ecdsa.PrivateKey) (priv, pub []byte, err error) {
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}
