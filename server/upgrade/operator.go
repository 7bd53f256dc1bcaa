package upgrade

// The operators' side (server/admin's /v1/releases): create, publish,
// pause, resume, archive, rollout, signature, status, retry, history.
// Every change is stored before memory and terminals see it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

// releaseIDBytes is the random part of a release id, in bytes.
const releaseIDBytes = 8

func bad(format string, a ...any) error {
	return &protocol.Error{Code: protocol.BadRequest, Message: fmt.Sprintf(format, a...)}
}

func conflict(format string, a ...any) error {
	return &protocol.Error{Code: protocol.Conflict, Message: fmt.Sprintf(format, a...)}
}

var errNoRelease = &protocol.Error{Code: protocol.NotFound, Message: "unknown release"}

// checkWireID checks an id that goes on the wire (app_id, model, device).
func checkWireID(what, id string) error {
	if id == "" || len(id) > protocol.MaxID {
		return bad("%s must be 1-%d bytes", what, protocol.MaxID)
	}
	for _, c := range []byte(id) {
		if c < 0x20 || c == 0x7f {
			return bad("%s contains a control character", what)
		}
	}
	return nil
}

// CreateRelease stores a new draft release.
func (s *Service) CreateRelease(ctx context.Context, in api.ReleaseCreate) (api.Release, error) {
	if err := checkWireID("app_id", in.AppID); err != nil {
		return api.Release{}, err
	}
	if len(in.Version) > protocol.MaxVersion {
		return api.Release{}, bad("version is longer than %d bytes", protocol.MaxVersion)
	}
	if _, err := protocol.NormalizeVersion(in.Version); err != nil {
		return api.Release{}, bad("version %q: %v", in.Version, err)
	}
	sha, err := hex.DecodeString(strings.ToLower(in.SHA256))
	if err != nil || len(sha) != protocol.SHA256Size {
		return api.Release{}, bad("sha256 must be 64 hex digits")
	}
	size := in.Size
	switch {
	case in.URL == "" && s.artifacts == nil:
		return api.Release{}, bad("no artifact store on this node: give the artifact's url, sha256 and size")
	case in.URL == "":
		n, ok := s.artifacts.Stat([32]byte(sha))
		if !ok {
			return api.Release{}, &protocol.Error{Code: protocol.NotFound, Message: "no uploaded artifact with that sha256"}
		}
		if size != 0 && size != n {
			return api.Release{}, bad("size %d differs from the artifact's %d bytes", size, n)
		}
		size = n
	default:
		if !strings.HasPrefix(in.URL, "https://") && !strings.HasPrefix(in.URL, "http://") {
			return api.Release{}, bad("url must be http(s)")
		}
		if size <= 0 {
			return api.Release{}, bad("an external url needs the artifact's size")
		}
		if len(in.URL) > protocol.MaxURL && s.artifacts == nil {
			return api.Release{}, bad("url is longer than %d bytes and no download node is configured to shorten it", protocol.MaxURL)
		}
	}
	if len(in.Notes) > protocol.MaxURL {
		return api.Release{}, bad("notes are longer than %d bytes", protocol.MaxURL)
	}
	if err := s.checkGroups(append(slices.Clone(in.Groups), phaseGroups(in.Phases)...)); err != nil {
		return api.Release{}, err
	}
	for _, m := range in.Models {
		if err := checkWireID("model", m); err != nil {
			return api.Release{}, err
		}
	}
	for _, d := range in.Devices {
		if err := checkWireID("device", d); err != nil {
			return api.Release{}, err
		}
	}
	if _, err := parseRange(in.FromRange); err != nil {
		return api.Release{}, bad("%v", err)
	}
	pct := 100
	if in.RolloutPct != nil {
		pct = *in.RolloutPct
	}
	phases, err := phasesOf(in.Phases)
	if err != nil {
		return api.Release{}, err
	}
	if len(phases) > 0 && in.RolloutPct != nil {
		return api.Release{}, bad("give phases or rollout_pct, not both")
	}
	if pct < 0 || pct > 100 {
		return api.Release{}, bad("rollout_pct must be 0-100")
	}
	if err := checkDeadline(in.DeadlineMs); err != nil {
		return api.Release{}, err
	}
	var idb [releaseIDBytes]byte
	_, _ = rand.Read(idb[:])
	now := s.now().UnixMilli()
	r := storage.Release{
		ID: "r-" + hex.EncodeToString(idb[:]), AppID: in.AppID, Version: in.Version, SHA256: hex.EncodeToString(sha),
		Size: size, URL: in.URL, Notes: in.Notes, Mandatory: in.Mandatory, State: storage.ReleaseDraft,
		Models: slices.Clone(in.Models), Devices: slices.Clone(in.Devices), Groups: slices.Clone(in.Groups), FromRange: in.FromRange, RolloutPct: pct,
		CreatedMs: now, UpdatedMs: now, Phases: phases, DeadlineMs: in.DeadlineMs,
	}
	rel, err := s.newReleaseIn(r)
	if err != nil {
		return api.Release{}, bad("%v", err)
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if err := s.store.PutRelease(ctx, r); err != nil {
		return api.Release{}, err
	}
	s.mu.Lock()
	s.rels[r.ID] = rel
	s.apps[r.AppID] = true
	s.assigned[r.ID] = map[string]*assignState{}
	s.mu.Unlock()
	s.publish(events.Event{Kind: events.KindRelease, Release: r.ID, State: r.State})
	return toAPI(r), nil
}

// Releases lists every release.
func (s *Service) Releases(context.Context) []api.Release {
	s.mu.RLock()
	out := make([]api.Release, 0, len(s.rels))
	for _, r := range s.rels {
		out = append(out, toAPI(r.Release))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b api.Release) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ArtifactInUse names the releases, archived ones aside, served from the
// uploaded artifact sha: deleting it would break their downloads.
func (s *Service) ArtifactInUse(sha [32]byte) []string {
	want := hex.EncodeToString(sha[:])
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ids []string
	for _, r := range s.rels {
		if r.URL == "" && r.SHA256 == want && r.State != storage.ReleaseArchived {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Release returns one release.
func (s *Service) Release(_ context.Context, id string) (api.Release, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.rels[id]
	if r == nil {
		return api.Release{}, errNoRelease
	}
	return toAPI(r.Release), nil
}

// change applies fn to a copy of the release, stores it and swaps it in;
// then (outside the locks) runs after with the old and new release.
func (s *Service) change(ctx context.Context, id string, fn func(r *storage.Release) error, after func(old, cur *release)) (api.Release, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.RLock()
	old := s.rels[id]
	s.mu.RUnlock()
	if old == nil {
		return api.Release{}, errNoRelease
	}
	r := old.Release
	r.Models, r.Devices, r.Sig = slices.Clone(r.Models), slices.Clone(r.Devices), slices.Clone(r.Sig)
	if err := fn(&r); err != nil {
		return api.Release{}, err
	}
	r.UpdatedMs = s.now().UnixMilli()
	cur, err := s.newReleaseIn(r)
	if err != nil {
		return api.Release{}, err
	}
	if err := s.store.PutRelease(ctx, r); err != nil {
		return api.Release{}, err
	}
	s.mu.Lock()
	s.rels[id] = cur
	if r.State == storage.ReleaseArchived {
		delete(s.assigned, id) // reports still accepted: the store holds the assignments
	}
	s.reindex()
	s.deadlineChangedLocked(old, cur)
	s.mu.Unlock()
	s.publish(events.Event{Kind: events.KindRelease, Release: id, State: r.State})
	if after != nil {
		after(old, cur)
	}
	return toAPI(r), nil
}

// Publish makes a draft release available and announces it.
func (s *Service) Publish(ctx context.Context, id string) (api.Release, error) {
	return s.change(ctx, id, func(r *storage.Release) error {
		if err := refuseCancelled(r); err != nil {
			return err
		}
		if r.State != storage.ReleaseDraft {
			return conflict("release is %s; only a draft can be published (paused ones are resumed)", r.State)
		}
		if s.cfg.RequireSignature && len(r.Sig) == 0 {
			return conflict("upgrade.require_signature is set and the release is not signed (termctl release sign)")
		}
		r.State, r.PublishedMs = storage.ReleasePublished, s.now().UnixMilli()
		return nil
	}, func(_, cur *release) { s.announce(cur, -1) })
}

// Pause stops offering a published release; assigned devices keep reporting.
func (s *Service) Pause(ctx context.Context, id string) (api.Release, error) {
	return s.change(ctx, id, func(r *storage.Release) error {
		if r.State != storage.ReleasePublished {
			return conflict("release is %s; only a published release can be paused", r.State)
		}
		r.State = storage.ReleasePaused
		return nil
	}, nil)
}

// Resume offers a paused release again and announces it.
func (s *Service) Resume(ctx context.Context, id string) (api.Release, error) {
	return s.change(ctx, id, func(r *storage.Release) error {
		if err := refuseCancelled(r); err != nil {
			return err
		}
		if r.State != storage.ReleasePaused {
			return conflict("release is %s; only a paused release can be resumed", r.State)
		}
		r.State = storage.ReleasePublished
		return nil
	}, func(_, cur *release) { s.announce(cur, -1) })
}

// Archive retires a release for good.
func (s *Service) Archive(ctx context.Context, id string) (api.Release, error) {
	return s.change(ctx, id, func(r *storage.Release) error {
		if r.State == storage.ReleaseArchived {
			return conflict("release is already archived")
		}
		r.State = storage.ReleaseArchived
		return nil
	}, nil)
}

// SetRollout changes the rollout percentage; growth announces the
// release to the devices it adds.
func (s *Service) SetRollout(ctx context.Context, id string, pct int) (api.Release, error) {
	if pct < 0 || pct > 100 {
		return api.Release{}, bad("rollout must be 0-100 percent")
	}
	return s.change(ctx, id, func(r *storage.Release) error {
		if r.State == storage.ReleaseArchived {
			return conflict("release is archived")
		}
		if err := refuseCancelled(r); err != nil {
			return err
		}
		if len(r.Phases) > 0 {
			return conflict("release has phases: its rollout moves by phase (termctl rollout show|approve|pause|resume)")
		}
		r.RolloutPct = pct
		return nil
	}, func(old, cur *release) {
		if cur.State == storage.ReleasePublished && cur.RolloutPct > old.RolloutPct {
			s.announce(cur, old.RolloutPct)
		}
	})
}

// SetSignature stores release_sig after verifying it with the configured
// release public keys. Only a draft can be signed: what terminals were
// offered never changes.
func (s *Service) SetSignature(ctx context.Context, id string, sigHex string) (api.Release, error) {
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) != protocol.ReleaseSigSize {
		return api.Release{}, bad("sig must be %d bytes in hex", protocol.ReleaseSigSize)
	}
	if len(s.keys) == 0 {
		return api.Release{}, conflict("no upgrade.release_public_keys configured: signatures cannot be verified")
	}
	return s.change(ctx, id, func(r *storage.Release) error {
		if r.State != storage.ReleaseDraft {
			return conflict("release is %s; only a draft can be signed", r.State)
		}
		sha, _ := hex.DecodeString(r.SHA256)
		if !protocol.VerifyReleaseSigAny(s.keys, r.AppID, r.Version, [32]byte(sha), uint64(max(r.Size, 0)), sig) {
			return bad("signature does not verify with any configured release public key")
		}
		r.Sig = sig
		return nil
	}, nil)
}

func toAPI(r storage.Release) api.Release {
	return api.Release{
		ID: r.ID, AppID: r.AppID, Version: r.Version, SHA256: r.SHA256, Size: r.Size, URL: r.URL, Notes: r.Notes,
		Mandatory: r.Mandatory, State: r.State, Models: r.Models, Devices: r.Devices, Groups: r.Groups,
		FromRange: r.FromRange, RolloutPct: r.RolloutPct, Sig: hex.EncodeToString(r.Sig),
		CreatedMs: r.CreatedMs, PublishedMs: r.PublishedMs, UpdatedMs: r.UpdatedMs, Phases: phasesToAPI(r.Phases),
		CancelledMs: r.CancelledMs, DeadlineMs: r.DeadlineMs,
	}
}
