package rewrite

import (
	"errors"
	"testing"
)

// rtpHeader is a plain 12-byte header with sequence number 1.
var rtpHeader = []byte{0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}

func withPayload(payload ...byte) []byte {
	return append(append([]byte(nil), rtpHeader...), payload...)
}

func TestH264Keyframes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		key     bool
	}{
		{"single IDR slice", []byte{0x65, 0x88, 0x80}, true},
		{"single SPS", []byte{0x67, 0x42, 0xc0, 0x1f}, true},
		{"single PPS", []byte{0x68, 0xce, 0x3c, 0x80}, false},
		{"single non-IDR slice", []byte{0x41, 0x9a, 0x00}, false},
		{"STAP-A with SPS and PPS", []byte{0x78, 0, 3, 0x67, 0x42, 0xc0, 0, 2, 0x68, 0xce}, true},
		{"STAP-A with SEI and IDR", []byte{0x78, 0, 2, 0x06, 0x05, 0, 2, 0x65, 0x88}, true},
		{"STAP-A with slices only", []byte{0x78, 0, 2, 0x41, 0x9a, 0, 2, 0x41, 0x9b}, false},
		{"STAP-A with a size past the end", []byte{0x78, 0, 9, 0x67, 0x42}, false},
		{"STAP-A with a zero size", []byte{0x78, 0, 0, 0x67, 0x42}, false},
		{"FU-A start of IDR", []byte{0x7c, 0x85, 0x88}, true},
		{"FU-A middle of IDR", []byte{0x7c, 0x05, 0x88}, false},
		{"FU-A end of IDR", []byte{0x7c, 0x45, 0x88}, false},
		{"FU-A start of non-IDR", []byte{0x7c, 0x81, 0x9a}, false},
		{"FU-A without header", []byte{0x7c}, false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			if err := Parse(&p, withPayload(tc.payload...), H264, 0, base); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Keyframe != tc.key {
				t.Fatalf("Keyframe = %v, want %v", p.Keyframe, tc.key)
			}
		})
	}
}

func TestVP8Descriptor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		key     bool
		pid     uint16
		pidLen  int
		tl0     uint8
		err     error
	}{
		{"minimal keyframe start", []byte{0x10, 0x00, 0x9d}, true, 0, 0, 0, nil},
		{"minimal interframe", []byte{0x10, 0x01, 0x9d}, false, 0, 0, 0, nil},
		{"keyframe continuation (S=0)", []byte{0x00, 0x00}, false, 0, 0, 0, nil},
		{"keyframe in partition 1", []byte{0x11, 0x00}, false, 0, 0, 0, nil},
		{"7-bit picture ID", []byte{0x90, 0x80, 0x25, 0x00}, true, 0x25, 1, 0, nil},
		{"15-bit picture ID, TL0PICIDX, TID", []byte{0x90, 0xe0, 0x81, 0x02, 0x09, 0x40, 0x00}, true, 0x102, 2, 9, nil},
		{"KEYIDX only", []byte{0x90, 0x10, 0x05, 0x00}, true, 0, 0, 0, nil},
		{"truncated extension", []byte{0x90}, false, 0, 0, 0, ErrShort},
		{"truncated picture ID", []byte{0x90, 0x80}, false, 0, 0, 0, ErrShort},
		{"truncated 15-bit picture ID", []byte{0x90, 0x80, 0x81}, false, 0, 0, 0, ErrShort},
		{"truncated TL0PICIDX", []byte{0x90, 0x40}, false, 0, 0, 0, ErrShort},
		{"descriptor without payload", []byte{0x90, 0x20, 0x00}, false, 0, 0, 0, ErrShort},
		{"padding-only packet", nil, false, 0, 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := Parse(&p, withPayload(tc.payload...), VP8, 0, base)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Parse error = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if p.Keyframe != tc.key || p.vp8.pictureID != tc.pid || p.vp8.pictureIDLen != tc.pidLen || p.vp8.tl0 != tc.tl0 {
				t.Fatalf("got key=%v pid=%d/%d tl0=%d, want key=%v pid=%d/%d tl0=%d",
					p.Keyframe, p.vp8.pictureID, p.vp8.pictureIDLen, p.vp8.tl0, tc.key, tc.pid, tc.pidLen, tc.tl0)
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		err  error
	}{
		{"short", []byte{0x80, 96, 0}, ErrShort},
		{"version 1", []byte{0x40, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, ErrVersion},
		{"CSRC past the end", []byte{0x82, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, ErrShort},
		{"extension header past the end", []byte{0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe}, ErrShort},
		{"extension past the end", []byte{0x90, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 9}, ErrShort},
		{"padding past the start", []byte{0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x10, 0x00, 9}, ErrShort},
		{"zero padding", []byte{0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x10, 0x00, 0}, ErrShort},
		{"with CSRC", []byte{0x81, 0xe0, 0xff, 0xfe, 0, 0, 1, 0, 0, 0, 0, 9, 1, 2, 3, 4, 0x10, 0x00}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			if err := Parse(&p, tc.raw, VP8, 0, base); !errors.Is(err, tc.err) {
				t.Fatalf("Parse error = %v, want %v", err, tc.err)
			}
		})
	}
	var p Packet
	must(t, Parse(&p, []byte{0x81, 0xe0, 0xff, 0xfe, 0, 0, 1, 0, 0, 0, 0, 9, 1, 2, 3, 4, 0x10, 0x00}, VP8, 0, base))
	if !p.Marker || p.PayloadType != 96 || p.Seq != 0xfffe || p.Timestamp != 256 || p.SSRC != 9 || p.headerEnd != 16 || !p.Keyframe {
		t.Fatalf("parsed header wrong: %+v", p)
	}
	if err := Parse(&p, withPayload(0), Codec(99), 0, base); !errors.Is(err, ErrCodec) {
		t.Fatalf("unknown codec: error %v", err)
	}
}

// FuzzRewrite feeds arbitrary packets, layers and target changes to a
// rewriter: nothing may panic, and what it writes must fit and parse.
func FuzzRewrite(f *testing.F) {
	f.Add(vp8{seq: 1, key: true, ext: true, pad: 3}.build(), uint8(0), uint8(0), uint16(1))
	f.Add(vp8{layer: 2, seq: 65535, key: true}.build(), uint8(2), uint8(2), uint16(0))
	f.Add(withPayload(0x78, 0, 3, 0x67, 0x42, 0xc0), uint8(1), uint8(0x41), uint16(7))
	f.Add(withPayload(0x7c, 0x85, 0x88), uint8(0), uint8(0x80), uint16(65535))
	f.Add([]byte{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0xff, 0xff}, uint8(0), uint8(3), uint16(2))
	f.Fuzz(func(t *testing.T, raw []byte, layer, ctl uint8, nack uint16) {
		codec := []Codec{VP8, H264, Audio}[int(ctl>>6)%3]
		r, err := New(Options{SSRC: 1, Codec: codec, ClockRate: 90000, Target: int(layer % 3)})
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, 1500)
		for i := range 4 {
			var p Packet
			if Parse(&p, raw, codec, int(layer+uint8(i))%3, base) != nil {
				return
			}
			n := r.Rewrite(dst, &p)
			if n > len(raw) {
				t.Fatalf("wrote %d bytes from a %d-byte packet", n, len(raw))
			}
			if n > 0 {
				var q Packet
				if err := Parse(&q, dst[:n], codec, 0, base); err != nil {
					t.Fatalf("output does not parse: %v", err)
				}
			}
			if ctl&(1<<i) != 0 {
				r.SetTarget(int(ctl>>4)%4 - 1)
			}
			r.Lookup(nack + uint16(i))
			r.WantKeyframe()
			// Move the packet on so that later rounds exercise the
			// mapping, not just duplicates.
			if len(raw) >= 4 {
				raw[3]++
			}
		}
	})
}
