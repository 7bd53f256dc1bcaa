package admin

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/storage"
)

// Artifacts is the artifact store the API manages (*storage.Artifacts).
type Artifacts interface {
	Put(ctx context.Context, r io.Reader, declared int64) (storage.ArtifactInfo, error)
	List() ([]storage.ArtifactInfo, error)
	Stat(sha [32]byte) (storage.ArtifactInfo, error)
	Remove(sha [32]byte) error
}

// artifactRoutes registers /v1/artifacts.
func (h *handler) artifactRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /v1/artifacts", h.uploadArtifact)
	m.HandleFunc("GET /v1/artifacts", h.listArtifacts)
	m.HandleFunc("DELETE /v1/artifacts/{sha256}", h.removeArtifact)
}

// artifactsOr503 is the store, or answers 503 when the node has none.
func (h *handler) artifactsOr503(w http.ResponseWriter) Artifacts {
	if h.opt.Artifacts == nil {
		writeCode(w, protocol.Unavailable, "this node has no artifact store")
	}
	return h.opt.Artifacts
}

func artifactOf(i storage.ArtifactInfo) api.Artifact {
	return api.Artifact{SHA256: hex.EncodeToString(i.SHA256[:]), Size: i.Size, CreatedMs: i.Created.UnixMilli()}
}

// uploadArtifact serves POST /v1/artifacts: the body is the artifact,
// streamed to the store (never held in memory) and hashed on the way;
// 201 with its digest and size (also when the same bytes were already
// stored). With X-Termd-Sha256 the digest must match, else 400 and
// nothing is kept.
func (h *handler) uploadArtifact(w http.ResponseWriter, r *http.Request) {
	a := h.artifactsOr503(w)
	if a == nil {
		return
	}
	want := strings.TrimSpace(r.Header.Get(api.ArtifactSHA256Header))
	var wantSHA [32]byte
	if want != "" {
		var ok bool
		if wantSHA, ok = storage.ParseSHA256(want); !ok {
			writeCode(w, protocol.BadRequest, api.ArtifactSHA256Header+" must be 64 hex digits")
			return
		}
	}
	info, err := a.Put(r.Context(), r.Body, r.ContentLength)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if want != "" && info.SHA256 != wantSHA {
		// Bytes that were already stored are not this upload's to remove.
		if !info.Existed {
			if err := a.Remove(info.SHA256); err != nil {
				h.log.Warn("admin: remove a mismatched upload", "sha256", hex.EncodeToString(info.SHA256[:]), "err", err)
			}
		}
		writeCode(w, protocol.BadRequest, fmt.Sprintf("upload has sha256 %x, %s says %s: corrupted in transfer, not kept",
			info.SHA256, api.ArtifactSHA256Header, want))
		return
	}
	h.log.Info("artifact uploaded", "sha256", hex.EncodeToString(info.SHA256[:]), "size", info.Size, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusCreated, artifactOf(info))
}

// listArtifacts serves GET /v1/artifacts.
func (h *handler) listArtifacts(w http.ResponseWriter, r *http.Request) {
	a := h.artifactsOr503(w)
	if a == nil {
		return
	}
	list, err := a.List()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := api.ArtifactList{Artifacts: make([]api.Artifact, 0, len(list))}
	for _, i := range list {
		out.Artifacts = append(out.Artifacts, artifactOf(i))
	}
	writeJSON(w, http.StatusOK, out)
}

// removeArtifact serves DELETE /v1/artifacts/{sha256}: 204, 404 when not
// stored, 409 when a release still refers to it (Options.ArtifactInUse).
func (h *handler) removeArtifact(w http.ResponseWriter, r *http.Request) {
	a := h.artifactsOr503(w)
	if a == nil {
		return
	}
	sha, ok := storage.ParseSHA256(r.PathValue("sha256"))
	if !ok {
		writeCode(w, protocol.BadRequest, "artifact id must be its 64-hex sha256")
		return
	}
	if h.opt.ArtifactInUse != nil {
		if rels := h.opt.ArtifactInUse(sha); len(rels) > 0 {
			writeCode(w, protocol.Conflict, "artifact is used by release(s) "+strings.Join(rels, ", ")+": archive them first")
			return
		}
	}
	if err := a.Remove(sha); err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("artifact removed", "sha256", hex.EncodeToString(sha[:]), "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}
