package rtc

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// Packet is one RTP packet the subscriber received, for Options.OnPacket.
type Packet struct {
	Mid     string // the subscriber transceiver it came on
	Video   bool
	Payload []byte // the RTP payload, valid only during the call
	At      time.Time
}

// TrackStats counts what arrived on one subscriber transceiver. The
// server reuses transceivers as tiles change; the counts stay with the
// transceiver, whose sequence numbers stay continuous.
type TrackStats struct {
	Mid      string
	Video    bool
	Packets  uint64 // RTP packets received
	Bytes    uint64 // payload bytes received
	Expected uint64 // sequence numbers from the lowest to the highest seen: Expected − Packets were lost
}

// Stats is what the subscriber connection received so far.
type Stats struct {
	Tracks                     []TrackStats // by mid
	Packets, Bytes, Expected   uint64       // over all tracks
	VideoPackets, AudioPackets uint64
}

// trackRecv is what arrived on one subscriber transceiver.
type trackRecv struct {
	mu       sync.Mutex
	video    bool
	started  bool
	firstSeq uint64 // extended
	maxSeq   uint64 // extended
	packets  uint64
	bytes    uint64
}

// Stats returns the receive counters now.
func (p *Participant) Stats() Stats {
	p.mu.Lock()
	recv := make(map[string]*trackRecv, len(p.recv))
	for mid, r := range p.recv {
		recv[mid] = r
	}
	p.mu.Unlock()
	var s Stats
	for mid, r := range recv {
		r.mu.Lock()
		t := TrackStats{Mid: mid, Video: r.video, Packets: r.packets, Bytes: r.bytes}
		if r.started {
			t.Expected = r.maxSeq - r.firstSeq + 1
		}
		r.mu.Unlock()
		s.Tracks = append(s.Tracks, t)
		s.Packets += t.Packets
		s.Bytes += t.Bytes
		s.Expected += t.Expected
		if t.Video {
			s.VideoPackets += t.Packets
		} else {
			s.AudioPackets += t.Packets
		}
	}
	slices.SortFunc(s.Tracks, func(a, b TrackStats) int { return strings.Compare(a.Mid, b.Mid) })
	return s
}

// onTrack counts what arrives on one subscriber transceiver.
func (p *Participant) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	mid := ""
	for _, tr := range p.sub.GetTransceivers() {
		if tr.Receiver() == receiver {
			mid = tr.Mid()
		}
	}
	r := &trackRecv{video: remote.Kind() == webrtc.RTPCodecTypeVideo}
	p.mu.Lock()
	if old := p.recv[mid]; old != nil {
		r = old
	} else {
		p.recv[mid] = r
	}
	p.mu.Unlock()
	p.spawn(func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := remote.Read(buf)
			if err != nil {
				return
			}
			p.received(mid, r, buf[:n], time.Now())
		}
	})
}

// received accounts one packet: no allocation, no decoding beyond the
// RTP header, so that a process with many participants keeps up.
func (p *Participant) received(mid string, r *trackRecv, b []byte, now time.Time) {
	if len(b) < 12 {
		return
	}
	seq := binary.BigEndian.Uint16(b[2:])
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 && off+4 <= len(b) {
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > 12 {
		end -= int(b[end-1])
	}
	if off > end {
		return
	}
	payload := b[off:end]
	r.mu.Lock()
	if !r.started {
		r.started = true
		r.firstSeq = uint64(seq) + 1<<16
		r.maxSeq = r.firstSeq
	} else {
		// Extend the 16-bit sequence number around the highest seen.
		ext := r.maxSeq&^0xffff | uint64(seq)
		switch {
		case ext+0x8000 < r.maxSeq:
			ext += 1 << 16
		case ext > r.maxSeq+0x8000 && ext >= 1<<16:
			ext -= 1 << 16
		}
		if ext > r.maxSeq {
			r.maxSeq = ext
		}
		if ext < r.firstSeq {
			r.firstSeq = ext
		}
	}
	r.packets++
	r.bytes += uint64(len(payload))
	video := r.video
	r.mu.Unlock()
	if p.opt.OnPacket != nil {
		p.opt.OnPacket(Packet{Mid: mid, Video: video, Payload: payload, At: now})
	}
}
