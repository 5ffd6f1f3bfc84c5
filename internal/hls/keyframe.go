package hls

import "github.com/pion/rtp"

// payloadOf returns the RTP payload of pkt without its padding, or nil when
// pkt is not a well-formed RTP packet.
func payloadOf(pkt []byte) []byte {
	var h rtp.Header
	n, err := h.Unmarshal(pkt)
	if err != nil || n > len(pkt) {
		return nil
	}
	end := len(pkt)
	if h.Padding {
		if end == n {
			return nil
		}
		pad := int(pkt[end-1])
		if pad == 0 || end-pad < n {
			return nil
		}
		end -= pad
	}
	return pkt[n:end]
}

// frameKind says what a video packet starts, as far as the packager cares:
// where a decoder (or a copying muxer) can begin.
type frameKind int

const (
	frameOther frameKind = iota
	// frameKey starts a keyframe.
	frameKey
	// frameKeyWithParams starts a keyframe that carries its own decoder
	// parameters (H.264 SPS), so that ffmpeg can start from it. For VP8
	// and VP9 every keyframe does.
	frameKeyWithParams
)

// h264Kind classifies an H.264 RTP payload (RFC 6184): single NAL units,
// STAP-A and FU-A, the modes WebRTC senders and OBS use.
func h264Kind(p []byte) frameKind {
	if len(p) < 1 {
		return frameOther
	}
	switch t := p[0] & 0x1f; {
	case t == 7:
		return frameKeyWithParams
	case t == 5:
		return frameKey
	case t == 24: // STAP-A: 16-bit size, then the NAL unit, repeated
		kind := frameOther
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				break
			}
			switch p[i] & 0x1f {
			case 7:
				return frameKeyWithParams
			case 5:
				kind = frameKey
			}
			i += size
		}
		return kind
	case t == 28: // FU-A: only the first fragment starts the NAL unit
		if len(p) >= 2 && p[1]&0x80 != 0 && p[1]&0x1f == 5 {
			return frameKey
		}
	}
	return frameOther
}

// vp8Kind classifies a VP8 RTP payload (RFC 7741): a keyframe starts in the
// first packet of partition 0 whose frame header has the P bit clear.
func vp8Kind(p []byte) frameKind {
	if len(p) < 1 {
		return frameOther
	}
	start := p[0]&0x10 != 0 && p[0]&0x07 == 0
	i := 1
	if p[0]&0x80 != 0 { // X: extension byte follows
		if len(p) < 2 {
			return frameOther
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(p) <= i {
				return frameOther
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if !start || len(p) <= i {
		return frameOther
	}
	if p[i]&0x01 == 0 {
		return frameKeyWithParams
	}
	return frameOther
}

// vp9Kind classifies a VP9 RTP payload (RFC 9628): a keyframe starts where
// a frame begins (B) that is not inter-predicted (P clear).
func vp9Kind(p []byte) frameKind {
	if len(p) < 1 {
		return frameOther
	}
	if p[0]&0x08 != 0 && p[0]&0x40 == 0 {
		return frameKeyWithParams
	}
	return frameOther
}
