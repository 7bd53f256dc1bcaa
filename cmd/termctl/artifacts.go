package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

func (a *app) artifactCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifact upload FILE | list | rm SHA256",
		Short: "Manage the artifact store: upload a file, list, remove (/v1/artifacts)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "upload FILE",
		Short: "Upload FILE, streamed; prints its sha256 (what a release refers to) and size",
		Long: `upload streams FILE to termd (it is never held in memory on either side)
with the SHA-256 computed here, so termd refuses a copy corrupted on the
way. Uploading the same bytes again is harmless: artifacts are named by
their digest.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			// No request timeout: a large image on a slow link takes as
			// long as it takes; Ctrl-C cancels.
			req, err := http.NewRequestWithContext(cmd.Context(), "POST", c.base+"/v1/artifacts", f)
			if err != nil {
				return err
			}
			req.ContentLength = st.Size()
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set(api.ArtifactSHA256Header, hex.EncodeToString(h.Sum(nil)))
			b, err := c.send(req)
			if err != nil {
				return err
			}
			if a.jsonOut {
				a.printf("%s\n", bytes.TrimSpace(b))
				return nil
			}
			var art api.Artifact
			if err := json.Unmarshal(b, &art); err != nil {
				return fmt.Errorf("unexpected response: %w", err)
			}
			a.printf("sha256: %s\nsize:   %d\n", art.SHA256, art.Size)
			return nil
		},
	})
	cmd.AddCommand(listCmd(a, "list", "List stored artifacts, newest first", "/v1/artifacts",
		"SHA256\tSIZE\tCREATED", func(w io.Writer, list *api.ArtifactList) {
			for _, x := range list.Artifacts {
				fmt.Fprintf(w, "%s\t%d\t%s\n", x.SHA256, x.Size, a.msTime(x.CreatedMs, timeLayout))
			}
		}))
	cmd.AddCommand(a.deleteCmd("rm SHA256", "Remove a stored artifact (refused while a release refers to it)", "sha256", "removed",
		func(sha string) string { return "/v1/artifacts/" + url.PathEscape(sha) }))
	return cmd
}

// send does req with the client's token and returns the body of a 2xx
// answer, else the API's error.
func (c *apiClient) send(req *http.Request) ([]byte, error) {
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return io.ReadAll(resp.Body)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ae := &api.Error{Status: resp.StatusCode}
	if json.Unmarshal(b, ae) != nil || ae.Code == "" {
		ae.Code, ae.Message = "", string(bytes.TrimSpace(b))
	}
	return nil, ae
}
