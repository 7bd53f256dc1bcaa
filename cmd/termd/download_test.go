package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/download"
	"github.com/termd/termd/server/servertest"
	"github.com/termd/termd/storage"
)

// A real termd serves uploaded artifacts on its download listener, over
// URLs signed with the secret it generated in its data dir, with Range;
// after kill -9 and a restart the artifact and the URL still work, and
// the download metrics are on /metrics.
func TestDownloadNodeServesUploads(t *testing.T) {
	dl := servertest.FreePort(t)
	n := newNode(t, fmt.Sprintf("[download]\nlisten = %q\n", dl))
	n.start()
	img := bytes.Repeat([]byte("kiosk image "), 20000)
	req, _ := http.NewRequest("POST", "http://"+n.adminAddr+"/v1/artifacts", bytes.NewReader(img))
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s", resp.Status)
	}
	sum := sha256.Sum256(img)
	if _, err := os.Stat(filepath.Join(n.dir, "data", "artifacts", hex.EncodeToString(sum[:]))); err != nil {
		t.Fatal(err)
	}

	// Sign a URL the way the node does, with the secret it generated.
	secret, err := os.ReadFile(filepath.Join(n.dir, "data", download.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DownloadDefaults()
	cfg.URLBase, cfg.Secret = "http://"+dl, strings.TrimSpace(string(secret))
	arts, _ := storage.OpenArtifacts(t.TempDir(), nil)
	signer, err := download.Open(download.Options{Config: cfg, DataDir: t.TempDir(), Artifacts: arts})
	if err != nil {
		t.Fatal(err)
	}
	u := signer.URL(sum, "kiosk-1")
	fetch := func(rng string) (int, []byte) {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Range", rng)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, part := fetch("bytes=0-999")
	if code != http.StatusPartialContent || !bytes.Equal(part, img[:1000]) {
		t.Fatalf("range: %d, %d bytes", code, len(part))
	}

	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	n.cmd.Wait()
	n.start()
	code, rest := fetch("bytes=1000-")
	if code != http.StatusPartialContent || !bytes.Equal(append(part, rest...), img) {
		t.Fatalf("resume after kill -9: %d, %d bytes", code, len(rest))
	}
	var metrics string
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(metrics, `termd_download_requests_total{result="partial"} 1`); {
		resp, err := http.Get("http://" + n.adminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		if time.Now().After(deadline) {
			t.Fatalf("download metrics missing:\n%s", metrics)
		}
	}
}
