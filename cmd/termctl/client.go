package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client-side bounds.
const (
	// requestTimeout bounds one short API call (not streams or backups).
	requestTimeout = 30 * time.Second
	// maxErrorBody bounds how much of an error response is read.
	maxErrorBody = 64 << 10
	// maxSSELine bounds one line of the event stream.
	maxSSELine = 1 << 20
	// backupVersionHeader is the trailer carrying a backup's version
	// (admin.BackupVersionHeader; not imported, to keep the server out of
	// the CLI binary).
	backupVersionHeader = "X-Termd-Backup-Version"
)

// apiClient talks to termd's admin API.
type apiClient struct {
	base  string // "http://host:port", no trailing slash
	token string
	hc    *http.Client
}

// apiError is an error response of the API.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// isCode reports whether err is an API error with that code.
func isCode(err error, code string) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == code
}

// device is a device as GET /v1/devices returns it.
type device struct {
	ID            string         `json:"id"`
	Online        bool           `json:"online"`
	Live          bool           `json:"live"`
	SessionID     uint64         `json:"session_id"`
	FirstSeenMs   int64          `json:"first_seen_ms"`
	LastSeenMs    int64          `json:"last_seen_ms"`
	LastOnlineMs  int64          `json:"last_online_ms"`
	LastOfflineMs int64          `json:"last_offline_ms"`
	OfflineReason string         `json:"offline_reason"`
	RemoteAddr    string         `json:"remote_addr"`
	FW            string         `json:"fw"`
	Model         string         `json:"model"`
	Attrs         map[string]any `json:"attrs"`
	Status        map[string]any `json:"status"`
	Blocked       bool           `json:"blocked"`
	HasKey        bool           `json:"has_key"`
}

// devicePage is one page of GET /v1/devices; Raw keeps each device's
// JSON as sent, for --json output.
type devicePage struct {
	Devices    []device `json:"devices"`
	NextCursor string   `json:"next_cursor"`
	Raw        []json.RawMessage
}

// event is one message of GET /v1/events.
type event struct {
	Kind      string `json:"kind"`
	DeviceID  string `json:"device_id"`
	SessionID uint64 `json:"session_id"`
	AtMs      int64  `json:"at_ms"`
	Reason    string `json:"reason"`
	Remote    string `json:"remote"`
	Dropped   uint64 `json:"dropped"`
	Service   string `json:"service"`
	State     string `json:"state"`
	PID       int    `json:"pid"`
	ExitCode  *int   `json:"exit_code"`
	// Data is the event's JSON as sent.
	Data string `json:"-"`
}

// request sends one request and returns the response when its status is
// 2xx; otherwise the API's error.
func (c *apiClient) request(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ae := &apiError{Status: resp.StatusCode}
	if json.Unmarshal(b, ae) != nil || ae.Code == "" {
		ae.Code, ae.Message = "", strings.TrimSpace(string(b))
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
	}
	return nil, ae
}

// call does a short request and returns the response body.
func (c *apiClient) call(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// stats returns GET /v1/stats as sent.
func (c *apiClient) stats(ctx context.Context) ([]byte, error) {
	return c.call(ctx, "GET", "/v1/stats", nil)
}

// device returns GET /v1/devices/{id} as sent.
func (c *apiClient) device(ctx context.Context, id string) ([]byte, error) {
	return c.call(ctx, "GET", "/v1/devices/"+url.PathEscape(id), nil)
}

// devices returns one page of devices.
func (c *apiClient) devices(ctx context.Context, online *bool, limit int, cursor string) (devicePage, error) {
	q := url.Values{}
	if online != nil {
		q.Set("online", strconv.FormatBool(*online))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path := "/v1/devices"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	b, err := c.call(ctx, "GET", path, nil)
	if err != nil {
		return devicePage{}, err
	}
	var p devicePage
	if err := json.Unmarshal(b, &p); err != nil {
		return devicePage{}, fmt.Errorf("decode device list: %w", err)
	}
	var raw struct {
		Devices []json.RawMessage `json:"devices"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return devicePage{}, fmt.Errorf("decode device list: %w", err)
	}
	p.Raw = raw.Devices
	return p, nil
}

// action posts block, unblock or disconnect for a device.
func (c *apiClient) action(ctx context.Context, id, action string) error {
	_, err := c.call(ctx, "POST", "/v1/devices/"+url.PathEscape(id)+"/"+action, nil)
	return err
}

// setKey provisions a 32-byte key, or removes it when key is nil.
func (c *apiClient) setKey(ctx context.Context, id string, key []byte) error {
	body := []byte(`{"key":null}`)
	if key != nil {
		body = []byte(`{"key":"` + hex.EncodeToString(key) + `"}`)
	}
	_, err := c.call(ctx, "PUT", "/v1/devices/"+url.PathEscape(id)+"/key", bytes.NewReader(body))
	return err
}

// backup streams GET /v1/backup into w and returns the bytes copied and
// the backup's version. A response without the version trailer did not
// complete on the server and is an error.
func (c *apiClient) backup(ctx context.Context, w io.Writer) (int64, uint64, error) {
	resp, err := c.request(ctx, "GET", "/v1/backup", nil)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, 0, fmt.Errorf("backup interrupted after %d bytes: %w", n, err)
	}
	v := resp.Trailer.Get(backupVersionHeader)
	if v == "" {
		return n, 0, fmt.Errorf("backup incomplete: the server sent no %s trailer", backupVersionHeader)
	}
	version, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return n, 0, fmt.Errorf("bad %s %q", backupVersionHeader, v)
	}
	return n, version, nil
}

// events follows GET /v1/events and calls fn for each event until the
// stream ends, ctx ends or fn fails. connected, if set, is called once
// the stream is open.
func (c *apiClient) events(ctx context.Context, connected func(), fn func(event) error) error {
	resp, err := c.request(ctx, "GET", "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if connected != nil {
		connected()
	}
	return readSSE(resp.Body, func(name, data string) error {
		ev := event{Data: data}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return fmt.Errorf("event %q: bad data %q: %w", name, data, err)
		}
		if ev.Kind == "" {
			ev.Kind = name
		}
		return fn(ev)
	})
}

// readSSE parses a Server-Sent Events stream and calls fn per event
// (comments and retry/id fields are skipped). It returns fn's error, the
// read error, or io.ErrUnexpectedEOF when the stream ends.
func readSSE(r io.Reader, fn func(name, data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	var name string
	var data []string
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if len(data) > 0 {
				if name == "" {
					name = "message"
				}
				if err := fn(name, strings.Join(data, "\n")); err != nil {
					return err
				}
			}
			name, data = "", nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			name = value
		case "data":
			data = append(data, value)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}
