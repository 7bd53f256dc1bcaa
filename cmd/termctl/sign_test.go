package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/termd/termd/protocol"
)

// releaseStandIn serves the two endpoints release sign uses, as the
// upgrade feature defines them: GET /v1/releases/{id} and PUT
// /v1/releases/{id}/signature, verifying the signature against the
// pinned public key as termd does before storing it.
type releaseStandIn struct {
	mu  sync.Mutex
	pub []byte // PEM of the configured release public key
	rel map[string]any
	sig []byte // stored signature
}

func (s *releaseStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		http.Error(w, `{"code":"UNAUTHORIZED","message":"token"}`, http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == "GET" && r.URL.Path == "/v1/releases/rel-1":
		json.NewEncoder(w).Encode(s.rel)
	case r.Method == "PUT" && r.URL.Path == "/v1/releases/rel-1/signature":
		var body struct{ Sig string }
		json.NewDecoder(r.Body).Decode(&body)
		sig, _ := hex.DecodeString(body.Sig)
		key, err := protocol.ParseReleasePublicKey(s.pub)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		digest, _ := hex.DecodeString(s.rel["sha256"].(string))
		if !protocol.VerifyReleaseSig(key, s.rel["app_id"].(string), s.rel["version"].(string),
			[protocol.SHA256Size]byte(digest), uint64(s.rel["size"].(int)), sig) {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"code":"BAD_REQUEST","message":"release_sig does not verify with release_public_keys"}`))
			return
		}
		s.sig = sig
		json.NewEncoder(w).Encode(map[string]any{"id": "rel-1", "signed": true})
	default:
		http.Error(w, `{"code":"NOT_FOUND","message":"no such release"}`, http.StatusNotFound)
	}
}

// keygen writes a usable pair with the right modes and never overwrites;
// release sign signs offline what the server stores and verifies, and a
// signature by a key the server does not pin is refused.
func TestKeygenAndReleaseSign(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "release.key")
	var none *env
	out, _, err := none.run(nil, "keygen", "--out", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "key id:") {
		t.Errorf("keygen output: %q", out)
	}
	for p, mode := range map[string]os.FileMode{keyFile: 0o600, keyFile + ".pub": 0o644} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v mode %v, want %v", p, err, fi.Mode().Perm(), mode)
		}
	}
	priv, _ := os.ReadFile(keyFile)
	pub, _ := os.ReadFile(keyFile + ".pub")
	if _, err := protocol.ParseReleasePrivateKey(priv); err != nil {
		t.Fatal(err)
	}
	if _, _, err := none.run(nil, "keygen", "--out", keyFile); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("keygen over an existing key: %v", err)
	}
	if again, _ := os.ReadFile(keyFile); string(again) != string(priv) {
		t.Fatal("keygen overwrote the private key")
	}

	art := sha256.Sum256([]byte("firmware"))
	si := &releaseStandIn{pub: pub, rel: map[string]any{
		"id": "rel-1", "app_id": "pos", "version": "2.14.03b", "sha256": hex.EncodeToString(art[:]), "size": 8,
		"state": "draft", "notes": "ignored by sign",
	}}
	e := &env{srv: httptest.NewServer(si)}
	defer e.srv.Close()
	out = e.mustRun(t, "release", "sign", "rel-1", "--key", keyFile)
	if !strings.Contains(out, "signed release rel-1: app pos version 2.14.03b") {
		t.Errorf("sign output: %q", out)
	}
	key, _ := protocol.ParseReleasePublicKey(pub)
	if !protocol.VerifyReleaseSig(key, "pos", "2.14.03b", art, 8, si.sig) {
		t.Fatal("stored signature does not verify")
	}

	// A key termd does not pin: the server's refusal reaches the operator.
	other := filepath.Join(dir, "other.key")
	none.run(nil, "keygen", "--out", other)
	if _, _, err := e.run(nil, "release", "sign", "rel-1", "--key", other); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("sign with an unpinned key: %v", err)
	}
	// The public key is not a signing key; an unknown release is NOT_FOUND.
	if _, _, err := e.run(nil, "release", "sign", "rel-1", "--key", keyFile+".pub"); err == nil {
		t.Fatal("signed with a public key file")
	}
	if _, _, err := e.run(nil, "release", "sign", "rel-2", "--key", keyFile); err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("unknown release: %v", err)
	}
}
