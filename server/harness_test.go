package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/events"
	"github.com/termd/termd/storage"
)

const testSecret = "dev-fleet-secret"

// testServer is a real termd front end on a loopback port with a real
// store (in-memory Badger unless the test gives one).
type testServer struct {
	*Server
	addr   string
	store  storage.Store
	cancel context.CancelFunc
	done   chan error
	events *events.Subscription
	once   sync.Once
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testConfig(t testing.TB) config.Config {
	cfg := config.Defaults()
	cfg.Server.Listen = freePort(t)
	cfg.Server.EventLoops = 2
	cfg.Server.TickInterval = config.D(20 * time.Millisecond)
	cfg.Auth.FleetSecret = testSecret
	cfg.Admin.Token = "test-token"
	cfg.Storage.FlushInterval = config.D(50 * time.Millisecond)
	cfg.Storage.AliveInterval = config.D(100 * time.Millisecond)
	return cfg
}

func startServer(t testing.TB, cfg config.Config, store storage.Store) *testServer {
	t.Helper()
	return startServerOpts(t, cfg, store, nil)
}

// startServerWith lets a test install routes before Run.
func startServerWith(t testing.TB, cfg config.Config, setup func(*Server)) *testServer {
	t.Helper()
	return startServerOpts(t, cfg, nil, setup)
}

func startServerOpts(t testing.TB, cfg config.Config, store storage.Store, setup func(*Server)) *testServer {
	t.Helper()
	if store == nil {
		b, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		store = b
		t.Cleanup(func() { b.Close() })
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := Open(context.Background(), cfg, Options{Logger: log, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, addr: cfg.Server.Listen, store: store, cancel: cancel, done: make(chan error, 1)}
	ts.events = s.Bus.Subscribe(4096)
	go func() { ts.done <- s.Run(ctx) }()
	select {
	case <-s.Started():
	case err := <-ts.done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ts.once.Do(func() {
		ts.cancel()
		select {
		case <-ts.done:
		case <-time.After(15 * time.Second):
			panic("server did not stop")
		}
	})
}

// waitEvent waits for the next presence event of a device matching kind.
func (ts *testServer) waitEvent(t testing.TB, device string, kind events.Kind, within time.Duration) events.Event {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-ts.events.C:
			if ev.DeviceID == device && ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %s within %v", kind, device, within)
		}
	}
}

// rawClient speaks TGP/1 byte by byte, from the spec, with no SDK: it is
// the "independent client" of the tests.
type rawClient struct {
	t         testing.TB
	nc        net.Conn
	br        *bufio.Reader
	w         *protocol.Writer
	r         *protocol.Reader
	mac       *protocol.MAC
	ks        protocol.Key
	nOut      uint64
	nIn       uint64
	tagged    bool
	device    string
	kdev      protocol.Key
	mu        sync.Mutex
	ok        protocol.HelloOK
	lastNonce [protocol.NonceSize]byte
	lastMAC   protocol.Key
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, br: bufio.NewReaderSize(nc, codec.MaxFrameBytes), w: protocol.NewWriter(), r: protocol.NewReader(nil), mac: protocol.NewMAC()}
}

// hello builds a HELLO for device with the fleet secret at ts.
func (c *rawClient) helloMsg(device string, ts int64, nonce *[protocol.NonceSize]byte) *protocol.Hello {
	c.device = device
	c.kdev = c.mac.DeviceKey([]byte(testSecret), device)
	h := &protocol.Hello{DeviceID: device, TS: uint64(ts), FW: "1.0.0", Model: "P400"}
	if nonce != nil {
		h.Nonce = *nonce
	} else {
		_, _ = rand.Read(h.Nonce[:])
	}
	c.lastNonce = h.Nonce
	h.MAC = c.mac.HelloMAC(&c.kdev, device, h.TS, h.Nonce[:], h.FW, h.Model)
	c.lastMAC = h.MAC
	return h
}

func (c *rawClient) writeRaw(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes m as the next frame (tagged once the session is live).
func (c *rawClient) send(seq uint16, m protocol.Message) {
	c.t.Helper()
	c.w.Reset()
	var f []byte
	if c.tagged {
		f = c.w.AppendTaggedFrame(c.mac, &c.ks, protocol.DirTerminal, c.nOut, seq, m)
		c.nOut++
	} else {
		f = c.w.AppendFrame(seq, m)
	}
	c.writeRaw(f)
}

// frame is one received frame, copied.
type frame struct {
	typ  byte
	seq  uint16
	body []byte
}

// read reads one frame, verifying its tag once live.
func (c *rawClient) read(within time.Duration) (frame, error) {
	c.nc.SetReadDeadline(time.Now().Add(within))
	src := &codec.BufferedSource{R: c.br}
	f, err := codec.Next(src, codec.Limits{MaxLen: codec.MinMaxFrame, Tagged: c.tagged})
	if err != nil {
		if src.Err() != nil {
			return frame{}, src.Err()
		}
		return frame{}, err
	}
	if c.tagged {
		if !c.mac.VerifyTag(&c.ks, protocol.DirServer, c.nIn, f.Signed(), f.Tag) {
			return frame{}, errors.New("bad tag from server")
		}
		c.nIn++
	}
	out := frame{typ: f.Header.Type, seq: f.Header.Seq, body: append([]byte(nil), f.Body...)}
	src.Discard(f.Size())
	return out, nil
}

func (c *rawClient) mustRead() frame {
	c.t.Helper()
	f, err := c.read(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

func (c *rawClient) decode(f frame, m protocol.Message) error {
	return protocol.DecodeBody(c.r, f.body, m)
}

// expectClosed asserts the server closes the connection (EOF) soon,
// after any frames it sent.
func (c *rawClient) expectClosed(within time.Duration) {
	c.t.Helper()
	for {
		_, err := c.read(within)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("connection still open after %v", within)
		}
		return
	}
}

// login completes HELLO for device and makes the client tagged.
func (c *rawClient) login(device string) protocol.HelloOK {
	c.t.Helper()
	c.send(0, c.helloMsg(device, time.Now().Unix(), nil))
	f := c.mustRead()
	if f.typ != 0x81 {
		c.t.Fatalf("hello response type %#x", f.typ)
	}
	var ok protocol.HelloOK
	if err := c.decode(f, &ok); err != nil {
		c.t.Fatalf("HELLO refused: %v", err)
	}
	c.finishLogin(&ok)
	return ok
}

func (c *rawClient) finishLogin(ok *protocol.HelloOK) {
	c.t.Helper()
	want := c.mac.ServerMAC(&c.kdev, c.lastMAC[:], ok.SessionID, ok.ServerTimeMs)
	if want != ok.ServerMAC {
		c.t.Fatal("server_mac does not verify")
	}
	c.ok = *ok
	c.ks = c.mac.SessionKey(&c.kdev, c.lastNonce[:], ok.SessionID)
	c.tagged = true
}

func itoa(i int) string { return strconv.Itoa(i) }
