package storage

// This file holds the presence semantics shared by every Registry, so the
// Memory and Badger stores cannot drift apart on what an update means.

// applyPresence applies u to d in place. exists says whether d is a stored
// record (an absent record is the zero Device with ID set). It reports
// whether d changed and must be written, which creates it when absent.
//
// Byte slices from u are copied, so callers may reuse their buffers.
func applyPresence(d *Device, exists bool, u *PresenceUpdate) (changed bool) {
	switch u.Kind {
	case PresenceOnline:
		d.Online = true
		d.SessionID = u.SessionID
		d.LastOnline = u.At
		// A new session resets LastSeen outright rather than taking the max:
		// the record describes the latest session.
		d.LastSeen = u.At
		d.RemoteAddr = u.RemoteAddr
		d.FW = u.FW
		d.Model = u.Model
		d.Attrs = cloneBytes(u.Attrs)
		if d.FirstSeen == 0 {
			d.FirstSeen = u.At
		}
		return true
	case PresenceSeen:
		changed = !exists
		if u.At > d.LastSeen {
			d.LastSeen = u.At
			changed = true
		}
		if u.Status != nil {
			d.Status = cloneBytes(u.Status)
			changed = true
		}
		return changed
	case PresenceOffline:
		// An offline never creates a record: there is no session to end.
		if !exists {
			return false
		}
		// The guard keeps a late offline of an old session from overwriting
		// the online state of the newer session that replaced it.
		if u.SessionID != 0 && u.SessionID != d.SessionID {
			return false
		}
		d.Online = false
		d.LastOffline = u.At
		d.OfflineReason = u.Reason
		return true
	}
	return false
}

// cloneBytes copies b, keeping the nil / empty distinction (nil = none).
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// cloneDevice returns a deep copy of d, so callers never share slices with
// a store.
func cloneDevice(d *Device) Device {
	c := *d
	c.Attrs = cloneBytes(d.Attrs)
	c.Status = cloneBytes(d.Status)
	c.Key = cloneBytes(d.Key)
	return c
}
