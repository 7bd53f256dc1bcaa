package admin

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// Bounds of a backup download.
const (
	// backupWriteTimeout bounds each chunk's write to the client: one
	// that stops reading is dropped after this, which frees the backup
	// slot and the store's snapshot.
	backupWriteTimeout = 30 * time.Second
	// backupChunk is the largest single write to the connection, in
	// bytes, so a slow but live client renews the deadline often.
	backupChunk = 64 << 10
	// backupRetryAfter is the Retry-After sent with the refusal of a
	// second concurrent backup.
	backupRetryAfter = 10 * time.Second
)

// backup serves GET /v1/backup: the store's full backup as a byte stream.
// Its version goes in the X-Termd-Backup-Version trailer, since it is
// known only when the stream is complete; a client must treat a response
// without the trailer as failed. A failure after the first byte aborts
// the connection, so a truncated backup can never look complete.
//
// One backup runs at a time: a second is refused 503 unavailable with
// Retry-After, since each holds a store snapshot and buffers. Each chunk
// written has backupWriteTimeout to reach the client.
func (h *handler) backup(w http.ResponseWriter, r *http.Request) {
	if h.opt.Backup == nil {
		writeCode(w, protocol.Unavailable, "backup is not available on this node")
		return
	}
	if !h.backupBusy.CompareAndSwap(false, true) {
		writeProblem(w, &protocol.Error{Code: protocol.Unavailable,
			Message:      "another backup is in progress; retry when it has finished",
			RetryAfterMs: uint64(backupRetryAfter.Milliseconds())})
		return
	}
	defer h.backupBusy.Store(false)
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", `attachment; filename="termd-`+time.Now().UTC().Format("20060102T150405Z")+`.backup"`)
	hd.Set("Cache-Control", "no-store")
	hd.Set("Trailer", api.BackupVersionHeader)
	bw := &byteCounter{w: w, rc: http.NewResponseController(w), timeout: h.backupTimeout}
	start := time.Now()
	version, err := h.opt.Backup(r.Context(), bw)
	if err != nil {
		if !bw.wrote {
			hd.Del("Content-Disposition")
			hd.Del("Trailer")
			h.fail(w, r, err)
			return
		}
		h.log.Error("backup failed mid-stream; aborting the response", "bytes", bw.n, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !bw.wrote {
		w.WriteHeader(http.StatusOK)
	}
	// Push out the last bytes under the deadline, then lift it: a
	// keep-alive connection's next response must not inherit it.
	_ = bw.rc.Flush()
	_ = bw.rc.SetWriteDeadline(time.Time{})
	hd.Set(api.BackupVersionHeader, strconv.FormatUint(version, 10))
	h.log.Info("backup streamed", "bytes", bw.n, "version", version, "took", time.Since(start), "remote", r.RemoteAddr)
}

// byteCounter writes to the client in chunks of at most backupChunk,
// each under a fresh write deadline, counts what passed, and notes
// whether anything was attempted (after which the status line is sent).
type byteCounter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
	n       int64
	wrote   bool
}

func (c *byteCounter) Write(p []byte) (int, error) {
	c.wrote = c.wrote || len(p) > 0
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), backupChunk)]
		// An error here means the writer cannot take deadlines (tests'
		// recorders); the listener's own limits still apply.
		_ = c.rc.SetWriteDeadline(time.Now().Add(c.timeout))
		n, err := c.w.Write(chunk)
		written += n
		c.n += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
