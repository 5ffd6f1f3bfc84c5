package sfu

import (
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/media/rewrite"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// This file is the broadcast test clients: a WHIP publisher (VP8 simulcast
// as a browser sends it, or H.264 and Opus as OBS does) and a WHEP viewer,
// both plain Pion PeerConnections that exchange one offer and one answer
// with the Server, as the HTTP endpoints do.

// whipMode says what a test publisher sends.
type whipMode int

const (
	whipVP8Simulcast whipMode = iota // camera in three VP8 layers, and Opus
	whipH264                         // one H.264 stream, and Opus (OBS)
)

// whipPub is a test broadcast publisher. For VP8 it reuses the
// interactive test client's senders (origin and layer bytes in every
// payload, a keyframe on each PLI).
type whipPub struct {
	*client
	ing  *Ingest
	h264 *webrtc.TrackLocalStaticSample
	opus *webrtc.TrackLocalStaticSample
	// h264PLIs counts the keyframe requests of the H.264 stream.
	h264PLIs atomic.Int64
	h264Key  atomic.Bool
	h264Sent atomic.Int64
}

// publishWHIP connects a publisher to the class through Server.Ingest and
// starts sending.
func publishWHIP(t testing.TB, srv *Server, api *webrtc.API, class store.ClassID, name ParticipantID, origin byte, mode whipMode) *whipPub {
	t.Helper()
	return publishWHIPOffering(t, srv, api, class, name, origin, mode, func(sdp string) string { return sdp })
}

// publishWHIPOffering is publishWHIP with the offer rewritten by edit
// before the server sees it.
func publishWHIPOffering(t testing.TB, srv *Server, api *webrtc.API, class store.ClassID, name ParticipantID, origin byte, mode whipMode, edit func(string) string) *whipPub {
	t.Helper()
	c := newTestClient(t, name, origin)
	var err error
	if c.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	w := &whipPub{client: c}
	switch mode {
	case whipVP8Simulcast:
		c.addCamera()
		c.addMic()
	case whipH264:
		w.h264, w.opus = addH264Opus(t, c.pub, name)
	}
	w.ing = negotiate(t, c.pub, func(offer string) (*Ingest, string, error) { return srv.Ingest(class, name, edit(offer)) })
	waitFor(t, string(name)+" publisher connected", func() bool {
		return c.pub.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	switch mode {
	case whipVP8Simulcast:
		c.startSending()
	case whipH264:
		for _, tr := range c.pub.GetTransceivers() {
			switch sender := tr.Sender(); {
			case sender == nil:
			case tr.Kind() == webrtc.RTPCodecTypeVideo:
				w.h264Key.Store(true)
				c.wg.Go(func() { w.readH264PLI(sender) })
				c.wg.Go(w.sendH264)
			default:
				c.wg.Go(w.sendOpus)
			}
		}
	}
	t.Cleanup(w.close)
	return w
}

// addSendonly adds a send-only m-line for each track, as a WHIP client's
// offer has.
func addSendonly(t testing.TB, pc *webrtc.PeerConnection, tracks ...webrtc.TrackLocal) {
	t.Helper()
	for _, tr := range tracks {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
}

// addH264Opus adds a camera in H.264 and a microphone in Opus, written
// as samples, on send-only m-lines: what an encoder such as OBS offers.
func addH264Opus(t testing.TB, pc *webrtc.PeerConnection, name ParticipantID) (video, audio *webrtc.TrackLocalStaticSample) {
	t.Helper()
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "camera", string(name))
	if err != nil {
		t.Fatal(err)
	}
	audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", string(name))
	if err != nil {
		t.Fatal(err)
	}
	addSendonly(t, pc, video, audio)
	return video, audio
}

// addRecvAudioVideo adds the receive-only audio and video m-lines of a
// WHEP viewer's offer.
func addRecvAudioVideo(t testing.TB, pc *webrtc.PeerConnection) {
	t.Helper()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
}

// negotiate makes pc's offer with every candidate in it (WHIP and WHEP
// clients do not trickle), has the server answer it through answer
// (Server.Ingest or Server.View, as the HTTP endpoints call them), applies
// the answer, and returns the server's side of the connection.
func negotiate[T any](t testing.TB, pc *webrtc.PeerConnection, answer func(offer string) (T, string, error)) T {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	conn, sdp, err := answer(pc.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readH264PLI turns keyframe requests into an IDR.
func (w *whipPub) readH264PLI(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				w.h264PLIs.Add(1)
				w.h264Key.Store(true)
			}
		}
	}
}

// h264Frame returns one synthetic Annex-B access unit: SPS, PPS and an IDR
// slice for a keyframe, a non-IDR slice otherwise. The slices are large
// enough to be fragmented (FU-A), as real frames are.
func h264Frame(key bool, n int) []byte {
	start := []byte{0, 0, 0, 1}
	var b []byte
	if key {
		b = append(b, start...)
		b = append(b, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8) // SPS
		b = append(b, start...)
		b = append(b, 0x68, 0xce, 0x3c, 0x80) // PPS
	}
	b = append(b, start...)
	nal := byte(0x41) // non-IDR slice
	size := 1500
	if key {
		nal, size = 0x65, 3000 // IDR slice
	}
	b = append(b, nal)
	for i := range size {
		b = append(b, byte(n+i)|0x01) // never a start code
	}
	return b
}

// sendH264 sends 60 frames a second, an IDR first and on each PLI.
func (w *whipPub) sendH264() {
	tick := time.NewTicker(time.Second / 60)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
		key := w.h264Key.Swap(false)
		if err := w.h264.WriteSample(media.Sample{Data: h264Frame(key, n), Duration: time.Second / 60}); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return
		}
		w.h264Sent.Add(1)
	}
}

// sendOpus sends a 20 ms Opus frame every 20 ms.
func (w *whipPub) sendOpus() {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
		if err := w.opus.WriteSample(media.Sample{Data: []byte{0xfc, w.origin, 1, 2}, Duration: 20 * time.Millisecond}); err != nil {
			return
		}
		w.sentMic.Add(1)
	}
}

// close stops sending and closes the connection (the ingest ends with
// it).
func (w *whipPub) close() {
	select {
	case <-w.done:
		return
	default:
	}
	close(w.done)
	_ = w.pub.Close()
	w.wg.Wait()
	w.ing.Close()
}

// whepView is a test broadcast viewer.
type whepView struct {
	t    testing.TB
	pc   *webrtc.PeerConnection
	v    *Viewer
	wg   sync.WaitGroup
	done chan struct{}
	// remb, when set, is sent as the viewer's REMB every 100 ms.
	remb atomic.Int64
	// videoSSRC is the SSRC the answer gives the video, which a REMB
	// names before any packet came (0 when the answer has none).
	videoSSRC uint32

	mu    sync.Mutex
	video viewRecv
	audio viewRecv
}

// viewRecv is what a viewer received on one m-line.
type viewRecv struct {
	ssrcs     []uint32
	codecs    []string
	pts       []uint8
	seqs      []uint16
	layers    []byte // origin layer of each VP8 packet
	keyframes int
	packets   int
	firstAt   time.Time
}

// viewWHEP joins a viewer through Server.View with a recvonly offer of
// one audio and one video m-line.
func viewWHEP(t testing.TB, srv *Server, api *webrtc.API, class store.ClassID, name ParticipantID) *whepView {
	t.Helper()
	return viewWHEPOffering(t, srv, api, class, name, func(sdp string) string { return sdp })
}

// viewWHEPOffering is viewWHEP with the offer rewritten by edit before the
// server sees it.
func viewWHEPOffering(t testing.TB, srv *Server, api *webrtc.API, class store.ClassID, name ParticipantID, edit func(string) string) *whepView {
	t.Helper()
	w := &whepView{t: t, done: make(chan struct{})}
	var err error
	if w.pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	addRecvAudioVideo(t, w.pc)
	w.pc.OnTrack(w.onTrack)
	w.v = negotiate(t, w.pc, func(offer string) (*Viewer, string, error) { return srv.View(class, name, edit(offer)) })
	w.videoSSRC = answerSSRC(t, w.pc, "video")
	w.wg.Go(w.sendREMB)
	t.Cleanup(w.close)
	return w
}

// onTrack records the packets of one m-line.
func (w *whepView) onTrack(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	// Pion may start a track while close waits for the others: an Add
	// then would race the Wait. Under the lock close takes to mark the
	// end, a track comes in before it or not at all.
	w.mu.Lock()
	select {
	case <-w.done:
		w.mu.Unlock()
		return
	default:
	}
	w.wg.Add(1)
	w.mu.Unlock()
	defer w.wg.Done()
	video := remote.Kind() == webrtc.RTPCodecTypeVideo
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		mime := remote.Codec().MimeType
		codec := rewrite.Audio
		switch {
		case mime == webrtc.MimeTypeVP8:
			codec = rewrite.VP8
		case mime == webrtc.MimeTypeH264:
			codec = rewrite.H264
		}
		var p rewrite.Packet
		if rewrite.Parse(&p, buf[:n], codec, 0, time.Now()) != nil {
			continue
		}
		var rp rtp.Packet
		if rp.Unmarshal(buf[:n]) != nil {
			continue
		}
		w.mu.Lock()
		r := &w.audio
		if video {
			r = &w.video
		}
		if r.packets == 0 {
			r.firstAt = time.Now()
		}
		r.packets++
		if !slices.Contains(r.ssrcs, p.SSRC) {
			r.ssrcs = append(r.ssrcs, p.SSRC)
		}
		if !slices.Contains(r.codecs, mime) {
			r.codecs = append(r.codecs, mime)
		}
		if !slices.Contains(r.pts, p.PayloadType) {
			r.pts = append(r.pts, p.PayloadType)
		}
		r.seqs = append(r.seqs, p.Seq)
		if p.Keyframe {
			r.keyframes++
		}
		if codec == rewrite.VP8 && len(rp.Payload) > originOff+1 {
			r.layers = append(r.layers, rp.Payload[originOff+1])
		}
		w.mu.Unlock()
	}
}

// answerSSRC returns the first SSRC the remote description gives the
// m-line of kind ("audio", "video"), 0 when it gives none.
func answerSSRC(t testing.TB, pc *webrtc.PeerConnection, kind string) uint32 {
	t.Helper()
	// Parsed from the text: SessionDescription.Unmarshal would write the
	// parse into the description Pion is reading.
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(pc.RemoteDescription().SDP); err != nil {
		t.Fatal(err)
	}
	for _, m := range desc.MediaDescriptions {
		if m.MediaName.Media != kind {
			continue
		}
		if v, ok := m.Attribute("ssrc"); ok {
			id, _, _ := strings.Cut(v, " ")
			if n, err := strconv.ParseUint(id, 10, 32); err == nil {
				return uint32(n)
			}
		}
	}
	return 0
}

// sendREMB sends the capped estimate while one is set, as a browser
// on a slow link does: from the connection's start, naming the SSRC of
// the answer until packets name theirs.
func (w *whepView) sendREMB() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
		w.mu.Lock()
		ssrcs := slices.Clone(w.video.ssrcs)
		w.mu.Unlock()
		if len(ssrcs) == 0 && w.videoSSRC != 0 {
			ssrcs = []uint32{w.videoSSRC}
		}
		if r := w.remb.Load(); r > 0 && len(ssrcs) > 0 {
			_ = w.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(r), SSRCs: ssrcs}})
		}
	}
}

// recv returns a copy of what arrived.
func (w *whepView) recv() (video, audio viewRecv) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cp := func(r viewRecv) viewRecv {
		r.ssrcs, r.codecs, r.pts = slices.Clone(r.ssrcs), slices.Clone(r.codecs), slices.Clone(r.pts)
		r.seqs, r.layers = slices.Clone(r.seqs), slices.Clone(r.layers)
		return r
	}
	return cp(w.video), cp(w.audio)
}

func (w *whepView) close() {
	w.mu.Lock()
	select {
	case <-w.done:
		w.mu.Unlock()
		return
	default:
	}
	close(w.done)
	w.mu.Unlock()
	_ = w.pc.Close()
	w.wg.Wait()
	w.v.Close()
}

// checkContinuous fails unless seqs, in arrival order, form one stream:
// no jump forward of more than a few dozen numbers (a restart, or a
// second stream on the same SSRC), and hardly a hole left once
// retransmissions came (loopback drops a packet now and then on a busy
// machine, and a NACK answered twice late can leave one).
func checkContinuous(t testing.TB, what string, seqs []uint16) {
	t.Helper()
	if len(seqs) < 2 {
		t.Fatalf("%s: %d packets", what, len(seqs))
	}
	ext := int64(seqs[0])
	first, newest := ext, ext
	seen := map[int64]bool{ext: true}
	for i, s := range seqs[1:] {
		d := int64(int16(s - uint16(newest)))
		if d > 64 {
			t.Fatalf("%s: packet %d has sequence number %d after %d: a jump of %d", what, i+1, s, uint16(newest), d)
		}
		x := newest + d
		newest = max(newest, x)
		seen[x] = true
	}
	holes := 0
	for x := first; x <= newest-50; x++ { // the newest may still be coming
		if !seen[x] {
			holes++
		}
	}
	if span := newest - first + 1; holes*100 > int(span) {
		t.Fatalf("%s: %d of %d sequence numbers never arrived", what, holes, span)
	}
}

// publishWHIPOneLayer connects a publisher of one VP8 stream without
// simulcast (the benchmark's 720p layer) that sends frames keyframes and
// stops, leaving the forwarding to the caller.
func publishWHIPOneLayer(t testing.TB, srv *Server, api *webrtc.API, class store.ClassID, name ParticipantID, frames int) *whipPub {
	t.Helper()
	c := newTestClient(t, name, 0)
	var err error
	if c.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	cam, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera", string(name))
	if err != nil {
		t.Fatal(err)
	}
	addSendonly(t, c.pub, cam)
	w := &whipPub{client: c}
	w.ing = negotiate(t, c.pub, func(offer string) (*Ingest, string, error) { return srv.Ingest(class, name, offer) })
	// Packets written before the connection is up go nowhere, and the
	// caller waits for the last one.
	waitFor(t, string(name)+" publisher connected", func() bool {
		return c.pub.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	c.wg.Go(func() {
		var src vp8Source
		tick := time.NewTicker(time.Second / 60)
		defer tick.Stop()
		for range frames * 3 {
			select {
			case <-c.done:
				return
			case <-tick.C:
			}
			var p rtp.Packet
			if p.Unmarshal(src.next()) == nil {
				_ = cam.WriteRTP(&p)
			}
		}
	})
	t.Cleanup(w.close)
	return w
}
