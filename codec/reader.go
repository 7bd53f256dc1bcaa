package codec

import (
	"bufio"
	"errors"
)

// ErrIncomplete means the buffer does not hold a whole frame yet: wait for
// more bytes. It is not a protocol fault.
var ErrIncomplete = errors.New("codec: incomplete frame")

// Source is an inbound byte buffer that can be inspected before it is
// consumed. gnet.Conn satisfies it; BufferedSource adapts a bufio.Reader.
type Source interface {
	// Peek returns the next n bytes without consuming them, or an error
	// when fewer than n are buffered.
	Peek(n int) ([]byte, error)
	// InboundBuffered reports how many bytes can be peeked.
	InboundBuffered() int
}

// Next finds the next frame at the front of src. It looks at the 6-byte
// header first and rejects a bad magic byte or a bad length before the body
// is buffered, so a hostile `len` never makes the caller wait for or hold
// bytes it will not accept. On success the frame's slices alias src's
// buffer: use them, then discard f.Size() bytes from src. On
// ErrIncomplete nothing should be discarded. On a header error the header
// is returned (its Seq is needed for the ERROR frame) and the connection
// should be closed. Next does not allocate.
func Next(src Source, lim Limits) (f Frame, err error) {
	if src.InboundBuffered() < HeaderSize {
		return f, ErrIncomplete
	}
	hb, err := src.Peek(HeaderSize)
	if err != nil {
		return f, ErrIncomplete
	}
	if f.Header, err = checkHeader(hb, lim); err != nil {
		return f, err
	}
	total := HeaderSize + int(f.Header.Len)
	if src.InboundBuffered() < total {
		return f, ErrIncomplete
	}
	raw, err := src.Peek(total)
	if err != nil {
		return f, ErrIncomplete
	}
	return split(f.Header, raw, lim), nil
}

// Split finds the next frame at the front of b, for callers that hold
// their inbound bytes in a plain slice. It behaves like Next.
func Split(b []byte, lim Limits) (f Frame, err error) {
	if len(b) < HeaderSize {
		return f, ErrIncomplete
	}
	if f.Header, err = checkHeader(b, lim); err != nil {
		return f, err
	}
	total := HeaderSize + int(f.Header.Len)
	if len(b) < total {
		return f, ErrIncomplete
	}
	return split(f.Header, b[:total], lim), nil
}

func checkHeader(b []byte, lim Limits) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	return h, lim.Check(h)
}

// split cuts a whole frame into its parts.
func split(h Header, raw []byte, lim Limits) Frame {
	f := Frame{Header: h, Raw: raw}
	if lim.Tagged {
		f.Body = raw[HeaderSize : len(raw)-TagSize]
		f.Tag = raw[len(raw)-TagSize:]
	} else {
		f.Body = raw[HeaderSize:]
	}
	return f
}

// BufferedSource adapts a bufio.Reader for Next on a blocking connection:
// Peek blocks until the bytes arrive (or the reader fails), so Next never
// returns ErrIncomplete except on a read error, which Err reports. Size the
// bufio.Reader to at least MaxFrameBytes.
type BufferedSource struct {
	R   *bufio.Reader
	err error
}

// Peek implements Source.
func (b *BufferedSource) Peek(n int) ([]byte, error) {
	p, err := b.R.Peek(n)
	if err != nil {
		b.err = err
	}
	return p, err
}

// InboundBuffered implements Source by reporting an unbounded buffer: the
// following Peek blocks until the bytes are there.
func (b *BufferedSource) InboundBuffered() int { return MaxLen + HeaderSize }

// Err is the read error behind the last ErrIncomplete, if any.
func (b *BufferedSource) Err() error { return b.err }

// Discard consumes n bytes after a frame was handled.
func (b *BufferedSource) Discard(n int) { _, _ = b.R.Discard(n) }
