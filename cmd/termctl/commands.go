package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/termd/termd/server/admin/api"
)

const (
	// keyBytes is the size of a per-device key.
	keyBytes = 32
	// watchRetry is the pause before watch reopens a stream that ended.
	watchRetry = 2 * time.Second
	// maxPage is the API's largest page.
	maxPage = 1000
	// timeLayout prints times in tables and details; watch adds ms.
	timeLayout      = "2006-01-02 15:04:05"
	watchTimeLayout = "2006-01-02 15:04:05.000"
)

func (a *app) devicesCmd() *cobra.Command {
	var online, offline, all bool
	var limit int
	var cursor, where, saved string
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List devices (GET /v1/devices); search with --where or a saved --filter",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if online && offline {
				return errors.New("--online and --offline exclude each other")
			}
			if err := checkLimit(limit); err != nil {
				return err
			}
			// The search: a saved filter's query, then --where's
			// filters over it, then --online/--offline.
			q := url.Values{}
			if saved != "" {
				sq, err := a.savedQuery(cmd, saved)
				if err != nil {
					return err
				}
				q = sq
			}
			if where != "" {
				wq, err := url.ParseQuery(where)
				if err != nil {
					return fmt.Errorf("--where: %w", err)
				}
				for k, v := range wq {
					q[k] = v
				}
			}
			if online || offline {
				q.Set("online", strconv.FormatBool(online))
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var devs []api.Device
			var raw []json.RawMessage
			for {
				p, err := c.devices(cmd.Context(), q, limit, cursor)
				if err != nil {
					return err
				}
				devs, raw, cursor = append(devs, p.Devices...), append(raw, p.Raw...), p.NextCursor
				if !all || cursor == "" {
					break
				}
			}
			if a.jsonOut {
				if raw == nil {
					raw = []json.RawMessage{}
				}
				return a.printJSON(map[string]any{"devices": raw, "next_cursor": cursor})
			}
			a.deviceTable(devs)
			if cursor != "" {
				fmt.Fprintf(a.errOut, "more devices follow: --cursor %s, or --all\n", cursor)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&online, "online", false, "only devices online now")
	f.BoolVar(&offline, "offline", false, "only devices not online now")
	f.IntVar(&limit, "limit", 100, fmt.Sprintf("page size, 1..%d", maxPage))
	f.StringVar(&cursor, "cursor", "", "start after this device id (from a previous page)")
	f.BoolVar(&all, "all", false, "follow cursors and list every device")
	f.StringVar(&where, "where", "", "search filters as GET /v1/devices takes them, e.g. 'model=P400&offline_for=24h' (docs/admin-api.md §22)")
	f.StringVar(&saved, "filter", "", "run the saved device search NAME (termctl filters)")
	return cmd
}

// deviceTable prints ID, ONLINE, LAST SEEN, FW, MODEL, REMOTE.
func (a *app) deviceTable(devs []api.Device) {
	tw := a.table("ID\tONLINE\tLAST SEEN\tFW\tMODEL\tREMOTE")
	for _, d := range devs {
		on := "no"
		if d.Online {
			on = "yes"
		}
		if d.Blocked {
			on += " (blocked)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, on, a.msTime(d.LastSeenMs, timeLayout), dash(d.FW), dash(d.Model), dash(d.RemoteAddr))
	}
	tw.Flush()
}

func (a *app) deviceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "device ID",
		Short: "Show one device (GET /v1/devices/{id})",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.getJSON(cmd.Context(), "/v1/devices/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			if err := a.printFields(b); err != nil || a.jsonOut {
				return err
			}
			return a.printUpgrades(cmd.Context(), c, args[0])
		},
	}
}

func (a *app) statsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Show the node's counters (GET /v1/stats)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			b, err := c.getJSON(cmd.Context(), "/v1/stats", nil)
			if err != nil {
				return err
			}
			return a.printFields(b)
		},
	}
}

// printFields prints a JSON object as "key: value" lines in the order the
// server sent them (so new server fields show up without a CLI change),
// or the JSON itself with --json. *_ms times are shown in local time.
func (a *app) printFields(b []byte) error {
	if a.jsonOut {
		a.printf("%s\n", bytes.TrimSpace(b))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("unexpected response %.200q", b)
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 1, ' ', 0)
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		key, _ := k.(string)
		fmt.Fprintf(tw, "%s:\t%s\n", key, a.fieldValue(key, v))
	}
	return tw.Flush()
}

// fieldValue formats one value of printFields.
func (a *app) fieldValue(key string, v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return dash(s)
	}
	if string(v) == "null" {
		return "-"
	}
	if strings.HasSuffix(key, "_ms") {
		if ms, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			if ms == 0 {
				return "-"
			}
			return a.msTime(ms, watchTimeLayout)
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

func (a *app) watchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch",
		Short: "Follow presence events (GET /v1/events) until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.watch(cmd.Context(), c)
		},
	}
}

// watch prints events until ctx ends. A stream that ends after it was
// open is reopened (events in between are missed, and said so); a
// refusal, or a failure to open the first stream, is an error.
func (a *app) watch(ctx context.Context, c *apiClient) error {
	opened := false
	for {
		err := c.events(ctx, func() {
			if opened {
				fmt.Fprintln(a.errOut, "event stream reopened; events in the gap were missed")
			}
			opened = true
		}, a.printEvent)
		if ctx.Err() != nil {
			return nil
		}
		var ae *api.Error
		if !opened || (errors.As(err, &ae) && ae.Status < 500) {
			return err
		}
		fmt.Fprintf(a.errOut, "event stream ended (%v); reopening in %v\n", err, watchRetry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchRetry):
		}
	}
}

// printEvent prints one event line: the event's time, kind, device and details.
func (a *app) printEvent(ev event) error {
	if a.jsonOut {
		a.printf("%s\n", ev.Data)
		return nil
	}
	if ev.Kind == api.EventDropped {
		a.printf("%s  %-9s  %d events lost so far: this watcher fell behind\n",
			time.Now().In(a.loc).Format(watchTimeLayout), ev.Kind, ev.Dropped)
		return nil
	}
	if ev.Digest != nil { // upgrade_failure: one line per digest
		d := ev.Digest
		a.printf("%s  %-9s  %s  %s\n", a.msTime(ev.AtMs, watchTimeLayout), ev.Kind, dash(d.ReleaseID),
			fmt.Sprintf("app=%s version=%s failures=%d devices=%d delivery=%s", dash(d.AppID), dash(d.Version), d.Failures, d.Devices, d.ID))
		return nil
	}
	if ev.Kind == "service" {
		details := []string{"state=" + ev.State}
		if ev.PID != 0 {
			details = append(details, fmt.Sprintf("pid=%d", ev.PID))
		}
		if ev.ExitCode != nil && ev.State != "running" {
			details = append(details, fmt.Sprintf("exit_code=%d", *ev.ExitCode))
		}
		a.printf("%s  %-9s  %s  %s\n", a.msTime(ev.AtMs, watchTimeLayout), ev.Kind, ev.Service, strings.Join(details, " "))
		return nil
	}
	var details []string
	if ev.Release != "" {
		details = append(details, "release="+ev.Release)
	}
	if ev.Stage != "" {
		details = append(details, "stage="+ev.Stage)
	}
	if ev.Kind == "release" {
		details = append(details, "state="+ev.State)
	}
	if ev.SessionID != 0 {
		details = append(details, fmt.Sprintf("session=%d", ev.SessionID))
	}
	if ev.Reason != "" {
		details = append(details, "reason="+ev.Reason)
	}
	if ev.Remote != "" {
		details = append(details, "remote="+ev.Remote)
	}
	a.printf("%s  %-9s  %s  %s\n", a.msTime(ev.AtMs, watchTimeLayout), ev.Kind, ev.DeviceID, strings.Join(details, " "))
	return nil
}

// actionCmd makes block, unblock and disconnect.
func (a *app) actionCmd(action, short, done string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID",
		Short: short + " (POST /v1/devices/{id}/" + action + ")",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.action(cmd.Context(), args[0], action); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"id": args[0], "action": action, "ok": true})
			}
			a.printf("%s %s\n", done, args[0])
			return nil
		},
	}
}

func (a *app) setKeyCmd() *cobra.Command {
	var keyHex string
	var generate, remove bool
	cmd := &cobra.Command{
		Use:   "set-key ID (--key HEX | --generate | --clear)",
		Short: "Provision or remove a per-device key (PUT /v1/devices/{id}/key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := 0
			for _, set := range []bool{keyHex != "", generate, remove} {
				if set {
					n++
				}
			}
			if n != 1 {
				return errors.New("give exactly one of --key HEX, --generate or --clear")
			}
			var key []byte
			switch {
			case keyHex != "":
				k, err := hex.DecodeString(keyHex)
				if err != nil || len(k) != keyBytes {
					return fmt.Errorf("--key must be %d hex digits (%d bytes)", 2*keyBytes, keyBytes)
				}
				key = k
			case generate:
				key = make([]byte, keyBytes)
				if _, err := rand.Read(key); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.setKey(cmd.Context(), args[0], key); err != nil {
				return err
			}
			switch {
			case a.jsonOut && generate:
				return a.printJSON(map[string]any{"id": args[0], "key": hex.EncodeToString(key)})
			case a.jsonOut:
				return a.printJSON(map[string]any{"id": args[0], "has_key": key != nil})
			case generate:
				a.printf("key set for %s; it is shown only now, store it in the terminal:\n%s\n", args[0], hex.EncodeToString(key))
			case remove:
				a.printf("key removed for %s; it authenticates with the fleet secret from its next HELLO\n", args[0])
			default:
				a.printf("key set for %s; it applies from the device's next HELLO\n", args[0])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyHex, "key", "", "the key, 64 hex digits")
	f.BoolVar(&generate, "generate", false, "generate a random key, set it and print it once")
	f.BoolVar(&remove, "clear", false, "remove the key (the device falls back to the fleet secret)")
	return cmd
}

func (a *app) backupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Stream a backup of the node's store to FILE (GET /v1/backup)",
		Long: `backup writes FILE.tmp, syncs it, then renames it to FILE, so FILE is
either a complete backup or untouched. The file holds per-device keys:
it is created readable by its owner only.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			n, version, err := a.backupTo(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"file": args[0], "bytes": n, "version": version})
			}
			a.printf("wrote %d bytes to %s (backup version %d)\n", n, args[0], version)
			return nil
		},
	}
}

// backupTo streams the backup into file atomically.
func (a *app) backupTo(ctx context.Context, c *apiClient, file string) (n int64, version uint64, err error) {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if n, version, err = c.backup(ctx, f); err != nil {
		return n, 0, err
	}
	if err = f.Sync(); err != nil {
		return n, 0, err
	}
	if err = f.Close(); err != nil {
		return n, 0, err
	}
	if err = os.Rename(tmp, file); err != nil {
		return n, 0, err
	}
	// Make the rename itself durable.
	if d, derr := os.Open(filepath.Dir(file)); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return n, version, nil
}

// printJSON prints v as one line of JSON.
func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a.printf("%s\n", b)
	return nil
}

// msTime formats unix ms in the local zone; 0 is "-".
func (a *app) msTime(ms int64, layout string) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).In(a.loc).Format(layout)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
