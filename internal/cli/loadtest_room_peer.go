package cli

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/liveclass/liveclass/client/rtc"
)

// This file is one simulated participant of the room load test: a
// client/rtc participant (the signalling WebSocket of docs/protocol.md
// and two Pion PeerConnections) whose publisher sends synthetic media and
// whose subscriber's packets are checked for their stamps.
// It is built to cost the tester little: payloads are made once, nothing
// is decoded, one goroutine paces each published track, and a received
// packet costs a header parse and a few counter updates.

// ridNames are the simulcast layers, lowest first, as a browser names them.
var ridNames = [...]string{"q", "h", "f"}

// Every synthetic payload ends with a stamp: a magic byte, the layer, and
// the send time in Unix nanoseconds, so that a receiver on this machine
// measures one-way delay and bitrate per layer without decoding anything.
const (
	stampMagic = 0x4c // 'L'
	stampLen   = 10
)

// layerSpec is one published video layer.
type layerSpec struct {
	rid           string
	bitrate       int // bits per second of payload
	fps           int
	width, height int
}

// roomMedia is what the publishers send: it is the same for every
// participant, so the payload buffers are built once per process.
type roomMedia struct {
	camera   []layerSpec // lowest first
	screen   layerSpec
	keyEvery time.Duration // periodic keyframes
	speakPPS int           // Opus packets per second of a speaking microphone (20 ms frames)
	opusSize int           // bytes per speaking Opus packet
	dtxEvery time.Duration // a silent microphone's comfort-noise packet period (Opus DTX)
	dtxSize  int
}

// maxPayload is the largest RTP payload the publishers send, well under a
// 1,200-byte path MTU after SRTP and the header extensions.
const maxPayload = 1100

// peerTotals are a participant's counters, read by the reporter.
type peerTotals struct {
	packets, bytes   uint64 // received RTP packets and payload bytes
	video, audio     uint64 // received packets by kind
	expected, got    uint64 // sequence numbers expected (highest − first + 1) and received
	layerBytes       [4]uint64
	sentPkts, sentBy uint64 // published packets and payload bytes
	sentLayer        [4]uint64
}

// roomPeer is one participant.
type roomPeer struct {
	t     *roomTest
	index int
	token string
	cam   bool
	mic   bool
	speak bool
	scr   bool

	rp *rtc.Participant

	mu          sync.Mutex
	subscribe   []string // tracks asked for, in order
	wantCams    int      // cameras in subscribe
	wantScreens int      // screens in subscribe
	joinErr     error

	joinStart  time.Time
	joinedAt   time.Time
	videoSince atomic.Int64 // Unix ns: first time a video of someone else was listed
	firstFrame atomic.Int64 // Unix ns: first keyframe start received
	// screenFrame is when the first keyframe start of a screen share
	// came (Unix ns; 0 before): a screen is asked for apart from the
	// cameras, and can come seconds after them on a loaded machine.
	screenFrame atomic.Int64

	wantKey    [4]atomic.Bool // layers 0–2 of the camera, 3 the screen
	sent       [4]struct{ pkts, bytes atomic.Uint64 }
	sentMic    struct{ pkts, bytes atomic.Uint64 }
	layerBytes [4]atomic.Uint64 // received video payload bytes by origin layer (3: screen)
	delay      *delayHist
	stop       chan struct{}
	wg         sync.WaitGroup
}

// run joins, publishes and receives until stop closes. It returns once
// the participant has joined (or failed to); the media goroutines keep
// going.
func (p *roomPeer) run(ctx context.Context) error {
	p.joinStart = time.Now()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	rp, err := rtc.Dial(dctx, p.t.wsURL, p.token, rtc.Options{
		PublisherAPI: p.t.pubAPI, SubscriberAPI: p.t.subAPI,
		OnMessage: p.onMessage,
		OnPacket:  p.received,
		OnError:   func(err error) { p.t.protocolError(err.Error()) },
	})
	if err != nil {
		var e *rtc.Error
		switch {
		case errors.As(err, &e):
			err = fmt.Errorf("%s: %s %s", e.Code, e.Message, e.Reason)
		case dctx.Err() != nil && ctx.Err() == nil:
			err = errors.New("no joined message within 15 s")
		}
		p.mu.Lock()
		p.joinErr = err
		p.mu.Unlock()
		return err
	}
	p.mu.Lock()
	p.rp = rp
	p.joinedAt = time.Now()
	p.mu.Unlock()
	if p.cam || p.mic || p.scr {
		return p.publish(dctx, rp)
	}
	return nil
}

// onMessage reacts to the server's messages on the reading goroutine.
func (p *roomPeer) onMessage(rp *rtc.Participant, m rtc.Message) {
	switch m.Type {
	case rtc.TypeError:
		var e rtc.Error
		if m.Decode(&e) == nil {
			p.t.protocolError(e.Code + ": " + e.Message)
		}
	case rtc.TypeTracks:
		var tr rtc.Tracks
		if m.Decode(&tr) == nil {
			p.chooseTiles(rp, tr)
		}
	}
}

// chooseTiles subscribes to up to t.tiles cameras of others (in the order
// the server lists them, as a grid fills) and every screen share, and
// asks again only when the choice changes.
func (p *roomPeer) chooseTiles(rp *rtc.Participant, m rtc.Tracks) {
	me := rp.ID()
	var cams, screens []string
	for _, tr := range m.Tracks {
		if tr.Participant == me {
			continue
		}
		switch tr.Source {
		case rtc.SourceCamera:
			cams = append(cams, tr.ID)
		case rtc.SourceScreen:
			screens = append(screens, tr.ID)
		}
	}
	if len(cams)+len(screens) > 0 {
		p.videoSince.CompareAndSwap(0, time.Now().UnixNano())
	}
	cams = cams[:min(len(cams), p.t.opt.tiles)]
	want := append(slices.Clone(screens), cams...)
	p.mu.Lock()
	same := slices.Equal(want, p.subscribe)
	p.subscribe = want
	p.wantCams, p.wantScreens = len(cams), len(screens)
	p.mu.Unlock()
	if same {
		return
	}
	video := make([]rtc.Video, 0, len(want))
	for _, id := range screens {
		video = append(video, rtc.Video{Track: id, Width: p.t.opt.screenW, Height: p.t.opt.screenH})
	}
	for _, id := range cams {
		video = append(video, rtc.Video{Track: id, Width: p.t.opt.tileW, Height: p.t.opt.tileH})
	}
	// On the reading goroutine: send, and let the answer come as a
	// message (an error is counted there).
	_, _ = rp.Send(context.Background(), "subscribe", map[string]any{"video": video})
}

// publish offers the participant's tracks and starts pacing them.
func (p *roomPeer) publish(ctx context.Context, rp *rtc.Participant) error {
	var outs []rtc.Outgoing
	var layers [][]*webrtc.TrackLocalStaticRTP
	stream := fmt.Sprintf("load-%d", p.index)
	if p.cam {
		o := rtc.Outgoing{Source: rtc.SourceCamera}
		var ls []*webrtc.TrackLocalStaticRTP
		for _, l := range p.t.media.camera {
			tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera", stream, webrtc.WithRTPStreamID(l.rid))
			if err != nil {
				return err
			}
			o.Tracks = append(o.Tracks, tr)
			ls = append(ls, tr)
		}
		outs, layers = append(outs, o), append(layers, ls)
	}
	for _, src := range []struct {
		on     bool
		source rtc.Source
		mime   string
		stream string
	}{{p.mic, rtc.SourceMic, webrtc.MimeTypeOpus, stream}, {p.scr, rtc.SourceScreen, webrtc.MimeTypeVP8, stream + "-screen"}} {
		if !src.on {
			continue
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: src.mime}, string(src.source), src.stream)
		if err != nil {
			return err
		}
		outs = append(outs, rtc.Outgoing{Source: src.source, Tracks: []webrtc.TrackLocal{tr}})
		layers = append(layers, []*webrtc.TrackLocalStaticRTP{tr})
	}
	pubs, err := rp.Publish(ctx, rtc.Publication{Tracks: outs, Media: &rtc.Media{Mic: p.mic, Camera: p.cam, Screen: p.scr}})
	var refused *rtc.Error
	if errors.As(err, &refused) {
		// The server refused the offer: the participant is in the room
		// but publishes nothing, which the report shows.
		p.t.protocolError(refused.Code + ": " + refused.Message)
		return nil
	}
	if err != nil {
		return err
	}
	for k, s := range pubs {
		switch s.Source {
		case rtc.SourceCamera:
			for i, l := range p.t.media.camera {
				p.wantKey[i].Store(true)
				p.wg.Go(func() { p.readPLI(s.Sender, l.rid, i) })
			}
			p.wg.Go(func() { p.sendCamera(s.Sender, layers[k], s.Mid) })
		case rtc.SourceScreen:
			p.wantKey[3].Store(true)
			p.wg.Go(func() { p.readPLI(s.Sender, "", 3) })
			p.wg.Go(func() { p.sendScreen(s.Sender, layers[k][0], s.Mid) })
		case rtc.SourceMic:
			p.wg.Go(func() { p.drainRTCP(s.Sender) })
			p.wg.Go(func() { p.sendMic(s.Sender, layers[k][0], s.Mid) })
		}
	}
	return nil
}

// readPLI turns keyframe requests into a keyframe of the layer, as a
// browser's encoder does.
func (p *roomPeer) readPLI(s *webrtc.RTPSender, rid string, slot int) {
	for {
		var pkts []rtcp.Packet
		var err error
		if rid != "" {
			pkts, _, err = s.ReadSimulcastRTCP(rid)
		} else {
			pkts, _, err = s.ReadRTCP()
		}
		if err != nil {
			return
		}
		for _, pk := range pkts {
			switch pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.wantKey[slot].Store(true)
				p.t.plis.Add(1)
			}
		}
	}
}

func (p *roomPeer) drainRTCP(s *webrtc.RTPSender) {
	for {
		if _, _, err := s.ReadRTCP(); err != nil {
			return
		}
	}
}

// vp8Sender packetizes synthetic VP8 frames of one layer.
type vp8Sender struct {
	track      *webrtc.TrackLocalStaticRTP
	midID      uint8
	ridID      uint8
	mid, rid   []byte
	layer      byte
	seq        uint16
	pid        uint16
	ts0        uint32
	frameBytes int
	w, h       int
	buf        []byte // one packet's payload, reused
	pkt        rtp.Packet
}

func newVP8Sender(track *webrtc.TrackLocalStaticRTP, s *webrtc.RTPSender, mid string, l layerSpec, layer int, seed uint32) *vp8Sender {
	midID, ridID, _ := rtc.ExtensionIDs(s)
	v := &vp8Sender{
		track: track, midID: midID, ridID: ridID, mid: []byte(mid), rid: []byte(l.rid), layer: byte(layer),
		seq: uint16(seed), pid: uint16(seed>>3) & 0x7fff, ts0: seed * 7919,
		frameBytes: max(l.bitrate/8/l.fps, 200), w: l.width, h: l.height,
		buf: make([]byte, maxPayload),
	}
	v.pkt.Version = 2
	return v
}

// frame sends one frame at the given RTP timestamp; a keyframe is four
// times the average frame, as an encoder spends on one. It returns the
// payload bytes and packets sent.
func (v *vp8Sender) frame(ts uint32, key bool) (bytes, pkts int, err error) {
	size := v.frameBytes
	if key {
		size *= 4
	}
	v.pid = (v.pid + 1) & 0x7fff
	n := (size + maxPayload - 1) / maxPayload
	per := size / n
	for i := range n {
		b := v.buf[:max(per, 24)]
		clear(b[:14])
		b[0] = 0x80 // X: extended control bits
		if i == 0 {
			b[0] |= 0x10 // S: start of partition 0
		}
		b[1] = 0x80 // I: picture ID present
		binary.BigEndian.PutUint16(b[2:], 0x8000|v.pid)
		if i == 0 {
			// VP8 payload header: the frame tag, and for a keyframe the
			// start code and the picture size.
			b[4] = 0x01 // P: inter frame
			if key {
				b[4] = 0x00
				b[7], b[8], b[9] = 0x9d, 0x01, 0x2a
				binary.LittleEndian.PutUint16(b[10:], uint16(v.w))
				binary.LittleEndian.PutUint16(b[12:], uint16(v.h))
			}
		}
		stamp(b, v.layer)
		v.pkt.Header = rtp.Header{Version: 2, Marker: i == n-1, SequenceNumber: v.seq, Timestamp: v.ts0 + ts}
		_ = v.pkt.Header.SetExtension(v.midID, v.mid)
		if v.ridID != 0 && len(v.rid) > 0 {
			_ = v.pkt.Header.SetExtension(v.ridID, v.rid)
		}
		v.pkt.Payload = b
		v.seq++
		if err := v.track.WriteRTP(&v.pkt); err != nil {
			return bytes, pkts, err
		}
		bytes += len(b)
		pkts++
	}
	return bytes, pkts, nil
}

// stamp writes the layer and the send time at the end of a payload.
func stamp(b []byte, layer byte) {
	s := b[len(b)-stampLen:]
	s[0], s[1] = stampMagic, layer
	binary.BigEndian.PutUint64(s[2:], uint64(time.Now().UnixNano()))
}

// sendCamera paces the camera's layers on one goroutine: a tick at the
// highest frame rate, each layer sending on the ticks of its own rate.
func (p *roomPeer) sendCamera(s *webrtc.RTPSender, tracks []*webrtc.TrackLocalStaticRTP, mid string) {
	layers := p.t.media.camera
	fps := 0
	for _, l := range layers {
		fps = max(fps, l.fps)
	}
	senders := make([]*vp8Sender, len(layers))
	for i, l := range layers {
		senders[i] = newVP8Sender(tracks[i], s, mid, l, i, uint32(p.index*31+i*7+1))
	}
	p.pace(fps, func(n int, at time.Duration, periodicKey bool) bool {
		ts := uint32(at * 90 / time.Millisecond)
		for i, l := range layers {
			if n%(fps/l.fps) != 0 {
				continue
			}
			key := p.wantKey[i].Swap(false) || periodicKey
			b, k, err := senders[i].frame(ts, key)
			p.sent[i].pkts.Add(uint64(k))
			p.sent[i].bytes.Add(uint64(b))
			if err != nil {
				return false
			}
		}
		return true
	})
}

func (p *roomPeer) sendScreen(s *webrtc.RTPSender, track *webrtc.TrackLocalStaticRTP, mid string) {
	l := p.t.media.screen
	v := newVP8Sender(track, s, mid, l, 3, uint32(p.index*31+5))
	v.ridID = 0
	p.pace(l.fps, func(_ int, at time.Duration, periodicKey bool) bool {
		key := p.wantKey[3].Swap(false) || periodicKey
		b, k, err := v.frame(uint32(at*90/time.Millisecond), key)
		p.sent[3].pkts.Add(uint64(k))
		p.sent[3].bytes.Add(uint64(b))
		return err == nil
	})
}

// pace calls send at fps until stop, with the frame number, the time
// of the frame since the first (for RTP timestamps from the wall clock,
// as a capture clock gives) and whether a periodic keyframe is due. Frames
// whose tick came late are sent at once, up to a few, so that a busy
// tester still publishes the bitrate it reports rather than silently less.
func (p *roomPeer) pace(fps int, send func(n int, at time.Duration, key bool) bool) {
	const maxCatchUp = 5
	period := time.Second / time.Duration(fps)
	keyEvery := max(1, int(p.t.media.keyEvery/period))
	tick := time.NewTicker(period)
	defer tick.Stop()
	start := time.Now()
	n := 0
	for {
		due := int(time.Since(start)/period) + 1
		if due-n > maxCatchUp {
			n = due - maxCatchUp // too far behind: drop frames, as an encoder would
		}
		for ; n < due; n++ {
			if !send(n, time.Duration(n)*period, n > 0 && n%keyEvery == 0) {
				return
			}
		}
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

// sendMic sends Opus: 20 ms frames while speaking, with a loud audio
// level, or DTX's comfort noise every 400 ms at silence.
func (p *roomPeer) sendMic(s *webrtc.RTPSender, track *webrtc.TrackLocalStaticRTP, mid string) {
	midID, _, levelID := rtc.ExtensionIDs(s)
	m := p.t.media
	period, size, level := time.Second/time.Duration(m.speakPPS), m.opusSize, byte(30)
	if !p.speak {
		period, size, level = m.dtxEvery, m.dtxSize, 127
	}
	buf := make([]byte, max(size, stampLen+1))
	buf[0] = 0xfc // TOC: CELT FB 20 ms, one frame
	var pkt rtp.Packet
	seq := uint16(p.index * 101)
	tick := time.NewTicker(period)
	defer tick.Stop()
	start := time.Now()
	midB, levelB := []byte(mid), []byte{level}
	for {
		stamp(buf, 0)
		// 48 kHz, advanced by the wall clock: DTX gaps keep time.
		pkt.Header = rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(time.Since(start)*48/time.Millisecond) / 960 * 960}
		_ = pkt.Header.SetExtension(midID, midB)
		if levelID != 0 {
			_ = pkt.Header.SetExtension(levelID, levelB)
		}
		pkt.Payload = buf
		seq++
		if err := track.WriteRTP(&pkt); err != nil {
			return
		}
		p.sentMic.pkts.Add(1)
		p.sentMic.bytes.Add(uint64(len(buf)))
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

// received accounts one packet's stamp: its layer, its one-way delay,
// and whether it starts a keyframe. No allocation, no decoding.
func (p *roomPeer) received(pk rtc.Packet) {
	payload := pk.Payload
	layer, sentAt := -1, int64(0)
	if len(payload) >= stampLen {
		s := payload[len(payload)-stampLen:]
		if s[0] == stampMagic && s[1] < 4 {
			layer = int(s[1])
			sentAt = int64(binary.BigEndian.Uint64(s[2:]))
		}
	}
	if pk.Video {
		if layer >= 0 {
			p.layerBytes[layer].Add(uint64(len(payload)))
		}
		if vp8KeyframeStart(payload) {
			p.firstFrame.CompareAndSwap(0, pk.At.UnixNano())
			if layer == 3 {
				p.screenFrame.CompareAndSwap(0, pk.At.UnixNano())
			}
		}
	}
	if sentAt > 0 {
		p.delay.add(p.t.phase.Load(), pk.At.UnixNano()-sentAt)
	}
}

// vp8KeyframeStart reports whether a VP8 payload (RFC 7741) starts a
// keyframe: the start of partition 0 with the frame tag's P bit clear.
func vp8KeyframeStart(b []byte) bool {
	if len(b) < 1 || b[0]&0x10 == 0 || b[0]&0x07 != 0 {
		return false
	}
	i := 1
	if b[0]&0x80 != 0 {
		if len(b) < 2 {
			return false
		}
		x := b[1]
		i = 2
		if x&0x80 != 0 { // I
			if len(b) <= i {
				return false
			}
			if b[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if x&0x40 != 0 { // L
			i++
		}
		if x&0x30 != 0 { // T or K
			i++
		}
	}
	return len(b) > i && b[i]&0x01 == 0
}

// totals sums the participant's counters now.
func (p *roomPeer) totals() peerTotals {
	var t peerTotals
	p.mu.Lock()
	rp := p.rp
	p.mu.Unlock()
	if rp != nil {
		st := rp.Stats()
		t.packets, t.bytes = st.Packets, st.Bytes
		t.video, t.audio = st.VideoPackets, st.AudioPackets
		t.expected, t.got = st.Expected, st.Packets
	}
	for i := range p.layerBytes {
		t.layerBytes[i] = p.layerBytes[i].Load()
	}
	for i := range p.sent {
		t.sentPkts += p.sent[i].pkts.Load()
		t.sentBy += p.sent[i].bytes.Load()
		t.sentLayer[i] = p.sent[i].bytes.Load()
	}
	t.sentPkts += p.sentMic.pkts.Load()
	t.sentBy += p.sentMic.bytes.Load()
	return t
}

// close ends the participant: a leave, then the connections.
func (p *roomPeer) close() {
	if p.stop != nil {
		select {
		case <-p.stop:
		default:
			close(p.stop)
		}
	}
	p.mu.Lock()
	rp := p.rp
	p.mu.Unlock()
	if rp != nil {
		rp.Close()
	}
	p.wg.Wait()
}

// delayHist is a histogram of one-way delays per measurement phase:
// 0.1 ms buckets to 100 ms, then 10 ms buckets to 5 s.
type delayHist struct {
	mu sync.Mutex
	b  [3][1500]uint32 // phase 1 (first half), 2 (second half); 0 unused
}

func delayBucket(ns int64) int {
	us := max(ns/1000, 0)
	if us < 100_000 {
		return int(us / 100)
	}
	return min(1000+int((us-100_000)/10_000), 1499)
}

func bucketDelay(i int) time.Duration {
	if i < 1000 {
		return time.Duration(i*100+50) * time.Microsecond
	}
	return 100*time.Millisecond + time.Duration((i-1000)*10+5)*time.Millisecond
}

func (h *delayHist) add(phase int32, ns int64) {
	if phase != 1 && phase != 2 {
		return
	}
	i := delayBucket(ns)
	h.mu.Lock()
	h.b[phase][i]++
	h.mu.Unlock()
}
