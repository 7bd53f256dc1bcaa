package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// spreadIP is the i-th of the loopback source addresses 127.0.0.2–50
// that tests spread their clients over.
func spreadIP(i int) net.IP { return net.IPv4(127, 0, 0, byte(2+i%49)) }

// dialFrom connects to addr from the local address ip (any port).
func dialFrom(ip net.IP, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// dialRawFrom is dialRaw from the local address ip.
func dialRawFrom(t testing.TB, ip net.IP, addr string) *rawClient {
	t.Helper()
	nc, err := dialFrom(ip, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReaderSize(nc, codec.MaxFrameBytes), w: protocol.NewWriter(), r: protocol.NewReader(nil), mac: protocol.NewMAC()}
}

// expectGoaway reads a GOAWAY with code.
func (c *rawClient) expectGoaway(code protocol.Code) protocol.Goaway {
	c.t.Helper()
	f := c.mustRead()
	var g protocol.Goaway
	if f.typ != protocol.TypeGoaway || c.decode(f, &g) != nil || g.Code != code {
		c.t.Fatalf("want GOAWAY %v, got type %#x body %x", code, f.typ, f.body)
	}
	return g
}

// tryLogin is login that reports a refusal or a closed socket instead of
// failing the test.
func tryLogin(t testing.TB, ip net.IP, addr, device string) error {
	// The HELLO is ready before the connection, and written the moment
	// it is up, as a terminal does.
	c := &rawClient{t: t, w: protocol.NewWriter(), r: protocol.NewReader(nil), mac: protocol.NewMAC()}
	hello := c.w.AppendFrame(0, c.helloMsg(device, time.Now().Unix(), nil))
	nc, err := dialFrom(ip, addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	c.nc, c.br = nc, bufio.NewReaderSize(nc, codec.MaxFrameBytes)
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(hello); err != nil {
		return err
	}
	f, err := c.read(5 * time.Second)
	if err != nil {
		return err
	}
	var ok protocol.HelloOK
	if err := c.decode(f, &ok); err != nil {
		return err
	}
	return nil
}

// idleFlood keeps n sockets open to addr that never send a byte, spread
// over the source addresses, each reopened when the server closes it,
// until ctx ends. It returns how many times sockets were closed on it.
func idleFlood(ctx context.Context, t testing.TB, addr string, n int) (closed *atomic.Int64, wait func()) {
	closed = new(atomic.Int64)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			buf := make([]byte, 64)
			for ctx.Err() == nil {
				nc, err := dialFrom(spreadIP(i), addr)
				if err != nil {
					select { // accept queue full or refused: back off a little
					case <-ctx.Done():
					case <-time.After(20 * time.Millisecond):
					}
					continue
				}
				stop := context.AfterFunc(ctx, func() { nc.Close() })
				for {
					if _, err := nc.Read(buf); err != nil {
						break
					}
				}
				stop()
				nc.Close()
				closed.Add(1)
			}
		})
	}
	return closed, wg.Wait
}

// envFloodHelper makes this test binary an idle-socket flooder:
// "addr,sockets,max_seconds".
const envFloodHelper = "TERMD_TEST_FLOOD_HELPER"

// startFlood runs idleFlood in a child process (this test binary) at the
// lowest CPU priority: the attacker is another machine, and must not
// starve the terminal the test runs, which shares two cores with it.
func startFlood(t *testing.T, addr string, sockets int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodHelperProcess$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", envFloodHelper, addr, sockets, 60))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 19)
	t.Cleanup(func() {
		in.Close() // the helper stops when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// TestFloodHelperProcess is the body of a flood helper; run directly it
// has nothing to do.
func TestFloodHelperProcess(t *testing.T) {
	spec := os.Getenv(envFloodHelper)
	if spec == "" {
		t.Skip("runs only as a child of TestIdleFloodCannotLockOutHello")
	}
	var addr string
	var n, secs int
	if _, err := fmt.Sscanf(strings.ReplaceAll(spec, ",", " "), "%s %d %d", &addr, &n, &secs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	closed, wait := idleFlood(ctx, t, addr, n)
	wait()
	fmt.Fprintf(os.Stderr, "flood helper: %d sockets, closed on it %d times\n", n, closed.Load())
}

// An idle-socket flood cannot keep a terminal out: the pre-HELLO cap and
// the connection cap evict the oldest idle socket instead of refusing the
// newcomer. Before the fix every HELLO was refused [7, "too many
// connections in HELLO"] (pending cap) or the socket closed at accept
// (connection cap) for as long as the flood lasted.
func TestIdleFloodCannotLockOutHello(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	cases := []struct {
		name                        string
		maxPending, maxConns, flood int
	}{
		{"pending-HELLO cap", 2000, 0, 3000},
		{"connection cap", 4096, 2000, 3000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Server.MaxPendingHello = tc.maxPending
			cfg.Server.MaxConnections = tc.maxConns
			cfg.Server.MaxSessions = 8
			cfg.Server.HelloTimeout = config.D(30 * time.Second) // every close the flood sees is an eviction
			cfg.Server.SourceLimitExempt = nil                   // the per-source defaults stay on
			ts := startServer(t, cfg, nil)
			capacity := tc.maxPending
			if tc.maxConns > 0 {
				capacity = tc.maxConns
			}

			start := time.Now()
			startFlood(t, ts.addr, tc.flood)
			// Wait until the flood has filled the cap.
			waitFor(t, 30*time.Second, func() bool { return int(ts.pending.Load()) >= capacity })
			// A real terminal logs in again and again for a while.
			logins := 0
			for end := time.Now().Add(3 * time.Second); logins < 20 || time.Now().Before(end); logins++ {
				if err := tryLogin(t, net.IPv4(127, 0, 0, 51), ts.addr, "T-real"); err != nil {
					t.Fatalf("login %d during the flood: %v (pending %d, conns %d)", logins, err, ts.pending.Load(), ts.conns.Load())
				}
				time.Sleep(20 * time.Millisecond) // well within its address's HELLO rate
			}
			if p := int(ts.pending.Load()); p > capacity+maxEvictScan {
				t.Fatalf("%d connections in HELLO, cap %d", p, capacity)
			}
			t.Logf("%d logins during the flood; %d idle sockets evicted in %v", logins, ts.m.helloEvicted.Get(), time.Since(start))
		})
	}
}

// Per-source limits refuse the address that floods, not the others.
func TestPerSourceLimits(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.SourceLimitExempt = nil
	cfg.Server.MaxPendingPerSource = 20
	cfg.Server.HelloRatePerSource = 0.5
	cfg.Server.HelloBurstPerSource = 3
	ts := startServer(t, cfg, nil)
	flooder := net.IPv4(127, 0, 0, 2)

	t.Run("connections in HELLO", func(t *testing.T) {
		for range 20 {
			dialRawFrom(t, flooder, ts.addr)
		}
		waitFor(t, 2*time.Second, func() bool { return ts.sources.Pending(netip.MustParseAddr("127.0.0.2")) == 20 })
		over := dialRawFrom(t, flooder, ts.addr)
		over.expectClosed(2 * time.Second)
		// Another address is not affected.
		ok := dialRawFrom(t, net.IPv4(127, 0, 0, 3), ts.addr)
		ok.login("T-other")
	})
	t.Run("HELLO rate", func(t *testing.T) {
		src := net.IPv4(127, 0, 0, 4)
		for i := range 3 {
			if err := tryLogin(t, src, ts.addr, "T-rate"); err != nil {
				t.Fatalf("login %d within the burst: %v", i, err)
			}
		}
		err := tryLogin(t, src, ts.addr, "T-rate")
		var pe *protocol.Error
		if !errors.As(err, &pe) || pe.Code != protocol.Unavailable || pe.Message != "too many HELLOs from this address" || pe.RetryAfterMs < 1000 {
			t.Fatalf("4th HELLO from %v: %v", src, err)
		}
		if err := tryLogin(t, net.IPv4(127, 0, 0, 5), ts.addr, "T-rate-other"); err != nil {
			t.Fatalf("another address: %v", err)
		}
	})
}
