package admin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/admin/api"
	"github.com/termd/termd/server/events"
)

// events serves GET /v1/events: presence events as Server-Sent Events,
// until the client goes away or the listener stops.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	if h.opt.Bus == nil {
		writeCode(w, protocol.Unavailable, "no event bus on this node")
		return
	}
	sub := h.opt.Bus.Subscribe(h.opt.EventBuffer)
	defer sub.Close()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	rc := http.NewResponseController(w)
	bw := bufio.NewWriter(w)
	// flush sends what is buffered; a write that cannot finish within
	// streamWriteTimeout means the client stopped reading.
	flush := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) // unsupported by some writers: fine
		return bw.Flush() == nil && rc.Flush() == nil
	}
	// The first comment tells the client the subscription exists.
	fmt.Fprint(bw, ": subscribed\n\n")
	if !flush() {
		return
	}
	keepalive := time.NewTicker(h.keepalive)
	defer keepalive.Stop()
	stop := streamStop(r.Context())
	var reported uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-stop:
			return
		case ev, ok := <-sub.C:
			if !ok {
				return
			}
			reported = writeDropped(bw, sub, reported)
			writeEvent(bw, ev)
			// Drain what is already queued before flushing: one write
			// per burst, not per event.
			for more := true; more; {
				select {
				case ev, ok := <-sub.C:
					if !ok {
						flush()
						return
					}
					writeEvent(bw, ev)
				default:
					more = false
				}
			}
		case <-keepalive.C:
			reported = writeDropped(bw, sub, reported)
			fmt.Fprint(bw, ": keepalive\n\n")
		}
		if !flush() {
			return
		}
	}
}

// writeEvent writes one presence event as an SSE event named by its kind.
func writeEvent(bw *bufio.Writer, ev events.Event) {
	b, _ := json.Marshal(ev) // a flat struct of strings and ints cannot fail
	fmt.Fprintf(bw, "event: %s\ndata: %s\n\n", ev.Kind, b)
}

// writeDropped reports new losses of this subscriber, before the next
// event, so a client knows its view has a gap.
func writeDropped(bw *bufio.Writer, sub *events.Subscription, reported uint64) uint64 {
	d := sub.Dropped()
	if d != reported {
		fmt.Fprintf(bw, "event: %s\ndata: {\"kind\":%q,\"dropped\":%d}\n\n", api.EventDropped, api.EventDropped, d)
	}
	return d
}
