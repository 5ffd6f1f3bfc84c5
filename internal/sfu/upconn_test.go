package sfu

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/media/fanout"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/webrtc/v4"
)

// TestReceivePaths checks which path a publisher's packets take and that
// they reach a viewer whole on each: the sfu's own when it was the DTLS
// server, Pion's chain when the publisher took the server role (it offered
// setup:passive), when the server is configured so, and when the
// publisher connects over ICE-TCP.
func TestReceivePaths(t *testing.T) {
	srv, _ := newServer(t, fastConfig())
	cfg := fastConfig()
	cfg.PionRead = true
	pionSrv, _ := newServer(t, cfg)
	api := newClientAPI(t)
	tcpAPI := newClientAPIOn(t, webrtc.NetworkTypeTCP4)
	passive := func(sdp string) string { return strings.ReplaceAll(sdp, "a=setup:actpass", "a=setup:passive") }
	keep := func(sdp string) string { return sdp }
	cases := []struct {
		name   string
		srv    *Server
		api    *webrtc.API
		edit   func(string) string
		direct bool
	}{
		{"direct", srv, api, keep, true},
		{"publisher is the DTLS server", srv, api, passive, false},
		{"configured", pionSrv, api, keep, false},
		{"ICE-TCP", srv, tcpAPI, keep, false},
	}
	for i, tc := range cases {
		class := store.ClassID(fmt.Sprint("receive-", i))
		pub := publishWHIPOffering(t, tc.srv, tc.api, class, "host", 7, whipVP8Simulcast, tc.edit)
		v := viewWHEP(t, tc.srv, api, class, "viewer")
		receives(t, tc.name+": media", v)
		video, audio := v.recv()
		checkContinuous(t, tc.name+" video", video.seqs)
		checkContinuous(t, tc.name+" audio", audio.seqs)
		if got := pub.ing.up.direct.Load(); (got > 0) != tc.direct {
			t.Fatalf("%s: %d packets came the direct path", tc.name, got)
		}
		if got := pub.ing.up.refused.Load(); got != 0 {
			t.Fatalf("%s: the direct path refused %d packets", tc.name, got)
		}
	}
	// The packets of a frame that queued up together reached the viewer
	// as one message, cut by the kernel (udpbatch's segmentation).
	waitFor(t, "datagrams sent in messages of several", func() bool { return srv.Stats().Segmented > 0 })
}

// TestPublisherFeedback checks the RTCP a publisher gets from the sfu's
// own receive side: a NACK for a packet it never sent, TWCC feedback, and
// receiver reports that carry its sender reports' time (its round trip).
// The packets came the direct path.
func TestPublisherFeedback(t *testing.T) {
	srv, _ := newServer(t, fastConfig())
	api := newClientAPI(t)
	alice := join(t, srv, api, "feedback", "alice", 1)
	alice.skip.Store(3000 + 40 + 1) // the top layer starts at 3000: its 41st packet
	alice.publish(true, false)
	// With all its RTP taken before Pion sees it, the connection must
	// still look alive to Pion's ICE agent (its keepalives' answers),
	// past the agent's 5 s disconnection timeout.
	connectedAt := time.Now()
	var iceStates []string
	var iceMu sync.Mutex
	alice.peer.pub.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		iceMu.Lock()
		iceStates = append(iceStates, s.String())
		iceMu.Unlock()
	})
	waitFor(t, "a NACK of the packet never sent, TWCC feedback, a receiver report with LSR", func() bool {
		alice.fbMu.Lock()
		defer alice.fbMu.Unlock()
		return alice.nacked[3040] > 0 && alice.twccFB > 0 && alice.rrLSR > 0
	})
	alice.fbMu.Lock()
	for seq := range alice.nacked {
		if seq != 3040 {
			t.Errorf("packet %d NACKed, which was sent", seq)
		}
	}
	alice.fbMu.Unlock()
	if alice.peer.up.direct.Load() == 0 {
		t.Fatal("no packet came the direct path")
	}
	before := alice.peer.up.direct.Load()
	time.Sleep(7*time.Second - time.Since(connectedAt))
	iceMu.Lock()
	defer iceMu.Unlock()
	if len(iceStates) > 0 || alice.peer.pub.ICEConnectionState() != webrtc.ICEConnectionStateConnected {
		t.Fatalf("the publisher connection went %v, now %v", iceStates, alice.peer.pub.ICEConnectionState())
	}
	if alice.peer.up.direct.Load() <= before {
		t.Fatal("the direct path stopped")
	}
}

// TestPassiveOfferRefused checks that a publisher's offer that insists on
// being the DTLS server is refused with a field error: the publisher
// connection answers as the server, and both sides waiting for the other
// would never connect.
func TestPassiveOfferRefused(t *testing.T) {
	srv, _ := newServer(t, fastConfig())
	api := newClientAPI(t)
	c := join(t, srv, api, "passive", "alice", 1)
	c.addMic()
	offer, err := c.pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp := strings.ReplaceAll(offer.SDP, "a=setup:actpass", "a=setup:passive")
	err = c.peer.PublisherOffer(sdp, nil)
	if !apperr.Is(err, apperr.Invalid) || apperr.FieldOf(err) != "sdp" {
		t.Fatalf("passive offer: %v", err)
	}
}

// TestUpStreamStatistics drives a stream's receiver statistics by hand:
// a gap is NACKed at once, again after nackRetry, nackTries times at
// most, and never once it arrives; a jump past nackMax is a restart, not
// losses; the reports give the loss since the last one and in all, and the
// highest sequence number across a wrap.
func TestUpStreamStatistics(t *testing.T) {
	st := &upStream{ssrc: 5, clock: 90000, nack: true}
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for seq := uint16(65530); seq != 3; seq++ { // across the wrap
		st.count(seq, uint32(seq)*3000, at(int(seq-65530)*10).Sub(t0), at(int(seq-65530)*10))
	}
	st.count(6, 6*3000, at(100).Sub(t0), at(100)) // 3, 4, 5 lost
	if n := st.nacks(1, at(100)); n == nil || fmt.Sprint(n.Nacks[0].PacketList()) != "[3 4 5]" {
		t.Fatalf("first NACK: %+v", n)
	}
	if n := st.nacks(1, at(150)); n != nil {
		t.Fatalf("NACKed again before nackRetry: %+v", n)
	}
	st.count(4, 4*3000, at(160).Sub(t0), at(160)) // a repair
	if n := st.nacks(1, at(200)); n == nil || fmt.Sprint(n.Nacks[0].PacketList()) != "[3 5]" {
		t.Fatalf("second NACK: %+v", n)
	}
	for i := 3; i <= nackTries+1; i++ {
		st.nacks(1, at(100*i))
	}
	if len(st.missing) != 0 {
		t.Fatalf("still asking after %d tries: %v", nackTries, st.missing)
	}
	r := st.report(at(1000))
	if r.LastSequenceNumber != 1<<16|6 {
		t.Fatalf("highest %#x, want %#x", r.LastSequenceNumber, 1<<16|6)
	}
	if r.TotalLost != 2 || r.FractionLost != 2*256/13 {
		t.Fatalf("lost %d, fraction %d/256; want 2 and %d", r.TotalLost, r.FractionLost, 2*256/13)
	}
	st.count(7, 7*3000, at(1010).Sub(t0), at(1010))
	if r := st.report(at(2000)); r.FractionLost != 0 || r.TotalLost != 2 {
		t.Fatalf("second report: fraction %d, total %d", r.FractionLost, r.TotalLost)
	}
	st.count(7+nackMax+50, 0, at(2010).Sub(t0), at(2010)) // a restart
	if len(st.missing) != 0 {
		t.Fatalf("a restart taken as %d losses", len(st.missing))
	}
}

// TestVideoShedsFirst fills a video layer's queue while its goroutine does
// not run, as on a server out of CPU: the packets past the queue are shed,
// without blocking the reading goroutine, and what was queued is
// forwarded in order once the goroutine runs, to the end of the layer.
// TestForwardTakesWhatQueued checks that a layer's goroutine forwards
// what has queued up at once, at most fanout.MaxBatch packets, in order,
// and returns the packets to the pool.
func TestForwardTakesWhatQueued(t *testing.T) {
	var pool sync.Pool
	st := &upStream{q: make(chan *queued, videoQueue)}
	total := fanout.MaxBatch + 8
	pkt := make([]byte, 100)
	base := time.Now()
	for i := range total {
		pkt[0] = byte(i)
		if !st.enqueue(&pool, pkt, base.Add(time.Duration(i))) {
			t.Fatalf("packet %d not queued", i)
		}
	}
	close(st.q)
	var batches []int
	next := 0
	st.forward(&pool, func(pkts []fanout.Arrived) {
		batches = append(batches, len(pkts))
		for _, a := range pkts {
			if len(a.Raw) != len(pkt) || a.Raw[0] != byte(next) || !a.At.Equal(base.Add(time.Duration(next))) {
				t.Fatalf("packet %d came as %d bytes starting %d at %v", next, len(a.Raw), a.Raw[0], a.At)
			}
			next++
		}
	})
	if !slices.Equal(batches, []int{fanout.MaxBatch, 8}) {
		t.Fatalf("forwarded in batches of %v, want [%d 8]", batches, fanout.MaxBatch)
	}
	if qp, _ := pool.Get().(*queued); qp == nil {
		t.Fatal("the forwarded packets did not go back to the pool")
	}
}

// TestForwardShedsLateVideo checks that packets that waited in the queue
// longer than videoLag are shed, and counted, rather than forwarded.
func TestForwardShedsLateVideo(t *testing.T) {
	var (
		pool sync.Pool
		shed atomic.Uint64
	)
	st := &upStream{q: make(chan *queued, videoQueue), shed: &shed}
	pkt := make([]byte, 100)
	now := time.Now()
	for i := range 10 {
		pkt[0] = byte(i)
		at := now
		if i < 6 {
			at = now.Add(-videoLag - time.Second)
		}
		if !st.enqueue(&pool, pkt, at) {
			t.Fatalf("packet %d not queued", i)
		}
	}
	close(st.q)
	var got []byte
	st.forward(&pool, func(pkts []fanout.Arrived) {
		for _, a := range pkts {
			got = append(got, a.Raw[0])
		}
	})
	if !slices.Equal(got, []byte{6, 7, 8, 9}) {
		t.Fatalf("forwarded %v, want the four in time: [6 7 8 9]", got)
	}
	if shed.Load() != 6 {
		t.Fatalf("%d packets counted as shed, want 6", shed.Load())
	}
}

func TestVideoShedsFirst(t *testing.T) {
	var pool sync.Pool
	st := &upStream{q: make(chan *queued, videoQueue)}
	pkt := make([]byte, 100)
	for i := range videoQueue + 10 {
		pkt[0] = byte(i)
		ok := st.enqueue(&pool, pkt, time.Unix(int64(i), 0))
		if want := i < videoQueue; ok != want {
			t.Fatalf("packet %d: queued %v, want %v", i, ok, want)
		}
	}
	close(st.q)
	i := 0
	for qp := range st.q {
		if qp.n != len(pkt) || qp.buf[0] != byte(i) || qp.at.Unix() != int64(i) {
			t.Fatalf("packet %d came as %d bytes starting %d at %v", i, qp.n, qp.buf[0], qp.at)
		}
		i++
	}
	if i != videoQueue {
		t.Fatalf("%d packets queued, want %d", i, videoQueue)
	}
	if st.enqueue(&pool, make([]byte, 1600), time.Now()) {
		t.Fatal("a packet larger than a slot was queued")
	}
}
