package sfu

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/media/srtpgcm"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// downTrack is the webrtc.TrackLocal of a slot. Pion's TrackLocalStaticRTP
// parses every packet written to it into a pooled rtp.Packet and copies the
// header once more per binding; the forwarder's packets are already
// rewritten (our SSRC, sequence numbers and timestamps, no header
// extensions), so a downTrack reads the twelve fixed header bytes into one
// reused rtp.Header and hands header and payload to the sender's writer:
// no parse of extensions, no allocation.
//
// A broadcast viewer's video downTrack may send either of two codecs (VP8
// or H.264, whichever the publisher sends): Bind records the payload type
// the receiver negotiated for each, and setCodec chooses the one written.
type downTrack struct {
	id, stream string
	kind       webrtc.RTPCodecType
	conn       *downConn // whose send path the packets take; nil: Pion's writer
	mimes      []string  // the codecs it may send, in order of preference

	mu     sync.Mutex // serialises writes: one header, shared
	w      webrtc.TrackLocalWriter
	bindID string
	ssrc   uint32
	cur    string  // the codec being sent
	pts    []uint8 // negotiated payload type per entry of mimes; 0 if none
	pt     uint8   // payload type of cur; 0 when not negotiated
	hdr    rtp.Header
	gcm    srtpgcm.Stream // the SSRC's rollover state on the direct path

	// What the sender reports say, counted here because the lock is
	// held for every packet anyway: the packets and payload octets sent
	// on the SSRC, and the newest frame's RTP timestamp with the wall
	// clock (Unix ns) at which its first packet went out.
	sent, octets uint32
	srTS         uint32
	srAt         int64
	srSeq        uint16
	clock        uint32 // the codec's RTP clock rate, from Bind
}

func newDownTrack(kind webrtc.RTPCodecType, mimes []string, id string) *downTrack {
	return &downTrack{id: id, stream: id, kind: kind, mimes: mimes, cur: mimes[0], pts: make([]uint8, len(mimes))}
}

// Bind is called by the RTPSender once the transceiver is negotiated. It
// returns the codec being sent (or the first negotiated one): the
// sender's reports take their clock rate from it, which is the same for
// all the codecs of a kind.
func (t *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var chosen *webrtc.RTPCodecParameters
	codecs := ctx.CodecParameters()
	for i, mime := range t.mimes {
		t.pts[i] = 0
		for j := range codecs {
			if strings.EqualFold(codecs[j].MimeType, mime) {
				t.pts[i] = uint8(codecs[j].PayloadType)
				if chosen == nil || strings.EqualFold(mime, t.cur) {
					chosen = &codecs[j]
				}
				break
			}
		}
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.w, t.bindID = ctx.WriteStream(), ctx.ID()
	t.ssrc = uint32(ctx.SSRC())
	t.clock = chosen.ClockRate
	t.pt = t.ptOfLocked(t.cur)
	return *chosen, nil
}

// ptOfLocked returns the negotiated payload type of a codec, or 0.
func (t *downTrack) ptOfLocked(mime string) uint8 {
	for i, m := range t.mimes {
		if strings.EqualFold(m, mime) {
			return t.pts[i]
		}
	}
	return 0
}

// setCodec chooses the codec written from now on. It reports false for a
// codec the track cannot send, or that the receiver did not negotiate once
// bound. An empty mime keeps the current codec.
func (t *downTrack) setCodec(mime string) bool {
	if mime == "" {
		return true
	}
	if !slices.ContainsFunc(t.mimes, func(m string) bool { return strings.EqualFold(m, mime) }) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cur = mime
	if t.w == nil {
		return true
	}
	t.pt = t.ptOfLocked(mime)
	return t.pt != 0
}

// Unbind is called when the sender stops.
func (t *downTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bindID == ctx.ID() {
		t.w, t.bindID = nil, ""
	}
	return nil
}

// ID implements webrtc.TrackLocal.
func (t *downTrack) ID() string { return t.id }

// RID implements webrtc.TrackLocal: a slot sends one encoding.
func (t *downTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (t *downTrack) StreamID() string { return t.stream }

// Kind implements webrtc.TrackLocal.
func (t *downTrack) Kind() webrtc.RTPCodecType { return t.kind }

// Write sends one RTP packet. The SSRC and payload type are the bound
// sender's, whatever the packet says. A packet with CSRCs or header
// extensions (the rewriter makes none) is parsed in full. Before the
// transceiver is negotiated (a slot is assigned, then offered) the packet
// is dropped without an error, as Pion's own tracks do: it is not a
// failing subscriber, and the keyframe asked for when the connection
// comes up starts its stream.
func (t *downTrack) Write(b []byte) (int, error) { return t.writeAt(b, time.Now()) }

// writeAt is Write with the packet's arrival time, which the sender
// reports' clock mapping takes instead of reading the clock.
func (t *downTrack) writeAt(b []byte, now time.Time) (int, error) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, errors.New("sfu: not an RTP packet")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil || t.pt == 0 {
		return len(b), nil
	}
	h := &t.hdr
	payload := b[12:]
	if b[0]&0x1f != 0 {
		n, err := h.Unmarshal(b)
		if err != nil {
			return 0, err
		}
		payload = b[n:]
	} else {
		h.Version = 2
		h.Padding = b[0]&0x20 != 0
		h.PaddingSize = 0 // padding, if any, stays in the payload as received
		h.Extension = false
		h.ExtensionProfile = 0
		h.Extensions = h.Extensions[:0]
		h.CSRC = h.CSRC[:0]
		h.Marker = b[1]&0x80 != 0
		h.SequenceNumber = binary.BigEndian.Uint16(b[2:])
		h.Timestamp = binary.BigEndian.Uint32(b[4:])
	}
	h.PayloadType = t.pt
	h.SSRC = t.ssrc
	var n int
	var err error
	path := pathPion
	if t.conn != nil {
		path = t.conn.path.Load()
	}
	switch path {
	case pathUndecided:
		return len(b), nil // not up yet: dropped, as Pion would
	case pathDirect:
		if d := t.conn.direct.Load(); d != nil {
			n, err = d.writeRTP(h, payload, &t.gcm)
			break
		}
		fallthrough
	default:
		n, err = t.w.WriteRTP(h, payload)
	}
	if err != nil {
		return 0, err
	}
	if n == 0 {
		// SRTP is not up yet: Pion dropped the packet, so the reports
		// do not count it.
		return len(b), nil
	}
	// As Pion's report interceptor did: a retransmission (older
	// sequence number) counts but moves no clock, and the clock is read
	// at the first packet of a frame only, so that a large frame's
	// packets do not drag the mapping late.
	if t.sent == 0 || (h.SequenceNumber-t.srSeq > 0 && h.SequenceNumber-t.srSeq < 0x8000) {
		t.srSeq = h.SequenceNumber
		if t.sent == 0 || h.Timestamp != t.srTS {
			t.noteFrame(h.Timestamp, now)
		}
	}
	t.sent++
	t.octets += uint32(len(payload))
	return len(b), nil
}

// noteFrame keeps the mapping of RTP time to the wall clock that the
// sender reports extrapolate from: the frame that went out least late.
// A frame forwarded late (the publisher's jitter, a queue on a busy
// server) would drag the mapping, and with it the receiver's audio and
// video alignment, back by its delay; it is kept only when it is on time
// or early by the current mapping, when it is a second off (a new
// timeline), or when the mapping is 2 s old (so that clock drift is
// followed). t.mu is held.
func (t *downTrack) noteFrame(ts uint32, at time.Time) {
	now := at.UnixNano()
	if t.sent != 0 && t.clock != 0 {
		due := t.srAt + int64(int32(ts-t.srTS))*int64(time.Second)/int64(t.clock)
		if late := now - due; late > 0 && late < int64(time.Second) && now-t.srAt < int64(2*time.Second) {
			return
		}
	}
	t.srTS, t.srAt = ts, now
}

// senderReport returns the RTCP sender report of the track's stream at
// now, or false before its first packet (RFC 3550 §6.4: a source that
// has sent nothing sends no SR). The RTP time of now is the newest
// frame's timestamp moved on by the wall-clock time since it was sent,
// at the stream's clock rate: the pair a receiver maps this stream's
// timestamps to the wall clock with, and so lines audio up with video.
func (t *downTrack) senderReport(now time.Time, clock uint32) (rtcp.SenderReport, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sent == 0 || t.w == nil {
		return rtcp.SenderReport{}, false
	}
	elapsed := time.Duration(now.UnixNano() - t.srAt)
	return rtcp.SenderReport{
		SSRC:        t.ssrc,
		NTPTime:     ntpTime(now),
		RTPTime:     t.srTS + uint32(int64(elapsed)*int64(clock)/int64(time.Second)),
		PacketCount: t.sent,
		OctetCount:  t.octets,
	}, true
}

// ntpTime returns t as a 64-bit NTP timestamp: seconds since 1900 in the
// high half, the fraction of a second in the low half.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}
