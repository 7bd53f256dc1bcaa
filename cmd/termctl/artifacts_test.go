package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/termd/termd/server/admin"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// termctl artifact upload|list|rm against the real admin API and store:
// the uploaded file is stored byte for byte under its digest.
func TestArtifactCommands(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.OpenArtifacts(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := (&env{}).serveAdmin(t, newFakeNode(), admin.Options{Artifacts: store})

	img := bytes.Repeat([]byte("pos firmware 2.14.03b\n"), 50000)
	file := filepath.Join(t.TempDir(), "pos.bin")
	os.WriteFile(file, img, 0o600)
	sum := sha256.Sum256(img)
	hexSum := hex.EncodeToString(sum[:])

	out := e.mustRun(t, "artifact", "upload", file)
	if !strings.Contains(out, "sha256: "+hexSum) || !strings.Contains(out, "size:   1100000") {
		t.Fatalf("upload output:\n%s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "artifacts", hexSum)); !bytes.Equal(got, img) {
		t.Fatal("stored bytes differ from the file")
	}
	out = e.mustRun(t, "artifact", "list")
	if !strings.Contains(out, hexSum+"  1100000") {
		t.Fatalf("list:\n%s", out)
	}
	var list api.ArtifactList
	if err := json.Unmarshal([]byte(e.mustRun(t, "--json", "artifact", "list")), &list); err != nil || len(list.Artifacts) != 1 || list.Artifacts[0].SHA256 != hexSum {
		t.Fatalf("list --json: %v %+v", err, list)
	}
	var up api.Artifact
	if err := json.Unmarshal([]byte(e.mustRun(t, "--json", "artifact", "upload", file)), &up); err != nil || up.Size != int64(len(img)) {
		t.Fatalf("upload --json: %v %+v", err, up)
	}
	if out := e.mustRun(t, "artifact", "rm", hexSum); !strings.Contains(out, "removed "+hexSum) {
		t.Fatalf("rm: %q", out)
	}
	if _, _, err := e.run(nil, "artifact", "rm", hexSum); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("rm again: %v", err)
	}
	if _, _, err := e.run(nil, "artifact", "upload", filepath.Join(dir, "missing")); err == nil {
		t.Fatal("upload of a missing file succeeded")
	}
}
