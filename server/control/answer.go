package control

import (
	"strings"
	"unicode/utf8"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/control/supervisor"
	"github.com/termd/termd/storage"
)

// This file turns supervisor states and results into CONTROL answers and
// audit records, and audit records back into answers (request_id repeats
// after a restart).

func refuse(code protocol.Code, msg string) answer {
	return answer{err: &protocol.Error{Code: code, Message: msg}}
}

// ack is the CONTROL_ACK of st.
func ack(st supervisor.State) *protocol.ControlAck {
	return &protocol.ControlAck{
		State: st.State, PID: uint64(max(st.PID, 0)), ExitCode: int64(st.ExitCode),
		SinceMs: uint64(max(st.SinceMs, 0)), Output: wireOutput(st.Output),
	}
}

// stateAnswer answers STATUS.
func (c *Controller) stateAnswer(st supervisor.State, err error) answer {
	if err != nil {
		return c.doError(err)
	}
	return answer{msg: ack(st)}
}

// resultAnswer answers a finished operation.
func (c *Controller) resultAnswer(r supervisor.Result) answer {
	switch {
	case r.TimedOut:
		return timeoutAnswer("operation timed out", r.State)
	case r.Err != nil:
		c.log.Error("control operation failed", "service", r.State.Service, "err", r.Err)
		return refuse(protocol.Internal, "operation failed")
	}
	return answer{msg: ack(r.State)}
}

// timeoutAnswer is TIMEOUT with what is known of the service (spec §5).
func timeoutAnswer(msg string, st supervisor.State) answer {
	return answer{msg: &protocol.ControlTimeout{
		Message: msg, State: orStopped(st.State), PID: uint64(max(st.PID, 0)),
		ExitCode: int64(st.ExitCode), SinceMs: uint64(max(st.SinceMs, 0)),
	}}
}

// orStopped keeps a state valid on the wire when nothing is known.
func orStopped(s string) string {
	if s == "" {
		return protocol.StateStopped
	}
	return s
}

// wireOutput is the last ≤ 1024 bytes of out as valid UTF-8: cut at a
// character boundary, invalid bytes replaced by '?' (which never makes it
// longer).
func wireOutput(out string) string {
	if len(out) > config.WireOutputMax {
		out = out[len(out)-config.WireOutputMax:]
		for i := 0; i < utf8.UTFMax && i < len(out) && !utf8.RuneStart(out[i]); i++ {
			out = out[1:]
		}
	}
	if !utf8.ValidString(out) {
		out = strings.ToValidUTF8(out, "?")
	}
	return out
}

// fillRecord copies the outcome of a into rec.
func fillRecord(rec *storage.AuditRecord, a answer) {
	switch m := a.msg.(type) {
	case *protocol.ControlAck:
		rec.Status = uint8(protocol.OK)
		rec.State, rec.PID, rec.ExitCode, rec.SinceMs, rec.Output = m.State, int(m.PID), int(m.ExitCode), int64(m.SinceMs), m.Output
	case *protocol.ControlTimeout:
		rec.Status = uint8(protocol.Timeout)
		rec.State, rec.PID, rec.ExitCode, rec.SinceMs = m.State, int(m.PID), int(m.ExitCode), int64(m.SinceMs)
		rec.Message = joinMsg(rec.Message, m.Message)
	}
	if a.err != nil {
		rec.Status = uint8(a.err.Code)
		rec.Message = joinMsg(rec.Message, a.err.Message)
	}
}

func joinMsg(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}

// recordAnswer rebuilds the answer an audit record holds.
func recordAnswer(r storage.AuditRecord) answer {
	switch protocol.Code(r.Status) {
	case protocol.OK:
		return answer{msg: &protocol.ControlAck{
			State: orStopped(r.State), PID: uint64(max(r.PID, 0)), ExitCode: int64(r.ExitCode),
			SinceMs: uint64(max(r.SinceMs, 0)), Output: r.Output,
		}}
	case protocol.Timeout:
		return answer{msg: &protocol.ControlTimeout{
			Message: "operation timed out", State: orStopped(r.State), PID: uint64(max(r.PID, 0)),
			ExitCode: int64(r.ExitCode), SinceMs: uint64(max(r.SinceMs, 0)),
		}}
	}
	return refuse(protocol.Code(r.Status), lastMsg(r.Message))
}

// lastMsg drops the "repeat of request_id: " style prefixes commit adds.
func lastMsg(m string) string {
	if i := strings.LastIndex(m, ": "); i >= 0 {
		return m[i+2:]
	}
	return m
}
