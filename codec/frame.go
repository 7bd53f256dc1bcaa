// Package codec frames TGP/1 messages: the 6-byte header, the optional
// 8-byte tag trailer of authenticated frames, the size limits, and an
// incremental frame reader that works on any peekable inbound buffer
// (gnet's connection buffer or a bufio.Reader). It performs no I/O of its
// own and knows nothing about message bodies.
package codec

import (
	"encoding/binary"
	"errors"
)

const (
	// Magic is byte 0 of every TGP/1 frame: high nibble 0xA, low nibble
	// the protocol version.
	Magic byte = 0xA1
	// HeaderSize is the size of the fixed frame header in bytes.
	HeaderSize = 6
	// TagSize is the size of the tag that ends every authenticated frame.
	TagSize = 8
	// MinMaxFrame is the smallest max_frame a server may announce, and the
	// limit on `len` before HELLO_OK. A server never sends a larger frame.
	MinMaxFrame = 4096
	// MaxLen is the largest `len` the header can express.
	MaxLen = 0xFFFF
	// MaxFrameBytes is the size of the largest frame a peer may send us
	// (header plus MinMaxFrame), handy for static receive buffers.
	MaxFrameBytes = HeaderSize + MinMaxFrame
)

// Framing errors. Each maps to one status code of the spec (see
// protocol.StatusOf), so the server can answer with the right ERROR frame.
var (
	// ErrBadMagic: byte 0 is not 0xA1 (ERROR BAD_VERSION).
	ErrBadMagic = errors.New("codec: bad magic or version byte")
	// ErrEmpty: `len` is 0 (ERROR BAD_REQUEST).
	ErrEmpty = errors.New("codec: frame length 0")
	// ErrTooLarge: `len` exceeds the limit in force (ERROR FRAME_TOO_LARGE).
	ErrTooLarge = errors.New("codec: frame length above max_frame")
	// ErrNoTag: an authenticated frame with `len` below TagSize+1, which
	// leaves no room for a body and a tag (silent close).
	ErrNoTag = errors.New("codec: authenticated frame too short for a tag")
)

// Header is the fixed part of a frame.
type Header struct {
	Type byte
	Seq  uint16
	// Len counts the bytes after the header: body plus tag, if any.
	Len uint16
}

// PutHeader writes h into b[:HeaderSize]. b must be at least HeaderSize long.
func PutHeader(b []byte, h Header) {
	_ = b[HeaderSize-1]
	b[0] = Magic
	b[1] = h.Type
	binary.BigEndian.PutUint16(b[2:4], h.Seq)
	binary.BigEndian.PutUint16(b[4:6], h.Len)
}

// AppendHeader appends the encoded header to b.
func AppendHeader(b []byte, h Header) []byte {
	return append(b, Magic, h.Type, byte(h.Seq>>8), byte(h.Seq), byte(h.Len>>8), byte(h.Len))
}

// ParseHeader decodes the header in b[:HeaderSize]. It checks only the
// magic byte; length limits depend on the session state and are checked by
// Check. A header with a bad magic byte is still returned so the caller can
// log it.
func ParseHeader(b []byte) (Header, error) {
	_ = b[HeaderSize-1]
	h := Header{
		Type: b[1],
		Seq:  binary.BigEndian.Uint16(b[2:4]),
		Len:  binary.BigEndian.Uint16(b[4:6]),
	}
	if b[0] != Magic {
		return h, ErrBadMagic
	}
	return h, nil
}

// Limits are the framing rules in force on one connection.
type Limits struct {
	// MaxLen is the largest accepted `len`: MinMaxFrame before HELLO_OK,
	// the announced max_frame after it.
	MaxLen int
	// Tagged is true once HELLO_OK has been exchanged: every frame then
	// ends with a TagSize-byte tag.
	Tagged bool
}

// Check applies the spec's header checks in its order: `len` 0, `len`
// above the limit, then (authenticated frames) `len` too short for a tag.
func (l Limits) Check(h Header) error {
	if h.Len == 0 {
		if l.Tagged {
			// After HELLO_OK the order is magic → too large → short; a
			// zero length is simply too short for a tag.
			return ErrNoTag
		}
		return ErrEmpty
	}
	if int(h.Len) > l.MaxLen {
		return ErrTooLarge
	}
	if l.Tagged && h.Len < TagSize+1 {
		return ErrNoTag
	}
	return nil
}

// Frame is one complete frame as found in an inbound buffer. Raw, Body and
// Tag alias the buffer and are valid only until the caller discards the
// frame's bytes.
type Frame struct {
	Header Header
	// Raw is the whole frame: header, body and tag.
	Raw []byte
	// Body is the MessagePack body without the tag.
	Body []byte
	// Tag is the trailing tag of an authenticated frame, else nil.
	Tag []byte
}

// Size is the number of buffer bytes the frame occupies.
func (f *Frame) Size() int { return len(f.Raw) }

// Signed is the part of the frame the tag covers: header and body.
func (f *Frame) Signed() []byte { return f.Raw[:len(f.Raw)-len(f.Tag)] }
