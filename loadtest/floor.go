package loadtest

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// Floor is the reference server of docs/performance.md: a bare gnet
// server that answers MQTT 3.1.1 CONNECT with CONNACK and PINGREQ with
// PINGRESP, keeps no state per connection beyond gnet's own and verifies
// nothing. What it costs per connection and per heartbeat is the floor
// any server on gnet pays on this machine; `termload -proto mqtt` drives
// it with the same scenarios as termd and mosquitto.
type Floor struct {
	gnet.BuiltinEventEngine
	conns atomic.Int64
	eng   gnet.Engine
}

var (
	floorConnack  = []byte{mqttConnack, 2, 0, 0}
	floorPingresp = []byte{mqttPingresp, 0}
)

// Run serves on addr (host:port) until ctx ends.
func (f *Floor) Run(ctx context.Context, addr string) error {
	go func() {
		<-ctx.Done()
		_ = f.eng.Stop(context.Background())
	}()
	return gnet.Run(f, "tcp://"+addr, gnet.WithMulticore(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithReuseAddr(true))
}

// OnBoot implements gnet.EventHandler.
func (f *Floor) OnBoot(eng gnet.Engine) gnet.Action {
	f.eng = eng
	return gnet.None
}

// OnOpen implements gnet.EventHandler.
func (f *Floor) OnOpen(gnet.Conn) ([]byte, gnet.Action) {
	f.conns.Add(1)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (f *Floor) OnClose(gnet.Conn, error) gnet.Action {
	f.conns.Add(-1)
	return gnet.None
}

// OnTraffic implements gnet.EventHandler: each whole packet gets its
// fixed answer; the answers of one read go out with one write.
func (f *Floor) OnTraffic(c gnet.Conn) gnet.Action {
	var out [64]byte
	reply := out[:0]
	for {
		in, _ := c.Peek(-1)
		hdr, rem, err := mqttFixedHeader(in)
		if err != nil {
			return gnet.Close
		}
		if hdr == 0 || len(in) < hdr+rem {
			break
		}
		switch in[0] & 0xF0 {
		case mqttConnect:
			reply = append(reply, floorConnack...)
		case mqttPingreq:
			reply = append(reply, floorPingresp...)
		default:
			return gnet.Close
		}
		_, _ = c.Discard(hdr + rem)
		if len(reply) > len(out)-4 {
			_, _ = c.Write(reply)
			reply = out[:0]
		}
	}
	if len(reply) > 0 {
		_, _ = c.Write(reply)
	}
	return gnet.None
}

// String describes the floor server for its start-up line.
func (f *Floor) String() string { return fmt.Sprintf("floor: %d connections", f.conns.Load()) }
