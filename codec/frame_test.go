package codec

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// Frames from spec §10.
var (
	vecHello = mustHex(`a1010000004c96a6542d30303031ce6553f100c410000102030405060708090a0b0c0d0e0f
c420d16c644348228e8e9b9e1a1cdd9519f67bda07282b44fde08f39d1077b77ee6ea5312e
302e30a450343030`)
	vecHelloOK = mustHex(`a1810000003296002acf0000018bcfe5687b1ecd1000c4201b04acbb8d151699f13e597ee8
9b973c9ef642239b991dda3d17df243a3451ad`)
	vecHeartbeat0   = mustHex(`a1020001000a9100de040dabe247bf76`)
	vecHeartbeatAck = mustHex(`a182000100159400cf0000018bcfe56be8001e0ac7a4f74038089b`)
	vecHeartbeat1   = mustHex(`a1020002000a91004c9fb97566447a7c`)
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

var (
	open   = Limits{MaxLen: MinMaxFrame}
	tagged = Limits{MaxLen: MinMaxFrame, Tagged: true}
)

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Type: 0x82, Seq: 0xBEEF, Len: 0x0102}
	var b [HeaderSize]byte
	PutHeader(b[:], h)
	if got := AppendHeader(nil, h); !bytes.Equal(got, b[:]) {
		t.Fatalf("AppendHeader %x, PutHeader %x", got, b)
	}
	if !bytes.Equal(b[:], []byte{0xA1, 0x82, 0xBE, 0xEF, 0x01, 0x02}) {
		t.Fatalf("bytes %x", b)
	}
	got, err := ParseHeader(b[:])
	if err != nil || got != h {
		t.Fatalf("ParseHeader = %+v, %v", got, err)
	}
}

func TestSpecVectorsFrame(t *testing.T) {
	cases := []struct {
		name string
		raw  []byte
		lim  Limits
		typ  byte
		seq  uint16
		body int
	}{
		{"hello", vecHello, open, 0x01, 0, 0x4c},
		{"hello_ok", vecHelloOK, open, 0x81, 0, 0x32},
		{"heartbeat0", vecHeartbeat0, tagged, 0x02, 1, 2},
		{"heartbeat_ack", vecHeartbeatAck, tagged, 0x82, 1, 0x15 - TagSize},
		{"heartbeat1", vecHeartbeat1, tagged, 0x02, 2, 2},
	}
	for _, c := range cases {
		f, err := Split(c.raw, c.lim)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if f.Header.Type != c.typ || f.Header.Seq != c.seq || len(f.Body) != c.body || f.Size() != len(c.raw) {
			t.Fatalf("%s: header %+v body %d size %d", c.name, f.Header, len(f.Body), f.Size())
		}
		if c.lim.Tagged && (len(f.Tag) != TagSize || len(f.Signed()) != len(c.raw)-TagSize) {
			t.Fatalf("%s: tag %x", c.name, f.Tag)
		}
	}
}

// Every split of a stream of frames must yield the same frames, in order.
func TestEverySplit(t *testing.T) {
	stream := append(append(append([]byte{}, vecHeartbeat0...), vecHeartbeatAck...), vecHeartbeat1...)
	want := [][]byte{vecHeartbeat0, vecHeartbeatAck, vecHeartbeat1}
	for cut1 := 0; cut1 <= len(stream); cut1++ {
		for cut2 := cut1; cut2 <= len(stream); cut2++ {
			var buf []byte
			var got [][]byte
			for _, seg := range [][]byte{stream[:cut1], stream[cut1:cut2], stream[cut2:]} {
				buf = append(buf, seg...)
				for {
					f, err := Split(buf, tagged)
					if errors.Is(err, ErrIncomplete) {
						break
					}
					if err != nil {
						t.Fatalf("cuts %d,%d: %v", cut1, cut2, err)
					}
					got = append(got, append([]byte(nil), f.Raw...))
					buf = buf[f.Size():]
				}
			}
			if len(got) != len(want) || len(buf) != 0 {
				t.Fatalf("cuts %d,%d: %d frames, %d left", cut1, cut2, len(got), len(buf))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("cuts %d,%d frame %d: %x", cut1, cut2, i, got[i])
				}
			}
		}
	}
}

func TestHeaderFaults(t *testing.T) {
	big := []byte{0xA1, 0x01, 0x00, 0x07, 0x10, 0x01} // len 4097
	cases := []struct {
		name string
		raw  []byte
		lim  Limits
		err  error
		seq  uint16
	}{
		{"bad magic", []byte{0x47, 0x45, 0x54, 0x20, 0x2f, 0x20}, open, ErrBadMagic, 0x5420},
		{"version 2", []byte{0xA2, 0x01, 0, 1, 0, 1, 0x90}, open, ErrBadMagic, 1},
		{"len 0", []byte{0xA1, 0x01, 0, 3, 0, 0}, open, ErrEmpty, 3},
		{"too large before body", big, open, ErrTooLarge, 7},
		{"too large tagged", big, tagged, ErrTooLarge, 7},
		{"tagged len 0", []byte{0xA1, 0x02, 0, 1, 0, 0}, tagged, ErrNoTag, 1},
		{"tagged len 8", []byte{0xA1, 0x02, 0, 1, 0, 8}, tagged, ErrNoTag, 1},
		{"max_frame raised", big, Limits{MaxLen: 8192, Tagged: true}, ErrIncomplete, 7},
		{"short header", []byte{0xA1, 0x01, 0}, open, ErrIncomplete, 0},
	}
	for _, c := range cases {
		f, err := Split(c.raw, c.lim)
		if !errors.Is(err, c.err) {
			t.Fatalf("%s: err %v, want %v", c.name, err, c.err)
		}
		if f.Header.Seq != c.seq {
			t.Fatalf("%s: seq %d, want %d", c.name, f.Header.Seq, c.seq)
		}
	}
}

func TestBufferedSource(t *testing.T) {
	stream := append(append([]byte{}, vecHello...), vecHelloOK...)
	src := &BufferedSource{R: bufio.NewReaderSize(iotestOneByte(stream), MaxFrameBytes)}
	for i, want := range [][]byte{vecHello, vecHelloOK} {
		f, err := Next(src, open)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Raw, want) {
			t.Fatalf("frame %d: %x", i, f.Raw)
		}
		src.Discard(f.Size())
	}
	if _, err := Next(src, open); !errors.Is(err, ErrIncomplete) || src.Err() == nil {
		t.Fatalf("at EOF: %v, %v", err, src.Err())
	}
}

// iotestOneByte returns a reader that yields one byte per Read, the worst
// split a TCP stream can produce.
func iotestOneByte(b []byte) *oneByte { return &oneByte{b: b} }

type oneByte struct{ b []byte }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, errEOF
	}
	p[0] = o.b[0]
	o.b = o.b[1:]
	return 1, nil
}

var errEOF = errors.New("EOF")

func FuzzSplit(f *testing.F) {
	for _, v := range [][]byte{vecHello, vecHelloOK, vecHeartbeat0, vecHeartbeatAck, vecHeartbeat1, {0xA1, 0x01, 0, 0, 0, 0}} {
		f.Add(v, false)
		f.Add(v, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, isTagged bool) {
		lim := open
		if isTagged {
			lim = tagged
		}
		for len(b) > 0 {
			fr, err := Split(b, lim)
			if err != nil {
				return
			}
			if fr.Size() < HeaderSize+1 || fr.Size() > HeaderSize+lim.MaxLen || fr.Size() > len(b) {
				t.Fatalf("frame size %d of %d", fr.Size(), len(b))
			}
			if int(fr.Header.Len) != len(fr.Body)+len(fr.Tag) {
				t.Fatalf("len %d body %d tag %d", fr.Header.Len, len(fr.Body), len(fr.Tag))
			}
			b = b[fr.Size():]
		}
	})
}

// BenchmarkSplit reads coalesced heartbeats from one buffer; it must report
// 0 allocs/op.
func BenchmarkSplit(b *testing.B) {
	var stream []byte
	for i := 0; i < 64; i++ {
		stream = append(stream, vecHeartbeat0...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(vecHeartbeat0)))
	s := stream
	for i := 0; i < b.N; i++ {
		if len(s) == 0 {
			s = stream
		}
		f, err := Split(s, tagged)
		if err != nil {
			b.Fatal(err)
		}
		s = s[f.Size():]
	}
}

// sliceSource is a Source over a slice, for testing Next.
type sliceSource []byte

func (s *sliceSource) Peek(n int) ([]byte, error) {
	if n > len(*s) {
		return nil, ErrIncomplete
	}
	return (*s)[:n], nil
}

func (s *sliceSource) InboundBuffered() int { return len(*s) }

func (s *sliceSource) Discard(n int) { *s = (*s)[n:] }

// BenchmarkNext reads coalesced heartbeats through the Source interface,
// as the server does on gnet's buffer; it must report 0 allocs/op.
func BenchmarkNext(b *testing.B) {
	var stream []byte
	for i := 0; i < 64; i++ {
		stream = append(stream, vecHeartbeat0...)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(vecHeartbeat0)))
	s := &sliceSource{}
	for i := 0; i < b.N; i++ {
		if len(*s) == 0 {
			*s = stream
		}
		f, err := Next(s, tagged)
		if err != nil {
			b.Fatal(err)
		}
		s.Discard(f.Size())
	}
}

// Next must agree with Split on every prefix of a stream.
func TestNextMatchesSplit(t *testing.T) {
	stream := append(append([]byte{}, vecHello...), 0xA1, 0x01, 0, 9, 0x10, 0x01)
	for i := 0; i <= len(stream); i++ {
		s := sliceSource(stream[:i])
		f1, err1 := Next(&s, open)
		f2, err2 := Split(stream[:i], open)
		if err1 != err2 || f1.Header != f2.Header || !bytes.Equal(f1.Raw, f2.Raw) {
			t.Fatalf("prefix %d: Next %v %+v, Split %v %+v", i, err1, f1.Header, err2, f2.Header)
		}
	}
}
