package main

// termctl group import: bulk membership changes from a CSV file.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

// maxImportRows bounds one import (each row is one request).
const maxImportRows = 100_000

func (a *app) groupImportCmd() *cobra.Command {
	var remove bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Add (or --remove) memberships from a CSV file: rows group,device[,role] (\"-\" reads stdin; a header row group,device,... is skipped)",
		Long: `Each row is one membership change through the admin API
(PUT or DELETE /v1/groups/{group}/members/{device}); online devices are
sent GROUP_SYNC, paced by the server. Rows that fail are reported with
their line number and the import goes on; the command fails if any row
failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r := csv.NewReader(in)
			r.FieldsPerRecord = -1
			r.TrimLeadingSpace = true
			r.Comment = '#'
			ok, failed, line := 0, 0, 0
			for {
				rec, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				line++
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				if line > maxImportRows {
					return fmt.Errorf("%s: more than %d rows", args[0], maxImportRows)
				}
				if line == 1 && len(rec) >= 2 && strings.EqualFold(rec[0], "group") && strings.EqualFold(rec[1], "device") {
					continue
				}
				if len(rec) < 2 || len(rec) > 3 || rec[0] == "" || rec[1] == "" {
					fmt.Fprintf(a.errOut, "line %d: want group,device[,role]\n", line)
					failed++
					continue
				}
				path := "/v1/groups/" + url.PathEscape(rec[0]) + "/members/" + url.PathEscape(rec[1])
				method, body := "PUT", []byte(nil)
				if remove {
					method = "DELETE"
				} else if len(rec) == 3 && rec[2] != "" {
					body, _ = json.Marshal(api.GroupMemberPut{Role: rec[2]})
				}
				var rd io.Reader
				if body != nil {
					rd = bytes.NewReader(body)
				}
				if _, err := c.call(cmd.Context(), method, path, rd); err != nil {
					fmt.Fprintf(a.errOut, "line %d: %s %s: %v\n", line, rec[0], rec[1], err)
					failed++
					continue
				}
				ok++
			}
			verb := "added"
			if remove {
				verb = "removed"
			}
			a.printf("%d memberships %s, %d rows failed\n", ok, verb, failed)
			if failed > 0 {
				return fmt.Errorf("%d of %d rows failed", failed, ok+failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the listed memberships instead")
	return cmd
}
