// Package protocol defines TGP/1's messages, status codes and keys: the
// hand-written MessagePack codec of every message (each length checked
// against the bytes that remain before anything is allocated), key
// derivation, the HELLO MACs and the per-frame tag. It imports only codec
// and does no I/O, so firmware tools and tests can use it without the
// server; protocol/client is the Go terminal SDK built on it.
package protocol

import (
	"errors"
	"fmt"
)

// Code is a TGP/1 status code (spec §2). A Code is also a Go error, so a
// domain handler can return protocol.Forbidden and the dispatcher writes
// the matching status; OK is never returned as an error.
type Code uint8

// Status codes of spec §2.
const (
	OK              Code = 0
	BadRequest      Code = 1
	Unauthenticated Code = 2
	Forbidden       Code = 3
	NotFound        Code = 4
	Conflict        Code = 5
	RateLimited     Code = 6
	Unavailable     Code = 7
	Internal        Code = 8
	BadVersion      Code = 9
	FrameTooLarge   Code = 10
	UnknownType     Code = 11
	Expired         Code = 12
	Timeout         Code = 13
)

var codeNames = [...]string{
	"OK", "BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND",
	"CONFLICT", "RATE_LIMITED", "UNAVAILABLE", "INTERNAL", "BAD_VERSION",
	"FRAME_TOO_LARGE", "UNKNOWN_TYPE", "EXPIRED", "TIMEOUT",
}

// String returns the spec's name of the code, e.g. "BAD_REQUEST".
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("STATUS_%d", uint8(c))
}

// Error implements error.
func (c Code) Error() string { return c.String() }

// MaxMessage is the longest message string the server sends or accepts.
const MaxMessage = 128

// Error is a refusal with its status, human message and optional
// retry_after_ms. errors.Is(err, protocol.Conflict) matches its Code.
type Error struct {
	Code    Code
	Message string
	// RetryAfterMs is sent as the third element when non-zero (only with
	// RATE_LIMITED, UNAVAILABLE and the duplicate-device CONFLICT).
	RetryAfterMs uint64
}

// Errorf returns an *Error with a formatted message cut to MaxMessage bytes.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: clip(fmt.Sprintf(format, args...), MaxMessage)}
}

// Error implements error.
func (e *Error) Error() string {
	if e.RetryAfterMs != 0 {
		return fmt.Sprintf("%s: %s (retry after %d ms)", e.Code, e.Message, e.RetryAfterMs)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap lets errors.Is match the Code.
func (e *Error) Unwrap() error { return e.Code }

// StatusOf returns the status code an error maps to: the Code of a Code or
// *Error anywhere in its chain, INTERNAL for any other error, OK for nil.
func StatusOf(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var c Code
	if errors.As(err, &c) {
		return c
	}
	return Internal
}

// MessageOf returns the wire message for err: the *Error's message, or the
// code's name for a bare Code, or "internal error" for a foreign error
// (whose text may carry details that must not reach a terminal).
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	var c Code
	if errors.As(err, &c) {
		return c.String()
	}
	return "internal error"
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}
