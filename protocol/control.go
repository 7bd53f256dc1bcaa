package protocol

// CONTROL ops (spec §5).
const (
	OpStart   uint8 = 1
	OpStop    uint8 = 2
	OpRestart uint8 = 3
	OpStatus  uint8 = 4
)

// Service states in CONTROL_ACK (spec §5).
const (
	StateRunning = "running"
	StateStopped = "stopped"
	StateExited  = "exited"
	StateFailed  = "failed"
)

// maxStateLen is the length of the longest state, "running" or "stopped",
// in bytes.
const maxStateLen = 7

// DefaultControlTimeoutMs is the timeout the server applies when CONTROL
// carries none.
const DefaultControlTimeoutMs = 30000

// Control is CONTROL 0x03: the terminal asks the server to act on one of
// its services (spec §5).
type Control struct {
	ServiceID string
	Op        uint8    // OpStart..OpStatus
	Args      []string // ≤ MaxArgs strings of ≤ MaxArg bytes; nil when none
	// TimeoutMs is the operation's timeout; 0 means absent (the server
	// uses DefaultControlTimeoutMs).
	TimeoutMs uint64
	// RequestID makes the request idempotent when HasRequestID is set.
	RequestID    uint64
	HasRequestID bool
}

// Type implements Message.
func (m *Control) Type() byte { return TypeControl }

// Encode implements Message. Trailing optional elements that are absent
// are left out; an absent one before a present one is sent as nil, and
// absent args before a present element as an empty array.
func (m *Control) Encode(w *Writer) {
	n := 2
	switch {
	case m.HasRequestID:
		n = 5
	case m.TimeoutMs != 0:
		n = 4
	case len(m.Args) > 0:
		n = 3
	}
	w.Array(n)
	w.Str(m.ServiceID)
	w.Uint(uint64(m.Op))
	if n >= 3 {
		w.Array(len(m.Args))
		for _, a := range m.Args {
			w.Str(a)
		}
	}
	if n >= 4 {
		if m.TimeoutMs != 0 {
			w.Uint(m.TimeoutMs)
		} else {
			w.Nil()
		}
	}
	if n >= 5 {
		w.Uint(m.RequestID)
	}
}

// Decode implements Message.
func (m *Control) Decode(r *Reader) error {
	*m = Control{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 2 {
		return Missing("service_id and op")
	}
	if m.ServiceID, err = r.Str(MaxID, "service_id"); err != nil {
		return err
	}
	if m.Op, err = r.enum(OpStart, OpStatus, "op"); err != nil {
		return err
	}
	if n >= 3 && !r.Nil() {
		k, err := r.list(MaxArgs, "args")
		if err != nil {
			return err
		}
		if k > 0 {
			m.Args = make([]string, k)
			for i := range m.Args {
				if m.Args[i], err = r.Str(MaxArg, "arg"); err != nil {
					return err
				}
			}
		}
	}
	if n >= 4 && !r.Nil() {
		if m.TimeoutMs, err = r.Uint("timeout_ms"); err != nil {
			return err
		}
	}
	if n >= 5 && !r.Nil() {
		if m.RequestID, err = r.Uint("request_id"); err != nil {
			return err
		}
		m.HasRequestID = true
	}
	return r.SkipRest(min(n, 5), n)
}

// ControlAck is CONTROL_ACK 0x83, sent when the operation completes.
type ControlAck struct {
	State    string // StateRunning, StateStopped, StateExited or StateFailed
	PID      uint64
	ExitCode int64
	SinceMs  uint64 // when the service entered State, unix ms
	// Output is the last ≤ MaxOutput bytes of a one-shot service's
	// output, else "".
	Output string
}

// Type implements Message.
func (m *ControlAck) Type() byte { return Response(TypeControl) }

// Encode implements Message.
func (m *ControlAck) Encode(w *Writer) {
	w.Array(6)
	w.Uint(0)
	m.encodeState(w)
	w.Str(m.Output)
}

func (m *ControlAck) encodeState(w *Writer) {
	w.Str(m.State)
	w.Uint(m.PID)
	w.Int(m.ExitCode)
	w.Uint(m.SinceMs)
}

// Decode implements Message. A refusal is returned as an *Error, except
// TIMEOUT with the service's state: then the state fields of m are filled
// and a *ControlTimeout is returned.
func (m *ControlAck) Decode(r *Reader) error {
	*m = ControlAck{}
	n, code, err := r.readHead()
	if err != nil {
		return err
	}
	if code == Timeout && n >= 3 {
		if n < 6 {
			return Missing("timeout fields")
		}
		t := &ControlTimeout{}
		if t.Message, err = r.OptStr(MaxMessage, "message"); err != nil {
			return err
		}
		if err = m.decodeState(r); err != nil {
			return err
		}
		if err = r.SkipRest(6, n); err != nil {
			return err
		}
		t.State, t.PID, t.ExitCode, t.SinceMs = m.State, m.PID, m.ExitCode, m.SinceMs
		return t
	}
	if code != OK {
		return r.refusal(n, code)
	}
	if n < 6 {
		return Missing("control_ack fields")
	}
	if err = m.decodeState(r); err != nil {
		return err
	}
	if m.Output, err = r.Str(MaxOutput, "output"); err != nil {
		return err
	}
	return r.SkipRest(6, n)
}

// decodeState reads state, pid, exit_code and since_ms.
func (m *ControlAck) decodeState(r *Reader) error {
	s, err := r.StrBytes(maxStateLen, "state")
	if err != nil {
		return err
	}
	switch string(s) {
	case StateRunning:
		m.State = StateRunning
	case StateStopped:
		m.State = StateStopped
	case StateExited:
		m.State = StateExited
	case StateFailed:
		m.State = StateFailed
	default:
		return bad("state: unknown")
	}
	if m.PID, err = r.Uint("pid"); err != nil {
		return err
	}
	if m.ExitCode, err = r.Int("exit_code"); err != nil {
		return err
	}
	m.SinceMs, err = r.Uint("since_ms")
	return err
}

// ControlTimeout is CONTROL_ACK's TIMEOUT refusal, which reports what is
// known of the service: [13, message, state, pid, exit_code, since_ms].
// It is both a Message and an error that matches Timeout.
type ControlTimeout struct {
	Message  string
	State    string
	PID      uint64
	ExitCode int64
	SinceMs  uint64
}

// Type implements Message.
func (m *ControlTimeout) Type() byte { return Response(TypeControl) }

// Encode implements Message.
func (m *ControlTimeout) Encode(w *Writer) {
	w.Array(6)
	w.Uint(uint64(Timeout))
	w.Str(clip(m.Message, MaxMessage))
	a := ControlAck{State: m.State, PID: m.PID, ExitCode: m.ExitCode, SinceMs: m.SinceMs}
	a.encodeState(w)
}

// Decode implements Message; it succeeds only on the TIMEOUT form.
func (m *ControlTimeout) Decode(r *Reader) error {
	*m = ControlTimeout{}
	var a ControlAck
	err := a.Decode(r)
	if t, is := err.(*ControlTimeout); is {
		*m = *t
		return nil
	}
	if err == nil {
		return bad("not a control timeout")
	}
	return err
}

// Error implements error.
func (m *ControlTimeout) Error() string {
	return "TIMEOUT: " + m.Message + " (service " + m.State + ")"
}

// Unwrap lets errors.Is(err, Timeout) match.
func (m *ControlTimeout) Unwrap() error { return Timeout }
