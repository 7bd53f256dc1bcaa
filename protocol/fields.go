package protocol

import "github.com/vmihailenco/msgpack/v5/msgpcode"

// Helpers for fields nested in the body array: array-typed fields (args,
// offer, groups, a membership), optional strings and binaries, and small
// enumerations.

// list reads the header of an array-typed field and returns its count,
// at most max. Unlike Array, which is for the body itself, a wrong type
// here is an ordinary field error: the server answers it with [1, message]
// and keeps the connection, while ErrNotArray means a framing fault.
func (r *Reader) list(max int, what string) (int, error) {
	c, err := r.peek()
	if err != nil {
		return 0, err
	}
	if !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		return 0, bad(what + ": not an array")
	}
	n, err := r.Array()
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, bad(what + ": too many entries")
	}
	return n, nil
}

// skipFields skips the elements have..n-1 of an array nested in the body
// whose elements sit at nesting level `level` (forward compatibility).
func (r *Reader) skipFields(have, n, level int) error {
	for i := have; i < n; i++ {
		if err := r.Skip(level); err != nil {
			return err
		}
	}
	return nil
}

// binOwn reads a bin of at most max bytes into a new slice, nil when the
// bin is empty, so a decoded message owns its bytes and can be handed to
// a worker after the inbound buffer is reused.
func (r *Reader) binOwn(max int, what string) ([]byte, error) {
	b, err := r.Bin(max, what)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// enum reads an integer that must lie in lo..hi.
func (r *Reader) enum(lo, hi uint8, what string) (uint8, error) {
	v, err := r.Uint(what)
	if err != nil {
		return 0, err
	}
	if v < uint64(lo) || v > uint64(hi) {
		return 0, bad(what + ": out of range")
	}
	return uint8(v), nil
}

// optStr writes s, or nil when s is empty (a `str|nil` field).
func (w *Writer) optStr(s string) {
	if s == "" {
		w.Nil()
		return
	}
	w.Str(s)
}

// optBin writes b, or nil when b is empty (a `bin|nil` field).
func (w *Writer) optBin(b []byte) {
	if len(b) == 0 {
		w.Nil()
		return
	}
	w.Bin(b)
}
