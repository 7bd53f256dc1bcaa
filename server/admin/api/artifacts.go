package api

// Artifact is an uploaded artifact as POST /v1/artifacts returns it and
// GET /v1/artifacts lists it.
type Artifact struct {
	// SHA256 is the hex digest of the bytes: the artifact's name, which
	// a release refers to.
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`       // bytes
	CreatedMs int64  `json:"created_ms"` // when it was stored, Unix ms
}

// ArtifactList is the body of GET /v1/artifacts, newest first.
type ArtifactList struct {
	Artifacts []Artifact `json:"artifacts"`
}

// ArtifactSHA256Header optionally carries the uploader's hex SHA-256 of
// a POST /v1/artifacts body: when it differs from what termd computed,
// the upload is refused (400) and not kept, so a corrupted transfer is
// caught at once.
const ArtifactSHA256Header = "X-Termd-Sha256"
