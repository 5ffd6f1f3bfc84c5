package sfu

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"

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
type downTrack struct {
	id, stream string
	kind       webrtc.RTPCodecType
	mime       string

	mu     sync.Mutex // serialises writes: one header, shared
	w      webrtc.TrackLocalWriter
	bindID string
	ssrc   uint32
	pt     uint8
	hdr    rtp.Header
}

func newDownTrack(kind webrtc.RTPCodecType, mime, id string) *downTrack {
	return &downTrack{id: id, stream: id, kind: kind, mime: mime}
}

// Bind is called by the RTPSender once the transceiver is negotiated.
func (t *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, t.mime) {
			t.mu.Lock()
			t.w, t.bindID = ctx.WriteStream(), ctx.ID()
			t.ssrc, t.pt = uint32(ctx.SSRC()), uint8(c.PayloadType)
			t.mu.Unlock()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
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
func (t *downTrack) Write(b []byte) (int, error) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, errors.New("sfu: not an RTP packet")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w == nil {
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
	if _, err := t.w.WriteRTP(h, payload); err != nil {
		return 0, err
	}
	return len(b), nil
}
