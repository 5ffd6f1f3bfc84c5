package sfu

import (
	"fmt"
	"strings"
	"testing"

	"github.com/liveclass/liveclass/internal/apperr"
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
