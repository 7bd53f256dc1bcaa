package control_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

// A flood of refused CONTROLs from one device, each with the largest
// args the protocol allows, and of repeats of one request_id, leaves a
// bounded number of small audit records (no args, a count per device,
// service, op and status), while an allowed request is still audited in
// full.
func TestRefusalFloodCoalesced(t *testing.T) {
	const flood = 300
	n := startNode(t, func(c *config.Config) { c.Server.FrameRate, c.Server.FrameBurst = 1e6, 1e6 })
	c := n.dial(t, "pos-1", "till-a")
	big := make([]string, protocol.MaxArgs)
	for i := range big {
		big[i] = strings.Repeat("x", protocol.MaxArg)
	}
	for i := range flood {
		_, err := do(t, c, protocol.Control{ServiceID: fmt.Sprintf("no-such-%d", i), Op: protocol.OpStart, Args: big})
		wantCode(t, err, protocol.NotFound)
		_, err = do(t, c, protocol.Control{ServiceID: "echo", Op: protocol.OpStart, Args: big})
		wantCode(t, err, protocol.BadRequest)
		_, err = do(t, c, protocol.Control{ServiceID: "price-sync", Op: protocol.OpStop, Args: big, RequestID: uint64(i), HasRequestID: true})
		wantCode(t, err, protocol.Forbidden)
	}
	allowed := protocol.Control{ServiceID: "echo", Op: protocol.OpStart, Args: []string{"12", "north"}, RequestID: 7, HasRequestID: true}
	a := mustAck(t, c, allowed)
	if a.Output != "12|north|" {
		t.Fatalf("allowed request: %+v", a)
	}
	// Repeats run nothing either: one record counts them.
	for range flood {
		if r := mustAck(t, c, allowed); r.PID != a.PID {
			t.Fatalf("repeat ran again: %+v", r)
		}
	}
	recs, err := n.Store.ListAudit(t.Context(), storage.AuditFilter{DeviceID: "pos-1", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 {
		t.Fatalf("%d audit records after %d refusals and %d repeats, want 3 refusal records, 2 of the run and 1 of its repeats", len(recs), 3*flood, flood)
	}
	if rep := recs[0]; !rep.Repeat || rep.Count != flood || rep.PID != int(a.PID) || rep.Args != nil {
		t.Fatalf("the repeats' record: %+v", rep)
	}
	if recs[2].State != protocol.StateRunning || recs[2].PID == 0 || len(recs[2].Args) != 2 {
		t.Fatalf("the run's started record: %+v", recs[2])
	}
	recs = append(recs[1:2], recs[3:]...)
	ok := recs[0]
	if ok.Status != uint8(protocol.OK) || ok.Service != "echo" || len(ok.Args) != 2 || ok.Args[1] != "north" ||
		ok.RequestID != 7 || ok.Output != "12|north|" || ok.Count != 0 {
		t.Fatalf("allowed request's record: %+v", ok)
	}
	for _, r := range recs[1:] {
		b, _ := json.Marshal(r)
		if r.Args != nil || r.ArgCount != protocol.MaxArgs || r.ArgsDigest == "" || len(b) > 1024 {
			t.Fatalf("refusal record of %d bytes: %+v", len(b), r)
		}
		if r.Count != flood || r.Status == uint8(protocol.OK) {
			t.Fatalf("refusal record counts %d, want %d: %+v", r.Count, flood, r)
		}
	}
	if recs[3].Service != "?" || !strings.Contains(recs[3].Message, "no-such-0") {
		t.Fatalf("unknown services' record: %+v", recs[3])
	}
}
