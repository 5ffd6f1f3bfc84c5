package sfu

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// fakeContext is the TrackLocalContext an RTPSender hands a track.
type fakeContext struct {
	id string
	w  *recordingWriter
}

func (c fakeContext) CodecParameters() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{codecOpus, codecVP8}
}
func (c fakeContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c fakeContext) SSRC() webrtc.SSRC                                      { return 0xabcdef01 }
func (c fakeContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c fakeContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c fakeContext) WriteStream() webrtc.TrackLocalWriter                   { return c.w }
func (c fakeContext) ID() string                                             { return c.id }
func (c fakeContext) RTCPReader() interceptor.RTCPReader                     { return nil }

// recordingWriter keeps what the track wrote, marshalled as it would go
// out.
type recordingWriter struct{ packets [][]byte }

func (w *recordingWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	b, err := (&rtp.Packet{Header: *h, Payload: payload}).Marshal()
	if err != nil {
		return 0, err
	}
	w.packets = append(w.packets, b)
	return len(b), nil
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.packets = append(w.packets, append([]byte(nil), b...))
	return len(b), nil
}

// TestDownTrack writes packets through a slot's track: the bound
// sender's SSRC and payload type replace the packet's, the rest of the
// header and the payload go out unchanged, with or without header
// extensions, and nothing is written before the track is bound.
func TestDownTrack(t *testing.T) {
	tr := newDownTrack(webrtc.RTPCodecTypeVideo, []string{webrtc.MimeTypeVP8}, "v0")
	plain := make([]byte, 112)
	plain[0], plain[1] = 0x80, 0x80|100 // marker, a payload type to replace
	binary.BigEndian.PutUint16(plain[2:], 4242)
	binary.BigEndian.PutUint32(plain[4:], 90000)
	binary.BigEndian.PutUint32(plain[8:], 1)
	for i := 12; i < len(plain); i++ {
		plain[i] = byte(i)
	}
	if n, err := tr.Write(plain); err != nil || n != len(plain) {
		t.Fatalf("unbound write: %d, %v; want the packet dropped quietly", n, err)
	}

	w := &recordingWriter{}
	codec, err := tr.Bind(fakeContext{id: "s1", w: w})
	if err != nil || codec.PayloadType != ptVP8 {
		t.Fatalf("bind: %+v, %v", codec, err)
	}
	if _, err := tr.Write(plain); err != nil {
		t.Fatal(err)
	}
	// The same packet with a one-byte header extension.
	ext := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 100, SequenceNumber: 4243, Timestamp: 90000, SSRC: 1}, Payload: plain[12:]})
	if err := ext.SetExtension(3, []byte{7}); err != nil {
		t.Fatal(err)
	}
	raw, err := ext.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Write(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Write([]byte{0x80, 1, 2}); err == nil {
		t.Fatal("a 3-byte packet was accepted")
	}
	if len(w.packets) != 2 {
		t.Fatalf("%d packets written, want 2", len(w.packets))
	}
	for i, b := range w.packets {
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if p.SSRC != 0xabcdef01 || p.PayloadType != ptVP8 || p.SequenceNumber != 4242+uint16(i) || p.Timestamp != 90000 {
			t.Fatalf("packet %d header %+v", i, p.Header)
		}
		if !bytes.Equal(p.Payload, plain[12:]) {
			t.Fatalf("packet %d payload changed", i)
		}
		if i == 0 && !p.Marker {
			t.Fatal("marker lost")
		}
	}

	// Unbinding another context keeps this one; unbinding it stops writes.
	_ = tr.Unbind(fakeContext{id: "other"})
	if _, err := tr.Write(plain); err != nil || len(w.packets) != 3 {
		t.Fatalf("after another context's unbind: %d packets, %v", len(w.packets), err)
	}
	_ = tr.Unbind(fakeContext{id: "s1"})
	if _, err := tr.Write(plain); err != nil || len(w.packets) != 3 {
		t.Fatalf("after unbind: %d packets, %v", len(w.packets), err)
	}
	if tr.Kind() != webrtc.RTPCodecTypeVideo || tr.ID() != "v0" || tr.StreamID() != "v0" || tr.RID() != "" {
		t.Fatal("track identity")
	}
}

// BenchmarkDownTrackWrite is the track's own cost per packet, without
// interceptors, SRTP or a socket: it must not allocate.
func BenchmarkDownTrackWrite(b *testing.B) {
	tr := newDownTrack(webrtc.RTPCodecTypeVideo, []string{webrtc.MimeTypeVP8}, "v0")
	if _, err := tr.Bind(fakeContext{id: "s1", w: nil}); err != nil {
		b.Fatal(err)
	}
	tr.w = discardWriter{}
	pkt := make([]byte, 1200)
	pkt[0], pkt[1] = 0x80, 96
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Write(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

type discardWriter struct{}

func (discardWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) { return len(payload), nil }
func (discardWriter) Write(b []byte) (int, error)                         { return len(b), nil }

// TestSenderReportMapping checks that a frame forwarded late does not drag
// the sender reports' RTP↔wall-clock mapping back by its delay, and that
// a frame on time moves it on.
func TestSenderReportMapping(t *testing.T) {
	tr := newDownTrack(webrtc.RTPCodecTypeVideo, []string{webrtc.MimeTypeVP8}, "v0")
	if _, err := tr.Bind(fakeContext{id: "b", w: &recordingWriter{}}); err != nil {
		t.Fatal(err)
	}
	frame := func(seq uint16, ts uint32) {
		t.Helper()
		b := make([]byte, 20)
		b[0], b[1] = 0x80, 96
		binary.BigEndian.PutUint16(b[2:], seq)
		binary.BigEndian.PutUint32(b[4:], ts)
		if _, err := tr.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	mapping := func() (uint32, int64) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.srTS, tr.srAt
	}
	frame(1, 90000)
	ts0, at0 := mapping()
	// The next frame is 10 ms of RTP time later but goes out at least
	// 200 ms later: late, so the mapping stays.
	time.Sleep(200 * time.Millisecond)
	frame(2, 90000+900)
	if ts, at := mapping(); ts != ts0 || at != at0 {
		t.Fatalf("a late frame moved the mapping to %d at %d (was %d at %d)", ts, at, ts0, at0)
	}
	// A frame a whole second of RTP time on, sent now, is early by the
	// mapping: it becomes the mapping.
	frame(3, 90000+90000)
	if ts, _ := mapping(); ts != 90000+90000 {
		t.Fatalf("an early frame left the mapping at %d", ts)
	}
}

// TestEstimateFollowsReports checks that a subscriber's loss-based
// estimate moves only while its receiver reports come: it holds before the
// first, grows on a recent one with little loss, falls on heavy loss, and
// holds again once they have stopped.
func TestEstimateFollowsReports(t *testing.T) {
	vw := &Viewer{lossEst: 1_000_000}
	sl := &slot{ssrc: 5}
	report := func(lost uint8) {
		b, err := (&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 5, FractionLost: lost}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		vw.down.handleRTCP(sl, b)
	}
	now := time.Now()
	for range 10 {
		vw.tick(now)
	}
	if vw.lossEst != 1_000_000 {
		t.Fatalf("estimate %d before any report, want the initial 1000000", vw.lossEst)
	}
	report(0)
	now = time.Now()
	vw.tick(now)
	grown := vw.lossEst
	if grown <= 1_000_000 {
		t.Fatalf("estimate %d after a report of no loss, want more than 1000000", grown)
	}
	later := now.Add(reportFresh)
	for range 10 {
		vw.tick(later)
	}
	if vw.lossEst != grown {
		t.Fatalf("estimate %d with the reports stopped, want it held at %d", vw.lossEst, grown)
	}
	report(64) // 25 %
	vw.tick(time.Now())
	if vw.lossEst >= grown {
		t.Fatalf("estimate %d after a report of 25 %% loss, want less than %d", vw.lossEst, grown)
	}
}
