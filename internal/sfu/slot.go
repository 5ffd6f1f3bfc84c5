package sfu

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/media/bwe"
	"github.com/liveclass/liveclass/internal/media/fanout"
	"github.com/liveclass/liveclass/internal/media/rewrite"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// slot is one transceiver of a subscriber connection's pool. It carries
// one published track at a time and keeps its SSRC, sequence numbers and
// timestamps continuous when it moves to another track, so that a tile
// change needs no renegotiation and the browser's receiver just sees a
// stream that continues with a keyframe.
type slot struct {
	c     *downConn
	kind  webrtc.RTPCodecType
	tr    *webrtc.RTPTransceiver
	track *downTrack
	ssrc  uint32
	mid   string // set once the transceiver is negotiated; guarded by the owner's lock

	// Guarded by the lock of the slot's owner (Peer or Viewer).
	up    *upTrack
	sel   *bwe.Selector // nil for a track without simulcast
	req   VideoRequest
	layer int // the layer asked of the forwarder
	// nextSR is when the slot's next sender report is due.
	nextSR time.Time

	// The forwarding goroutines and the RTCP handling read these
	// without a lock.
	sub atomic.Pointer[fanout.Subscriber]
	upA atomic.Pointer[upTrack]

	// cont keeps the stream continuous across tracks.
	cont continuity
}

// newSlot adds a send-only transceiver to c's connection and registers it
// for its RTCP. mimes lists the codecs the slot may send (nil: the
// interactive ones, Opus or VP8).
func newSlot(c *downConn, kind webrtc.RTPCodecType, name string, mimes []string) (*slot, error) {
	if mimes == nil {
		mimes = []string{webrtc.MimeTypeOpus}
		if kind == webrtc.RTPCodecTypeVideo {
			mimes = []string{webrtc.MimeTypeVP8}
		}
	}
	track := newDownTrack(kind, mimes, name)
	track.conn = c
	tr, err := c.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, fmt.Errorf("sfu: slot transceiver: %w", err)
	}
	sl := &slot{c: c, kind: kind, tr: tr, track: track}
	if enc := tr.Sender().GetParameters().Encodings; len(enc) > 0 {
		sl.ssrc = uint32(enc[0].SSRC)
	}
	c.addSlot(sl)
	return sl, nil
}

// continuity remembers where a stream stands (its newest sequence number,
// timestamp and when it was sent) so that the next track sent on the same
// SSRC continues it: a receiver sees one stream that goes on with a
// keyframe, not a new one.
type continuity struct {
	lastSeq atomic.Uint32 // bit 16 set once a packet was written
	lastTS  atomic.Uint32
	lastAt  atomic.Int64
}

// note records a packet written. Writes for one stream come from one
// layer's forwarding goroutine at a time, and retransmissions, which are
// older and ignored here. The clock is read at the first packet of each
// frame only, the instant its timestamp stands for: once per frame
// rather than once per packet per subscriber.
func (c *continuity) note(b []byte, now time.Time) {
	if len(b) < 12 {
		return
	}
	seq := uint32(binary.BigEndian.Uint16(b[2:]))
	if last := c.lastSeq.Load(); last&0x10000 == 0 || uint16(seq-last) < 0x8000 {
		c.lastSeq.Store(seq | 0x10000)
		if ts := binary.BigEndian.Uint32(b[4:]); last&0x10000 == 0 || ts != c.lastTS.Load() {
			c.lastTS.Store(ts)
			c.lastAt.Store(now.UnixNano())
		}
	}
}

// next returns the sequence number and timestamp the next track starts
// at: right after the last packet, the wall-clock gap later; random for a
// stream that has sent nothing.
func (c *continuity) next(clock uint32) (uint16, uint32) {
	if last := c.lastSeq.Load(); last&0x10000 != 0 {
		gap := max(time.Duration(time.Now().UnixNano()-c.lastAt.Load()), time.Millisecond)
		return uint16(last) + 1, c.lastTS.Load() + uint32(gap.Seconds()*float64(clock))
	}
	return uint16(rand.Uint32()), rand.Uint32()
}

// subscriber returns the slot's forwarder subscription, or nil.
func (sl *slot) subscriber() *fanout.Subscriber { return sl.sub.Load() }

// Write sends one rewritten packet to the participant; the forwarder calls
// it. It notes where the stream stands, for the next track of the slot.
func (sl *slot) Write(b []byte) (int, error) { return sl.WriteAt(b, time.Now()) }

// WriteAt is Write with the packet's arrival time (fanout.TimedWriter).
func (sl *slot) WriteAt(b []byte, now time.Time) (int, error) {
	sl.cont.note(b, now)
	n, err := sl.track.writeAt(b, now)
	if err == nil {
		sl.c.packets.Add(1)
		sl.c.bytes.Add(uint64(len(b)))
	}
	return n, err
}

// assign makes the slot carry t, for a subscriber whose tile is req.
func (sl *slot) assign(t *upTrack, req VideoRequest) error {
	if !sl.track.setCodec(t.info.Codec) {
		return fmt.Errorf("sfu: the receiver did not negotiate %s", t.info.Codec)
	}
	firstSeq, firstTS := sl.cont.next(t.clockRate())
	sl.sel, sl.layer = nil, 0
	if t.kind == webrtc.RTPCodecTypeVideo {
		if t.layers() > 1 {
			sel, err := bwe.New(bwe.Options{Layers: sl.c.srv.cfg.Layers[:t.layers()], Hold: sl.c.srv.cfg.LayerHold})
			if err != nil {
				return err
			}
			sl.sel = sel
		}
		if req.Width == 0 || req.Height == 0 {
			sl.layer = rewrite.NoLayer
		}
	}
	sub, err := t.fwd.Add(fanout.SubscriberOptions{
		Name:   sl.c.name + "←" + string(t.info.ID),
		Writer: sl, SSRC: sl.ssrc,
		FirstSeq: firstSeq, FirstTimestamp: firstTS, FirstPictureID: uint16(rand.Uint32()) & 0x7fff,
		Layer: sl.layer,
	})
	if err != nil {
		return err
	}
	sl.up, sl.req = t, req
	sl.upA.Store(t)
	sl.sub.Store(sub)
	return nil
}

// release stops forwarding to the slot.
func (sl *slot) release() {
	if sub := sl.sub.Swap(nil); sub != nil && sl.up != nil {
		sl.up.fwd.Remove(sub)
	}
	sl.upA.Store(nil)
	sl.up, sl.sel, sl.layer = nil, nil, 0
}

// choose picks the layer for the slot's video given its share of the
// estimate, switches to it, and returns the bitrate it takes.
func (sl *slot) choose(now time.Time, share int) int {
	layers := sl.c.srv.cfg.Layers
	want := 0
	switch {
	case sl.req.Width == 0 || sl.req.Height == 0:
		want = rewrite.NoLayer
	case sl.sel != nil:
		want = sl.sel.Select(now, share, sl.req.Width, sl.req.Height)
		if sl.up != nil {
			want = sl.up.liveLayer(want, now)
		}
	}
	if want != sl.layer {
		if sub := sl.subscriber(); sub != nil {
			if err := sub.SetLayer(want); err == nil {
				sl.layer = want
			}
		}
	}
	switch {
	case sl.layer == rewrite.NoLayer:
		return 0
	case sl.sel == nil:
		return layers[len(layers)-1].Bitrate
	}
	return layers[sl.layer].Bitrate
}

// reportInterval is the mean time between two sender reports of a
// stream: what Pion's report interceptor and browsers use, and plenty for
// lip sync and the round trip, which move slowly.
const reportInterval = time.Second

// appendReport appends the slot's sender report to out when one is due
// at now, and schedules the next at a random 0.75–1.25 intervals (RFC
// 3550 §6.3.1 randomises, so that the reports of many streams spread
// over time instead of leaving in bursts). The owner's lock is held.
func (sl *slot) appendReport(out []rtcp.Packet, now time.Time) []rtcp.Packet {
	if now.Before(sl.nextSR) {
		return out
	}
	sl.nextSR = now.Add(reportInterval*3/4 + rand.N(reportInterval/2))
	clock := uint32(90000)
	if sl.kind == webrtc.RTPCodecTypeAudio {
		clock = 48000
	}
	if sr, ok := sl.track.senderReport(now, clock); ok {
		out = append(out, &sr)
	}
	return out
}

// maxReportsPerPacket bounds the sender reports written in one compound
// RTCP packet: 28 bytes each, so that the packet stays well under the MTU.
const maxReportsPerPacket = 32

// sendReports writes sender reports to the receiver, several to a
// compound packet. It is called from the session's tick, without locks.
func (c *downConn) sendReports(srs []rtcp.Packet) {
	for len(srs) > 0 {
		n := min(len(srs), maxReportsPerPacket)
		if err := c.pc.WriteRTCP(srs[:n]); err != nil {
			return
		}
		srs = srs[n:]
	}
}

// ntpMiddle returns the middle 32 bits of the NTP time of t, the unit of
// the LSR and DLSR fields of receiver reports (1/65536 s).
func ntpMiddle(t time.Time) uint32 { return uint32(ntpTime(t) >> 16) }
