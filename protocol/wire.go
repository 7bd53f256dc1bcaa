package protocol

import (
	"bytes"
	"io"
	"math"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Reader decodes one message body with msgpack's low-level decoder,
// enforcing TGP/1's rules: every declared length is checked against the
// bytes that remain before anything is read or allocated, nesting is
// limited to MaxDepth, strings must be valid UTF-8, and nothing may follow
// the body array. Strings and binaries returned as []byte alias the body.
// A Reader is reusable (Reset) and not safe for concurrent use.
type Reader struct {
	body []byte
	r    bytes.Reader
	d    *msgpack.Decoder
}

// NewReader returns a Reader positioned on body.
func NewReader(body []byte) *Reader {
	r := &Reader{d: msgpack.NewDecoder(nil)}
	r.Reset(body)
	return r
}

// Reset points the Reader at a new body.
func (r *Reader) Reset(body []byte) {
	if r.d == nil {
		r.d = msgpack.NewDecoder(nil)
	}
	r.body = body
	r.r.Reset(body)
	r.d.ResetReader(&r.r)
}

// Left is the number of body bytes not yet read.
func (r *Reader) Left() int { return r.r.Len() }

// Pos is the offset of the next unread byte.
func (r *Reader) Pos() int { return len(r.body) - r.r.Len() }

// Since returns the body bytes from offset start up to the read position.
func (r *Reader) Since(start int) []byte { return r.body[start:r.Pos()] }

func bad(what string) *Error { return &Error{Code: BadRequest, Message: what} }

var (
	errTruncated = bad("truncated body")
	errNotArray  = bad("body is not an array")
	errTrailing  = bad("bytes after the body array")
	errTooDeep   = bad("nesting deeper than 8 levels")
)

func (r *Reader) peek() (byte, error) {
	c, err := r.d.PeekCode()
	if err != nil {
		return 0, errTruncated
	}
	return c, nil
}

// IsArrayStart reports whether b begins with an array header (fixarray,
// array 16 or array 32), the first check on any body.
func IsArrayStart(b []byte) bool {
	return len(b) > 0 && (msgpcode.IsFixedArray(b[0]) || b[0] == msgpcode.Array16 || b[0] == msgpcode.Array32)
}

// Array reads an array header and returns its element count, which is
// checked against the bytes left (each element takes at least one byte).
func (r *Reader) Array() (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		return 0, errNotArray
	}
	n, err := r.d.DecodeArrayLen()
	if err != nil {
		return 0, errTruncated
	}
	if n > r.Left() {
		return 0, errTruncated
	}
	return n, nil
}

// Map reads a map header and returns its entry count, checked against the
// bytes left (each entry takes at least two bytes). max bounds the count.
func (r *Reader) Map(max int, what string) (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedMap(c) && c != msgpcode.Map16 && c != msgpcode.Map32 {
		return 0, bad(what + ": not a map")
	}
	n, err := r.d.DecodeMapLen()
	if err != nil || 2*n > r.Left() {
		return 0, errTruncated
	}
	if n > max {
		return 0, bad(what + ": too many entries")
	}
	return n, nil
}

// Nil consumes a nil if one is next and reports whether it did.
func (r *Reader) Nil() bool {
	c, err := r.d.PeekCode()
	if err != nil || c != msgpcode.Nil {
		return false
	}
	_ = r.d.DecodeNil()
	return true
}

func isInt(c byte) bool {
	return msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Uint64) || (c >= msgpcode.Int8 && c <= msgpcode.Int64)
}

// Uint reads a non-negative integer in any MessagePack integer encoding.
func (r *Reader) Uint(what string) (uint64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if !isInt(c) {
		return 0, bad(what + ": not an integer")
	}
	if c == msgpcode.Uint64 || (c >= msgpcode.Uint8 && c <= msgpcode.Uint32) || c <= msgpcode.PosFixedNumHigh {
		v, err := r.d.DecodeUint64()
		if err != nil {
			return 0, errTruncated
		}
		return v, nil
	}
	v, err := r.d.DecodeInt64()
	if err != nil {
		return 0, errTruncated
	}
	if v < 0 {
		return 0, bad(what + ": negative")
	}
	return uint64(v), nil
}

// UintMax reads a non-negative integer no larger than max.
func (r *Reader) UintMax(max uint64, what string) (uint64, error) {
	v, err := r.Uint(what)
	if err == nil && v > max {
		return 0, bad(what + ": out of range")
	}
	return v, err
}

// Int reads a signed integer in any MessagePack integer encoding.
func (r *Reader) Int(what string) (int64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if !isInt(c) {
		return 0, bad(what + ": not an integer")
	}
	if c == msgpcode.Uint64 {
		v, err := r.d.DecodeUint64()
		if err != nil {
			return 0, errTruncated
		}
		if v > math.MaxInt64 {
			return 0, bad(what + ": out of range")
		}
		return int64(v), nil
	}
	v, err := r.d.DecodeInt64()
	if err != nil {
		return 0, errTruncated
	}
	return v, nil
}

// Float reads a float32, float64 or any integer as a float64.
func (r *Reader) Float(what string) (float64, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	switch {
	case c == msgpcode.Float || c == msgpcode.Double:
		v, err := r.d.DecodeFloat64()
		if err != nil {
			return 0, errTruncated
		}
		return v, nil
	case isInt(c):
		v, err := r.Int(what)
		return float64(v), err
	}
	return 0, bad(what + ": not a number")
}

// Bool reads a boolean.
func (r *Reader) Bool(what string) (bool, error) {
	c, err := r.peek()
	if err != nil {
		return false, err
	}
	if c != msgpcode.True && c != msgpcode.False {
		return false, bad(what + ": not a boolean")
	}
	v, err := r.d.DecodeBool()
	if err != nil {
		return false, errTruncated
	}
	return v, nil
}

func isStr(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 || c == msgpcode.Str32
}

func isBin(c byte) bool {
	return c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32
}

// span reads a str or bin length and returns the bytes it covers,
// aliasing the body, after checking them against max and the bytes left.
func (r *Reader) span(max int, what string) ([]byte, error) {
	n, err := r.d.DecodeBytesLen()
	if err != nil || n < 0 {
		return nil, errTruncated
	}
	if n > r.Left() {
		return nil, errTruncated
	}
	if n > max {
		return nil, bad(what + ": too long")
	}
	start := r.Pos()
	_, _ = r.r.Seek(int64(n), io.SeekCurrent)
	return r.body[start : start+n : start+n], nil
}

// StrBytes reads a UTF-8 str of at most max bytes, aliasing the body.
func (r *Reader) StrBytes(max int, what string) ([]byte, error) {
	c, err := r.peek()
	if err != nil {
		return nil, err
	}
	if !isStr(c) {
		return nil, bad(what + ": not a string")
	}
	b, err := r.span(max, what)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, bad(what + ": not UTF-8")
	}
	return b, nil
}

// Str reads a UTF-8 str of at most max bytes into a new string.
func (r *Reader) Str(max int, what string) (string, error) {
	b, err := r.StrBytes(max, what)
	return string(b), err
}

// OptStr reads a str or nil (returned as "").
func (r *Reader) OptStr(max int, what string) (string, error) {
	if r.Nil() {
		return "", nil
	}
	return r.Str(max, what)
}

// Bin reads a bin of at most max bytes, aliasing the body.
func (r *Reader) Bin(max int, what string) ([]byte, error) {
	c, err := r.peek()
	if err != nil {
		return nil, err
	}
	if !isBin(c) {
		return nil, bad(what + ": not binary")
	}
	return r.span(max, what)
}

// BinCopy reads a bin of at most max bytes into a new slice.
func (r *Reader) BinCopy(max int, what string) ([]byte, error) {
	b, err := r.Bin(max, what)
	if err != nil {
		return nil, err
	}
	return append([]byte{}, b...), nil
}

// BinFixed reads a bin of exactly len(dst) bytes into dst.
func (r *Reader) BinFixed(dst []byte, what string) error {
	b, err := r.Bin(len(dst), what)
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return bad(what + ": wrong length")
	}
	copy(dst, b)
	return nil
}

// Skip skips one element that sits at nesting level `level` (elements of
// the body array are at level 2). Containers deeper than MaxDepth are
// refused. Lengths are checked against the bytes left.
func (r *Reader) Skip(level int) error {
	c, err := r.peek()
	if err != nil {
		return err
	}
	switch {
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		if level > MaxDepth {
			return errTooDeep
		}
		n, err := r.Array()
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := r.Skip(level + 1); err != nil {
				return err
			}
		}
		return nil
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		if level > MaxDepth {
			return errTooDeep
		}
		n, err := r.Map(math.MaxInt32, "value")
		if err != nil {
			return err
		}
		for i := 0; i < 2*n; i++ {
			if err := r.Skip(level + 1); err != nil {
				return err
			}
		}
		return nil
	case isStr(c) || isBin(c):
		_, err := r.span(math.MaxInt32, "value")
		return err
	}
	// Scalars and extensions: let msgpack skip them, then make sure it did
	// not run past the end (it reports that as an error).
	if c >= msgpcode.FixExt1 && c <= msgpcode.FixExt16 || c == msgpcode.Ext8 || c == msgpcode.Ext16 || c == msgpcode.Ext32 {
		return r.skipExt(c)
	}
	if err := r.d.Skip(); err != nil {
		return errTruncated
	}
	return nil
}

// skipExt skips an extension value after checking its length: msgpack's
// own Skip would allocate the declared length first.
func (r *Reader) skipExt(c byte) error {
	var hdr, n int
	switch c {
	case msgpcode.FixExt1, msgpcode.FixExt2, msgpcode.FixExt4, msgpcode.FixExt8, msgpcode.FixExt16:
		hdr, n = 1, 1<<(c-msgpcode.FixExt1)
	default:
		b := r.body[r.Pos():]
		switch c {
		case msgpcode.Ext8:
			hdr = 2
			if len(b) >= 2 {
				n = int(b[1])
			}
		case msgpcode.Ext16:
			hdr = 3
			if len(b) >= 3 {
				n = int(b[1])<<8 | int(b[2])
			}
		case msgpcode.Ext32:
			hdr = 5
			if len(b) >= 5 {
				n = int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
			}
		}
	}
	total := hdr + 1 + n // header, type byte, data
	if total > r.Left() {
		return errTruncated
	}
	_, _ = r.r.Seek(int64(total), io.SeekCurrent)
	return nil
}

// SkipRest skips the elements of the body array from index have to n
// (forward compatibility) and checks nothing follows the array.
func (r *Reader) SkipRest(have, n int) error {
	for i := have; i < n; i++ {
		if err := r.Skip(2); err != nil {
			return err
		}
	}
	return r.End()
}

// End checks that the whole body was consumed.
func (r *Reader) End() error {
	if r.Left() != 0 {
		return errTrailing
	}
	return nil
}

// Missing is the error for a required element absent from the array.
func Missing(what string) *Error { return bad("missing " + what) }

// Writer encodes bodies and frames with msgpack's low-level encoder into a
// reusable byte slice. It can hold several frames back to back, so a loop
// can encode a burst of replies and write them with one syscall. Not safe
// for concurrent use.
type Writer struct {
	b     []byte
	e     *msgpack.Encoder
	start int // offset of the frame being built, -1 when none
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	w := &Writer{start: -1}
	w.e = msgpack.NewEncoder(w)
	return w
}

// Write implements io.Writer for the encoder.
func (w *Writer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// WriteByte implements io.ByteWriter for the encoder.
func (w *Writer) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

// Reset empties the Writer, keeping its buffer.
func (w *Writer) Reset() { w.b, w.start = w.b[:0], -1 }

// Bytes returns everything written since Reset.
func (w *Writer) Bytes() []byte { return w.b }

// Len is the number of bytes written since Reset.
func (w *Writer) Len() int { return len(w.b) }

// Array writes an array header.
func (w *Writer) Array(n int) { _ = w.e.EncodeArrayLen(n) }

// Map writes a map header.
func (w *Writer) Map(n int) { _ = w.e.EncodeMapLen(n) }

// Uint writes an unsigned integer in its shortest encoding.
func (w *Writer) Uint(v uint64) { _ = w.e.EncodeUint(v) }

// Int writes a signed integer in its shortest encoding.
func (w *Writer) Int(v int64) { _ = w.e.EncodeInt(v) }

// Float writes a float64.
func (w *Writer) Float(v float64) { _ = w.e.EncodeFloat64(v) }

// Bool writes a boolean.
func (w *Writer) Bool(v bool) { _ = w.e.EncodeBool(v) }

// Nil writes nil.
func (w *Writer) Nil() { _ = w.e.EncodeNil() }

// Str writes a str.
func (w *Writer) Str(s string) { _ = w.e.EncodeString(s) }

// StrBytes writes b as a str.
func (w *Writer) StrBytes(b []byte) {
	n := len(b)
	switch {
	case n < 32:
		w.b = append(w.b, msgpcode.FixedStrLow|byte(n))
	case n < 1<<8:
		w.b = append(w.b, msgpcode.Str8, byte(n))
	case n < 1<<16:
		w.b = append(w.b, msgpcode.Str16, byte(n>>8), byte(n))
	default:
		w.b = append(w.b, msgpcode.Str32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	w.b = append(w.b, b...)
}

// Bin writes a bin; nil is written as an empty bin, never as nil.
func (w *Writer) Bin(b []byte) {
	_ = w.e.EncodeBytesLen(len(b))
	w.b = append(w.b, b...)
}

// Raw appends already-encoded MessagePack.
func (w *Writer) Raw(b []byte) { w.b = append(w.b, b...) }

// Status writes the array header and status of a refusal body:
// [code, message] or [code, message, retry_after_ms].
func (w *Writer) Status(e *Error) {
	if e.RetryAfterMs != 0 {
		w.Array(3)
	} else {
		w.Array(2)
	}
	w.Uint(uint64(e.Code))
	w.Str(clip(e.Message, MaxMessage))
	if e.RetryAfterMs != 0 {
		w.Uint(e.RetryAfterMs)
	}
}
