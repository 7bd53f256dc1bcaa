package storage

import "math"

// This file holds the per-device coalescing rules of PresenceWriter. They
// rest on the presence semantics in presence.go:
//   - Seen touches only LastSeen (max) and Status; Offline touches only
//     Online, LastOffline and OfflineReason; so they commute, except that a
//     Seen creates an absent record and an Offline never does.
//   - Online overwrites everything presence owns except FirstSeen (set once),
//     Status, LastOffline and OfflineReason.
//   - Once an Online is pending, the record's SessionID is known, so the
//     session guard of later Offlines is decided at Put time.

// seenCreateAt is the At of a Seen that only creates an absent record: it
// is below any LastSeen, so max leaves an existing record unchanged.
const seenCreateAt = math.MinInt64

// devicePresence is the coalesced pending state of one device: enough to
// replay the net effect of every update Put since the last flush.
//
// Offlines that arrive before any Online in the window ("conditional")
// depend on the session id stored in the registry, which Put cannot read,
// so they are kept: at most one per session, and a session-less one
// subsumes those before it. At most maxCondOfflines are kept; past that
// the one with the lowest session id is dropped. That is the only inexact
// case: session ids grow, the stored record holds the newest flushed
// session, and a terminal does not end that many sessions of its own in
// one flush window without a new HELLO.
type devicePresence struct {
	id string

	// condOff are the conditional Offlines in order. The first condBefore
	// came before any Seen of the window, when the record may not exist;
	// the rest came after one, when it surely does.
	condOff    []PresenceUpdate
	condBefore int
	// created is set by a Seen before any Online: from then on the record
	// exists even if the registry has none yet.
	created bool

	hasOnline   bool
	multiOnline bool // the first and the last Online are different updates
	hasKnownOff bool
	// offAfterLast: the known offline came after the last Online, so the
	// device ends offline.
	offAfterLast bool
	hasSeen      bool // a Seen came after the last Online (or at all, without one)
	hasStatus    bool

	// The first Online of the window: only its At (FirstSeen) and session
	// matter once a later Online follows.
	firstAt      int64
	firstSession uint64
	// lastOnline is the last Online, kept field by field (a whole
	// PresenceUpdate per device would double the size of a storm's
	// pending state).
	lastOnline onlineFields

	// The last Offline after the first Online that passed the session guard.
	offAt      int64
	offSession uint64
	offReason  string

	seenAt int64  // max At of the Seens
	status []byte // latest non-nil Status; buffer reused across Puts
}

// onlineFields are what an Online update sets.
type onlineFields struct {
	at         int64
	session    uint64
	remoteAddr string
	fw, model  string
	attrs      []byte
}

// update rebuilds the Online update of f for device id.
func (f *onlineFields) update(id string) PresenceUpdate {
	return PresenceUpdate{
		Kind: PresenceOnline, ID: id, At: f.at, SessionID: f.session,
		RemoteAddr: f.remoteAddr, FW: f.fw, Model: f.model, Attrs: f.attrs,
	}
}

// knownOff rebuilds the known Offline update.
func (p *devicePresence) knownOff() PresenceUpdate {
	return PresenceUpdate{Kind: PresenceOffline, ID: p.id, At: p.offAt, SessionID: p.offSession, Reason: p.offReason}
}

// put merges u into p. It copies the byte slices it keeps.
func (p *devicePresence) put(u *PresenceUpdate) {
	switch u.Kind {
	case PresenceSeen:
		if !p.hasSeen || u.At > p.seenAt {
			p.seenAt = u.At
		}
		p.hasSeen = true
		if !p.hasOnline {
			p.created = true
		}
		if u.Status != nil {
			// Into the owned buffer: no allocation once it is big enough.
			p.status = append(p.status[:0], u.Status...)
			p.hasStatus = true
		}
	case PresenceOnline:
		switch {
		case !p.hasOnline:
			p.hasOnline = true
			p.firstAt, p.firstSession = u.At, u.SessionID
		case p.firstAt == 0:
			// FirstSeen == 0 means "never": an Online at 0 leaves it for the
			// next Online to set.
			p.firstAt = u.At
			p.multiOnline = true
		default:
			p.multiOnline = true
		}
		p.lastOnline = onlineFields{
			at: u.At, session: u.SessionID, remoteAddr: u.RemoteAddr, fw: u.FW, model: u.Model, attrs: cloneBytes(u.Attrs),
		}
		p.offAfterLast = false
		// Online sets LastSeen outright: earlier Seens only keep their Status.
		p.hasSeen = false
		p.seenAt = 0
	case PresenceOffline:
		off := PresenceUpdate{Kind: PresenceOffline, ID: p.id, At: u.At, SessionID: u.SessionID, Reason: u.Reason}
		if !p.hasOnline {
			p.putCondOffline(off)
			return
		}
		if off.SessionID != 0 && off.SessionID != p.lastOnline.session {
			return // a late offline of an older session: a no-op after lastOnline
		}
		p.offAt, p.offSession, p.offReason = off.At, off.SessionID, off.Reason
		p.hasKnownOff = true
		p.offAfterLast = true
	}
}

// putCondOffline records an Offline that arrived before any Online.
func (p *devicePresence) putCondOffline(off PresenceUpdate) {
	if off.SessionID == 0 {
		// It applies whenever the record exists then, overriding earlier ones
		// that applied under the same condition or a stricter one.
		p.condOff, p.condBefore = p.condOff[:0], 0
		p.appendCond(off)
		return
	}
	for i := range p.condOff {
		if p.condOff[i].SessionID == off.SessionID {
			// Same session, so the same guard: the later one overrides in
			// place. Its group does not matter: a session id other than 0
			// never matches a record that only a Seen created, so both apply
			// exactly when the registry has the record with that session.
			// Order against other sessions does not matter either, as at
			// most one of them matches the stored session.
			p.condOff[i] = off
			return
		}
	}
	if len(p.condOff) == maxCondOfflines {
		low := -1
		for i := range p.condOff {
			if sid := p.condOff[i].SessionID; sid != 0 && (low < 0 || sid < p.condOff[low].SessionID) {
				low = i
			}
		}
		p.removeCond(low)
	}
	p.appendCond(off)
}

// appendCond appends off to the group it belongs to (always the end: the
// "before" group only grows while no Seen has come, when the other is empty).
func (p *devicePresence) appendCond(off PresenceUpdate) {
	p.condOff = append(p.condOff, off)
	if !p.created {
		p.condBefore = len(p.condOff)
	}
}

// removeCond deletes condOff[i], keeping the group split.
func (p *devicePresence) removeCond(i int) {
	p.condOff = append(p.condOff[:i], p.condOff[i+1:]...)
	if i < p.condBefore {
		p.condBefore--
	}
}

// appendUpdates appends to dst a short sequence of updates whose in-order
// application equals that of every update merged into p.
func (p *devicePresence) appendUpdates(dst []PresenceUpdate) []PresenceUpdate {
	// A known offline comes later and always applies, so it overrides what
	// the conditional ones could set (and an Online overrides their Online
	// flag); they only matter without one.
	if !p.hasKnownOff && len(p.condOff) > 0 {
		dst = append(dst, p.condOff[:p.condBefore]...)
		if after := p.condOff[p.condBefore:]; len(after) > 0 {
			// These came after a Seen that created the record if needed.
			dst = append(dst, PresenceUpdate{Kind: PresenceSeen, ID: p.id, At: seenCreateAt})
			dst = append(dst, after...)
		}
	}
	if p.hasOnline {
		if p.multiOnline {
			// Only its FirstSeen survives.
			dst = append(dst, PresenceUpdate{Kind: PresenceOnline, ID: p.id, At: p.firstAt, SessionID: p.firstSession})
		}
		if p.hasKnownOff && !p.offAfterLast {
			// An offline between two onlines leaves LastOffline and
			// OfflineReason; session 0 replays it past the guard it passed.
			off := p.knownOff()
			off.SessionID = 0
			dst = append(dst, off)
		}
		dst = append(dst, p.lastOnline.update(p.id))
		if p.offAfterLast {
			dst = append(dst, p.knownOff())
		}
	}
	if p.hasSeen || p.hasStatus {
		seen := PresenceUpdate{Kind: PresenceSeen, ID: p.id, At: p.seenAt}
		if !p.hasSeen {
			// Status from a Seen before lastOnline: At equal to the LastSeen
			// lastOnline set is a no-op under max.
			seen.At = p.lastOnline.at
		}
		if p.hasStatus {
			seen.Status = p.status
			if seen.Status == nil {
				seen.Status = []byte{} // an empty status is still a new status
			}
		}
		dst = append(dst, seen)
	}
	return dst
}
