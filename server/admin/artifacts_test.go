package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

func artifactFixture(t *testing.T, inUse func([32]byte) []string) (*fixture, *storage.Artifacts) {
	t.Helper()
	store, err := storage.OpenArtifacts(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, func(o *Options) { o.Artifacts = store; o.ArtifactInUse = inUse })
	return f, store
}

// upload POSTs body; a chunked body (no Content-Length) when chunked.
func (f *fixture) upload(t *testing.T, body string, chunked bool, sum string) *http.Response {
	t.Helper()
	var rd io.Reader = strings.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length: sent chunked
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/artifacts", rd)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if sum != "" {
		req.Header.Set(api.ArtifactSHA256Header, sum)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Upload (with and without a length), list and remove over real HTTP; a
// digest header that does not match keeps nothing; removal is refused
// while a release uses the artifact.
func TestArtifactsAPI(t *testing.T) {
	var used atomic.Pointer[[32]byte]
	f, store := artifactFixture(t, func(sha [32]byte) []string {
		if u := used.Load(); u != nil && *u == sha {
			return []string{"rel-7"}
		}
		return nil
	})
	sum := sha256.Sum256([]byte("image one"))
	hexSum := hex.EncodeToString(sum[:])
	resp := f.upload(t, "image one", false, hexSum)
	var art api.Artifact
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&art) != nil || art.SHA256 != hexSum || art.Size != 9 {
		t.Fatalf("upload: %d %+v", resp.StatusCode, art)
	}
	if resp := f.upload(t, "image two, chunked", true, ""); resp.StatusCode != http.StatusCreated {
		t.Fatalf("chunked upload: %d %s", resp.StatusCode, readBody(t, resp))
	}
	expectError(t, f.upload(t, "corrupted on the way", false, hexSum), 400, api.CodeBadRequest)
	expectError(t, f.upload(t, "x", false, "not-hex"), 400, api.CodeBadRequest)
	var list api.ArtifactList
	resp = f.do(t, "GET", "/v1/artifacts", testToken, "")
	if json.NewDecoder(resp.Body).Decode(&list) != nil || len(list.Artifacts) != 2 {
		t.Fatalf("list after a refused upload: %+v", list)
	}
	used.Store(&sum)
	expectError(t, f.do(t, "DELETE", "/v1/artifacts/"+hexSum, testToken, ""), 409, api.CodeConflict)
	used.Store(nil)
	if resp := f.do(t, "DELETE", "/v1/artifacts/"+strings.ToUpper(hexSum), testToken, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if _, err := store.Stat(sum); err == nil {
		t.Fatal("still stored after delete")
	}
	expectError(t, f.do(t, "DELETE", "/v1/artifacts/"+hexSum, testToken, ""), 404, api.CodeNotFound)
	expectError(t, f.do(t, "DELETE", "/v1/artifacts/abc", testToken, ""), 400, api.CodeBadRequest)
	expectError(t, f.do(t, "GET", "/v1/artifacts", "", ""), 401, api.CodeUnauthorized)
}

// While the disk is below its reserve the upload is refused (503) before
// the body is stored; without a store the endpoints answer 503.
func TestArtifactsUnavailable(t *testing.T) {
	f, _ := artifactFixture(t, nil)
	f.node.mu.Lock()
	f.node.noWrite = storage.ErrDiskFull
	f.node.mu.Unlock()
	expectError(t, f.upload(t, "image", false, ""), 503, api.CodeUnavailable)
	g := newFixture(t, nil)
	expectError(t, g.do(t, "GET", "/v1/artifacts", testToken, ""), 503, api.CodeUnavailable)
}
