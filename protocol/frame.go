package protocol

import (
	"encoding/binary"

	"github.com/termd/termd/codec"
)

// Message is a TGP/1 message body with its hand-written codec.
type Message interface {
	// Type is the frame type the message travels in.
	Type() byte
	// Encode appends the body (one MessagePack array) to w.
	Encode(w *Writer)
	// Decode reads the body from r, checking every field. It returns an
	// *Error with BAD_REQUEST for a malformed body (or, for responses, the
	// refusal the body carries).
	Decode(r *Reader) error
}

// BeginFrame starts a frame: it appends a header whose `len` is filled in
// by EndFrame or EndTaggedFrame. The body is written in between.
func (w *Writer) BeginFrame(typ byte, seq uint16) {
	w.start = len(w.b)
	w.b = codec.AppendHeader(w.b, codec.Header{Type: typ, Seq: seq})
}

// EndFrame completes an unauthenticated frame (HELLO, the HELLO response,
// and ERROR before HELLO_OK) and returns it.
func (w *Writer) EndFrame() []byte {
	f := w.b[w.start:]
	binary.BigEndian.PutUint16(f[4:6], uint16(len(f)-codec.HeaderSize))
	w.start = -1
	return f
}

// EndTaggedFrame completes an authenticated frame: it sets `len` to
// include the tag, tags header and body with K_s, direction and counter n,
// and returns the frame.
func (w *Writer) EndTaggedFrame(m *MAC, ks *Key, dir byte, n uint64) []byte {
	start := w.start
	binary.BigEndian.PutUint16(w.b[start+4:start+6], uint16(len(w.b)-start-codec.HeaderSize+codec.TagSize))
	tag := m.FrameTag(ks, dir, n, w.b[start:])
	w.b = append(w.b, tag...)
	w.start = -1
	return w.b[start:]
}

// FrameLen is the size of the frame being built, so far.
func (w *Writer) FrameLen() int { return len(w.b) - w.start }

// AppendFrame encodes m as an unauthenticated frame.
func (w *Writer) AppendFrame(seq uint16, m Message) []byte {
	w.BeginFrame(m.Type(), seq)
	m.Encode(w)
	return w.EndFrame()
}

// AppendTaggedFrame encodes m as an authenticated frame.
func (w *Writer) AppendTaggedFrame(mac *MAC, ks *Key, dir byte, n uint64, seq uint16, m Message) []byte {
	w.BeginFrame(m.Type(), seq)
	m.Encode(w)
	return w.EndTaggedFrame(mac, ks, dir, n)
}

// DecodeBody decodes body into m with r: it checks the body is an array
// first (the framing check of spec §1), then runs m's decoder.
func DecodeBody(r *Reader, body []byte, m Message) error {
	if !IsArrayStart(body) {
		return errNotArray
	}
	r.Reset(body)
	return m.Decode(r)
}

// ErrNotArray is the error DecodeBody returns for a body that does not
// start with an array header; the server answers it with an ERROR frame.
var ErrNotArray error = errNotArray
