package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/panjf2000/gnet/v2/pkg/logging"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/storage"
)

// diskFullRetryMs is the retry_after_ms of a request refused because the
// store's disk is below its reserve: freeing space takes an operator.
const diskFullRetryMs = 60_000

// AsError turns any error from domain code into the refusal it is
// answered with, to a terminal or (through the admin API's table) to an
// operator: a *protocol.Error as it is, a protocol.Code with its name,
// the storage errors with their status, anything else INTERNAL with a
// message that reveals nothing.
func AsError(err error) *protocol.Error {
	var e *protocol.Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return &protocol.Error{Code: protocol.NotFound, Message: "not found"}
	case errors.Is(err, storage.ErrInvalid):
		return &protocol.Error{Code: protocol.BadRequest, Message: err.Error()}
	case errors.Is(err, storage.ErrTooMany):
		return &protocol.Error{Code: protocol.Conflict, Message: err.Error()}
	case errors.Is(err, storage.ErrClosed):
		return &protocol.Error{Code: protocol.Unavailable, Message: "store is closed (node stopping)"}
	case errors.Is(err, storage.ErrDiskFull):
		return &protocol.Error{Code: protocol.Unavailable, Message: "disk space low: durable writes refused", RetryAfterMs: diskFullRetryMs}
	}
	return &protocol.Error{Code: protocol.StatusOf(err), Message: protocol.MessageOf(err)}
}

func randN(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}

// gnetLogger routes gnet's logs to slog.
type gnetLogger struct{ l *slog.Logger }

var _ logging.Logger = gnetLogger{}

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
