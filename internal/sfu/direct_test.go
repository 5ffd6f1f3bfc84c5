package sfu

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// wrapped reports whether one of the viewer's streams has wrapped its
// sequence numbers on the direct path.
func (w *whepView) wrapped() bool {
	for _, sl := range []*slot{w.v.audio, w.v.video} {
		sl.track.mu.Lock()
		wr := sl.track.gcm.Wrapped()
		sl.track.mu.Unlock()
		if wr {
			return true
		}
	}
	return false
}

// receives waits until the viewer has a keyframe and has decoded
// (decrypted and parsed) 30 more video and 20 more audio packets than it
// had: a receiver that cannot decrypt a path's packets counts none.
func receives(t *testing.T, what string, v *whepView) {
	t.Helper()
	video0, audio0 := v.recv()
	waitFor(t, what, func() bool {
		video, audio := v.recv()
		return len(video.seqs) > len(video0.seqs)+30 && audio.packets > audio0.packets+20 && video.keyframes > 0
	})
}

// TestSendPaths checks which path a viewer's packets take and that the
// receiver decrypts them on each: the sfu's own SRTP when it was the DTLS
// server, Pion's writer when the viewer took the server role (it offered
// setup:passive), when the server is configured so, when the viewer
// connects over ICE-TCP, and when the connection moves to a pair the
// direct path cannot reach.
func TestSendPaths(t *testing.T) {
	srv, ev := newServer(t, fastConfig())
	cfg := fastConfig()
	cfg.PionWrite = true
	pionSrv, _ := newServer(t, cfg)
	api := newClientAPI(t)
	for _, s := range []*Server{srv, pionSrv} {
		publishWHIP(t, s, api, broadcastClass, "host", 7, whipVP8Simulcast)
	}
	waitFor(t, "camera and microphone published", func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		return slices.Contains(ev.published, "host/camera") && slices.Contains(ev.published, "host/mic")
	})
	passive := func(sdp string) string { return strings.ReplaceAll(sdp, "a=setup:actpass", "a=setup:passive") }
	keep := func(sdp string) string { return sdp }
	tcpAPI := newClientAPIOn(t, webrtc.NetworkTypeTCP4)
	cases := []struct {
		name string
		srv  *Server
		api  *webrtc.API
		edit func(string) string
		want int32
	}{
		{"direct", srv, api, keep, pathDirect},
		{"viewer is the DTLS server", srv, api, passive, pathPion},
		{"configured", pionSrv, api, keep, pathPion},
		// A client that reaches the server over ICE-TCP only: the pair
		// is not on the UDP mux.
		{"ICE-TCP", srv, tcpAPI, keep, pathPion},
	}
	for i, tc := range cases {
		v := viewWHEPOffering(t, tc.srv, tc.api, broadcastClass, ParticipantID(fmt.Sprint("v", i)), tc.edit)
		receives(t, tc.name+": media", v)
		if got := v.v.down.path.Load(); got != tc.want {
			t.Fatalf("%s: path %d, want %d", tc.name, got, tc.want)
		}
		pair, err := v.v.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			t.Fatalf("%s: no selected pair: %v", tc.name, err)
		}
		if wantTCP := tc.api == tcpAPI; (pair.Local.Protocol == webrtc.ICEProtocolTCP) != wantTCP {
			t.Fatalf("%s: connected over %s", tc.name, pair.Local.Protocol)
		}
		video, audio := v.recv()
		checkContinuous(t, tc.name+" video", video.seqs)
		checkContinuous(t, tc.name+" audio", audio.seqs)
	}

	// A move to ICE-TCP before any sequence number wrapped: back to
	// Pion's writer, whose SRTP the receiver goes on decrypting.
	// (A stream starts at a random sequence number, so one may already
	// have wrapped in its first packets: about one viewer in 200; take
	// another then.)
	var v *whepView
	for i := 0; v == nil; i++ {
		c := viewWHEPOffering(t, srv, api, broadcastClass, ParticipantID(fmt.Sprint("mover", i)), keep)
		receives(t, "mover: media", c)
		if !c.wrapped() {
			v = c
		} else if i == 5 {
			t.Fatal("every viewer's stream wrapped at once")
		}
	}
	tcp := &webrtc.ICECandidatePair{
		Local:  &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolTCP, Typ: webrtc.ICECandidateTypeHost, Address: "127.0.0.1", Port: 9},
		Remote: &webrtc.ICECandidate{Protocol: webrtc.ICEProtocolTCP, Typ: webrtc.ICECandidateTypeHost, Address: "127.0.0.1", Port: 10},
	}
	v.v.down.pairChanged(tcp)
	if got := v.v.down.path.Load(); got != pathPion {
		t.Fatalf("after a move to TCP: path %d, want Pion's (%d)", got, pathPion)
	}
	receives(t, "mover: media after the move", v)
	video, _ := v.recv()
	checkContinuous(t, "mover video", video.seqs)

	// A closed connection sends nothing more on the direct path.
	closing := viewWHEPOffering(t, srv, api, broadcastClass, "closing", keep)
	receives(t, "closing: media", closing)
	cd := closing.v.down.direct.Load()
	_ = closing.v.pc.Close()
	waitFor(t, "the closed viewer's direct path stopped", func() bool {
		cd.mu.Lock()
		defer cd.mu.Unlock()
		return cd.gone
	})

	// The same move once a stream has wrapped its sequence numbers: the
	// receiver could not decrypt Pion's packets, so the viewer is ended.
	w := viewWHEPOffering(t, srv, api, broadcastClass, "wrapped", keep)
	receives(t, "wrapped: media", w)
	tr := w.v.video.track
	tr.mu.Lock()
	// Seal packets a quarter of the sequence space apart from the
	// newest written until the stream has wrapped (what about five
	// minutes of video does); nothing else writes meanwhile.
	seq := uint16(w.v.video.cont.lastSeq.Load())
	for i := 0; !tr.gcm.Wrapped(); i++ {
		if i == 8 {
			t.Fatal("the stream does not wrap")
		}
		seq += 0x4000
		if _, err := w.v.down.direct.Load().gcm.Seal(nil, make([]byte, 12), nil, tr.ssrc, seq, &tr.gcm); err != nil {
			t.Fatal(err)
		}
	}
	tr.mu.Unlock()
	w.v.down.pairChanged(tcp)
	waitFor(t, "the wrapped viewer ended", func() bool {
		select {
		case <-w.v.Done():
			return true
		default:
			return false
		}
	})
}
