package signal

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// rtcClient is a browser stand-in: a signalling client with a publisher
// and a subscriber PeerConnection driven by the protocol's messages.
type rtcClient struct {
	*client
	t        *testing.T
	pub, sub *webrtc.PeerConnection

	mu       sync.Mutex
	pubReady bool // the offer went out: candidates may follow
	subReady bool // the answer went out
	pending  map[string][]webrtc.ICECandidateInit

	video, audio atomic.Int64 // RTP packets received on the subscriber connection
	over         atomic.Bool  // the test is cleaning up: failures of closed connections are expected
}

// errorf reports a failure unless the test is already tearing down.
func (rc *rtcClient) errorf(format string, args ...any) {
	if !rc.over.Load() {
		rc.t.Errorf(format, args...)
	}
}

func newAPI(t *testing.T) *webrtc.API {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
}

// rtcJoin joins with tok and wires both connections to the signalling.
func (e *env) rtcJoin(tok string) *rtcClient {
	e.t.Helper()
	t := e.t
	api := newAPI(t)
	rc := &rtcClient{t: t, pending: map[string][]webrtc.ICECandidateInit{}}
	var err error
	if rc.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if rc.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.over.Store(true); _ = rc.pub.Close(); _ = rc.sub.Close() })
	c := e.dial(nil)
	rc.client = c
	t.Cleanup(func() { rc.over.Store(true) })
	rc.pub.OnICECandidate(func(cand *webrtc.ICECandidate) { rc.candidate(PCPub, cand) })
	rc.sub.OnICECandidate(func(cand *webrtc.ICECandidate) { rc.candidate(PCSub, cand) })
	rc.sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := &rc.audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			n = &rc.video
		}
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			n.Add(1)
		}
	})
	c.handle(TypeOffer, func(m msg) {
		if err := rc.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.str("sdp")}); err != nil {
			rc.errorf("subscriber offer: %v", err)
			return
		}
		ans, err := rc.sub.CreateAnswer(nil)
		rc.mu.Lock()
		rc.subReady = false // this answer's candidates follow it
		rc.mu.Unlock()
		if err == nil {
			err = rc.sub.SetLocalDescription(ans)
		}
		if err != nil {
			rc.errorf("subscriber answer: %v", err)
			return
		}
		rc.send(map[string]any{"type": "answer", "pc": PCSub, "sdp": ans.SDP})
		rc.ready(PCSub)
	})
	c.handle(TypeAnswer, func(m msg) {
		if err := rc.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.str("sdp")}); err != nil {
			rc.errorf("publisher answer: %v", err)
		}
	})
	c.handle(TypeCandidate, func(m msg) {
		var sc ServerCandidate
		if err := json.Unmarshal(m.raw, &sc); err != nil {
			rc.errorf("candidate %s: %v", m.raw, err)
			return
		}
		pc := rc.pub
		if sc.PC == PCSub {
			pc = rc.sub
		}
		if err := pc.AddICECandidate(sc.Candidate); err != nil {
			rc.errorf("add %s candidate: %v", sc.PC, err)
		}
	})
	c.listen()
	c.send(map[string]any{"type": "join", "v": 1, "token": tok})
	c.wait(TypeJoined, nil)
	return rc
}

// candidate trickles a local candidate once its description is out.
func (rc *rtcClient) candidate(pc string, cand *webrtc.ICECandidate) {
	if cand == nil {
		return
	}
	init := cand.ToJSON()
	rc.mu.Lock()
	ready := rc.pubReady
	if pc == PCSub {
		ready = rc.subReady
	}
	if !ready {
		rc.pending[pc] = append(rc.pending[pc], init)
		rc.mu.Unlock()
		return
	}
	rc.mu.Unlock()
	rc.send(map[string]any{"type": "candidate", "pc": pc, "candidate": init})
}

func (rc *rtcClient) ready(pc string) {
	rc.mu.Lock()
	if pc == PCPub {
		rc.pubReady = true
	} else {
		rc.subReady = true
	}
	queued := rc.pending[pc]
	delete(rc.pending, pc)
	rc.mu.Unlock()
	for _, c := range queued {
		rc.send(map[string]any{"type": "candidate", "pc": pc, "candidate": c})
	}
}

// publish offers a VP8 camera and an Opus microphone and sends synthetic
// frames until the test ends.
func (rc *rtcClient) publish() {
	t := rc.t
	cam, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera", "s")
	if err != nil {
		t.Fatal(err)
	}
	mic, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "s")
	if err != nil {
		t.Fatal(err)
	}
	send := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}
	camTr, err := rc.pub.AddTransceiverFromTrack(cam, send)
	if err != nil {
		t.Fatal(err)
	}
	micTr, err := rc.pub.AddTransceiverFromTrack(mic, send)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := rc.pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.pub.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	rc.mustOK(map[string]any{"type": "offer", "pc": PCPub, "sdp": offer.SDP, "tracks": []map[string]any{
		{"mid": camTr.Mid(), "source": "camera"},
		{"mid": micTr.Mid(), "source": "mic"},
	}})
	rc.ready(PCPub)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	// Every frame is a VP8 keyframe (frame tag with the key bit clear, the
	// start code, 320×180), so that forwarding may start on any of them.
	frame := append([]byte{0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, make([]byte, 600)...)
	opus := append([]byte{0xfc}, make([]byte, 80)...)
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = mic.WriteSample(media.Sample{Data: opus, Duration: 20 * time.Millisecond})
			if i%2 == 0 {
				_ = cam.WriteSample(media.Sample{Data: frame, Duration: 40 * time.Millisecond})
			}
		}
	})
}

func TestPublishSubscribe(t *testing.T) {
	e := newEnv(t, envOptions{})
	host := e.rtcJoin(e.token(e.class, e.host, jointoken.RoleHost, nil))
	u := e.user("nia", store.RoleStudent)
	student := e.rtcJoin(e.token(e.class, u, jointoken.RoleAttendee, nil))
	host.publish()

	camID := string(sfu.MakeTrackID(sfu.ParticipantID(e.host.ID), sfu.SourceCamera))
	// The student learns of the host's camera and microphone.
	student.wait(TypeTracks, func(m msg) bool {
		var tr Tracks
		m.decode(t, &tr)
		ids := map[sfu.TrackID]bool{}
		for _, x := range tr.Tracks {
			ids[x.ID] = true
		}
		return ids[sfu.TrackID(camID)] && ids[sfu.MakeTrackID(sfu.ParticipantID(e.host.ID), sfu.SourceMic)]
	})
	student.mustOK(map[string]any{"type": "subscribe", "video": []map[string]any{{"track": camID, "width": 320, "height": 180}}})
	student.wait(TypeMapping, func(m msg) bool {
		var mp Mapping
		m.decode(t, &mp)
		for _, id := range mp.Mids {
			if string(id) == camID {
				return true
			}
		}
		return false
	})
	eventually(t, "student receives the host's video and audio", func() bool {
		return student.video.Load() > 10 && student.audio.Load() > 10
	})
	// Nobody published towards the host: it receives nothing.
	if host.video.Load() != 0 {
		t.Fatalf("host received %d video packets of its own", host.video.Load())
	}
	t.Logf("student received %d video and %d audio packets", student.video.Load(), student.audio.Load())

	// ICE restart of the subscriber connection: a new offer comes, is
	// answered, and media keeps flowing.
	offers := student.count(TypeOffer, nil)
	student.mustOK(map[string]any{"type": "restart"})
	eventually(t, "a restarting subscriber offer", func() bool { return student.count(TypeOffer, nil) > offers })
	// ICE restart of the publisher connection: the client offers again.
	restart, err := host.pub.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	// Candidates of the new generation wait for the offer they belong to.
	host.mu.Lock()
	host.pubReady = false
	host.mu.Unlock()
	if err := host.pub.SetLocalDescription(restart); err != nil {
		t.Fatal(err)
	}
	answers := host.count(TypeAnswer, nil)
	host.mustOK(map[string]any{"type": "offer", "pc": PCPub, "sdp": restart.SDP, "iceRestart": true, "tracks": []map[string]any{
		{"mid": "0", "source": "camera"}, {"mid": "1", "source": "mic"},
	}})
	host.ready(PCPub)
	eventually(t, "the publisher's new answer", func() bool { return host.count(TypeAnswer, nil) > answers })
	v := student.video.Load()
	eventually(t, "video after both restarts", func() bool { return student.video.Load() > v+10 })
}

// hasTrack reports whether a tracks message lists id.
func hasTrack(t *testing.T, m msg, id sfu.TrackID) bool {
	var tr Tracks
	m.decode(t, &tr)
	for _, x := range tr.Tracks {
		if x.ID == id {
			return true
		}
	}
	return false
}

// TestHostMuteStopsForwarding checks the room → sfu glue: a host's mute
// stops the server forwarding the microphone, whatever the client does,
// until the student unmutes.
func TestHostMuteStopsForwarding(t *testing.T) {
	e := newEnv(t, envOptions{})
	host := e.rtcJoin(e.token(e.class, e.host, jointoken.RoleHost, nil))
	u := e.user("oli", store.RoleStudent)
	student := e.rtcJoin(e.token(e.class, u, jointoken.RoleAttendee, nil))
	student.publish()
	mic := sfu.MakeTrackID(sfu.ParticipantID(u.ID), sfu.SourceMic)
	host.wait(TypeTracks, func(m msg) bool { return hasTrack(t, m, mic) })
	eventually(t, "host hears the student", func() bool { return host.audio.Load() > 5 })

	n := host.count(TypeTracks, nil)
	host.mustOK(map[string]any{"type": "mute", "participant": string(u.ID)})
	student.wait("muted", nil)
	eventually(t, "the student's microphone disappears for the host", func() bool {
		last, ok := host.last(TypeTracks)
		return ok && host.count(TypeTracks, nil) > n && !hasTrack(t, last, mic)
	})

	student.mustOK(map[string]any{"type": "media", "mic": true, "camera": false, "screen": false})
	eventually(t, "the microphone is back", func() bool {
		return host.count(TypeTracks, func(m msg) bool { return hasTrack(t, m, mic) }) >= 2
	})
}

// TestMediaEventsReachTheRoom checks the sfu → room glue: what the sfu
// observes reaches the participants as classroom events.
func TestMediaEventsReachTheRoom(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	u := e.user("pia", store.RoleStudent)
	student, _ := e.join(e.token(e.class, u, jointoken.RoleAttendee, nil), true)
	ev := MediaEvents(e.rooms, nil)
	ev.ActiveSpeaker(e.class.ID, "", sfu.ParticipantID(u.ID))
	for _, c := range []*client{host, student} {
		if m := c.wait("speaker", nil); m.str("participant") != string(u.ID) {
			t.Fatalf("speaker = %s", m.raw)
		}
	}
	ev.Quality(e.class.ID, sfu.ParticipantID(u.ID), sfu.QualityPoor)
	if m := student.wait("quality", nil); m.fields["level"] != float64(1) {
		t.Fatalf("quality = %s", m.raw)
	}
	ev.PeerFailed(e.class.ID, sfu.ParticipantID(u.ID), nil)
	host.wait("quality", func(m msg) bool { return m.fields["level"] == float64(0) })
	// Events of a class without a room are dropped quietly.
	ev.ActiveSpeaker("no-such-class", "", "x")
}
