package admin

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/termd/termd/server/admin/api"
)

// bigBackup writes size bytes in 1 MB writes, more than loopback socket
// buffers absorb, so a client that stops reading blocks the writer.
func bigBackup(size int, started chan<- struct{}, release <-chan struct{}) func(context.Context, io.Writer) (uint64, error) {
	return func(ctx context.Context, w io.Writer) (uint64, error) {
		chunk := make([]byte, 1<<20)
		for i := 0; i < size>>20; i++ {
			if _, err := w.Write(chunk); err != nil {
				return 0, err
			}
			if i == 0 && started != nil {
				started <- struct{}{}
				<-release
			}
		}
		return 7, nil
	}
}

// TestBackupStalledClientDropped reproduces issue 10 defect 8: a client
// that stops reading held its backup (and its memory) forever. Now the
// write deadline drops it, the stream ends in an error on the client's
// side, and the next backup runs.
func TestBackupStalledClientDropped(t *testing.T) {
	const size = 64 << 20
	f := newFixture(t, func(o *Options) { o.Backup = bigBackup(size, nil, nil) })
	f.h.backupTimeout = 500 * time.Millisecond
	resp := f.do(t, "GET", "/v1/backup", testToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backup status %d", resp.StatusCode)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	// Stall well past the deadline: the server drops the connection.
	deadline := time.Now().Add(10 * time.Second)
	for f.h.backupBusy.Load() {
		if time.Now().After(deadline) {
			t.Fatal("a stalled client still holds the backup after 10 s (write deadline 0.5 s)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil {
		t.Fatalf("the stalled client read the rest of the backup (%d bytes) without an error", n)
	}
	// The next backup starts and completes.
	resp = f.do(t, "GET", "/v1/backup", testToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("next backup status %d", resp.StatusCode)
	}
	if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != size || resp.Trailer.Get(api.BackupVersionHeader) != "7" {
		t.Fatalf("next backup: %d bytes, err %v, version %q", n, err, resp.Trailer.Get(api.BackupVersionHeader))
	}
}

// TestBackupOneAtATime: a second backup while one streams is refused 503
// unavailable with Retry-After; once the first ends, backups run again.
func TestBackupOneAtATime(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	f := newFixture(t, func(o *Options) { o.Backup = bigBackup(2<<20, started, release) })
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", f.srv.URL+"/v1/backup", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := f.srv.Client().Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		first <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("first backup did not start")
	}
	resp := f.do(t, "GET", "/v1/backup", testToken, "")
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Errorf("refusal without Retry-After")
	}
	expectError(t, resp, http.StatusServiceUnavailable, api.CodeUnavailable)
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first backup: %v", err)
	}
	resp = f.do(t, "GET", "/v1/backup", testToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backup after the first ended: %d", resp.StatusCode)
	}
}
