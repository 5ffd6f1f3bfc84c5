package cli

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// This file is one simulated participant of the room load test: the
// signalling WebSocket of docs/protocol.md and two Pion PeerConnections, a
// publisher sending synthetic media and a subscriber counting what arrives.
// It is built to cost the tester little: payloads are made once, nothing
// is decoded, one goroutine paces each published track, and a received
// packet costs a header parse and a few counter updates.

// Header extension URIs the publisher stamps (as a browser does).
const (
	uriAudioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
)

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

// trackRecv is what arrived on one subscriber transceiver.
type trackRecv struct {
	mu       sync.Mutex
	video    bool
	started  bool
	firstSeq uint64
	maxSeq   uint64 // extended
	got      uint64
	packets  uint64
	bytes    uint64
	layer    [4]uint64 // payload bytes by origin layer (3: screen)
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

	ws       *websocket.Conn
	pub, sub *webrtc.PeerConnection

	mu          sync.Mutex
	pubReady    bool
	subReady    bool
	pending     map[string][]webrtc.ICECandidateInit
	mapping     map[string]string // mid → track
	subscribe   []string          // tracks asked for, in order
	wantCams    int               // cameras in subscribe
	wantScreens int               // screens in subscribe
	recv        map[string]*trackRecv
	joinErr     error
	me          string // participant ID

	joinStart  time.Time
	joinedAt   time.Time
	joined     chan struct{}
	videoSince atomic.Int64 // Unix ns: first time a video of someone else was listed
	firstFrame atomic.Int64 // Unix ns: first keyframe start received

	wantKey [4]atomic.Bool // layers 0–2 of the camera, 3 the screen
	sent    [4]struct{ pkts, bytes atomic.Uint64 }
	sentMic struct{ pkts, bytes atomic.Uint64 }
	delay   *delayHist
	stop    chan struct{}
	wg      sync.WaitGroup
	nextID  atomic.Int64
}

// newClientAPIs builds the tester's Pion APIs: a publisher that stamps
// transport-wide sequence numbers as a browser does, and a subscriber
// that sends what a browser sends back (receiver reports, NACKs and TWCC
// feedback, which the server's bandwidth estimate runs on). Neither keeps
// a NACK responder buffer: the tester repairs nothing it sends.
func newClientAPIs(loopbackOnly bool) (pub, sub *webrtc.API, err error) {
	// The tester reports what its participants saw; Pion's own logs are
	// mostly its connections noticing, at the end, that they were closed.
	quiet := &logging.DefaultLoggerFactory{DefaultLogLevel: logging.LogLevelDisabled, ScopeLevels: map[string]logging.LogLevel{}, Writer: io.Discard}
	var se webrtc.SettingEngine
	se.LoggerFactory = quiet
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if loopbackOnly {
		// The server is on this machine: gather loopback only, so that
		// ICE does not spend checks on other interfaces.
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	}
	build := func(publisher bool) (*webrtc.API, error) {
		m := &webrtc.MediaEngine{}
		if err := m.RegisterDefaultCodecs(); err != nil {
			return nil, err
		}
		type ext struct {
			uri  string
			kind webrtc.RTPCodecType
		}
		exts := []ext{
			{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo}, {sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
			{sdp.TransportCCURI, webrtc.RTPCodecTypeVideo}, {sdp.TransportCCURI, webrtc.RTPCodecTypeAudio},
		}
		if publisher {
			exts = append(exts, ext{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo}, ext{uriAudioLevel, webrtc.RTPCodecTypeAudio})
		}
		for _, e := range exts {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
				return nil, err
			}
		}
		ir := &interceptor.Registry{}
		if publisher {
			hx, err := twcc.NewHeaderExtensionInterceptor()
			if err != nil {
				return nil, err
			}
			ir.Add(hx)
		} else {
			rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(quiet))
			if err != nil {
				return nil, err
			}
			ir.Add(rr)
			gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(quiet))
			if err != nil {
				return nil, err
			}
			ir.Add(gen)
			fb, err := twcc.NewSenderInterceptor(twcc.WithLoggerFactory(quiet))
			if err != nil {
				return nil, err
			}
			ir.Add(fb)
		}
		return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
	}
	if pub, err = build(true); err != nil {
		return nil, nil, err
	}
	if sub, err = build(false); err != nil {
		return nil, nil, err
	}
	return pub, sub, nil
}

// run joins, publishes and receives until stop closes. It returns once
// the participant has joined (or failed to); the media goroutines keep
// going.
func (p *roomPeer) run(ctx context.Context) error {
	p.joinStart = time.Now()
	p.pending = map[string][]webrtc.ICECandidateInit{}
	p.mapping = map[string]string{}
	p.recv = map[string]*trackRecv{}
	p.joined = make(chan struct{})
	var err error
	if p.pub, err = p.t.pubAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return err
	}
	if p.sub, err = p.t.subAPI.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return err
	}
	p.pub.OnICECandidate(func(c *webrtc.ICECandidate) { p.candidate("pub", c) })
	p.sub.OnICECandidate(func(c *webrtc.ICECandidate) { p.candidate("sub", c) })
	p.sub.OnTrack(p.onTrack)

	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, p.t.wsURL, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	p.ws = ws
	p.wg.Go(p.readLoop)
	if err := p.send(map[string]any{"type": "join", "v": 1, "token": p.token}); err != nil {
		return err
	}
	select {
	case <-p.joined:
	case <-dctx.Done():
		return errors.New("no joined message within 15 s")
	}
	p.mu.Lock()
	err = p.joinErr
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if p.cam || p.mic || p.scr {
		return p.publish()
	}
	return nil
}

// send writes one message; coder/websocket serialises concurrent writes.
func (p *roomPeer) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.ws.Write(ctx, websocket.MessageText, b)
}

// serverMsg holds the fields of every server message the tester reads.
type serverMsg struct {
	Type      string                  `json:"type"`
	PC        string                  `json:"pc"`
	SDP       string                  `json:"sdp"`
	Candidate webrtc.ICECandidateInit `json:"candidate"`
	Tracks    []struct {
		ID          string `json:"id"`
		Participant string `json:"participant"`
		Source      string `json:"source"`
	} `json:"tracks"`
	Mids    map[string]string `json:"mids"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Reason  string            `json:"reason"`
	You     struct {
		ID string `json:"id"`
	} `json:"you"`
}

func (p *roomPeer) readLoop() {
	joined := false
	markJoined := func(err error) {
		if joined {
			return
		}
		joined = true
		p.mu.Lock()
		p.joinErr = err
		p.joinedAt = time.Now()
		p.mu.Unlock()
		close(p.joined)
	}
	for {
		_, b, err := p.ws.Read(context.Background())
		if err != nil {
			markJoined(fmt.Errorf("connection closed before joined: %w", err))
			return
		}
		var m serverMsg
		if err := json.Unmarshal(b, &m); err != nil {
			continue
		}
		switch m.Type {
		case "joined":
			p.mu.Lock()
			p.me = m.You.ID
			p.mu.Unlock()
			markJoined(nil)
		case "error":
			if !joined {
				markJoined(fmt.Errorf("%s: %s %s", m.Code, m.Message, m.Reason))
			} else {
				p.t.protocolError(m.Code + ": " + m.Message)
			}
		case "answer":
			if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
				p.t.protocolError("publisher answer: " + err.Error())
			}
		case "offer":
			p.answer(m.SDP)
		case "candidate":
			pc := p.pub
			if m.PC == "sub" {
				pc = p.sub
			}
			if m.Candidate.Candidate != "" {
				_ = pc.AddICECandidate(m.Candidate)
			}
		case "tracks":
			p.chooseTiles(m)
		case "mapping":
			p.mu.Lock()
			p.mapping = m.Mids
			p.mu.Unlock()
		}
	}
}

func (p *roomPeer) answer(offer string) {
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.t.protocolError("subscriber offer: " + err.Error())
		return
	}
	ans, err := p.sub.CreateAnswer(nil)
	if err == nil {
		err = p.sub.SetLocalDescription(ans)
	}
	if err != nil {
		p.t.protocolError("subscriber answer: " + err.Error())
		return
	}
	if err := p.send(map[string]any{"type": "answer", "pc": "sub", "sdp": ans.SDP}); err == nil {
		p.ready("sub")
	}
}

// chooseTiles subscribes to up to t.tiles cameras of others (in the order
// the server lists them, as a grid fills) and every screen share, and
// asks again only when the choice changes.
func (p *roomPeer) chooseTiles(m serverMsg) {
	p.mu.Lock()
	me := p.me
	p.mu.Unlock()
	var cams, screens []string
	for _, tr := range m.Tracks {
		if tr.Participant == me {
			continue
		}
		switch tr.Source {
		case "camera":
			cams = append(cams, tr.ID)
		case "screen":
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
	video := make([]map[string]any, 0, len(want))
	for _, id := range screens {
		video = append(video, map[string]any{"track": id, "width": p.t.opt.screenW, "height": p.t.opt.screenH})
	}
	for _, id := range cams {
		video = append(video, map[string]any{"track": id, "width": p.t.opt.tileW, "height": p.t.opt.tileH})
	}
	_ = p.send(map[string]any{"type": "subscribe", "id": p.nextID.Add(1), "video": video})
}

// candidate trickles a local candidate once its description is out.
func (p *roomPeer) candidate(pc string, c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	init := c.ToJSON()
	p.mu.Lock()
	ready := p.pubReady
	if pc == "sub" {
		ready = p.subReady
	}
	if !ready {
		p.pending[pc] = append(p.pending[pc], init)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = p.send(map[string]any{"type": "candidate", "pc": pc, "candidate": init})
}

func (p *roomPeer) ready(pc string) {
	p.mu.Lock()
	if pc == "pub" {
		p.pubReady = true
	} else {
		p.subReady = true
	}
	queued := p.pending[pc]
	delete(p.pending, pc)
	p.mu.Unlock()
	for _, c := range queued {
		_ = p.send(map[string]any{"type": "candidate", "pc": pc, "candidate": c})
	}
}

// publish offers the participant's tracks and starts pacing them.
func (p *roomPeer) publish() error {
	type sending struct {
		source string
		layers []*webrtc.TrackLocalStaticRTP
		sender *webrtc.RTPSender
	}
	var out []*sending
	stream := fmt.Sprintf("load-%d", p.index)
	if p.cam {
		s := &sending{source: "camera"}
		for _, l := range p.t.media.camera {
			tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera", stream, webrtc.WithRTPStreamID(l.rid))
			if err != nil {
				return err
			}
			s.layers = append(s.layers, tr)
		}
		sender, err := p.pub.AddTrack(s.layers[0])
		if err != nil {
			return err
		}
		for _, tr := range s.layers[1:] {
			if err := sender.AddEncoding(tr); err != nil {
				return err
			}
		}
		s.sender = sender
		out = append(out, s)
	}
	for _, src := range []struct {
		on     bool
		name   string
		mime   string
		stream string
	}{{p.mic, "mic", webrtc.MimeTypeOpus, stream}, {p.scr, "screen", webrtc.MimeTypeVP8, stream + "-screen"}} {
		if !src.on {
			continue
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: src.mime}, src.name, src.stream)
		if err != nil {
			return err
		}
		sender, err := p.pub.AddTrack(tr)
		if err != nil {
			return err
		}
		out = append(out, &sending{source: src.name, layers: []*webrtc.TrackLocalStaticRTP{tr}, sender: sender})
	}
	offer, err := p.pub.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := p.pub.SetLocalDescription(offer); err != nil {
		return err
	}
	var tracks []map[string]any
	mids := map[*webrtc.RTPSender]string{}
	for _, tr := range p.pub.GetTransceivers() {
		for _, s := range out {
			if tr.Sender() == s.sender {
				mids[s.sender] = tr.Mid()
				tracks = append(tracks, map[string]any{"mid": tr.Mid(), "source": s.source, "simulcast": s.source == "camera"})
			}
		}
	}
	if err := p.send(map[string]any{"type": "offer", "id": p.nextID.Add(1), "pc": "pub", "sdp": offer.SDP, "tracks": tracks}); err != nil {
		return err
	}
	p.ready("pub")
	_ = p.send(map[string]any{"type": "media", "id": p.nextID.Add(1), "mic": p.mic, "camera": p.cam, "screen": p.scr})
	for _, s := range out {
		mid := mids[s.sender]
		switch s.source {
		case "camera":
			for i, l := range p.t.media.camera {
				p.wantKey[i].Store(true)
				p.wg.Go(func() { p.readPLI(s.sender, l.rid, i) })
			}
			p.wg.Go(func() { p.sendCamera(s.sender, s.layers, mid) })
		case "screen":
			p.wantKey[3].Store(true)
			p.wg.Go(func() { p.readPLI(s.sender, "", 3) })
			p.wg.Go(func() { p.sendScreen(s.sender, s.layers[0], mid) })
		case "mic":
			p.wg.Go(func() { p.drainRTCP(s.sender) })
			p.wg.Go(func() { p.sendMic(s.sender, s.layers[0], mid) })
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

// extIDs returns the negotiated IDs of the mid, rid and audio level
// extensions.
func extIDs(s *webrtc.RTPSender) (mid, rid, level uint8) {
	for _, e := range s.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			mid = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			rid = uint8(e.ID)
		case uriAudioLevel:
			level = uint8(e.ID)
		}
	}
	return mid, rid, level
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
	midID, ridID, _ := extIDs(s)
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
	midID, _, levelID := extIDs(s)
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

// onTrack counts what arrives on one subscriber transceiver. The
// server reuses transceivers as tiles change; the counts stay with the
// transceiver, whose sequence numbers stay continuous.
func (p *roomPeer) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
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
	p.wg.Add(1)
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		p.received(r, buf[:n], time.Now())
	}
}

// received accounts one packet: no allocation, no decoding.
func (p *roomPeer) received(r *trackRecv, b []byte, now time.Time) {
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
	layer, sentAt := -1, int64(0)
	if len(payload) >= stampLen {
		s := payload[len(payload)-stampLen:]
		if s[0] == stampMagic && s[1] < 4 {
			layer = int(s[1])
			sentAt = int64(binary.BigEndian.Uint64(s[2:]))
		}
	}
	key := false
	if r.video {
		key = vp8KeyframeStart(payload)
	}
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
	r.got++
	r.packets++
	r.bytes += uint64(len(payload))
	if layer >= 0 {
		r.layer[layer] += uint64(len(payload))
	}
	r.mu.Unlock()
	if key {
		p.firstFrame.CompareAndSwap(0, now.UnixNano())
	}
	if sentAt > 0 {
		p.delay.add(p.t.phase.Load(), now.UnixNano()-sentAt)
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
	recv := make([]*trackRecv, 0, len(p.recv))
	for _, r := range p.recv {
		recv = append(recv, r)
	}
	p.mu.Unlock()
	for _, r := range recv {
		r.mu.Lock()
		t.packets += r.packets
		t.bytes += r.bytes
		if r.video {
			t.video += r.packets
		} else {
			t.audio += r.packets
		}
		if r.started {
			t.expected += r.maxSeq - r.firstSeq + 1
		}
		t.got += r.got
		for i, v := range r.layer {
			if r.video {
				t.layerBytes[i] += v
			}
		}
		r.mu.Unlock()
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
	if p.ws != nil {
		_ = p.send(map[string]any{"type": "leave"})
		_ = p.ws.Close(websocket.StatusNormalClosure, "load test over")
	}
	if p.pub != nil {
		_ = p.pub.Close()
	}
	if p.sub != nil {
		_ = p.sub.Close()
	}
	if p.ws != nil {
		_ = p.ws.CloseNow()
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
