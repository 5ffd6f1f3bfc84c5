package rewrite

import (
	"encoding/binary"
	"errors"
	"time"
)

// Codec says how to read a packet's payload: where keyframes start and which
// payload fields need rewriting.
type Codec uint8

// The codecs the rewriter understands.
const (
	// Audio is any codec without keyframes (Opus): every packet may start
	// the stream, so a switch happens at once.
	Audio Codec = iota + 1
	// VP8 is RFC 7741: keyframes from the payload header, picture ID and
	// TL0PICIDX rewritten.
	VP8
	// H264 is RFC 6184 (packetization mode 1): keyframes from SPS and IDR
	// NAL units in single NAL unit, STAP-A and FU-A packets.
	H264
)

func (c Codec) String() string {
	switch c {
	case Audio:
		return "audio"
	case VP8:
		return "vp8"
	case H264:
		return "h264"
	}
	return "unknown"
}

// Errors from Parse. They describe a malformed packet, which the caller
// drops; they never mean the rewriter is in a bad state.
var (
	ErrShort   = errors.New("rewrite: packet too short")
	ErrVersion = errors.New("rewrite: not RTP version 2")
	ErrCodec   = errors.New("rewrite: unknown codec")
)

// Packet is one publisher packet, parsed once and then rewritten for every
// subscriber. It refers to Raw; it copies nothing.
type Packet struct {
	// Raw is the packet as received from the publisher.
	Raw []byte
	// Layer is the simulcast layer the packet belongs to (0 is the lowest);
	// set by the caller, who knows which track it came from.
	Layer int
	// Arrival is when the packet was received; it gives the wall-clock gap
	// that keeps timestamps continuous across a layer switch.
	Arrival time.Time

	Marker      bool
	PayloadType uint8
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32

	// headerEnd is the offset of the payload (after CSRCs and the header
	// extension); payloadEnd excludes the padding.
	csrcEnd    int
	headerEnd  int
	payloadEnd int

	// Keyframe reports that the packet starts a keyframe: a decoder that
	// has seen nothing of this layer can start here.
	Keyframe bool

	vp8 vp8Fields
}

// vp8Fields locates the VP8 payload descriptor fields the rewriter changes.
// Offsets are from the start of Raw; 0 means absent.
type vp8Fields struct {
	pictureID    uint16
	pictureIDOff int
	pictureIDLen int // 1 (7-bit ID) or 2 (15-bit ID)
	tl0          uint8
	tl0Off       int
}

// Parse reads raw, an RTP packet of the given codec and simulcast layer,
// into p, replacing what p held. It allocates nothing.
func Parse(p *Packet, raw []byte, codec Codec, layer int, arrival time.Time) error {
	*p = Packet{Raw: raw, Layer: layer, Arrival: arrival}
	if len(raw) < 12 {
		return ErrShort
	}
	if raw[0]>>6 != 2 {
		return ErrVersion
	}
	p.Marker = raw[1]&0x80 != 0
	p.PayloadType = raw[1] & 0x7f
	p.Seq = binary.BigEndian.Uint16(raw[2:])
	p.Timestamp = binary.BigEndian.Uint32(raw[4:])
	p.SSRC = binary.BigEndian.Uint32(raw[8:])
	off := 12 + 4*int(raw[0]&0x0f)
	p.csrcEnd = off
	if off > len(raw) {
		return ErrShort
	}
	if raw[0]&0x10 != 0 {
		if off+4 > len(raw) {
			return ErrShort
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(raw[off+2:]))
		if off > len(raw) {
			return ErrShort
		}
	}
	p.headerEnd = off
	end := len(raw)
	if raw[0]&0x20 != 0 {
		pad := int(raw[end-1])
		if pad == 0 || end-pad < off {
			return ErrShort
		}
		end -= pad
	}
	p.payloadEnd = end
	payload := raw[off:end]
	switch codec {
	case Audio:
		p.Keyframe = true
	case VP8:
		return parseVP8(p, payload, off)
	case H264:
		p.Keyframe = h264Keyframe(payload)
	default:
		return ErrCodec
	}
	return nil
}

// parseVP8 reads the RFC 7741 payload descriptor; base is the payload's
// offset in the packet.
func parseVP8(p *Packet, payload []byte, base int) error {
	if len(payload) == 0 {
		// A padding-only packet (bandwidth probing) carries no frame.
		return nil
	}
	b0 := payload[0]
	i := 1
	if b0&0x80 != 0 { // X: extended control bits present
		if len(payload) < 2 {
			return ErrShort
		}
		x := payload[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID
			if i >= len(payload) {
				return ErrShort
			}
			if payload[i]&0x80 != 0 { // M: 15-bit picture ID
				if i+1 >= len(payload) {
					return ErrShort
				}
				p.vp8.pictureID = binary.BigEndian.Uint16(payload[i:]) & 0x7fff
				p.vp8.pictureIDOff = base + i
				p.vp8.pictureIDLen = 2
				i += 2
			} else {
				p.vp8.pictureID = uint16(payload[i])
				p.vp8.pictureIDOff = base + i
				p.vp8.pictureIDLen = 1
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			if i >= len(payload) {
				return ErrShort
			}
			p.vp8.tl0 = payload[i]
			p.vp8.tl0Off = base + i
			i++
		}
		if x&0x30 != 0 { // T or K: TID / KEYIDX byte
			i++
		}
	}
	if i >= len(payload) {
		return ErrShort
	}
	// A keyframe starts in the packet that starts partition 0 (S=1,
	// PID=0) and whose VP8 payload header has the inverse key frame flag
	// P clear.
	start := b0&0x10 != 0 && b0&0x07 == 0
	p.Keyframe = start && payload[i]&0x01 == 0
	return nil
}

// NAL unit types of H.264 that matter here.
const (
	nalIDR   = 5
	nalSPS   = 7
	nalSTAPA = 24
	nalFUA   = 28
)

// h264Keyframe reports whether an RFC 6184 payload starts a keyframe: it
// carries an SPS or the start of an IDR slice. Encoders (Chromium, OBS) send
// SPS and PPS just before each IDR, usually together in one STAP-A, so a
// switch there hands the decoder everything it needs.
func h264Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	switch typ := payload[0] & 0x1f; typ {
	case nalSTAPA:
		for i := 1; i+2 < len(payload); {
			size := int(binary.BigEndian.Uint16(payload[i:]))
			i += 2
			if size == 0 || i+size > len(payload) {
				return false
			}
			if t := payload[i] & 0x1f; t == nalIDR || t == nalSPS {
				return true
			}
			i += size
		}
		return false
	case nalFUA:
		if len(payload) < 2 {
			return false
		}
		fu := payload[1]
		t := fu & 0x1f
		return fu&0x80 != 0 && (t == nalIDR || t == nalSPS)
	default:
		return typ == nalIDR || typ == nalSPS
	}
}
