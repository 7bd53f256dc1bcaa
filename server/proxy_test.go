package server

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/events"
)

// proxyHeader is a PROXY v2 header for a TCP connection from src.
func proxyHeader(t testing.TB, src string) []byte {
	t.Helper()
	s, err := net.ResolveTCPAddr("tcp", src)
	if err != nil {
		t.Fatal(err)
	}
	h := proxyproto.HeaderProxyFromAddrs(2, s, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7000})
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// remoteOfDevice is the address termd holds for a device's session.
func (ts *testServer) remoteOfDevice(device string) string {
	if e := ts.Presence.Get(device); e != nil {
		return e.RemoteAddr()
	}
	return ""
}

func TestProxyProtocol(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.ProxyProtocol = true
	cfg.Server.SourceLimitExempt = nil
	cfg.Server.MaxPendingPerSource = 1
	ts := startServer(t, cfg, nil)

	t.Run("the header's source is the terminal's address", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		// Header and HELLO in one write, and the header split in two.
		h := proxyHeader(t, "203.0.113.9:41000")
		c.writeRaw(h[:10])
		time.Sleep(20 * time.Millisecond)
		c.writeRaw(h[10:])
		c.login("T-proxied")
		if got := ts.remoteOfDevice("T-proxied"); got != "203.0.113.9:41000" {
			t.Fatalf("remote %q", got)
		}
		ev := ts.waitEventKind(t, "T-proxied")
		if ev != "203.0.113.9:41000" {
			t.Fatalf("online event remote %q", ev)
		}
	})
	t.Run("no header: closed", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.send(0, c.helloMsg("T-direct", time.Now().Unix(), nil))
		c.expectClosed(2 * time.Second)
	})
	t.Run("a v1 header: closed", func(t *testing.T) {
		c := dialRaw(t, ts.addr)
		c.writeRaw([]byte("PROXY TCP4 203.0.113.9 127.0.0.1 41000 7000\r\n"))
		c.expectClosed(2 * time.Second)
	})
	t.Run("per-source limits count the real address", func(t *testing.T) {
		a := dialRaw(t, ts.addr)
		a.writeRaw(proxyHeader(t, "198.51.100.1:1000"))
		waitFor(t, 2*time.Second, func() bool { return ts.sources.Pending(netip.MustParseAddr("198.51.100.1")) == 1 })
		b := dialRaw(t, ts.addr)
		b.writeRaw(proxyHeader(t, "198.51.100.1:1001"))
		b.expectClosed(2 * time.Second)
		c := dialRaw(t, ts.addr)
		c.writeRaw(proxyHeader(t, "198.51.100.2:1000"))
		c.login("T-other-source")
	})
}

func TestProxyProtocolUntrustedPeer(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.ProxyProtocol = true
	cfg.Server.ProxyTrusted = []string{"127.0.0.9/32"}
	ts := startServer(t, cfg, nil)
	c := dialRaw(t, ts.addr)
	c.writeRaw(proxyHeader(t, "203.0.113.9:41000"))
	c.expectClosed(2 * time.Second)
	ok := dialRawFrom(t, net.IPv4(127, 0, 0, 9), ts.addr)
	ok.writeRaw(proxyHeader(t, "203.0.113.10:41000"))
	ok.login("T-trusted")
	if got := ts.remoteOfDevice("T-trusted"); got != "203.0.113.10:41000" {
		t.Fatalf("remote %q", got)
	}
}

// waitEventKind waits for the device's online event and returns its
// remote address.
func (ts *testServer) waitEventKind(t *testing.T, device string) string {
	t.Helper()
	return ts.waitEvent(t, device, events.KindOnline, 2*time.Second).Remote
}

// Debian's HAProxy in front of termd with send-proxy-v2: a terminal that
// connects to HAProxy from 127.0.0.7 is seen by termd as 127.0.0.7 (its
// presence entry, which the admin API's device view and the online event
// read). `make test` installs haproxy when it is missing
// (scripts/ensure-haproxy.sh); under CI (CI=true) a missing or broken
// HAProxy fails the test instead of skipping it.
func TestBehindHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy is not installed (make test installs it: scripts/ensure-haproxy.sh)")
		}
		t.Skip("haproxy is not installed; `make test` installs it (scripts/ensure-haproxy.sh)")
	}
	cfg := testConfig(t)
	cfg.Server.ProxyProtocol = true
	cfg.Server.ProxyTrusted = []string{"127.0.0.1/32"} // HAProxy connects from 127.0.0.1
	ts := startServer(t, cfg, nil)

	front := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `global
	maxconn 256

defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s

frontend tgp
	bind %s
	default_backend termd

backend termd
	server termd %s send-proxy-v2 source 127.0.0.1
`, front, ts.addr), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", conf)
	out, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	log := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
	// HAProxy is up when its frontend accepts; bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", front, time.Second)
		if err == nil {
			nc.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("haproxy exited: %v\n%s", err, log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s\n%s", front, log())
		}
		time.Sleep(50 * time.Millisecond)
	}

	src := net.IPv4(127, 0, 0, 7)
	nc, err := dialFrom(src, front)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc, br: bufio.NewReaderSize(nc, codec.MaxFrameBytes), w: protocol.NewWriter(), r: protocol.NewReader(nil), mac: protocol.NewMAC()}
	c.login("T-haproxy")
	c.heartbeat(1)
	want := nc.LocalAddr().String() // 127.0.0.7:port
	if got := ts.remoteOfDevice("T-haproxy"); got != want {
		t.Fatalf("termd sees %q, want %q\n%s", got, want, log())
	}
	if got := ts.waitEventKind(t, "T-haproxy"); got != want {
		t.Fatalf("online event remote %q, want %q", got, want)
	}
	if !strings.HasPrefix(want, "127.0.0.7:") {
		t.Fatalf("client address %q", want)
	}
	// The registry's remote_addr (written behind) is the real one too.
	waitFor(t, 5*time.Second, func() bool {
		d, err := ts.store.Get(t.Context(), "T-haproxy")
		return err == nil && d.RemoteAddr == want
	})
}
