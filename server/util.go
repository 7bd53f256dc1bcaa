package server

import (
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/panjf2000/gnet/v2/pkg/logging"

	"github.com/termd/termd/protocol"
)

// asError turns any error into the *protocol.Error a terminal is sent.
func asError(err error) *protocol.Error {
	if e, ok := err.(*protocol.Error); ok {
		return e
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
