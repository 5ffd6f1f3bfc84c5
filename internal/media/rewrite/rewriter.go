// Package rewrite turns the packets of a publisher's simulcast layers into
// the one continuous RTP stream a subscriber expects.
//
// Each simulcast layer is its own RTP stream, with its own SSRC, sequence
// numbers, timestamps and, for VP8, picture IDs. A subscriber receives one
// layer at a time and must not notice when the SFU moves it to another: the
// Rewriter switches only where the target layer starts a keyframe (the
// decoder can start nowhere else), gives the first packet after a switch the
// next sequence number (no gap for the subscriber to NACK), moves the
// timestamp on by the wall-clock time since the last forwarded packet, keeps
// VP8 picture IDs and TL0PICIDX counting, and drops what the old layer still
// sends. Inside a layer the mapping is a plain offset, so a packet lost
// upstream stays a gap downstream and the subscriber asks for it; Lookup
// maps that NACK back to the layer and sequence number to fetch from the
// publisher's packet cache.
//
// A Packet is parsed once per publisher packet (Parse) and rewritten once
// per subscriber (Rewriter.Rewrite) into a buffer the caller owns; neither
// allocates.
package rewrite

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// NoLayer is the target that forwards nothing (a tile that is off screen).
const NoLayer = -1

// history is how many layer segments Lookup remembers: a NACK concerns the
// last few hundred milliseconds, which span at most a couple of switches.
const history = 8

// Options configure a Rewriter.
type Options struct {
	// SSRC is written into every outgoing packet.
	SSRC uint32
	// Codec is the codec of all layers.
	Codec Codec
	// ClockRate is the RTP clock rate: 90000 for video, 48000 for Opus.
	ClockRate uint32
	// FirstSeq, FirstTimestamp and FirstPictureID are the values of the
	// first packet sent; pick them at random in production (RFC 3550 §5.1).
	FirstSeq       uint16
	FirstTimestamp uint32
	FirstPictureID uint16
	// Target is the layer to forward first.
	Target int
}

// segment is a run of output sequence numbers taken from one layer with
// one set of offsets. out = in + off for each field, modulo its width.
type segment struct {
	layer    int
	outStart uint16 // first output sequence number of the run
	outEnd   uint16 // newest output sequence number of the run
	seqOff   uint16
	tsOff    uint32
	pidOff   uint16
	tl0Off   uint8
}

// Rewriter is the state of one subscriber's view of one publisher track.
// Its methods are safe for concurrent use: forwarding, NACK handling and
// layer selection usually run on different goroutines.
type Rewriter struct {
	mu        sync.Mutex
	ssrc      uint32
	clockRate uint32
	first     struct {
		seq uint16
		ts  uint32
		pid uint16
	}

	target int // layer wanted, or NoLayer
	cur    int // layer being forwarded, or NoLayer while waiting

	segs [history]segment
	nseg int // segments in use, at most history
	head int // index of the newest segment

	// The newest packet forwarded, in output terms.
	started     bool
	lastSeq     uint16
	lastTS      uint32
	lastArrival time.Time
	lastPID     uint16
	lastTL0     uint8
	hasPID      bool
	hasTL0      bool
}

// New returns a Rewriter that waits for a keyframe of opts.Target.
func New(opts Options) (*Rewriter, error) {
	switch opts.Codec {
	case Audio, VP8, H264:
	default:
		return nil, fmt.Errorf("rewrite: %w %d", ErrCodec, opts.Codec)
	}
	if opts.ClockRate == 0 {
		return nil, fmt.Errorf("rewrite: clock rate is zero")
	}
	if opts.Target < NoLayer {
		return nil, fmt.Errorf("rewrite: target layer %d is invalid", opts.Target)
	}
	r := &Rewriter{
		ssrc:      opts.SSRC,
		clockRate: opts.ClockRate,
		target:    opts.Target,
		cur:       NoLayer,
	}
	r.first.seq = opts.FirstSeq
	r.first.ts = opts.FirstTimestamp
	r.first.pid = opts.FirstPictureID
	return r, nil
}

// SetTarget chooses the layer to forward. A switch happens at the next
// keyframe of that layer (ask the publisher for one while WantKeyframe says
// so); until then the current layer keeps flowing. NoLayer stops forwarding
// at once.
func (r *Rewriter) SetTarget(layer int) {
	if layer < NoLayer {
		layer = NoLayer
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target = layer
	if layer == NoLayer {
		r.cur = NoLayer
	}
}

// Layers returns the layer being forwarded and the one wanted; NoLayer for
// none.
func (r *Rewriter) Layers() (current, target int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, r.target
}

// WantKeyframe returns the layer whose keyframe the rewriter waits for to
// switch, and false when it waits for none.
func (r *Rewriter) WantKeyframe() (layer int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.target == NoLayer || r.target == r.cur {
		return 0, false
	}
	return r.target, true
}

// newer reports whether sequence number a comes after b in RTP order.
func newer(a, b uint16) bool { return a != b && a-b < 0x8000 }

// within reports whether x lies in the run from start to end inclusive.
func within(x, start, end uint16) bool { return x-start <= end-start }

// Rewrite writes p, rewritten for this subscriber, into dst and returns its
// length. It returns 0 when the packet is not forwarded: another layer than
// the one being sent, a packet from before the current switch, or a dst
// shorter than the packet. Header extensions are removed, because their IDs
// were negotiated with the publisher, not with this subscriber.
func (r *Rewriter) Rewrite(dst []byte, p *Packet) int {
	r.mu.Lock()
	defer r.mu.Unlock()

	if p.Keyframe && p.Layer == r.target && r.target != NoLayer && (p.Layer != r.cur || r.jumped(p)) {
		r.switchTo(p)
	}
	var seg *segment
	open := false
	if p.Layer == r.cur && r.nseg > 0 {
		s := &r.segs[r.head]
		out := p.Seq + s.seqOff
		var in bool
		switch {
		case !r.started:
			in = out == s.outStart
		case newer(out, r.lastSeq):
			in = true
		default:
			// Late: still ours if it is not from before the switch
			// and not hopelessly old.
			in = r.lastSeq-out <= maxJump && within(out, s.outStart, s.outEnd)
		}
		if in {
			seg, open = s, true
		}
	}
	if seg == nil {
		// A late or retransmitted packet of an earlier run is still part
		// of the subscriber's stream if its place in it is still free.
		seg = r.findClosed(p)
		if seg == nil {
			return 0
		}
	}

	raw := p.Raw
	n := p.csrcEnd + len(raw) - p.headerEnd
	if len(dst) < n {
		return 0
	}
	copy(dst, raw[:p.csrcEnd])
	copy(dst[p.csrcEnd:], raw[p.headerEnd:])
	dst[0] &^= 0x10 // no header extension
	out := p.Seq + seg.seqOff
	ts := p.Timestamp + seg.tsOff
	binary.BigEndian.PutUint16(dst[2:], out)
	binary.BigEndian.PutUint32(dst[4:], ts)
	binary.BigEndian.PutUint32(dst[8:], r.ssrc)

	shift := p.headerEnd - p.csrcEnd
	var pid uint16
	var tl0 uint8
	if v := &p.vp8; v.pictureIDLen != 0 {
		off := v.pictureIDOff - shift
		if v.pictureIDLen == 2 {
			pid = (v.pictureID + seg.pidOff) & 0x7fff
			binary.BigEndian.PutUint16(dst[off:], pid|0x8000)
		} else {
			pid = (v.pictureID + seg.pidOff) & 0x7f
			dst[off] = byte(pid)
		}
	}
	if v := &p.vp8; v.tl0Off != 0 {
		tl0 = v.tl0 + seg.tl0Off
		dst[v.tl0Off-shift] = tl0
	}

	if open && (!r.started || newer(out, r.lastSeq)) {
		r.started = true
		r.lastSeq = out
		r.lastTS = ts
		r.lastArrival = p.Arrival
		seg.outEnd = out
		if p.vp8.pictureIDLen != 0 {
			r.lastPID, r.hasPID = pid, true
		}
		if p.vp8.tl0Off != 0 {
			r.lastTL0, r.hasTL0 = tl0, true
		}
	}
	return n
}

// maxJump is how far a packet of the current layer may land from the newest
// one before it counts as a restart of the publisher's sequence numbers
// rather than reordering: reordering spans a few dozen packets.
const maxJump = 3000

// jumped reports whether p, of the current layer, lands so far from the
// newest packet forwarded that the publisher's numbering must have
// restarted; the rewriter then starts afresh at this keyframe.
func (r *Rewriter) jumped(p *Packet) bool {
	if r.nseg == 0 || !r.started {
		return false
	}
	d := p.Seq + r.segs[r.head].seqOff - r.lastSeq
	return d > maxJump && d < 1<<16-maxJump
}

// switchTo starts a new segment at keyframe p of the target layer.
func (r *Rewriter) switchTo(p *Packet) {
	s := segment{layer: p.Layer}
	if !r.started {
		s.outStart = r.first.seq
		s.tsOff = r.first.ts - p.Timestamp
		s.pidOff = r.first.pid - p.vp8.pictureID
	} else {
		s.outStart = r.lastSeq + 1
		gap := p.Arrival.Sub(r.lastArrival)
		ticks := uint32(1)
		if gap > 0 {
			// Round to the nearest tick; 1 at least, so that the new
			// frame never shares the last frame's timestamp.
			t := (uint64(gap)*uint64(r.clockRate) + uint64(time.Second)/2) / uint64(time.Second)
			if t > 1 {
				ticks = uint32(t)
			}
		}
		s.tsOff = r.lastTS + ticks - p.Timestamp
		if r.hasPID {
			s.pidOff = r.lastPID + 1 - p.vp8.pictureID
		} else {
			s.pidOff = r.first.pid - p.vp8.pictureID
		}
	}
	if r.hasTL0 {
		s.tl0Off = r.lastTL0 + 1 - p.vp8.tl0
	} else {
		s.tl0Off = -p.vp8.tl0 // count from 0, like the picture ID from its first value
	}
	s.seqOff = s.outStart - p.Seq
	s.outEnd = s.outStart - 1 // empty until the first packet passes
	if r.nseg > 0 {
		r.head = (r.head + 1) % history
	}
	if r.nseg < history {
		r.nseg++
	}
	r.segs[r.head] = s
	r.cur = p.Layer
}

// findClosed returns the segment, other than the open one, whose
// forwarded run p falls in, or nil.
func (r *Rewriter) findClosed(p *Packet) *segment {
	for i := range r.nseg {
		idx := (r.head - i + history) % history
		if i == 0 && r.cur != NoLayer {
			continue // the open segment was checked by the caller
		}
		s := &r.segs[idx]
		if s.layer != p.Layer || s.outEnd == s.outStart-1 {
			continue
		}
		if within(p.Seq+s.seqOff, s.outStart, s.outEnd) {
			return s
		}
	}
	return nil
}

// Lookup maps a sequence number the subscriber asked for (a NACK) to the
// layer and publisher sequence number to fetch from that layer's packet
// cache. It returns false for numbers never sent or too old to remember.
func (r *Rewriter) Lookup(seq uint16) (layer int, publisherSeq uint16, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.nseg {
		s := &r.segs[(r.head-i+history)%history]
		if s.outEnd == s.outStart-1 {
			continue
		}
		if within(seq, s.outStart, s.outEnd) {
			return s.layer, seq - s.seqOff, true
		}
	}
	return 0, 0, false
}
