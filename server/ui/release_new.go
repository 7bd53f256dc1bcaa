package ui

// Creating a release: the form (/ui/releases/new), the artifact upload
// it makes from the browser with a progress bar (POST /ui/artifacts,
// streamed in process to POST /v1/artifacts), and the creation itself
// (POST /v1/releases, then PUT …/signature when a signature made offline
// was pasted). Publishing is a button of the release's page.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/termd/termd/server/admin/api"
)

// maxConsoleUpload bounds an artifact uploaded through the console, in
// bytes (2 GiB: firmware images are megabytes). The upload is streamed
// to the artifact store, never held in memory; the store's own disk
// reserve (storage.min_free_mb) applies too. termctl artifact upload
// has no such bound.
const maxConsoleUpload = 2 << 30

// maxArtifactChoices is how many stored artifacts the form offers.
const maxArtifactChoices = 20

func newReleaseRoutes(rt *Routes) {
	rt.Get(Prefix+"releases/new", func(w http.ResponseWriter, r *Request) error {
		f := &releaseForm{View: viewReleaseCreate, RolloutPct: "100", Phases: "none", PhaseList: "1,10,100",
			SoakS: "3600", SuccessPct: "95", ErrorPct: "5", MinDevices: "0"}
		if err := f.loadArtifacts(r); err != nil {
			return err
		}
		return r.Render(w, "New release", f)
	})
	rt.Post(Prefix+"releases/new", func(w http.ResponseWriter, r *Request) error {
		f := formOf(r)
		in, err := f.create()
		if err == nil {
			var rel api.Release
			if err = r.API("POST", "/v1/releases", in, &rel); err == nil {
				if f.Sig != "" {
					if serr := r.API("PUT", "/v1/releases/"+url.PathEscape(rel.ID)+"/signature", api.Signature{Sig: f.Sig}, nil); serr != nil {
						r.FlashError("Release created, but its signature was refused: " + serr.Error())
						http.Redirect(w, r.Request, joinPath(Prefix+"releases", rel.ID), http.StatusSeeOther)
						return nil
					}
				}
				r.Flash("Draft created. Check it, then publish it.")
				http.Redirect(w, r.Request, joinPath(Prefix+"releases", rel.ID), http.StatusSeeOther)
				return nil
			}
		}
		// Refused: the form again, filled in, with the reason and the
		// refusal's status.
		f.Error = err.Error()
		_ = f.loadArtifacts(r)
		return r.Render(&statusWriter{ResponseWriter: w, status: statusOf(err)}, "New release", f)
	})
	rt.Post(Prefix+"artifacts", uploadArtifact)
}

// releaseForm is the creation form's fields, as typed.
type releaseForm struct {
	View  string
	Error string
	// Artifacts are the newest stored artifacts, to pick one already uploaded.
	Artifacts []api.Artifact

	AppID, Version, SHA256, URL, Size  string
	Models, Devices, Groups, FromRange string
	Notes                              string
	Mandatory                          bool
	RolloutPct                         string
	Phases                             string // none, default or custom
	PhaseList, Pilot                   string
	SoakS, SuccessPct, ErrorPct        string
	MinDevices                         string
	Approval                           bool
	Deadline, Sig                      string
	MaxUpload                          int64
	MaxUploadText                      string
}

func (f *releaseForm) loadArtifacts(r *Request) error {
	f.MaxUpload, f.MaxUploadText = maxConsoleUpload, "2 GiB"
	var l api.ArtifactList
	if err := optional(r.Get("/v1/artifacts", &l)); err != nil {
		return err
	}
	f.Artifacts = l.Artifacts[:min(len(l.Artifacts), maxArtifactChoices)]
	return nil
}

func formOf(r *Request) *releaseForm {
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return &releaseForm{View: viewReleaseCreate,
		AppID: v("app_id"), Version: v("version"), SHA256: strings.ToLower(v("sha256")), URL: v("url"), Size: v("size"),
		Models: v("models"), Devices: v("devices"), Groups: v("groups"), FromRange: v("from_range"), Notes: v("notes"),
		Mandatory: v("mandatory") != "", RolloutPct: v("rollout_pct"), Phases: v("phases"), PhaseList: v("phase_list"),
		Pilot: v("pilot"), SoakS: v("soak_s"), SuccessPct: v("success_pct"), ErrorPct: v("error_pct"),
		MinDevices: v("min_devices"), Approval: v("approval") != "", Deadline: v("deadline"), Sig: v("sig")}
}

// formError is a field the form cannot read: 400, before the API is asked.
func formError(format string, a ...any) error {
	return &APIError{Status: http.StatusBadRequest, Code: "bad_request", Message: fmt.Sprintf(format, a...)}
}

// list splits a comma- or space-separated field.
func list(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })
}

// create turns the form into POST /v1/releases' body; the API checks
// the rest (version, digest, range, phases, targeting).
func (f *releaseForm) create() (api.ReleaseCreate, error) {
	in := api.ReleaseCreate{AppID: f.AppID, Version: f.Version, SHA256: f.SHA256, URL: f.URL, Notes: f.Notes,
		Mandatory: f.Mandatory, Models: list(f.Models), Devices: list(f.Devices), Groups: list(f.Groups), FromRange: f.FromRange}
	if in.AppID == "" || in.Version == "" {
		return in, formError("give the app id and the version")
	}
	if in.SHA256 == "" {
		return in, formError("upload an artifact, pick one, or give an external URL with its sha256 and size")
	}
	if f.Size != "" {
		n, err := strconv.ParseInt(f.Size, 10, 64)
		if err != nil || n < 0 {
			return in, formError("size %q is not a number of bytes", f.Size)
		}
		in.Size = n
	}
	atoi := func(name, s string, def int) (int, error) {
		if s == "" {
			return def, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, formError("%s %q is not a whole number", name, s)
		}
		return n, nil
	}
	switch f.Phases {
	case "", "none":
		if f.Pilot != "" {
			return in, formError("a pilot is the first phase of a phased rollout: choose default or custom phases")
		}
		pct, err := atoi("rollout", f.RolloutPct, 100)
		if err != nil {
			return in, err
		}
		in.RolloutPct = &pct
	case "default", "custom":
		spec := "1,10,100"
		if f.Phases == "custom" {
			spec = f.PhaseList
		}
		var phases []api.Phase
		if pilot := list(f.Pilot); len(pilot) > 0 {
			phases = append(phases, api.Phase{Devices: pilot})
		}
		for _, s := range list(spec) {
			p, err := atoi("phase percent", strings.TrimSuffix(s, "%"), 0)
			if err != nil {
				return in, err
			}
			phases = append(phases, api.Phase{Percent: p})
		}
		if len(phases) == 0 {
			return in, formError("give the phases' cumulative percents, e.g. 1,10,100")
		}
		soak, err := atoi("soak", f.SoakS, 3600)
		if err != nil {
			return in, err
		}
		s64 := int64(soak)
		for i := range phases {
			p := &phases[i]
			p.SoakS = &s64
			if p.SuccessPct, err = atoi("success %", f.SuccessPct, 0); err != nil {
				return in, err
			}
			if p.ErrorPct, err = atoi("error %", f.ErrorPct, 0); err != nil {
				return in, err
			}
			if p.MinDevices, err = atoi("min devices", f.MinDevices, 0); err != nil {
				return in, err
			}
			p.Approval = f.Approval
		}
		in.Phases = phases
	default:
		return in, formError("phases must be none, default or custom")
	}
	ms, err := parseDeadlineInput(f.Deadline)
	if err != nil {
		return in, err
	}
	in.DeadlineMs = ms
	return in, nil
}

// statusWriter answers with status instead of 200 (a form shown again
// with its error).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(int) { s.writeHeader() }

func (s *statusWriter) writeHeader() {
	if !s.wrote {
		s.wrote = true
		s.ResponseWriter.WriteHeader(s.status)
	}
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.writeHeader()
	return s.ResponseWriter.Write(b)
}

// uploadArtifact serves POST /ui/artifacts: the request body is the
// artifact (releases.js sends the file with XMLHttpRequest, for its
// progress events, and the CSRF token in X-CSRF-Token). It is streamed
// in process to POST /v1/artifacts with the session's token, so the
// store reads it straight from the browser's connection, hashing and
// writing as it comes: nothing holds the whole file. At most
// maxConsoleUpload bytes are accepted (413 beyond; a declared
// Content-Length over it is refused before reading). The answer is the
// API's JSON, with its status.
func uploadArtifact(w http.ResponseWriter, r *Request) error {
	if r.ContentLength > maxConsoleUpload {
		writeUploadError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the console takes artifacts of at most %d bytes; use termctl artifact upload", int64(maxConsoleUpload)))
		return nil
	}
	body := &cappedReader{r: r.Body, left: maxConsoleUpload}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "/v1/artifacts", body)
	if err != nil {
		return err
	}
	req.ContentLength = r.ContentLength // -1 (chunked) stays unknown
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Authorization", "Bearer "+r.Session.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	if sha := r.Header.Get(api.ArtifactSHA256Header); sha != "" {
		req.Header.Set(api.ArtifactSHA256Header, sha)
	}
	rec := &recorder{h: http.Header{}, status: http.StatusOK}
	r.u.api.ServeHTTP(rec, req)
	if body.over {
		writeUploadError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the console takes artifacts of at most %d bytes; use termctl artifact upload", int64(maxConsoleUpload)))
		return nil
	}
	r.u.log.Info("console artifact upload", "operator", r.Session.Name, "status", rec.status, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	if ra := rec.h.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	w.WriteHeader(rec.status)
	_, err = rec.body.WriteTo(w)
	return err
}

func writeUploadError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "{\"code\":\"too_large\",\"message\":%s}\n", strconv.Quote(msg))
}

// errUploadTooLarge ends an upload that passed maxConsoleUpload.
var errUploadTooLarge = errors.New("upload larger than the console accepts")

// cappedReader reads at most left bytes and remembers whether the body
// went on beyond that.
type cappedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		for {
			n, err := c.r.Read(one[:])
			if n > 0 {
				c.over = true
				return 0, errUploadTooLarge
			}
			if err != nil {
				return 0, err // io.EOF: the body ended at the bound
			}
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
