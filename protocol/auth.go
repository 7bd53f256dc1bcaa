package protocol

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"
)

// Key is a 32-byte HMAC-SHA256 key: K_dev or K_s.
type Key [32]byte

// Direction bytes of the frame tag (spec §3.3).
const (
	DirTerminal byte = 0x01 // terminal → server
	DirServer   byte = 0x02 // server → terminal
)

// Labels of the spec's MAC inputs; each is followed by a 0x00 byte.
const (
	labelDevice  = "TGP1 device"
	labelHello   = "TGP1 hello"
	labelHelloOK = "TGP1 hello ok"
	labelSession = "TGP1 session"
	labelFrame   = "TGP1 frame"
)

const hmacBlock = 64 // SHA-256 block size

// MAC computes HMAC-SHA256 with one reusable SHA-256 state and no
// allocations per use. It exists so a server keeps only a 32-byte key per
// session and one MAC per event loop, instead of a crypto/hmac instance
// (≈600 B) per connection. Not safe for concurrent use.
type MAC struct {
	h    hash.Hash
	opad [hmacBlock]byte
	pad  [hmacBlock]byte // ipad, then scratch once it has been written
	sum  [sha256.Size]byte
	tmp  [8]byte
}

// NewMAC returns a MAC ready for Start.
func NewMAC() *MAC { return &MAC{h: sha256.New()} }

// Start begins an HMAC with key (a key longer than the block is hashed
// first, as HMAC requires).
func (m *MAC) Start(key []byte) {
	if len(key) > hmacBlock {
		m.h.Reset()
		m.h.Write(key)
		key = m.h.Sum(m.sum[:0])
	}
	for i := range m.pad {
		m.pad[i], m.opad[i] = 0x36, 0x5c
	}
	for i, k := range key {
		m.pad[i] ^= k
		m.opad[i] ^= k
	}
	m.h.Reset()
	m.h.Write(m.pad[:])
}

// Write adds b to the message.
func (m *MAC) Write(b []byte) { m.h.Write(b) }

// WriteString adds s to the message.
func (m *MAC) WriteString(s string) {
	// Copy through the scratch block: converting to []byte would allocate.
	for len(s) > 0 {
		n := copy(m.pad[:], s)
		m.h.Write(m.pad[:n])
		s = s[n:]
	}
}

// writeByte adds one byte to the message.
func (m *MAC) writeByte(c byte) {
	m.tmp[0] = c
	m.h.Write(m.tmp[:1])
}

// WriteUint64 adds be64(v) to the message.
func (m *MAC) WriteUint64(v uint64) {
	binary.BigEndian.PutUint64(m.tmp[:], v)
	m.h.Write(m.tmp[:])
}

// Sum finishes the HMAC and returns it; the result is valid until the next
// Start.
func (m *MAC) Sum() []byte {
	inner := m.h.Sum(m.sum[:0])
	m.h.Reset()
	m.h.Write(m.opad[:])
	m.h.Write(inner)
	return m.h.Sum(m.sum[:0])
}

// DeviceKey derives K_dev = HMAC(fleet_secret, "TGP1 device" ‖ 0x00 ‖ device_id).
func (m *MAC) DeviceKey(fleetSecret []byte, deviceID string) (k Key) {
	m.Start(fleetSecret)
	m.WriteString(labelDevice)
	m.writeByte(0)
	m.WriteString(deviceID)
	copy(k[:], m.Sum())
	return k
}

// HelloMAC computes HELLO's mac =
// HMAC(K_dev, "TGP1 hello" ‖ 0x00 ‖ device_id ‖ 0x00 ‖ be64(ts) ‖ nonce ‖ fw ‖ 0x00 ‖ model).
func (m *MAC) HelloMAC(kdev *Key, deviceID string, ts uint64, nonce []byte, fw, model string) (mac Key) {
	m.Start(kdev[:])
	m.WriteString(labelHello)
	m.writeByte(0)
	m.WriteString(deviceID)
	m.writeByte(0)
	m.WriteUint64(ts)
	m.Write(nonce)
	m.WriteString(fw)
	m.writeByte(0)
	m.WriteString(model)
	copy(mac[:], m.Sum())
	return mac
}

// ServerMAC computes HELLO_OK's server_mac =
// HMAC(K_dev, "TGP1 hello ok" ‖ 0x00 ‖ mac ‖ be64(session_id) ‖ be64(server_time_ms)).
func (m *MAC) ServerMAC(kdev *Key, helloMAC []byte, sessionID, serverTimeMs uint64) (mac Key) {
	m.Start(kdev[:])
	m.WriteString(labelHelloOK)
	m.writeByte(0)
	m.Write(helloMAC)
	m.WriteUint64(sessionID)
	m.WriteUint64(serverTimeMs)
	copy(mac[:], m.Sum())
	return mac
}

// SessionKey derives K_s = HMAC(K_dev, "TGP1 session" ‖ 0x00 ‖ nonce ‖ be64(session_id)).
func (m *MAC) SessionKey(kdev *Key, nonce []byte, sessionID uint64) (ks Key) {
	m.Start(kdev[:])
	m.WriteString(labelSession)
	m.writeByte(0)
	m.Write(nonce)
	m.WriteUint64(sessionID)
	copy(ks[:], m.Sum())
	return ks
}

// FrameTag computes the 8-byte tag of an authenticated frame:
// first 8 bytes of HMAC(K_s, "TGP1 frame" ‖ 0x00 ‖ dir ‖ be64(n) ‖ signed),
// where signed is the frame's header and body. The result is valid until
// the next Start.
func (m *MAC) FrameTag(ks *Key, dir byte, n uint64, signed []byte) []byte {
	m.Start(ks[:])
	m.WriteString(labelFrame)
	m.writeByte(0)
	m.writeByte(dir)
	m.WriteUint64(n)
	m.Write(signed)
	return m.Sum()[:8]
}

// VerifyTag reports in constant time whether tag is the right tag of the
// frame whose header and body are signed.
func (m *MAC) VerifyTag(ks *Key, dir byte, n uint64, signed, tag []byte) bool {
	return subtle.ConstantTimeCompare(m.FrameTag(ks, dir, n, signed), tag) == 1
}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
