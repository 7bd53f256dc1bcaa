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

	"github.com/termd/termd/server/admin/api"
)

// Client-side bounds.
const (
	// requestTimeout bounds one short API call (not streams or backups).
	requestTimeout = 30 * time.Second
	// maxErrorBody bounds how much of an error response is read.
	maxErrorBody = 64 << 10
	// maxSSELine bounds one line of the event stream.
	maxSSELine = 1 << 20
)

// apiClient talks to termd's admin API.
type apiClient struct {
	base  string // "http://host:port", no trailing slash
	token string
	// tokenFrom says where token was read from ("--token",
	// "$TERMD_ADMIN_TOKEN" or a file path), named when the API refuses it.
	tokenFrom string
	hc        *http.Client
}

// isCode reports whether err is an API error with that code.
func isCode(err error, code api.ErrorCode) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code
}

// devicePage is one page of GET /v1/devices; Raw keeps each device's
// JSON as sent, for --json output.
type devicePage struct {
	api.DeviceList
	Raw []json.RawMessage
}

// event is one message of GET /v1/events, with its JSON as sent.
type event struct {
	api.Event
	Data string
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
	ae := &api.Error{Status: resp.StatusCode}
	if json.Unmarshal(b, ae) != nil || ae.Code == "" {
		ae.Code, ae.Message = "", strings.TrimSpace(string(b))
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
	}
	if resp.StatusCode == http.StatusUnauthorized && c.tokenFrom != "" {
		return nil, fmt.Errorf("%w (the token was read from %s)", ae, c.tokenFrom)
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

// getJSON does a short GET and returns the body as sent; when v is not
// nil the body is decoded into it too.
func (c *apiClient) getJSON(ctx context.Context, path string, v any) ([]byte, error) {
	b, err := c.call(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("GET %s: unexpected response: %w", path, err)
		}
	}
	return b, nil
}

// fetch GETs path into v for a command that prints a table. With --json
// it prints the body as sent instead and reports done, as it does on an
// error; the caller prints its table only when done is false.
func (a *app) fetch(ctx context.Context, path string, v any) (done bool, err error) {
	c, err := a.client()
	if err != nil {
		return true, err
	}
	b, err := c.getJSON(ctx, path, v)
	if err != nil {
		return true, err
	}
	if a.jsonOut {
		a.printf("%s\n", bytes.TrimSpace(b))
		return true, nil
	}
	return false, nil
}

// devices returns one page of devices.
func (c *apiClient) devices(ctx context.Context, filter url.Values, limit int, cursor string) (devicePage, error) {
	q := url.Values{}
	for k, v := range filter {
		q[k] = v
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
	var p devicePage
	b, err := c.getJSON(ctx, path, &p.DeviceList)
	if err != nil {
		return devicePage{}, err
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
	var req api.SetKey
	if key != nil {
		k := hex.EncodeToString(key)
		req.Key = &k
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	_, err = c.call(ctx, "PUT", "/v1/devices/"+url.PathEscape(id)+"/key", bytes.NewReader(body))
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
	v := resp.Trailer.Get(api.BackupVersionHeader)
	if v == "" {
		return n, 0, fmt.Errorf("backup incomplete: the server sent no %s trailer", api.BackupVersionHeader)
	}
	version, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return n, 0, fmt.Errorf("bad %s %q", api.BackupVersionHeader, v)
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
		if err := json.Unmarshal([]byte(data), &ev.Event); err != nil {
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
