package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/termd/termd/codec"
	"github.com/termd/termd/protocol"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Spec §10 vectors.
var (
	vecKdev  = unhex("4c217cf407de4cacbec705ef29fa30540a3ee23fd063a1757ee8be1b7befc2cd")
	vecHello = unhex(`a1010000004c96a6542d30303031ce6553f100c410000102030405060708090a0b0c0d0e0f
c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6ea5312e
302e30a450343030`)
	vecKs    = unhex("972e46541057115aa5356c94f5e8746fd790843c7d59fbc1d178a79824b9828f")
	vecHB0   = unhex("a1020001000a9100de040dabe247bf76")
	vecHBAck = unhex("a182000100159400cf0000018bcfe56be8001e0ac7a4f74038089b")
	vecHB1   = unhex("a1020002000a91004c9fb97566447a7c")
)

func testConfig(addr string) Config {
	return Config{
		Addr:        addr,
		DeviceID:    "T-0001",
		FleetSecret: []byte(testSecret),
		FW:          "1.0.0",
		Model:       "P400",
		NoHeartbeat: true,
	}
}

func dial(t *testing.T, cfg Config) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitDone(t *testing.T, c *Conn, within time.Duration) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(within):
		t.Fatalf("session still live after %v", within)
		return nil
	}
}

// TestSpecVectors drives the SDK through the spec §10 exchange and checks
// the bytes on the wire and the derived keys.
func TestSpecVectors(t *testing.T) {
	t.Parallel()
	var clock atomic.Int32
	srv := newFake(t, fakeOpts{
		sessionID:  42,
		hbInterval: 30,
		now: func() time.Time {
			if clock.Add(1) == 1 {
				return time.UnixMilli(1700000000123) // HELLO_OK
			}
			return time.UnixMilli(1700000001000) // the ack
		},
	})
	cfg := testConfig(srv.addr())
	cfg.Now = func() time.Time { return time.Unix(1700000000, 0) }
	cfg.nonce = bytes.NewReader([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	if k := cfg.deviceKey(protocol.NewMAC()); !bytes.Equal(k[:], vecKdev) {
		t.Fatalf("K_dev %x", k)
	}
	c := dial(t, cfg)
	fc := srv.conn(t)
	if !bytes.Equal(fc.helloRaw[0], vecHello) {
		t.Fatalf("HELLO\n got %x\nwant %x", fc.helloRaw[0], vecHello)
	}
	if !bytes.Equal(c.ks[:], vecKs) {
		t.Fatalf("K_s %x", c.ks)
	}
	if c.SessionID() != 42 || c.HBInterval() != 30*time.Second || c.MaxFrame() != 4096 {
		t.Fatalf("session %d interval %v max_frame %d", c.SessionID(), c.HBInterval(), c.MaxFrame())
	}
	if got := c.ServerTimeOffset(); got != 123*time.Millisecond {
		t.Fatalf("offset %v", got)
	}
	ack, err := c.Heartbeat(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f := fc.frame(t, time.Second); !bytes.Equal(f.raw, vecHB0) {
		t.Fatalf("HEARTBEAT n=0 %x", f.raw)
	}
	if tx := fc.sent(); !bytes.Equal(tx[0], vecHBAck) {
		t.Fatalf("HEARTBEAT_ACK %x", tx[0])
	}
	if ack.ServerTimeMs != 1700000001000 || ack.HBInterval != 30 {
		t.Fatalf("ack %+v", ack)
	}
	if _, err := c.Heartbeat(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f := fc.frame(t, time.Second); !bytes.Equal(f.raw, vecHB1) {
		t.Fatalf("HEARTBEAT n=1 %x", f.raw)
	}
}

func TestPerDeviceKey(t *testing.T) {
	t.Parallel()
	key := protocol.Key{1, 2, 3}
	srv := newFake(t, fakeOpts{keys: map[string]protocol.Key{"T-0002": key}})
	cfg := testConfig(srv.addr())
	cfg.DeviceID, cfg.FleetSecret, cfg.Key = "T-0002", nil, &key
	c := dial(t, cfg)
	if c.SessionID() == 0 {
		t.Fatal("no session id")
	}
	srv.conn(t)

	// The fleet-derived key is not this device's key: refused, with the code.
	cfg.Key, cfg.FleetSecret = nil, []byte(testSecret)
	_, err := Dial(context.Background(), cfg)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.Unauthenticated {
		t.Fatalf("err %v", err)
	}
}

func TestClockChallenge(t *testing.T) {
	t.Parallel()
	// The challenge reports a server time 2 min off the real one, so an
	// offset taken from it (instead of from HELLO_OK) would show.
	srv := newFake(t, fakeOpts{challengeSkew: 2 * time.Minute})
	cfg := testConfig(srv.addr())
	cfg.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	c := dial(t, cfg)
	fc := srv.conn(t)
	if len(fc.hellos) != 2 {
		t.Fatalf("%d HELLOs, want 2", len(fc.hellos))
	}
	first, retry := fc.hellos[0], fc.hellos[1]
	if d := time.Now().Unix() - int64(first.TS); d < 3590 || d > 3610 {
		t.Fatalf("first ts off by %d s", d)
	}
	if retry.Nonce != fc.challenge {
		t.Fatal("retry does not use the challenge as its nonce")
	}
	if d := int64(retry.TS) - time.Now().Add(2*time.Minute).Unix(); d < -2 || d > 2 {
		t.Fatalf("retry ts is not server_time_ms/1000 (off by %d s)", d)
	}
	if off := c.ServerTimeOffset(); off < time.Hour-5*time.Second || off > time.Hour+5*time.Second {
		t.Fatalf("offset %v, want ≈1h (from HELLO_OK, not the challenge)", off)
	}
	// The session works: frames are tagged with the K_s of the retry's nonce.
	if _, err := c.Heartbeat(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestClockChallengeOnlyOnce(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{reChallenge: true})
	cfg := testConfig(srv.addr())
	cfg.Now = func() time.Time { return time.Now().Add(time.Hour) }
	_, err := Dial(context.Background(), cfg)
	var ch *protocol.ClockChallenge
	if !errors.As(err, &ch) || !errors.Is(err, protocol.Expired) {
		t.Fatalf("err %v", err)
	}
	if fc := srv.conn(t); len(fc.hellos) != 2 {
		t.Fatalf("%d HELLOs, want 2", len(fc.hellos))
	}
}

func TestBadServerMAC(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{badServerMAC: true})
	_, err := Dial(context.Background(), testConfig(srv.addr()))
	if !errors.Is(err, ErrBadServerMAC) {
		t.Fatalf("err %v", err)
	}
	srv.conn(t).waitClosed(t, 2*time.Second)
}

func TestHelloRefused(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{refuse: &protocol.Error{Code: protocol.Unavailable, Message: "full", RetryAfterMs: 1500}})
	_, err := Dial(context.Background(), testConfig(srv.addr()))
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.RetryAfterMs != 1500 || !errors.Is(err, protocol.Unavailable) {
		t.Fatalf("err %v", err)
	}
	if RetryAfter(err) != 1500*time.Millisecond {
		t.Fatalf("RetryAfter %v", RetryAfter(err))
	}
}

func TestDialContextCancel(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never answers HELLO.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Dial(ctx, testConfig(ln.Addr().String()))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
	cfg := testConfig(ln.Addr().String())
	cfg.HelloTimeout = 50 * time.Millisecond
	if _, err := Dial(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("HelloTimeout: %v", err)
	}
}

func TestBadTagEndsSession(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{holdEcho: 100})
	c := dial(t, testConfig(srv.addr()))
	fc := srv.conn(t)
	res := make(chan error, 1)
	go func() { res <- c.Do(context.Background(), &echoReq{"x"}, &echoResp{}) }()
	fc.frame(t, time.Second)
	fc.sendBadTag(0, &rawMsg{protocol.TypeGroupMessage, []byte{0x90}})
	if err := waitDone(t, c, 2*time.Second); !errors.Is(err, ErrBadTag) || !strings.Contains(err.Error(), "bad tag") {
		t.Fatalf("err %v", err)
	}
	if err := <-res; !errors.Is(err, ErrBadTag) {
		t.Fatalf("pending Do: %v", err)
	}
	fc.waitClosed(t, 2*time.Second)
}

func TestMalformedFrameEndsSession(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{})
	c := dial(t, testConfig(srv.addr()))
	fc := srv.conn(t)
	fc.writeRaw([]byte{0xB1, 0x44, 0, 0, 0, 9, 0x90, 1, 2, 3, 4, 5, 6, 7, 8})
	if err := waitDone(t, c, 2*time.Second); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v", err)
	}

	// A well-tagged push whose body is not an array is malformed too.
	c = dial(t, testConfig(srv.addr()))
	fc = srv.conn(t)
	fc.push(&rawMsg{protocol.TypeGroupMessage, []byte{0x01}})
	if err := waitDone(t, c, 2*time.Second); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v", err)
	}
}

func TestPipelinedReverseOrder(t *testing.T) {
	t.Parallel()
	const n = 8
	srv := newFake(t, fakeOpts{holdEcho: n})
	c := dial(t, testConfig(srv.addr()))
	fc := srv.conn(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("payload-%d", i)
			var resp echoResp
			if err := c.Do(context.Background(), &echoReq{want}, &resp); err != nil {
				errs <- err
			} else if resp.Payload != want {
				errs <- fmt.Errorf("got %q for %q", resp.Payload, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seqs := map[uint16]bool{}
	var order []uint16
	for range n {
		f := fc.frame(t, time.Second)
		seqs[f.h.Seq] = true
		order = append(order, f.h.Seq)
	}
	if len(seqs) != n {
		t.Fatalf("seqs %v not distinct", order)
	}
	tx := fc.sent()
	if got, want := seqOf(tx[0]), order[n-1]; got != want {
		t.Fatalf("first response seq %d, want %d (reverse order)", got, want)
	}
}

func seqOf(frame []byte) uint16 {
	h, _ := codec.ParseHeader(frame)
	return h.Seq
}

func TestOutstandingCap(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{holdEcho: 1000})
	c := dial(t, testConfig(srv.addr()))
	fc := srv.conn(t)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- c.Do(context.Background(), &echoReq{fmt.Sprint(i)}, &echoResp{}) }()
	}
	deadline := time.Now().Add(2 * time.Second)
	for fc.heldCount() < requestSlots && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // would a 16th request slip out?
	if got := fc.heldCount(); got != requestSlots {
		t.Fatalf("%d requests outstanding, want %d", got, requestSlots)
	}
	// The heartbeat has its own slot: outstanding reaches 16, never more.
	if _, err := c.Heartbeat(context.Background()); err != nil {
		t.Fatal(err)
	}
	fc.release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestDoCancelKeepsSeqReserved(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{holdEcho: 1000})
	c := dial(t, testConfig(srv.addr()))
	fc := srv.conn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Do(ctx, &echoReq{"first"}, &echoResp{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
	first := fc.frame(t, time.Second)
	res := make(chan error, 1)
	var resp echoResp
	go func() { res <- c.Do(context.Background(), &echoReq{"second"}, &resp) }()
	second := fc.frame(t, time.Second)
	if first.h.Seq == second.h.Seq {
		t.Fatalf("seq %d reused while outstanding", first.h.Seq)
	}
	fc.release()
	if err := <-res; err != nil || resp.Payload != "second" {
		t.Fatalf("second: %v %q", err, resp.Payload)
	}
	// The late answer to the abandoned request freed its slot.
	deadline := time.Now().Add(time.Second)
	for len(c.reqSlots) != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(c.reqSlots) != 0 {
		t.Fatalf("%d slots still held", len(c.reqSlots))
	}
}

func TestRefusalFromDo(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakeOpts{})
	c := dial(t, testConfig(srv.addr()))
	// The fake refuses unknown request types with [11, ...].
	err := c.Do(context.Background(), &rawMsg{0x30, []byte{0x90}}, &protocol.Ack{AckType: 0xB0})
	if !errors.Is(err, protocol.UnknownType) {
		t.Fatalf("err %v", err)
	}
	if err := c.Do(context.Background(), &rawMsg{0x81, nil}, &protocol.Ack{}); err == nil {
		t.Fatal("Do accepted a non-request type")
	}
}
