package protocol

// Coordinate bounds of SCHEDULE_REQUEST, in degrees.
const (
	MaxLatitude  = 90.0
	MaxLongitude = 180.0
)

// ScheduleRequest is SCHEDULE_REQUEST 0x06: reserve a download slot for a
// scheduled campaign (spec §6.2).
type ScheduleRequest struct {
	CampaignID string
	Version    string
	// HasLoc says Lat and Lon were sent; without them the server uses the
	// device's registered location. lat and lon are sent both or neither.
	HasLoc   bool
	Lat, Lon float64 // degrees
	SystemID string
}

// Type implements Message.
func (m *ScheduleRequest) Type() byte { return TypeScheduleReq }

// Encode implements Message.
func (m *ScheduleRequest) Encode(w *Writer) {
	w.Array(5)
	w.Str(m.CampaignID)
	w.Str(m.Version)
	if m.HasLoc {
		w.Float(m.Lat)
		w.Float(m.Lon)
	} else {
		w.Nil()
		w.Nil()
	}
	w.Str(m.SystemID)
}

// Decode implements Message.
func (m *ScheduleRequest) Decode(r *Reader) error {
	*m = ScheduleRequest{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 5 {
		return Missing("schedule_request fields")
	}
	if m.CampaignID, err = r.Str(MaxID, "campaign_id"); err != nil {
		return err
	}
	if m.Version, err = r.Str(MaxVersion, "version"); err != nil {
		return err
	}
	latNil := r.Nil()
	if !latNil {
		if m.Lat, err = r.Float("lat"); err != nil {
			return err
		}
		// Written so that NaN fails too.
		if !(m.Lat >= -MaxLatitude && m.Lat <= MaxLatitude) {
			return bad("lat: out of range")
		}
	}
	lonNil := r.Nil()
	if !lonNil {
		if m.Lon, err = r.Float("lon"); err != nil {
			return err
		}
		if !(m.Lon >= -MaxLongitude && m.Lon <= MaxLongitude) {
			return bad("lon: out of range")
		}
	}
	if latNil != lonNil {
		return bad("lat and lon: one without the other")
	}
	m.HasLoc = !latNil
	if m.SystemID, err = r.Str(MaxID, "system_id"); err != nil {
		return err
	}
	return r.SkipRest(5, n)
}

// ScheduleAck is SCHEDULE_ACK 0x86: the reserved slot. Without capacity
// the server refuses with UNAVAILABLE and retry_after_ms.
type ScheduleAck struct {
	ReservationID string
	NodeID        string
	URL           string // the download node
	SlotStartMs   uint64 // unix ms
	SlotEndMs     uint64 // unix ms
	// ReleaseID is the release the terminal reports its progress under
	// (spec §6.2, 2026-12-04).
	ReleaseID string
}

// Type implements Message.
func (m *ScheduleAck) Type() byte { return Response(TypeScheduleReq) }

// Encode implements Message.
func (m *ScheduleAck) Encode(w *Writer) {
	w.Array(scheduleAckFields)
	w.Uint(0)
	w.Str(m.ReservationID)
	w.Str(m.NodeID)
	w.Str(m.URL)
	w.Uint(m.SlotStartMs)
	w.Uint(m.SlotEndMs)
	w.Str(m.ReleaseID)
}

// scheduleAckFields is how many elements SCHEDULE_ACK defines, status
// included.
const scheduleAckFields = 7

// Decode implements Message.
func (m *ScheduleAck) Decode(r *Reader) error {
	*m = ScheduleAck{}
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	if n < scheduleAckFields {
		return Missing("schedule_ack fields")
	}
	if m.ReservationID, err = r.Str(MaxID, "reservation_id"); err != nil {
		return err
	}
	if m.NodeID, err = r.Str(MaxID, "node_id"); err != nil {
		return err
	}
	if m.URL, err = r.Str(MaxURL, "url"); err != nil {
		return err
	}
	if m.SlotStartMs, err = r.Uint("slot_start_ms"); err != nil {
		return err
	}
	if m.SlotEndMs, err = r.Uint("slot_end_ms"); err != nil {
		return err
	}
	if m.ReleaseID, err = r.Str(MaxID, "release_id"); err != nil {
		return err
	}
	return r.SkipRest(scheduleAckFields, n)
}

// UpgradeCheck is UPGRADE_CHECK 0x07: may the device download now under
// its reservation (spec §6.2)?
type UpgradeCheck struct {
	ReservationID string
	Version       string // the version the device runs
}

// Type implements Message.
func (m *UpgradeCheck) Type() byte { return TypeUpgradeCheck }

// Encode implements Message.
func (m *UpgradeCheck) Encode(w *Writer) {
	w.Array(2)
	w.Str(m.ReservationID)
	w.Str(m.Version)
}

// Decode implements Message.
func (m *UpgradeCheck) Decode(r *Reader) error {
	*m = UpgradeCheck{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 2 {
		return Missing("reservation_id and version")
	}
	if m.ReservationID, err = r.Str(MaxID, "reservation_id"); err != nil {
		return err
	}
	if m.Version, err = r.Str(MaxVersion, "version"); err != nil {
		return err
	}
	return r.SkipRest(2, n)
}

// UPGRADE_CHECK_ACK decisions (spec §6.2).
const (
	DecisionProceed  uint8 = 1 // inside the slot: download now
	DecisionUpToDate uint8 = 2 // nothing to do; the reservation is released
	DecisionTooEarly uint8 = 3 // wait WaitMs
	DecisionMissed   uint8 = 4 // the slot is over; ask SCHEDULE_REQUEST again
)

// UpgradeCheckAck is UPGRADE_CHECK_ACK 0x87. Only DecisionProceed fills
// URL, SHA256, Size, Token and ReleaseSig; only DecisionTooEarly fills
// WaitMs; other fields are "", 0 or nil.
type UpgradeCheckAck struct {
	Decision uint8 // DecisionProceed..DecisionMissed
	WaitMs   uint64
	URL      string
	// SHA256 is the release digest, SHA256Size bytes with DecisionProceed,
	// else nil (an empty bin on the wire).
	SHA256     []byte
	Size       uint64 // bytes
	Token      string
	ReleaseSig []byte // ≤ MaxReleaseSig bytes, nil when unsigned
}

// Type implements Message.
func (m *UpgradeCheckAck) Type() byte { return Response(TypeUpgradeCheck) }

// Encode implements Message.
func (m *UpgradeCheckAck) Encode(w *Writer) {
	w.Array(8)
	w.Uint(0)
	w.Uint(uint64(m.Decision))
	w.Uint(m.WaitMs)
	w.Str(m.URL)
	w.Bin(m.SHA256)
	w.Uint(m.Size)
	w.Str(m.Token)
	w.Bin(m.ReleaseSig)
}

// Decode implements Message.
func (m *UpgradeCheckAck) Decode(r *Reader) error {
	*m = UpgradeCheckAck{}
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	if n < 8 {
		return Missing("upgrade_check_ack fields")
	}
	if m.Decision, err = r.enum(DecisionProceed, DecisionMissed, "decision"); err != nil {
		return err
	}
	if m.WaitMs, err = r.Uint("wait_ms"); err != nil {
		return err
	}
	if m.URL, err = r.Str(MaxURL, "url"); err != nil {
		return err
	}
	if m.SHA256, err = r.binOwn(SHA256Size, "sha256"); err != nil {
		return err
	}
	if len(m.SHA256) != 0 && len(m.SHA256) != SHA256Size || m.Decision == DecisionProceed && len(m.SHA256) == 0 {
		return bad("sha256: wrong length")
	}
	if m.Size, err = r.Uint("size"); err != nil {
		return err
	}
	if m.Token, err = r.Str(MaxURL, "token"); err != nil {
		return err
	}
	if m.ReleaseSig, err = r.binOwn(MaxReleaseSig, "release_sig"); err != nil {
		return err
	}
	return r.SkipRest(8, n)
}
