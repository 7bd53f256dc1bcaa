package server

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/protocol/client"
)

// Every request type of the spec gets its documented answer on a node with
// nothing configured, through the SDK and the worker path.
func TestDefaultRoutes(t *testing.T) {
	ts := startServer(t, testConfig(t), nil)
	cfg := sdkConfig(ts, "T-routes")
	cfg.NoHeartbeat = true
	c, err := client.Dial(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	grant := []byte{1, 2, 3}
	cases := []struct {
		name string
		req  protocol.Message
		resp protocol.Message
		code protocol.Code
	}{
		{"control", &protocol.Control{ServiceID: "price-sync", Op: protocol.OpStart}, &protocol.ControlAck{}, protocol.NotFound},
		{"upgrade query", &protocol.UpgradeQuery{AppID: "pos", Version: "1.0.0", Launch: true}, &protocol.UpgradeQueryAck{}, protocol.OK},
		{"upgrade report", &protocol.UpgradeReport{ReleaseID: "r1", Attempt: 1, Stage: 1}, &protocol.Ack{AckType: 0x85}, protocol.NotFound},
		{"schedule", &protocol.ScheduleRequest{CampaignID: "c1", Version: "1.0.0", SystemID: "s1"}, &protocol.ScheduleAck{}, protocol.NotFound},
		{"upgrade check", &protocol.UpgradeCheck{ReservationID: "x", Version: "1.0.0"}, &protocol.UpgradeCheckAck{}, protocol.NotFound},
		{"group auth", &protocol.GroupAuth{GroupID: "store-12"}, &protocol.GroupAuthAck{}, protocol.NotFound},
		{"group join", &protocol.GroupChange{RequestID: 1, Op: protocol.GroupJoin, To: "store-12", Grant: grant}, &protocol.GroupChangeAck{}, protocol.Unauthenticated},
		{"group leave", &protocol.GroupChange{RequestID: 2, Op: protocol.GroupLeave, From: "store-12"}, &protocol.GroupChangeAck{}, protocol.Conflict},
		{"group list", &protocol.GroupList{}, &protocol.GroupListAck{}, protocol.OK},
		{"group send", &protocol.GroupSend{GroupID: "store-12", Payload: []byte("hi")}, &protocol.GroupSendAck{}, protocol.NotFound},
	}
	for _, tc := range cases {
		err := c.Do(t.Context(), tc.req, tc.resp)
		if got := protocol.StatusOf(err); got != tc.code {
			t.Errorf("%s: status %v (%v), want %v", tc.name, got, err, tc.code)
		}
		var pe *protocol.Error
		if tc.code != protocol.OK && (!errors.As(err, &pe) || pe.Message == "") {
			t.Errorf("%s: refusal without message: %v", tc.name, err)
		}
	}
	// Each answered request was timed in its type's histogram, refusals
	// included; the malformed one below is refused on the loop, untimed.
	var buf bytes.Buffer
	ts.Metrics().WritePrometheus(&buf)
	for _, typ := range []byte{protocol.TypeControl, protocol.TypeUpgradeQuery, protocol.TypeUpgradeReport, protocol.TypeScheduleReq,
		protocol.TypeUpgradeCheck, protocol.TypeGroupAuth, protocol.TypeGroupChange, protocol.TypeGroupList, protocol.TypeGroupSend} {
		want := 1
		if typ == protocol.TypeGroupChange {
			want = 2
		}
		line := fmt.Sprintf("termd_request_duration_seconds_count{type=%q} %d\n", protocol.TypeName(typ), want)
		if !strings.Contains(buf.String(), line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	// A malformed CONTROL (op out of range) is refused on the loop.
	err = c.Do(t.Context(), &rawMsg{typ: protocol.TypeControl, body: []byte{0x92, 0xa1, 's', 0x09}}, &protocol.ControlAck{})
	if !errors.Is(err, protocol.BadRequest) {
		t.Fatalf("bad op: %v", err)
	}
}
