package sfu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/media/fanout"
	"github.com/liveclass/liveclass/internal/media/keyframe"
	"github.com/liveclass/liveclass/internal/media/packetcache"
	"github.com/liveclass/liveclass/internal/media/rewrite"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// rids names the simulcast layers, lowest first, as the client's offer
// does ("q", "h", "f": quarter, half, full).
var rids = [...]string{"q", "h", "f"}

// maxLayers is the most simulcast layers a track has.
const maxLayers = len(rids)

// ridLayer maps a RID to its layer; a track without simulcast is layer 0.
func ridLayer(rid string) (int, bool) {
	if rid == "" {
		return 0, true
	}
	for i, r := range rids {
		if r == rid {
			return i, true
		}
	}
	return 0, false
}

// receiverMid returns the m-line of pc that receiver receives on ("" when
// none has it). A Peer's and an Ingest's OnTrack both need it: the mid is
// what the client described the track by.
func receiverMid(pc *webrtc.PeerConnection, receiver *webrtc.RTPReceiver) string {
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == receiver {
			return tr.Mid()
		}
	}
	return ""
}

// trackExts returns the IDs of the header extensions negotiated for an
// arriving track that the receive side reads: the audio level of a
// microphone (0 for video, or when none was negotiated: the track's level
// is then not read) and the transport-wide sequence number (0 when none).
func trackExts(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) (level, twcc uint8) {
	for _, e := range receiver.GetParameters().HeaderExtensions {
		switch {
		case e.URI == uriAudioLevel && remote.Kind() == webrtc.RTPCodecTypeAudio:
			level = uint8(e.ID)
		case e.URI == sdp.TransportCCURI:
			twcc = uint8(e.ID)
		}
	}
	return level, twcc
}

// upTrack is one published track: its forwarder (shared cache, rewriter per
// subscriber) and what the session needs to know about it.
type upTrack struct {
	ss    *Session
	owner *Peer   // the participant who publishes it; nil for a broadcast ingest
	ing   *Ingest // the broadcast ingest that publishes it; nil for a participant
	pc    *webrtc.PeerConnection
	log   *slog.Logger
	info  TrackInfo
	kind  webrtc.RTPCodecType
	codec rewrite.Codec
	fwd   *fanout.Forwarder

	// ssrc of each layer, for PLIs; 0 until the layer's first packet.
	ssrc [maxLayers]atomic.Uint32
	// subKF throttles the keyframe requests subscribers make themselves
	// (their PLIs, a subscriber connection that just came up); the
	// forwarder throttles those of joins and layer switches.
	subKF [maxLayers]*keyframe.Throttle
	// readers counts the layers still being read; the track ends when the
	// last one does.
	readers atomic.Int32
	// arrived is when each layer's newest packet came (Unix ns): a
	// publisher may stop sending a layer (a browser drops its top layer
	// when its uplink or CPU is short), and a tap follows the highest
	// layer still arriving.
	arrived [maxLayers]atomic.Int64
	// born is when the track was published: a layer that has sent
	// nothing yet counts as arriving for layerGone after it, since the
	// layers of a starting publisher begin a few packets apart.
	born time.Time

	// loudness is the smoothed audio level of a microphone (0 silence,
	// 127 × 256 loudest) and levelAt the arrival of its newest sample
	// (Unix ns). Only receive writes them, under the layer's lock.
	loudness atomic.Uint32
	levelAt  atomic.Int64

	// rx counts each layer's packets and losses (a broadcast ingest's
	// health); only receive calls count, under the layer's lock.
	rx [maxLayers]rxCount

	// up is the publishing connection's receive side; rmu serialises
	// each layer's forwarding (receive).
	up  *upConn
	rmu [maxLayers]sync.Mutex
}

// rxCount counts the packets of one received stream and those lost, from
// its sequence numbers as RFC 3550's receiver statistics do: expected
// (highest extended number − first + 1) minus received.
type rxCount struct {
	started  bool
	first    uint32
	highest  uint32 // extended with the count of wraps
	received uint64
	lost     atomic.Uint64
}

// count records one packet.
func (c *rxCount) count(pkt []byte) {
	if len(pkt) < 12 {
		return
	}
	seq := binary.BigEndian.Uint16(pkt[2:])
	if !c.started {
		c.started, c.first, c.highest = true, uint32(seq), uint32(seq)
	} else if d := seq - uint16(c.highest); d != 0 && d < 0x8000 {
		c.highest += uint32(d)
	}
	c.received++
	expected := uint64(c.highest-c.first) + 1
	if expected > c.received {
		c.lost.Store(expected - c.received)
	} else {
		c.lost.Store(0)
	}
}

// publisher is who publishes a track: a participant's Peer or a broadcast
// Ingest, with the connection keyframe requests go to.
type publisher struct {
	peer *Peer
	ing  *Ingest
	id   ParticipantID
	pc   *webrtc.PeerConnection
	wg   *sync.WaitGroup // the read loops of its tracks
	log  *slog.Logger
	up   *upConn
}

// owns reports whether t is published by pub.
func (pub publisher) owns(t *upTrack) bool { return t.owner == pub.peer && t.ing == pub.ing }

// codecOf maps a negotiated codec to the rewriter's codec and clock rate.
func codecOf(mime string) (rewrite.Codec, uint32, error) {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return rewrite.VP8, 90000, nil
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		return rewrite.H264, 90000, nil
	case strings.EqualFold(mime, webrtc.MimeTypeOpus):
		return rewrite.Audio, 48000, nil
	}
	return 0, 0, fmt.Errorf("sfu: codec %q is not forwarded", mime)
}

// audioCacheSize is the packet cache of a published microphone.
const audioCacheSize = 64

// simulcastCacheSizes returns the packet caches of a camera's simulcast
// layers, lowest first: at 150 kbit/s, 500 kbit/s and 1.5 Mbit/s (15–20,
// about 50 and about 150 packets a second) each holds several seconds,
// where 512 for every layer kept half a minute of the lowest.
func simulcastCacheSizes() []int { return []int{128, 256, 512} }

// newUpTrack builds the forwarder of a track published by pub in codec
// mime.
func newUpTrack(ss *Session, pub publisher, spec PublishedTrack, kind webrtc.RTPCodecType, mime string) (*upTrack, error) {
	if mime == "" {
		// The interactive classes negotiate one codec per kind.
		mime = webrtc.MimeTypeVP8
		if kind == webrtc.RTPCodecTypeAudio {
			mime = webrtc.MimeTypeOpus
		}
	}
	codec, clock, err := codecOf(mime)
	if err != nil {
		return nil, err
	}
	if (codec == rewrite.Audio) != (kind == webrtc.RTPCodecTypeAudio) {
		return nil, fmt.Errorf("sfu: codec %s on a %s track", mime, kind)
	}
	id := MakeTrackID(pub.id, spec.Source)
	t := &upTrack{
		ss: ss, owner: pub.peer, ing: pub.ing, pc: pub.pc, up: pub.up, kind: kind, codec: codec, born: time.Now(),
		log:  pub.log.With("track", string(id)),
		info: TrackInfo{ID: id, Participant: pub.id, Source: spec.Source, Codec: mime},
	}
	layers := 1
	if kind == webrtc.RTPCodecTypeVideo && spec.Simulcast {
		layers = min(len(ss.srv.cfg.Layers), maxLayers)
		t.info.Layers = append([]string(nil), rids[:layers]...)
	}
	for i := range layers {
		kf, err := keyframe.New(keyframe.Options{})
		if err != nil {
			return nil, err
		}
		t.subKF[i] = kf
	}
	// Each published layer keeps its newest packets for NACKs, 1,500
	// bytes a slot: about a second's worth or more of its packets, and a
	// whole keyframe. A track without simulcast (a screen, an OBS
	// stream) keeps the default 512.
	var cache packetcache.Options
	var sizes []int
	switch {
	case codec == rewrite.Audio:
		// Nobody NACKs audio (Opus is negotiated without nack; its
		// in-band FEC covers single losses): the cache only keeps the
		// newest packets. 0.7 MB less per microphone than the default.
		cache.Size = audioCacheSize
	case layers > 1:
		sizes = simulcastCacheSizes()
	}
	fwd, err := fanout.New(fanout.Options{
		Codec: codec, ClockRate: clock, Layers: layers,
		RequestKeyframe: t.sendPLI,
		Batch:           ss.srv.batch,
		Logger:          t.log,
		Cache:           cache,
		LayerCacheSizes: sizes,
	})
	if err != nil {
		return nil, err
	}
	t.fwd = fwd
	return t, nil
}

// clockRate returns the track's RTP clock rate.
func (t *upTrack) clockRate() uint32 {
	if t.kind == webrtc.RTPCodecTypeAudio {
		return 48000
	}
	return 90000
}

// layers returns the number of layers of the track.
func (t *upTrack) layers() int { return max(1, len(t.info.Layers)) }

// sendPLI asks the publisher for a keyframe of a layer. It is called from
// the forwarder and must not block: WriteRTCP is one UDP send.
func (t *upTrack) sendPLI(layer int) {
	if t.kind != webrtc.RTPCodecTypeVideo || layer < 0 || layer >= maxLayers {
		return
	}
	ssrc := t.ssrc[layer].Load()
	if ssrc == 0 {
		return
	}
	if err := t.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err == nil {
		t.ss.srv.counters.plis.Add(1)
	}
}

// layerGone is how long a layer may send nothing before it counts as
// paused: several frame intervals even at the 15 fps of the lowest layer.
const layerGone = time.Second

// topLayer returns the highest layer that sent a packet within
// layerGone (a layer yet to send counts from the track's publication), or
// the highest layer when none did.
func (t *upTrack) topLayer(now time.Time) int {
	for i := t.layers() - 1; i >= 0; i-- {
		if t.arriving(i, now) {
			return i
		}
	}
	return t.layers() - 1
}

// arriving reports whether a layer sent a packet within layerGone (a
// layer yet to send counts from the track's publication).
func (t *upTrack) arriving(layer int, now time.Time) bool {
	at := t.arrived[layer].Load()
	if at == 0 {
		at = t.born.UnixNano()
	}
	return now.UnixNano()-at < int64(layerGone)
}

// liveLayer returns want if that layer arrives, else the nearest layer
// below it that does, else the nearest above, else want. A browser pauses
// layers by itself (the lower ones when it sends a screen with simulcast,
// the top one when short of uplink), and a receiver left on a paused
// layer would see its picture freeze.
func (t *upTrack) liveLayer(want int, now time.Time) int {
	if want < 0 || want >= t.layers() || t.arriving(want, now) {
		return want
	}
	for i := want - 1; i >= 0; i-- {
		if t.arriving(i, now) {
			return i
		}
	}
	for i := want + 1; i < t.layers(); i++ {
		if t.arriving(i, now) {
			return i
		}
	}
	return want
}

// requestKeyframe asks for a keyframe of a layer on a subscriber's behalf,
// at most once per throttle interval however many ask.
func (t *upTrack) requestKeyframe(layer int) {
	if layer < 0 || layer >= t.layers() || t.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	if t.subKF[layer].Request() {
		t.sendPLI(layer)
	}
}

// read reads one layer of the track from Pion until it ends: all of it
// when the connection is not on the direct receive path, else the packets
// that came before the direct path took the layer's SSRC. It runs on its
// own goroutine, and ends with the layer.
func (t *upTrack) read(remote *webrtc.TrackRemote, st *upStream) {
	defer t.ss.readerDone(t)
	up := t.up
	defer up.removeStream(st)
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.log.Debug("published track read ended", "layer", st.layer, "err", err)
			}
			return
		}
		now := time.Now()
		pkt := buf[:n]
		if len(pkt) < 12 {
			continue
		}
		fb := up.observe(st, pkt, now)
		t.receive(st, pkt, now)
		up.send(fb)
	}
}

// receive forwards one packet of a layer, from whichever path it came.
// The layer's lock keeps the forwarder to one caller at a time while the
// direct path takes a layer over from Pion's.
func (t *upTrack) receive(st *upStream, pkt []byte, now time.Time) {
	layer := st.layer
	t.rmu[layer].Lock()
	defer t.rmu[layer].Unlock()
	t.note(layer, st, pkt, now)
	if err := t.fwd.Forward(layer, pkt, now); err != nil {
		t.ss.srv.counters.dropped.Add(1)
	}
	if t.kind == webrtc.RTPCodecTypeVideo {
		t.pollKeyframes()
	}
}

// receiveBatch forwards packets of a video layer that its goroutine took
// from its queue at once, subscriber by subscriber (fanout.ForwardBatch).
func (t *upTrack) receiveBatch(st *upStream, pkts []fanout.Arrived) {
	layer := st.layer
	t.rmu[layer].Lock()
	defer t.rmu[layer].Unlock()
	for _, a := range pkts {
		t.note(layer, st, a.Raw, a.At)
	}
	dropped, err := t.fwd.ForwardBatch(layer, pkts)
	if err != nil {
		dropped = len(pkts)
	}
	t.ss.srv.counters.dropped.Add(uint64(dropped))
	t.pollKeyframes()
}

// note records what a packet tells before it is forwarded: that the
// layer is alive, the ingest's health, the audio level, a keyframe.
// t.rmu[layer] is held.
func (t *upTrack) note(layer int, st *upStream, pkt []byte, now time.Time) {
	t.arrived[layer].Store(now.UnixNano())
	if t.ing != nil {
		t.ing.observe(t, layer, pkt, now)
	}
	if st.levelExt != 0 {
		t.observeLevel(pkt, st.levelExt, now)
	}
	kf := t.subKF[layer]
	if kf != nil && t.kind == webrtc.RTPCodecTypeVideo && len(pkt) > 12 {
		// The throttle of subscriber requests learns of keyframes
		// too, so that it re-asks only when none came.
		var p rewrite.Packet
		if rewrite.Parse(&p, pkt, t.codec, layer, now) == nil && p.Keyframe {
			kf.Keyframe()
		}
	}
}

// pollKeyframes re-asks for the keyframes subscribers still wait for: a
// request held back by the interval, or a PLI the publisher ignored. A
// browser ignores a PLI that comes soon after the previous one (Chrome
// within 300 ms), so the PLI of a subscriber connection that just came up,
// right after the one of its join, can go unanswered; without this the
// throttle would hold every later request back as already asked, and the
// subscriber would never get a picture. It runs on every packet of any
// layer, as the forwarder's own polling does, so that a layer the
// publisher has paused is still asked for.
func (t *upTrack) pollKeyframes() {
	for i := range t.layers() {
		if t.subKF[i].Poll() {
			t.sendPLI(i)
		}
	}
}

// observeLevel folds a packet's audio level (RFC 6464) into the smoothed
// loudness. The exponential average over about eight packets (160 ms)
// ignores clicks and keeps a speaker through the gaps between words.
func (t *upTrack) observeLevel(pkt []byte, id uint8, now time.Time) {
	v, ok := headerExtension(pkt, id)
	if !ok || len(v) < 1 {
		return
	}
	loud := uint32(127-v[0]&0x7f) << 8
	old := t.loudness.Load()
	t.loudness.Store((old*7 + loud) / 8)
	t.levelAt.Store(now.UnixNano())
}

// level returns the smoothed loudness, 0 when the microphone has sent
// nothing for a while (DTX sends almost nothing in silence).
func (t *upTrack) level(now time.Time) uint32 {
	if now.UnixNano()-t.levelAt.Load() > int64(time.Second/2) {
		return 0
	}
	return t.loudness.Load()
}

// headerExtension returns the value of RTP header extension id in pkt,
// without allocating: one-byte (RFC 8285 0xBEDE) and two-byte forms.
func headerExtension(pkt []byte, id uint8) ([]byte, bool) {
	if len(pkt) < 12 || pkt[0]&0x10 == 0 {
		return nil, false
	}
	off := 12 + 4*int(pkt[0]&0x0f)
	if off+4 > len(pkt) {
		return nil, false
	}
	profile := binary.BigEndian.Uint16(pkt[off:])
	end := off + 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	if end > len(pkt) {
		return nil, false
	}
	i := off + 4
	switch {
	case profile == 0xbede:
		for i < end {
			b := pkt[i]
			if b == 0 { // padding
				i++
				continue
			}
			eid, l := b>>4, int(b&0x0f)+1
			if eid == 15 {
				return nil, false
			}
			i++
			if i+l > end {
				return nil, false
			}
			if eid == id {
				return pkt[i : i+l], true
			}
			i += l
		}
	case profile&0xfff0 == 0x1000:
		for i+1 < end {
			eid := pkt[i]
			if eid == 0 {
				i++
				continue
			}
			l := int(pkt[i+1])
			i += 2
			if i+l > end {
				return nil, false
			}
			if eid == id {
				return pkt[i : i+l], true
			}
			i += l
		}
	}
	return nil, false
}
