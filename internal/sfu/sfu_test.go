package sfu

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/media/bwe"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// testLogger logs through the test, so that a failure shows the SFU's view.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

const class = store.ClassID("class-1")

// TestPublishSubscribe publishes a simulcast camera and a microphone and
// checks that a participant who joins later hears the microphone, receives
// the camera on the mid the mapping names with one SSRC, and gets a
// keyframe it could only get because the SFU asked the publisher for one.
// It also answers a NACK from the packet cache and speaks to the active
// speaker detection. It runs with either bandwidth estimator: they differ
// in the subscriber connection's interceptors, through which every
// forwarded packet passes.
func TestPublishSubscribe(t *testing.T) {
	t.Run("loss", func(t *testing.T) { testPublishSubscribe(t, EstimateLoss) })
	t.Run("twcc", func(t *testing.T) { testPublishSubscribe(t, EstimateTWCC) })
}

func testPublishSubscribe(t *testing.T, est Estimation) {
	srv, ev := newServer(t, Config{Estimation: est})
	api := newClientAPI(t)
	alice := join(t, srv, api, class, "alice", 1)
	alice.loud.Store(true)
	alice.publish(true, true)
	// Let alice's first keyframes go by before bob exists.
	waitFor(t, "alice's tracks published", func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		return len(ev.published) == 2
	})
	plisBefore := alice.plis[0].Load()
	// A microphone's packet cache is small (nobody NACKs audio); a
	// camera layer's holds a keyframe and more.
	if got := waitTrack(t, srv, class, "alice/mic").fwd.Cache(0).Size(); got != audioCacheSize {
		t.Fatalf("microphone cache of %d packets, want %d", got, audioCacheSize)
	}
	camTrack := waitTrack(t, srv, class, "alice/camera")
	for layer, want := range simulcastCacheSizes() {
		if got := camTrack.fwd.Cache(layer).Size(); got != want {
			t.Fatalf("camera layer %d: cache of %d packets, want %d", layer, got, want)
		}
	}

	bob := join(t, srv, api, class, "bob", 2)
	waitFor(t, "bob sees alice's camera", func() bool { return bob.seesTrack("alice/camera") && bob.seesTrack("alice/mic") })
	bob.subscribe(320, 180, "alice/camera")
	waitFor(t, "bob hears alice", func() bool { return bob.recv("alice/mic").packets > 20 })
	waitFor(t, "a keyframe of alice's camera at bob", func() bool { return bob.recv("alice/camera").keyframes > 0 })
	if alice.plis[0].Load() <= plisBefore {
		t.Fatalf("alice got no PLI for layer q after bob subscribed (%d before, %d after)", plisBefore, alice.plis[0].Load())
	}
	cam := bob.recv("alice/camera")
	for i, l := range cam.layers {
		if l != 0 {
			t.Fatalf("packet %d of a 320×180 tile came from layer %d, want q (0)", i, l)
		}
	}
	var ssrc uint32
	for _, tr := range bob.sub.GetTransceivers() {
		if tr.Mid() == bob.midOf("alice/camera") {
			// The SSRC the SDP announced for the mid.
			waitFor(t, "the camera receiver's track", func() bool { return tr.Receiver().Track() != nil })
			ssrc = uint32(tr.Receiver().Track().SSRC())
		}
	}
	if cam.ssrc != ssrc || ssrc == 0 {
		t.Fatalf("camera packets carry SSRC %d, the mid's announced SSRC is %d", cam.ssrc, ssrc)
	}
	if bob.fromOrigin(2) != 0 {
		t.Fatal("bob received his own media")
	}

	// A lost packet: bob drops the next one, asks again, gets it.
	last := cam.seqs[len(cam.seqs)-1]
	lost := last + 3
	bob.mu.Lock()
	bob.drop[lost] = true
	bob.mu.Unlock()
	waitFor(t, "packets after the lost one", func() bool {
		r := bob.recv("alice/camera")
		return r.seqs[len(r.seqs)-1]-lost < 0x8000 && r.seqs[len(r.seqs)-1] != lost
	})
	if bob.recv("alice/camera").seen[lost] != 0 {
		t.Fatal("the dropped packet was counted")
	}
	err := bob.sub.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
		MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{lost}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retransmission", func() bool { return bob.recv("alice/camera").seen[lost] == 1 })
	waitFor(t, "the retransmission counted", func() bool { return bob.peer.Stats(time.Now()).Retransmitted >= 1 })

	waitFor(t, "alice as active speaker", func() bool { return ev.speaker() == "alice" })
	st := srv.Stats()
	if st.PacketsForwarded == 0 || st.PLIs == 0 || st.Sessions != 1 || len(st.Peers) != 2 {
		t.Fatalf("stats: %+v", st)
	}
	if got := bob.peer.est != nil; got != (est == EstimateTWCC) {
		t.Fatalf("estimation %d: subscriber has a congestion controller: %v", est, got)
	}
	// Loss-based estimation sends on the sfu's own SRTP path (the
	// NACKed packet above went out on it too); TWCC's interceptors must
	// see every packet, so it keeps Pion's writer.
	wantPath := pathDirect
	if est == EstimateTWCC {
		wantPath = pathPion
	}
	if got := bob.peer.down.path.Load(); got != wantPath {
		t.Fatalf("estimation %d: send path %d, want %d", est, got, wantPath)
	}
	if est == EstimateTWCC {
		// The transport-wide feedback reaches the congestion controller
		// although nothing reads the senders' RTCP: it has estimated.
		waitFor(t, "a congestion-control estimate from bob's feedback", func() bool {
			b, _ := bob.peer.est.GetStats()["lossTargetBitrate"].(int)
			return b > 0
		})
	}
	// Forwarded packets left through the batching sockets under the mux.
	var datagrams uint64
	for _, c := range srv.batch {
		_, d, _ := c.Stats()
		datagrams += d
	}
	if datagrams == 0 {
		t.Fatal("no datagram went out in a batch")
	}
}

// TestLayerSwitch moves a subscriber up to the full layer when its tile is
// large and its estimate allows, then down to the lowest when it reports a
// low bandwidth (REMB): each switch lands on a keyframe of the new layer
// with sequence numbers that continue without a gap.
func TestLayerSwitch(t *testing.T) {
	srv, _ := newServer(t, Config{
		Estimation: EstimateLoss, InitialEstimate: 5_000_000, LayerHold: 50 * time.Millisecond, Tick: 50 * time.Millisecond,
		Layers: []bwe.Layer{{Bitrate: 100_000, Width: 320, Height: 180}, {Bitrate: 300_000, Width: 640, Height: 360}, {Bitrate: 900_000, Width: 1280, Height: 720}},
	})
	api := newClientAPI(t)
	alice := join(t, srv, api, class, "alice", 1)
	alice.publish(true, false)
	bob := join(t, srv, api, class, "bob", 2)
	waitFor(t, "bob sees alice's camera", func() bool { return bob.seesTrack("alice/camera") })
	// Packets sent before the connection is up are lost, keyframes
	// included (the SFU asks for another when it comes up); start with
	// the connection up so that every packet counts.
	waitFor(t, "bob's subscriber connection", func() bool { return bob.peer.subReady.Load() })
	bob.subscribe(1280, 720, "alice/camera")
	lastLayer := func() byte {
		r := bob.recv("alice/camera")
		if len(r.layers) == 0 {
			return 255
		}
		return r.layers[len(r.layers)-1]
	}
	waitFor(t, "the full layer at bob", func() bool { return lastLayer() == 2 })

	mark := len(bob.recv("alice/camera").seqs)
	if got := bob.recv("alice/camera"); !got.keys[slices.Index(got.layers, 2)] {
		i := slices.Index(got.layers, 2)
		t.Fatalf("the first packet of the full layer does not start a keyframe: packet %d of %v, keys %v, seqs %v", i, got.layers[max(0, i-5):i+5], got.keys[max(0, i-5):i+5], got.seqs[max(0, i-5):i+5])
	}
	// Bob's estimate falls to 150 kbps: room for the lowest layer only.
	err := bob.sub.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 150_000, SSRCs: []uint32{bob.recv("alice/camera").ssrc}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lowest layer at bob", func() bool { return lastLayer() == 0 })
	r := bob.recv("alice/camera")
	switched := -1
	for i := mark; i < len(r.layers); i++ {
		if r.layers[i] == 0 {
			switched = i
			break
		}
	}
	if switched <= 0 {
		t.Fatal("no switch found")
	}
	if !r.keys[switched] {
		t.Fatal("the switch to the lowest layer did not land on a keyframe")
	}
	for i := mark; i < len(r.seqs); i++ {
		if r.seqs[i] != r.seqs[i-1]+1 {
			t.Fatalf("sequence gap at packet %d: %d after %d", i, r.seqs[i], r.seqs[i-1])
		}
	}
}

// TestBreakoutIsolation puts four participants in two groups before they
// join: no packet crosses from one group to the other.
func TestBreakoutIsolation(t *testing.T) {
	srv, _ := newServer(t, Config{})
	srv.SetGroup(class, "a", "b1")
	srv.SetGroup(class, "b", "b1")
	srv.SetGroup(class, "c", "b2")
	srv.SetGroup(class, "d", "b2")
	api := newClientAPI(t)
	names := []ParticipantID{"a", "b", "c", "d"}
	var cs []*client
	for i, n := range names {
		c := join(t, srv, api, class, n, byte(i+1))
		c.publish(true, true)
		cs = append(cs, c)
	}
	for _, c := range cs {
		c.subscribe(640, 360, "a/camera", "b/camera", "c/camera", "d/camera")
	}
	partner := map[int]int{0: 1, 1: 0, 2: 3, 3: 2}
	for i, c := range cs {
		p := partner[i]
		waitFor(t, string(c.name)+" receives its partner's camera and mic", func() bool {
			return c.recv(MakeTrackID(names[p], SourceCamera)).packets > 20 && c.recv(MakeTrackID(names[p], SourceMic)).packets > 20
		})
	}
	for i, c := range cs {
		for j := range cs {
			if j == i || j == partner[i] {
				continue
			}
			if n := c.fromOrigin(byte(j + 1)); n != 0 {
				t.Fatalf("%s received %d packets from %s in the other group", c.name, n, names[j])
			}
			if c.seesTrack(MakeTrackID(names[j], SourceCamera)) {
				t.Fatalf("%s was told of %s's camera in the other group", c.name, names[j])
			}
		}
	}
	// Closing the breakouts brings everyone back together.
	for _, n := range names {
		srv.SetGroup(class, n, "")
	}
	waitFor(t, "a receives c's camera after the breakouts close", func() bool { return cs[0].fromOrigin(3) > 20 })
}

// TestBlock stops forwarding a muted microphone whatever the client sends,
// and resumes it when unblocked.
func TestBlock(t *testing.T) {
	srv, _ := newServer(t, Config{})
	api := newClientAPI(t)
	alice := join(t, srv, api, class, "alice", 1)
	alice.publish(false, true)
	bob := join(t, srv, api, class, "bob", 2)
	waitFor(t, "bob hears alice", func() bool { return bob.fromOrigin(1) > 20 })

	srv.Block(class, "alice", "mic", true)
	waitFor(t, "alice's mic gone from bob's tracks", func() bool { return !bob.seesTrack("alice/mic") })
	// Packets already in flight may land; after that, nothing. Wait for
	// alice to send 30 more packets and check none reached bob.
	waitFor(t, "in-flight packets", func() bool {
		n := bob.fromOrigin(1)
		sent := alice.sentMic.Load()
		waitFor(t, "alice sending", func() bool { return alice.sentMic.Load() > sent+5 })
		return bob.fromOrigin(1) == n
	})
	stopped := bob.fromOrigin(1)
	sent := alice.sentMic.Load()
	waitFor(t, "alice sends 30 more packets", func() bool { return alice.sentMic.Load() > sent+30 })
	if n := bob.fromOrigin(1); n != stopped {
		t.Fatalf("bob received %d packets of a blocked microphone", n-stopped)
	}
	srv.Block(class, "alice", "mic", false)
	waitFor(t, "bob hears alice again", func() bool { return bob.fromOrigin(1) > stopped+20 })
}

// TestDisconnectAndReplace checks that Disconnect and a second join of the
// same participant close the connections and stop the forwarding, and that
// the session ends with its last participant.
func TestDisconnectAndReplace(t *testing.T) {
	srv, _ := newServer(t, Config{})
	api := newClientAPI(t)
	alice := join(t, srv, api, class, "alice", 1)
	alice.publish(true, true)
	bob := join(t, srv, api, class, "bob", 2)
	waitFor(t, "bob hears alice", func() bool { return bob.fromOrigin(1) > 10 })

	// Bob joins again from another tab: the first Peer is replaced.
	bob2 := join(t, srv, api, class, "bob", 3)
	waitFor(t, "the first bob closed", func() bool { return bob.peer.isClosed() })
	waitFor(t, "the second bob hears alice", func() bool { return bob2.fromOrigin(1) > 10 })

	srv.Disconnect(class, "alice")
	waitFor(t, "alice's tracks gone", func() bool { return !bob2.seesTrack("alice/mic") && !bob2.seesTrack("alice/camera") })
	srv.Disconnect(class, "bob")
	waitFor(t, "the session ends", func() bool { _, ok := srv.Session(class); return !ok })
}

// TestBadInput refuses what a client must not ask, with a field name.
func TestBadInput(t *testing.T) {
	srv, _ := newServer(t, Config{})
	api := newClientAPI(t)
	c := join(t, srv, api, class, "carol", 1)
	var many []VideoRequest
	for range MaxVideo + 1 {
		many = append(many, VideoRequest{Track: "x/camera", Width: 1, Height: 1})
	}
	for _, tc := range []struct {
		name  string
		err   error
		field string
	}{
		{"too many videos", c.peer.Subscribe(many), "video"},
		{"no track", c.peer.Subscribe([]VideoRequest{{Width: 1, Height: 1}}), "video[0].track"},
		{"negative tile", c.peer.Subscribe([]VideoRequest{{Track: "x/camera", Width: -1}}), "video[0].width"},
		{"unknown source", c.peer.PublisherOffer("", []PublishedTrack{{Mid: "0", Source: "webcam"}}), "tracks[0].source"},
		{"source twice", c.peer.PublisherOffer("", []PublishedTrack{{Mid: "0", Source: "mic"}, {Mid: "1", Source: "mic"}}), "tracks[1].source"},
		{"bad SDP", c.peer.PublisherOffer("v=0 nonsense", nil), ""},
		{"unsolicited answer", c.peer.AddCandidate("side", webrtc.ICECandidateInit{Candidate: "x"}), "pc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error")
			}
			if tc.field != "" && apperr.FieldOf(tc.err) != tc.field {
				t.Fatalf("error %v names field %q, want %q", tc.err, apperr.FieldOf(tc.err), tc.field)
			}
			if k := apperr.KindOf(tc.err); k != apperr.Invalid {
				t.Fatalf("error %v has kind %v, want Invalid", tc.err, k)
			}
		})
	}
}
