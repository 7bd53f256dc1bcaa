package protocol

// UpgradeQuery is UPGRADE_QUERY 0x04: is there a release of app_id newer
// than version for this device (spec §6.1)?
type UpgradeQuery struct {
	AppID   string
	Version string
	// Launch is set on the first query after the app started; it asks for
	// an undelivered last failure. Sent only when true.
	Launch bool
}

// Type implements Message.
func (m *UpgradeQuery) Type() byte { return TypeUpgradeQuery }

// Encode implements Message.
func (m *UpgradeQuery) Encode(w *Writer) {
	if m.Launch {
		w.Array(3)
	} else {
		w.Array(2)
	}
	w.Str(m.AppID)
	w.Str(m.Version)
	if m.Launch {
		w.Bool(true)
	}
}

// Decode implements Message.
func (m *UpgradeQuery) Decode(r *Reader) error {
	*m = UpgradeQuery{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 2 {
		return Missing("app_id and version")
	}
	if m.AppID, err = r.Str(MaxID, "app_id"); err != nil {
		return err
	}
	if m.Version, err = r.Str(MaxVersion, "version"); err != nil {
		return err
	}
	if n >= 3 && !r.Nil() {
		if m.Launch, err = r.Bool("launch"); err != nil {
			return err
		}
	}
	return r.SkipRest(min(n, 3), n)
}

// Offer is the release UPGRADE_QUERY_ACK offers: the newest published
// release that targets the device and is newer than its version.
type Offer struct {
	ReleaseID string
	Version   string
	URL       string
	SHA256    [SHA256Size]byte
	Size      uint64 // bytes
	Mandatory bool
	Notes     string
	// ReleaseSig is r ‖ s of the release signature (spec §6.1), nil when
	// the server has no release signatures configured.
	ReleaseSig []byte
}

// offerFields is how many elements an offer array defines.
const offerFields = 8

func (o *Offer) encode(w *Writer) {
	w.Array(offerFields)
	w.Str(o.ReleaseID)
	w.Str(o.Version)
	w.Str(o.URL)
	w.Bin(o.SHA256[:])
	w.Uint(o.Size)
	w.Bool(o.Mandatory)
	w.Str(o.Notes)
	w.Bin(o.ReleaseSig)
}

func (o *Offer) decode(r *Reader) error {
	n, err := r.list(r.Left(), "offer")
	if err != nil {
		return err
	}
	if n < offerFields {
		return Missing("offer fields")
	}
	if o.ReleaseID, err = r.Str(MaxID, "offer release_id"); err != nil {
		return err
	}
	if o.Version, err = r.Str(MaxVersion, "offer version"); err != nil {
		return err
	}
	if o.URL, err = r.Str(MaxURL, "offer url"); err != nil {
		return err
	}
	if err = r.BinFixed(o.SHA256[:], "offer sha256"); err != nil {
		return err
	}
	if o.Size, err = r.Uint("offer size"); err != nil {
		return err
	}
	if o.Mandatory, err = r.Bool("offer mandatory"); err != nil {
		return err
	}
	if o.Notes, err = r.Str(MaxURL, "offer notes"); err != nil {
		return err
	}
	if o.ReleaseSig, err = r.binOwn(MaxReleaseSig, "offer release_sig"); err != nil {
		return err
	}
	return r.skipFields(offerFields, n, 3)
}

// LastFailure is the device's latest failed report for the app, returned
// once by an UPGRADE_QUERY with launch set.
type LastFailure struct {
	ReleaseID string
	Version   string
	Code      uint64 // the report's code
	Message   string
	AtMs      uint64 // when the report was stored, unix ms
}

const lastFailureFields = 5

func (f *LastFailure) encode(w *Writer) {
	w.Array(lastFailureFields)
	w.Str(f.ReleaseID)
	w.Str(f.Version)
	w.Uint(f.Code)
	w.Str(clip(f.Message, MaxReportMessage))
	w.Uint(f.AtMs)
}

func (f *LastFailure) decode(r *Reader) error {
	n, err := r.list(r.Left(), "last_failure")
	if err != nil {
		return err
	}
	if n < lastFailureFields {
		return Missing("last_failure fields")
	}
	if f.ReleaseID, err = r.Str(MaxID, "last_failure release_id"); err != nil {
		return err
	}
	if f.Version, err = r.Str(MaxVersion, "last_failure version"); err != nil {
		return err
	}
	if f.Code, err = r.Uint("last_failure code"); err != nil {
		return err
	}
	if f.Message, err = r.Str(MaxReportMessage, "last_failure message"); err != nil {
		return err
	}
	if f.AtMs, err = r.Uint("last_failure at_ms"); err != nil {
		return err
	}
	return r.skipFields(lastFailureFields, n, 3)
}

// Campaign tells the terminal that a scheduled campaign governs its
// upgrade: it must use SCHEDULE_REQUEST rather than download at once.
type Campaign struct {
	CampaignID    string
	Version       string
	WindowStartMs uint64 // unix ms
	WindowEndMs   uint64 // unix ms
	// ReleaseID is the release the terminal reports its progress under.
	ReleaseID string
}

const campaignFields = 5

func (c *Campaign) encode(w *Writer) {
	w.Array(campaignFields)
	w.Str(c.CampaignID)
	w.Str(c.Version)
	w.Uint(c.WindowStartMs)
	w.Uint(c.WindowEndMs)
	w.Str(c.ReleaseID)
}

func (c *Campaign) decode(r *Reader) error {
	n, err := r.list(r.Left(), "campaign")
	if err != nil {
		return err
	}
	if n < campaignFields {
		return Missing("campaign fields")
	}
	if c.CampaignID, err = r.Str(MaxID, "campaign campaign_id"); err != nil {
		return err
	}
	if c.Version, err = r.Str(MaxVersion, "campaign version"); err != nil {
		return err
	}
	if c.WindowStartMs, err = r.Uint("campaign window_start_ms"); err != nil {
		return err
	}
	if c.WindowEndMs, err = r.Uint("campaign window_end_ms"); err != nil {
		return err
	}
	if c.ReleaseID, err = r.Str(MaxID, "campaign release_id"); err != nil {
		return err
	}
	return r.skipFields(campaignFields, n, 3)
}

// UpgradeQueryAck is UPGRADE_QUERY_ACK 0x84. Each part is nil when the
// server sent nil.
type UpgradeQueryAck struct {
	Offer       *Offer
	LastFailure *LastFailure
	Campaign    *Campaign
}

// Type implements Message.
func (m *UpgradeQueryAck) Type() byte { return Response(TypeUpgradeQuery) }

// Encode implements Message.
func (m *UpgradeQueryAck) Encode(w *Writer) {
	w.Array(4)
	w.Uint(0)
	if m.Offer != nil {
		m.Offer.encode(w)
	} else {
		w.Nil()
	}
	if m.LastFailure != nil {
		m.LastFailure.encode(w)
	} else {
		w.Nil()
	}
	if m.Campaign != nil {
		m.Campaign.encode(w)
	} else {
		w.Nil()
	}
}

// Decode implements Message.
func (m *UpgradeQueryAck) Decode(r *Reader) error {
	*m = UpgradeQueryAck{}
	n, err := r.readStatus()
	if err != nil {
		return err
	}
	if n < 4 {
		return Missing("upgrade_query_ack fields")
	}
	if !r.Nil() {
		m.Offer = &Offer{}
		if err = m.Offer.decode(r); err != nil {
			return err
		}
	}
	if !r.Nil() {
		m.LastFailure = &LastFailure{}
		if err = m.LastFailure.decode(r); err != nil {
			return err
		}
	}
	if !r.Nil() {
		m.Campaign = &Campaign{}
		if err = m.Campaign.decode(r); err != nil {
			return err
		}
	}
	return r.SkipRest(4, n)
}

// UPGRADE_REPORT stages (spec §6.1).
const (
	StageDownloading uint8 = 1
	StageDownloaded  uint8 = 2
	StageInstalling  uint8 = 3
	StageSucceeded   uint8 = 4
	StageFailed      uint8 = 5
	StageRolledBack  uint8 = 6
)

// UpgradeReport is UPGRADE_REPORT 0x05, the terminal's progress on a
// release; the server answers Ack{AckType: Response(TypeUpgradeReport)}
// once the report is stored durably.
type UpgradeReport struct {
	ReleaseID string
	// Attempt is the terminal's try number for this release, from 1, kept
	// across reboots.
	Attempt  uint64
	Stage    uint8 // StageDownloading..StageRolledBack
	Progress uint8 // percent, 0..MaxProgress
	Code     uint64
	Message  string
}

// Type implements Message.
func (m *UpgradeReport) Type() byte { return TypeUpgradeReport }

// Encode implements Message.
func (m *UpgradeReport) Encode(w *Writer) {
	w.Array(6)
	w.Str(m.ReleaseID)
	w.Uint(m.Attempt)
	w.Uint(uint64(m.Stage))
	w.Uint(uint64(m.Progress))
	w.Uint(m.Code)
	w.Str(clip(m.Message, MaxReportMessage))
}

// Decode implements Message.
func (m *UpgradeReport) Decode(r *Reader) error {
	*m = UpgradeReport{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 6 {
		return Missing("upgrade_report fields")
	}
	if m.ReleaseID, err = r.Str(MaxID, "release_id"); err != nil {
		return err
	}
	if m.Attempt, err = r.Uint("attempt"); err != nil {
		return err
	}
	if m.Attempt == 0 {
		return bad("attempt: out of range")
	}
	if m.Stage, err = r.enum(StageDownloading, StageRolledBack, "stage"); err != nil {
		return err
	}
	if m.Progress, err = r.enum(0, MaxProgress, "progress"); err != nil {
		return err
	}
	if m.Code, err = r.Uint("code"); err != nil {
		return err
	}
	if m.Message, err = r.Str(MaxReportMessage, "message"); err != nil {
		return err
	}
	return r.SkipRest(6, n)
}

// UPGRADE_NOTICE kinds (spec §6.1).
const (
	NoticeRelease  uint8 = 1
	NoticeCampaign uint8 = 2
	// NoticeWithdrawn: the release or campaign ID was cancelled; a
	// terminal not yet INSTALLING stops and discards its download.
	NoticeWithdrawn uint8 = 3
)

// maxNoticeKind is the largest kind the decoder takes: a kind it does
// not know is still decoded, so the terminal can ack and ignore it
// (spec §6.1); only what does not fit the field is refused.
const maxNoticeKind = 255

// UpgradeNotice is the UPGRADE_NOTICE push 0x41, sent to online targeted
// devices when a release or campaign is published. The terminal acks it
// with Ack{AckType: Response(TypeUpgradeNotice)}.
type UpgradeNotice struct {
	ID      string // release_id or campaign_id, by Kind
	AppID   string
	Version string
	Kind    uint8 // NoticeRelease, NoticeCampaign, NoticeWithdrawn; others are acked and ignored
}

// Type implements Message.
func (m *UpgradeNotice) Type() byte { return TypeUpgradeNotice }

// Encode implements Message.
func (m *UpgradeNotice) Encode(w *Writer) {
	w.Array(4)
	w.Str(m.ID)
	w.Str(m.AppID)
	w.Str(m.Version)
	w.Uint(uint64(m.Kind))
}

// Decode implements Message.
func (m *UpgradeNotice) Decode(r *Reader) error {
	*m = UpgradeNotice{}
	n, err := r.Array()
	if err != nil {
		return err
	}
	if n < 4 {
		return Missing("upgrade_notice fields")
	}
	if m.ID, err = r.Str(MaxID, "id"); err != nil {
		return err
	}
	if m.AppID, err = r.Str(MaxID, "app_id"); err != nil {
		return err
	}
	if m.Version, err = r.Str(MaxVersion, "version"); err != nil {
		return err
	}
	if m.Kind, err = r.enum(NoticeRelease, maxNoticeKind, "kind"); err != nil {
		return err
	}
	return r.SkipRest(4, n)
}
