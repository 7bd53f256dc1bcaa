package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
	"github.com/termd/termd/server/servertest"
)

// The test binary doubles as termd: a child started with TERMD_TEST_MAIN=1
// runs main's run() with its arguments, so the tests drive a real termd
// process (signals, kill -9, restart) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("TERMD_TEST_MAIN") == "1" {
		if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "termd:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	testSecret = "kill-nine-fleet-secret"
	testToken  = "kill-nine-token"
)

type node struct {
	t         *testing.T
	dir, tgp  string
	adminAddr string
	cfgPath   string
	cmd       *exec.Cmd
	out       *syncBuffer
	// files are passed to termd as descriptors 3, 4, ... (inherited, not
	// close-on-exec), as a shell or a service manager may.
	files []*os.File
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer = servertest.SyncBuffer

func newNode(t *testing.T, extra string) *node {
	n := &node{t: t, dir: t.TempDir(), tgp: servertest.FreePort(t), adminAddr: servertest.FreePort(t)}
	n.cfgPath = filepath.Join(n.dir, "termd.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
tick_interval = "50ms"
[auth]
fleet_secret = %q
[admin]
listen = %q
token = %q
[storage]
dir = %q
[log]
level = "warn"
%s
`, n.tgp, testSecret, n.adminAddr, testToken, filepath.Join(n.dir, "data"), extra)
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// start starts the node and waits until /readyz answers 200.
func (n *node) start() { n.t.Helper(); n.startUntil("/readyz") }

// startUntil starts the node and waits until probe answers 200.
func (n *node) startUntil(probe string) {
	n.t.Helper()
	n.cmd = exec.Command(os.Args[0], "-config", n.cfgPath)
	n.cmd.Env = append(os.Environ(), "TERMD_TEST_MAIN=1")
	n.out = &syncBuffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.ExtraFiles = n.files
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + n.adminAddr + probe)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("termd not ready: %v\n%s", err, n.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *node) get(path string, v any) {
	n.t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.adminAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		n.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		n.t.Fatal(err)
	}
}

type deviceJSON struct {
	ID            string `json:"id"`
	Online        bool   `json:"online"`
	LastOfflineMs int64  `json:"last_offline_ms"`
	OfflineReason string `json:"offline_reason"`
	FW            string `json:"fw"`
}

func (n *node) devices() []deviceJSON {
	var page struct {
		Devices []deviceJSON `json:"devices"`
	}
	n.get("/v1/devices?limit=1000", &page)
	return page.Devices
}

// captureHello completes a HELLO on a raw socket and returns the HELLO's
// bytes, as an eavesdropper would have recorded them.
func captureHello(t *testing.T, addr, device string) []byte {
	t.Helper()
	m := protocol.NewMAC()
	kdev := m.DeviceKey([]byte(testSecret), device)
	h := &protocol.Hello{DeviceID: device, TS: uint64(time.Now().Unix()), FW: "1.0", Model: "M"}
	_, _ = rand.Read(h.Nonce[:])
	h.MAC = m.HelloMAC(&kdev, device, h.TS, h.Nonce[:], h.FW, h.Model)
	frame := protocol.NewWriter().AppendFrame(0, h)
	status, _ := sendHello(t, addr, frame)
	if status != protocol.OK {
		t.Fatalf("capture HELLO refused: %v", status)
	}
	return append([]byte(nil), frame...)
}

// sendHello writes a HELLO frame and returns the status of the answer.
func sendHello(t *testing.T, addr string, frame []byte) (protocol.Code, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	src := &codec.BufferedSource{R: bufio.NewReader(nc)}
	f, err := codec.Next(src, codec.Limits{MaxLen: codec.MinMaxFrame})
	if err != nil {
		t.Fatalf("read HELLO answer: %v %v", err, src.Err())
	}
	var ok protocol.HelloOK
	err = protocol.DecodeBody(protocol.NewReader(nil), f.Body, &ok)
	return protocol.StatusOf(err), err
}

// kill -9 during heartbeating terminals: after a restart the registry is
// intact, every device is offline with reason `restart` at most about a
// second after the kill, and HELLOs captured before the kill cannot be
// replayed.
func TestKillNineRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns termd")
	}
	n := newNode(t, "[heartbeat]\ninterval = \"1s\"\n")
	n.start()

	const terminals = 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	conns := make(chan *client.Conn, terminals)
	for i := 0; i < terminals; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(ctx, client.Config{
				Addr: n.tgp, DeviceID: fmt.Sprintf("K9-%04d", i), FleetSecret: []byte(testSecret),
				FW: "3.0.1", Model: "P400", HBMin: 100 * time.Millisecond,
			})
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			conns <- c
		}()
	}
	wg.Wait()
	close(conns)
	captured := captureHello(t, n.tgp, "K9-spy")
	// Let heartbeats and a write-behind flush happen.
	time.Sleep(2500 * time.Millisecond)
	var online struct {
		Online int `json:"online"`
	}
	n.get("/v1/stats", &online)
	if online.Online != terminals {
		t.Fatalf("online before kill: %d", online.Online)
	}

	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = n.cmd.Wait()
	for c := range conns {
		c.Close()
	}
	time.Sleep(1100 * time.Millisecond) // the restart is in a later second than the capture
	n.start()

	devs := n.devices()
	byID := map[string]deviceJSON{}
	for _, d := range devs {
		byID[d.ID] = d
	}
	for i := 0; i < terminals; i++ {
		id := fmt.Sprintf("K9-%04d", i)
		d, ok := byID[id]
		if !ok {
			t.Fatalf("%s missing after restart (%d devices)", id, len(devs))
		}
		off := time.UnixMilli(d.LastOfflineMs)
		if d.Online || d.OfflineReason != "restart" || d.FW != "3.0.1" {
			t.Fatalf("%s after restart: %+v", id, d)
		}
		if lag := killed.Sub(off); lag < -50*time.Millisecond || lag > 1500*time.Millisecond {
			t.Fatalf("%s offline at %v, %v before the kill", id, off, lag)
		}
	}
	// The captured HELLO is refused: the nonce cache was lost, so HELLOs
	// from before the start are EXPIRED (clock challenge), not accepted.
	if status, err := sendHello(t, n.tgp, captured); status != protocol.Expired {
		t.Fatalf("replayed HELLO: %v %v", status, err)
	}
}
