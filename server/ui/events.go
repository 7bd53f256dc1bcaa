package ui

// The live events page: presence, service, upgrade, rollout, campaign
// and group events as the stream (stream.go) brings them, aggregated per
// window when they come in thousands. The page itself is static; ui.js
// fills it from the stream every console page already has open.

import "net/http"

func init() {
	register(Page{Nav: "Events", Path: Prefix + "events", Order: 80, Template: "events.html", Routes: func(rt *Routes) {
		rt.Get(Prefix+"events", func(w http.ResponseWriter, r *Request) error {
			return r.Render(w, "Live events", nil)
		})
	}})
}
