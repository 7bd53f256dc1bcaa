package protocol

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/termd/termd/codec"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Spec §10 test vectors.
var (
	vecSecret = []byte("dev-fleet-secret")
	vecKdev   = unhex("4c217cf407de4cacbec705ef29fa30540a3ee23fd063a1757ee8be1b7befc2cd")
	vecMAC    = unhex("d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6e")
	vecHello  = unhex(`a1010000004c96a6542d30303031ce6553f100c410000102030405060708090a0b0c0d0e0f
c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6ea5312e
302e30a450343030`)
	vecServerMAC = unhex("1b04acbb8d151699f13e597ee89b973c9ef642239b991dda3d17df243a3451ad")
	vecHelloOK   = unhex(`a1810000003296002acf0000018bcfe5687b1ecd1000c4201b04acbb8d151699f13e597ee8
9b973c9ef642239b991dda3d17df243a3451ad`)
	vecKs    = unhex("972e46541057115aa5356c94f5e8746fd790843c7d59fbc1d178a79824b9828f")
	vecHB0   = unhex("a1020001000a9100de040dabe247bf76")
	vecHBAck = unhex("a182000100159400cf0000018bcfe56be8001e0ac7a4f74038089b")
	vecHB1   = unhex("a1020002000a91004c9fb97566447a7c")
)

func vecNonce() (n [NonceSize]byte) {
	for i := range n {
		n[i] = byte(i)
	}
	return n
}

func TestSpecVectors(t *testing.T) {
	m := NewMAC()
	kdev := m.DeviceKey(vecSecret, "T-0001")
	if !bytes.Equal(kdev[:], vecKdev) {
		t.Fatalf("K_dev %x", kdev)
	}
	nonce := vecNonce()
	mac := m.HelloMAC(&kdev, "T-0001", 1700000000, nonce[:], "1.0.0", "P400")
	if !bytes.Equal(mac[:], vecMAC) {
		t.Fatalf("hello mac %x", mac)
	}
	w := NewWriter()
	hello := &Hello{DeviceID: "T-0001", TS: 1700000000, Nonce: nonce, MAC: mac, FW: "1.0.0", Model: "P400"}
	if got := w.AppendFrame(0, hello); !bytes.Equal(got, vecHello) {
		t.Fatalf("HELLO frame\n got %x\nwant %x", got, vecHello)
	}
	smac := m.ServerMAC(&kdev, mac[:], 42, 1700000000123)
	if !bytes.Equal(smac[:], vecServerMAC) {
		t.Fatalf("server_mac %x", smac)
	}
	w.Reset()
	ok := &HelloOK{SessionID: 42, ServerTimeMs: 1700000000123, HBInterval: 30, MaxFrame: 4096, ServerMAC: smac}
	if got := w.AppendFrame(0, ok); !bytes.Equal(got, vecHelloOK) {
		t.Fatalf("HELLO_OK frame\n got %x\nwant %x", got, vecHelloOK)
	}
	ks := m.SessionKey(&kdev, nonce[:], 42)
	if !bytes.Equal(ks[:], vecKs) {
		t.Fatalf("K_s %x", ks)
	}
	w.Reset()
	if got := w.AppendTaggedFrame(m, &ks, DirTerminal, 0, 1, &Heartbeat{}); !bytes.Equal(got, vecHB0) {
		t.Fatalf("HEARTBEAT n=0 %x", got)
	}
	w.Reset()
	ack := &HeartbeatAck{ServerTimeMs: 1700000001000, HBInterval: 30}
	if got := w.AppendTaggedFrame(m, &ks, DirServer, 0, 1, ack); !bytes.Equal(got, vecHBAck) {
		t.Fatalf("HEARTBEAT_ACK %x", got)
	}
	w.Reset()
	if got := w.AppendTaggedFrame(m, &ks, DirTerminal, 1, 2, &Heartbeat{}); !bytes.Equal(got, vecHB1) {
		t.Fatalf("HEARTBEAT n=1 %x", got)
	}
}

// The decoding side of the vectors: parse each frame, verify its tag and
// decode its body back to the values the spec gives.
func TestSpecVectorsDecode(t *testing.T) {
	m := NewMAC()
	r := NewReader(nil)
	f, err := codec.Split(vecHello, codec.Limits{MaxLen: codec.MinMaxFrame})
	if err != nil {
		t.Fatal(err)
	}
	var h Hello
	if err := DecodeBody(r, f.Body, &h); err != nil {
		t.Fatal(err)
	}
	if h.DeviceID != "T-0001" || h.TS != 1700000000 || h.FW != "1.0.0" || h.Model != "P400" || h.Attrs != nil || !bytes.Equal(h.MAC[:], vecMAC) {
		t.Fatalf("hello %+v", h)
	}
	var ks Key
	copy(ks[:], vecKs)
	tagged := codec.Limits{MaxLen: codec.MinMaxFrame, Tagged: true}
	for i, raw := range [][]byte{vecHB0, vecHB1} {
		f, err := codec.Split(raw, tagged)
		if err != nil {
			t.Fatal(err)
		}
		if !m.VerifyTag(&ks, DirTerminal, uint64(i), f.Signed(), f.Tag) {
			t.Fatalf("heartbeat %d: tag does not verify", i)
		}
		if m.VerifyTag(&ks, DirTerminal, uint64(i+1), f.Signed(), f.Tag) {
			t.Fatalf("heartbeat %d: tag verifies with the wrong counter", i)
		}
		if m.VerifyTag(&ks, DirServer, uint64(i), f.Signed(), f.Tag) {
			t.Fatalf("heartbeat %d: tag verifies in the wrong direction", i)
		}
		var hb Heartbeat
		if err := DecodeBody(r, f.Body, &hb); err != nil || hb.GroupVersion != 0 || hb.Status != nil {
			t.Fatalf("heartbeat %d: %+v %v", i, hb, err)
		}
	}
	f, _ = codec.Split(vecHBAck, tagged)
	var ack HeartbeatAck
	if err := DecodeBody(r, f.Body, &ack); err != nil || ack.ServerTimeMs != 1700000001000 || ack.HBInterval != 30 {
		t.Fatalf("ack %+v %v", ack, err)
	}
}

// A key longer than the SHA-256 block must be hashed first (RFC 2104);
// compare with crypto/hmac through a fleet secret of 100 bytes.
func TestLongFleetSecret(t *testing.T) {
	secret := bytes.Repeat([]byte("x"), 100)
	m := NewMAC()
	got := m.DeviceKey(secret, "T-0001")
	want := refHMAC(secret, append([]byte("TGP1 device\x00"), "T-0001"...))
	if !bytes.Equal(got[:], want) {
		t.Fatalf("long key: %x want %x", got, want)
	}
}

// BenchmarkHeartbeatVerifyDecode is the server's per-heartbeat inbound
// work: split the frame, verify its tag, decode its body.
func BenchmarkHeartbeatVerifyDecode(b *testing.B) {
	m := NewMAC()
	r := NewReader(nil)
	var ks Key
	copy(ks[:], vecKs)
	tagged := codec.Limits{MaxLen: codec.MinMaxFrame, Tagged: true}
	var hb Heartbeat
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f, err := codec.Split(vecHB0, tagged)
		if err != nil {
			b.Fatal(err)
		}
		if !m.VerifyTag(&ks, DirTerminal, 0, f.Signed(), f.Tag) {
			b.Fatal("tag")
		}
		if err := DecodeBody(r, f.Body, &hb); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHeartbeatAckEncodeTag is the server's per-heartbeat outbound
// work: encode HEARTBEAT_ACK and tag it.
func BenchmarkHeartbeatAckEncodeTag(b *testing.B) {
	m := NewMAC()
	w := NewWriter()
	var ks Key
	copy(ks[:], vecKs)
	ack := &HeartbeatAck{ServerTimeMs: 1700000001000, HBInterval: 30}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w.Reset()
		w.AppendTaggedFrame(m, &ks, DirServer, uint64(i), 1, ack)
	}
}

func BenchmarkFrameTag(b *testing.B) {
	m := NewMAC()
	var ks Key
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.FrameTag(&ks, DirServer, uint64(i), vecHB0[:10])
	}
}
