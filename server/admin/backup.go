package admin

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
)

// backup serves GET /v1/backup: the store's full backup as a byte stream.
// Its version goes in the X-Termd-Backup-Version trailer, since it is
// known only when the stream is complete; a client must treat a response
// without the trailer as failed. A failure after the first byte aborts
// the connection, so a truncated backup can never look complete.
func (h *handler) backup(w http.ResponseWriter, r *http.Request) {
	if h.opt.Backup == nil {
		writeCode(w, protocol.Unavailable, "backup is not available on this node")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", `attachment; filename="termd-`+time.Now().UTC().Format("20060102T150405Z")+`.backup"`)
	hd.Set("Cache-Control", "no-store")
	hd.Set("Trailer", api.BackupVersionHeader)
	bw := &byteCounter{w: w}
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
	hd.Set(api.BackupVersionHeader, strconv.FormatUint(version, 10))
	h.log.Info("backup streamed", "bytes", bw.n, "version", version, "took", time.Since(start), "remote", r.RemoteAddr)
}

// byteCounter counts what passes through to w, and notes whether
// anything was attempted (after which the status line is sent).
type byteCounter struct {
	w     io.Writer
	n     int64
	wrote bool
}

func (c *byteCounter) Write(p []byte) (int, error) {
	c.wrote = c.wrote || len(p) > 0
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
