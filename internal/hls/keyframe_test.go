package hls

import (
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

func TestFrameKinds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    func([]byte) frameKind
		payload []byte
		want    frameKind
	}{
		{"h264 SPS", h264Kind, []byte{0x67, 0x42}, frameKeyWithParams},
		{"h264 IDR", h264Kind, []byte{0x65, 0x88}, frameKey},
		{"h264 non-IDR", h264Kind, []byte{0x41, 0x9a}, frameOther},
		{"h264 STAP-A SPS PPS", h264Kind, []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, frameKeyWithParams},
		{"h264 STAP-A SEI IDR", h264Kind, []byte{0x78, 0, 2, 0x06, 0x05, 0, 2, 0x65, 0x88}, frameKey},
		{"h264 STAP-A truncated", h264Kind, []byte{0x78, 0, 9, 0x67}, frameOther},
		{"h264 FU-A IDR start", h264Kind, []byte{0x7c, 0x85, 0x88}, frameKey},
		{"h264 FU-A IDR middle", h264Kind, []byte{0x7c, 0x05, 0x88}, frameOther},
		{"h264 empty", h264Kind, nil, frameOther},
		{"vp8 keyframe, no extension", vp8Kind, []byte{0x10, 0x50}, frameKeyWithParams},
		{"vp8 interframe", vp8Kind, []byte{0x10, 0x51}, frameOther},
		{"vp8 keyframe, 15-bit picture ID", vp8Kind, []byte{0x90, 0x80, 0x81, 0x23, 0x50}, frameKeyWithParams},
		{"vp8 keyframe, picture ID, TL0PICIDX, TID", vp8Kind, []byte{0x90, 0xe0, 0x12, 0x01, 0x40, 0x50}, frameKeyWithParams},
		{"vp8 continuation packet", vp8Kind, []byte{0x00, 0x50}, frameOther},
		{"vp8 partition 1", vp8Kind, []byte{0x11, 0x50}, frameOther},
		{"vp8 truncated", vp8Kind, []byte{0x90, 0x80}, frameOther},
		{"vp9 keyframe start", vp9Kind, []byte{0x08, 0x00}, frameKeyWithParams},
		{"vp9 inter frame", vp9Kind, []byte{0x48, 0x00}, frameOther},
		{"vp9 keyframe continuation", vp9Kind, []byte{0x00, 0x00}, frameOther},
	} {
		if got := tc.kind(tc.payload); got != tc.want {
			t.Errorf("%s: kind %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestH264KindOfPionPackets classifies what a WebRTC sender (Pion's
// payloader) makes of a keyframe access unit: SPS and PPS aggregated, the
// IDR fragmented.
func TestH264KindOfPionPackets(t *testing.T) {
	idr := make([]byte, 3000)
	idr[0] = 0x65
	au := append([]byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1}, idr...)
	packets := (&codecs.H264Payloader{}).Payload(1200, au)
	if len(packets) < 3 {
		t.Fatalf("%d packets", len(packets))
	}
	if k := h264Kind(packets[0]); k != frameKeyWithParams {
		t.Errorf("first packet (type %d): kind %d, want keyframe with parameters", packets[0][0]&0x1f, k)
	}
	if k := h264Kind(packets[1]); k != frameKey {
		t.Errorf("IDR start (type %d): kind %d, want keyframe", packets[1][0]&0x1f, k)
	}
	for _, p := range packets[2:] {
		if k := h264Kind(p); k != frameOther {
			t.Errorf("IDR fragment: kind %d", k)
		}
	}
}

func TestPayloadOf(t *testing.T) {
	h := rtp.Header{Version: 2, Padding: true, PaddingSize: 4}
	if err := h.SetExtension(1, []byte{9}); err != nil {
		t.Fatal(err)
	}
	pkt, err := (&rtp.Packet{Header: h, Payload: []byte{1, 2, 3}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got := payloadOf(pkt); string(got) != "\x01\x02\x03" {
		t.Errorf("payload %v, want 1 2 3", got)
	}
	for _, bad := range [][]byte{nil, {0x80}, {0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13}} {
		if got := payloadOf(bad); got != nil {
			t.Errorf("payloadOf(%v) = %v, want nil", bad, got)
		}
	}
}

func BenchmarkWriteKind(b *testing.B) {
	pkt := rtpPacket(1, 0, append([]byte{0x7c, 0x05}, make([]byte, 1100)...)...)
	b.ReportAllocs()
	for b.Loop() {
		if h264Kind(payloadOf(pkt)) != frameOther {
			b.Fatal("kind")
		}
	}
}
