package sfu

import (
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/media/rewrite"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// This file is the test client: a participant built from plain Pion
// PeerConnections that talks to a Peer through a Signaller, publishes
// synthetic VP8 simulcast and Opus, and records what it receives.

// The synthetic payloads start with the usual VP8 descriptor (or nothing
// for Opus) and then carry origin bytes: which client sent them and, for
// video, which layer, so that a receiver can tell where every packet came
// from whatever the SFU rewrote.
const (
	originOff = 6 // offset in the VP8 payload of the origin byte
)

// msg is one message from the SFU to the client.
type msg struct {
	kind   string
	sdp    string
	pc     PC
	cand   webrtc.ICECandidateInit
	tracks []TrackInfo
	mids   map[string]TrackID
}

// queue is a Signaller that never blocks: the SFU appends, the client's
// loop takes.
type queue struct {
	mu     sync.Mutex
	msgs   []msg
	notify chan struct{}
}

func newQueue() *queue { return &queue{notify: make(chan struct{}, 1)} }

func (q *queue) push(m msg) {
	q.mu.Lock()
	q.msgs = append(q.msgs, m)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *queue) take() []msg {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs
	q.msgs = nil
	return m
}

func (q *queue) Answer(s string) { q.push(msg{kind: "answer", sdp: s}) }
func (q *queue) Offer(s string)  { q.push(msg{kind: "offer", sdp: s}) }
func (q *queue) Candidate(pc PC, c webrtc.ICECandidateInit) {
	q.push(msg{kind: "candidate", pc: pc, cand: c})
}
func (q *queue) Tracks(t []TrackInfo)         { q.push(msg{kind: "tracks", tracks: t}) }
func (q *queue) Mapping(m map[string]TrackID) { q.push(msg{kind: "mapping", mids: m}) }

// received is what a client got on one subscriber mid.
type received struct {
	ssrc      uint32
	packets   int
	keyframes int
	seqs      []uint16 // in arrival order
	layers    []byte   // origin layer of each packet (video)
	keys      []bool   // whether each packet starts a keyframe
	seen      map[uint16]int
}

// client is one test participant.
type client struct {
	t      testing.TB
	name   ParticipantID
	origin byte
	peer   *Peer
	sig    *queue
	pub    *webrtc.PeerConnection
	sub    *webrtc.PeerConnection
	done   chan struct{}
	wg     sync.WaitGroup
	loopWG sync.WaitGroup

	mu      sync.Mutex
	tracks  []TrackInfo
	mapping map[string]TrackID
	got     map[string]*received // by mid
	byOrig  map[byte]int         // packets by origin client
	drop    map[uint16]bool      // video sequence numbers to treat as lost once

	camSender *webrtc.RTPSender
	cams      []*webrtc.TrackLocalStaticRTP
	mic       *webrtc.TrackLocalStaticRTP
	plis      [3]atomic.Int64
	wantKey   [3]atomic.Bool
	loud      atomic.Bool    // the microphone sends speech levels
	maxFrames atomic.Int64   // stop each video layer after this many frames; 0 for never
	paused    [3]atomic.Bool // the video layer sends nothing for now, as a browser short of uplink does
	sentMic   atomic.Int64
	skip      atomic.Int64 // 1 + a top-layer sequence number never sent, as if lost on the way; 0 for none

	// The feedback the camera's layers receive: NACKed sequence numbers
	// of the top layer, TWCC feedback packets, receiver reports that
	// carry the time of a sender report.
	fbMu   sync.Mutex
	nacked map[uint16]int
	twccFB int
	rrLSR  int
}

// newClientAPI builds the client's Pion API: default interceptors (a
// browser has NACK, reports, TWCC), loopback candidates, and no SRTP replay
// protection so that a packet the test pretends to lose can come again.
func newClientAPI(t testing.TB) *webrtc.API {
	t.Helper()
	return newClientAPIOn(t, webrtc.NetworkTypeUDP4)
}

// newClientAPIOn is newClientAPI gathering candidates on the given
// networks only: a client that cannot use UDP, say.
func newClientAPIOn(t testing.TB, networks ...webrtc.NetworkType) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, uriAudioLevel} {
		kind := webrtc.RTPCodecTypeVideo
		if uri == uriAudioLevel {
			kind = webrtc.RTPCodecTypeAudio
		}
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, kind); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.SDESMidURI}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	// Transport-wide sequence numbers on what it publishes, as a
	// browser's packets carry them.
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, ir); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes(networks)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.DisableSRTPReplayProtection(true)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
}

// newTestClient returns a client without connections whose packets carry
// origin.
func newTestClient(t testing.TB, name ParticipantID, origin byte) *client {
	return &client{
		t: t, name: name, origin: origin, done: make(chan struct{}),
		mapping: map[string]TrackID{}, got: map[string]*received{}, byOrig: map[byte]int{}, drop: map[uint16]bool{},
	}
}

// join connects a client to the class; it publishes nothing yet.
func join(t testing.TB, srv *Server, api *webrtc.API, class store.ClassID, name ParticipantID, origin byte) *client {
	t.Helper()
	c := newTestClient(t, name, origin)
	c.sig = newQueue()
	var err error
	if c.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if c.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	c.sub.OnTrack(c.onTrack)
	if c.peer, err = srv.Join(class, name, c.sig); err != nil {
		t.Fatal(err)
	}
	c.pub.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			_ = c.peer.AddCandidate(PCPub, ic.ToJSON())
		}
	})
	c.sub.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			_ = c.peer.AddCandidate(PCSub, ic.ToJSON())
		}
	})
	c.loopWG.Go(c.loop)
	t.Cleanup(c.close)
	return c
}

// loop handles the SFU's messages.
func (c *client) loop() {
	for {
		select {
		case <-c.done:
			return
		case <-c.sig.notify:
		}
		for _, m := range c.sig.take() {
			if err := c.handle(m); err != nil {
				c.t.Errorf("%s: %s: %v", c.name, m.kind, err)
			}
		}
	}
}

func (c *client) handle(m msg) error {
	switch m.kind {
	case "answer":
		return c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.sdp})
	case "offer":
		if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.sdp}); err != nil {
			return err
		}
		answer, err := c.sub.CreateAnswer(nil)
		if err != nil {
			return err
		}
		if err := c.sub.SetLocalDescription(answer); err != nil {
			return err
		}
		return c.peer.SubscriberAnswer(answer.SDP)
	case "candidate":
		pc := c.pub
		if m.pc == PCSub {
			pc = c.sub
		}
		return pc.AddICECandidate(m.cand)
	case "tracks":
		c.mu.Lock()
		c.tracks = m.tracks
		c.mu.Unlock()
	case "mapping":
		c.mu.Lock()
		c.mapping = m.mids
		c.mu.Unlock()
	}
	return nil
}

// onTrack records every packet received on a subscriber mid.
func (c *client) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	mid := ""
	for _, tr := range c.sub.GetTransceivers() {
		if tr.Receiver() == receiver {
			mid = tr.Mid()
		}
	}
	c.wg.Add(1)
	defer c.wg.Done()
	video := remote.Kind() == webrtc.RTPCodecTypeVideo
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		var p rewrite.Packet
		codec := rewrite.Audio
		if video {
			codec = rewrite.VP8
		}
		if rewrite.Parse(&p, buf[:n], codec, 0, time.Now()) != nil {
			continue
		}
		var rp rtp.Packet
		if rp.Unmarshal(buf[:n]) != nil {
			continue
		}
		payload := rp.Payload
		c.mu.Lock()
		if video && c.drop[p.Seq] {
			delete(c.drop, p.Seq)
			c.mu.Unlock()
			continue
		}
		r := c.got[mid]
		if r == nil {
			r = &received{seen: map[uint16]int{}}
			c.got[mid] = r
		}
		r.ssrc = p.SSRC
		r.packets++
		r.seqs = append(r.seqs, p.Seq)
		r.keys = append(r.keys, p.Keyframe)
		r.seen[p.Seq]++
		if p.Keyframe {
			r.keyframes++
		}
		if video && len(payload) > originOff+1 {
			c.byOrig[payload[originOff]]++
			r.layers = append(r.layers, payload[originOff+1])
		} else if !video && len(payload) > 1 {
			c.byOrig[payload[0]]++
		}
		c.mu.Unlock()
	}
}

// publish sends a camera in three simulcast layers and a microphone until
// the client closes. The first frame of each layer is a keyframe; later
// ones only when the SFU asks with a PLI, as Chromium does.
func (c *client) publish(camera, mic bool) {
	t := c.t
	var specs []PublishedTrack
	if camera {
		c.addCamera()
	}
	if mic {
		c.addMic()
	}
	offer, err := c.pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.pub.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	for _, tr := range c.pub.GetTransceivers() {
		switch {
		case tr.Sender() != nil && tr.Sender() == c.camSender:
			specs = append(specs, PublishedTrack{Mid: tr.Mid(), Source: SourceCamera, Simulcast: true})
		case tr.Kind() == webrtc.RTPCodecTypeAudio:
			specs = append(specs, PublishedTrack{Mid: tr.Mid(), Source: SourceMic})
		}
	}
	if err := c.peer.PublisherOffer(offer.SDP, specs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, string(c.name)+" publisher connected", func() bool {
		return c.pub.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	c.startSending()
}

// addCamera adds the camera to the publisher connection in three VP8
// simulcast layers on one m-line, as Chromium offers it.
func (c *client) addCamera() {
	t := c.t
	for _, rid := range rids {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera", string(c.name), webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		c.cams = append(c.cams, tr)
	}
	s, err := c.pub.AddTrack(c.cams[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range c.cams[1:] {
		if err := s.AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
	}
	c.camSender = s
}

// addMic adds the Opus microphone to the publisher connection.
func (c *client) addMic() {
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", string(c.name))
	if err != nil {
		c.t.Fatal(err)
	}
	c.mic = tr
	if _, err := c.pub.AddTrack(tr); err != nil {
		c.t.Fatal(err)
	}
}

// startSending starts what addCamera and addMic added, once the publisher
// connection is up: each camera layer with its reader of keyframe
// requests, and the microphone.
func (c *client) startSending() {
	for _, tr := range c.pub.GetTransceivers() {
		sender, mid := tr.Sender(), tr.Mid()
		switch {
		case sender == nil:
		case sender == c.camSender:
			for i, rid := range rids {
				c.wantKey[i].Store(true)
				c.wg.Go(func() { c.readPLI(sender, rid, i) })
				c.wg.Go(func() { c.sendVideo(sender, mid, i) })
			}
		case tr.Kind() == webrtc.RTPCodecTypeAudio:
			c.wg.Go(func() { c.sendAudio(sender, mid) })
		}
	}
}

// readPLI turns the SFU's keyframe requests for a layer into a keyframe.
func (c *client) readPLI(s *webrtc.RTPSender, rid string, layer int) {
	for {
		pkts, _, err := s.ReadSimulcastRTCP(rid)
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication:
				c.plis[layer].Add(1)
				c.wantKey[layer].Store(true)
			case *rtcp.TransportLayerNack:
				if layer == len(rids)-1 {
					c.fbMu.Lock()
					if c.nacked == nil {
						c.nacked = map[uint16]int{}
					}
					for _, pair := range p.Nacks {
						for _, seq := range pair.PacketList() {
							c.nacked[seq]++
						}
					}
					c.fbMu.Unlock()
				}
			case *rtcp.TransportLayerCC:
				c.fbMu.Lock()
				c.twccFB++
				c.fbMu.Unlock()
			case *rtcp.ReceiverReport:
				for _, r := range p.Reports {
					if r.LastSenderReport != 0 && r.Delay < 5*65536 {
						c.fbMu.Lock()
						c.rrLSR++
						c.fbMu.Unlock()
					}
				}
			}
		}
	}
}

// extIDs returns the negotiated IDs of the mid and rid extensions.
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

// sendVideo sends one layer: 2 packets a frame at 60 frames a second (a
// fast clock keeps the tests short).
func (c *client) sendVideo(s *webrtc.RTPSender, mid string, layer int) {
	midID, ridID, _ := extIDs(s)
	track := c.cams[layer]
	tick := time.NewTicker(time.Second / 60)
	defer tick.Stop()
	seq := uint16(1000 * (layer + 1))
	pid := uint16(0)
	for frame := uint32(0); ; frame++ {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		if m := c.maxFrames.Load(); m > 0 && int64(frame) >= m {
			return
		}
		if c.paused[layer].Load() {
			continue
		}
		key := c.wantKey[layer].Swap(false)
		pid = (pid + 1) & 0x7fff
		for i := range 2 {
			payload := make([]byte, 200+100*layer)
			payload[0] = 0x80 // X
			if i == 0 {
				payload[0] |= 0x10 // S: start of partition 0
			}
			payload[1] = 0x80 // I: picture ID present
			binary.BigEndian.PutUint16(payload[2:], 0x8000|pid)
			payload[4] = 1 // VP8 header: inter frame
			if key {
				payload[4] = 0
			}
			payload[originOff] = c.origin
			payload[originOff+1] = byte(layer)
			pkt := &rtp.Packet{Header: rtp.Header{
				Version: 2, Marker: i == 1, SequenceNumber: seq, Timestamp: frame * 1500,
			}, Payload: payload}
			_ = pkt.Header.SetExtension(midID, []byte(mid))
			_ = pkt.Header.SetExtension(ridID, []byte(rids[layer]))
			seq++
			if layer == len(rids)-1 && c.skip.CompareAndSwap(int64(pkt.SequenceNumber)+1, 0) {
				continue
			}
			if err := track.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return
			}
		}
	}
}

// sendAudio sends a 20 ms Opus packet every 10 ms with an audio level:
// loud (-10 dBov) when c.loud is set, near silence otherwise.
func (c *client) sendAudio(s *webrtc.RTPSender, mid string) {
	midID, _, levelID := extIDs(s)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := uint32(0); ; i++ {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		level := byte(100)
		if c.loud.Load() {
			level = 10
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 960}, Payload: []byte{c.origin, 1, 2, 3}}
		_ = pkt.Header.SetExtension(midID, []byte(mid))
		_ = pkt.Header.SetExtension(levelID, []byte{level})
		if err := c.mic.WriteRTP(pkt); err != nil {
			return
		}
		c.sentMic.Add(1)
	}
}

// subscribe asks for videos at a tile size.
func (c *client) subscribe(w, h int, tracks ...TrackID) {
	c.t.Helper()
	var req []VideoRequest
	for _, id := range tracks {
		req = append(req, VideoRequest{Track: id, Width: w, Height: h})
	}
	if err := c.peer.Subscribe(req); err != nil {
		c.t.Fatal(err)
	}
}

// midOf returns the mid that carries a track, or "".
func (c *client) midOf(id TrackID) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for mid, t := range c.mapping {
		if t == id {
			return mid
		}
	}
	return ""
}

// recv returns a copy of what arrived on the mid that carries a track.
func (c *client) recv(id TrackID) received {
	mid := c.midOf(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.got[mid]
	if mid == "" || r == nil {
		return received{}
	}
	cp := *r
	cp.seqs = slices.Clone(r.seqs)
	cp.layers = slices.Clone(r.layers)
	cp.keys = slices.Clone(r.keys)
	cp.seen = maps.Clone(r.seen)
	return cp
}

// fromOrigin returns how many packets came from another client.
func (c *client) fromOrigin(o byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byOrig[o]
}

func (c *client) seesTrack(id TrackID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.tracks, func(t TrackInfo) bool { return t.ID == id })
}

func (c *client) close() {
	select {
	case <-c.done:
		return
	default:
	}
	close(c.done)
	// No message is handled once the connections start closing.
	c.loopWG.Wait()
	c.peer.Close()
	_ = c.pub.Close()
	_ = c.sub.Close()
	c.wg.Wait()
}

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitTrack waits until track id is published in the class and returns
// its forwarder.
func waitTrack(t testing.TB, srv *Server, class store.ClassID, id TrackID) *upTrack {
	t.Helper()
	var up *upTrack
	waitFor(t, string(id)+" published", func() bool {
		ss, ok := srv.Session(class)
		if !ok {
			return false
		}
		ss.mu.Lock()
		defer ss.mu.Unlock()
		up = ss.tracks[id]
		return up != nil
	})
	return up
}

// events records what the SFU reports.
type events struct {
	mu        sync.Mutex
	published []TrackID
	speakers  []ParticipantID
	failed    []ParticipantID
}

func (e *events) TrackPublished(_ store.ClassID, t TrackInfo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.published = append(e.published, t.ID)
}
func (e *events) TrackUnpublished(store.ClassID, TrackInfo) {}
func (e *events) ActiveSpeaker(_ store.ClassID, _ GroupID, p ParticipantID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.speakers = append(e.speakers, p)
}
func (e *events) Quality(store.ClassID, ParticipantID, Quality) {}
func (e *events) PeerFailed(_ store.ClassID, p ParticipantID, _ error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failed = append(e.failed, p)
}

func (e *events) speaker() ParticipantID {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.speakers) == 0 {
		return ""
	}
	return e.speakers[len(e.speakers)-1]
}

// newServer starts a Server on random loopback ports; closing it at the
// end of the test must bring the goroutine count back to where it was.
func newServer(t testing.TB, cfg Config) (*Server, *events) {
	t.Helper()
	before := runtime.NumGoroutine()
	ev := &events{}
	cfg.IncludeLoopback = true
	cfg.Events = ev
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		waitGoroutines(t, before)
	})
	return srv, ev
}

// waitGoroutines fails the test if goroutines outlive what started them.
func waitGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
