package signal

import (
	"context"
	"maps"
	"testing"

	"github.com/liveclass/liveclass/client/rtc"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
)

// rtcClient is a browser stand-in: a client/rtc participant, whose
// server messages are recorded in a log for the tests to wait on.
type rtcClient struct {
	*client // the message log
	p       *rtc.Participant
}

// rtcJoin joins with tok; client/rtc negotiates both connections.
func (e *env) rtcJoin(tok string) *rtcClient {
	e.t.Helper()
	t := e.t
	log := newLog(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	p, err := rtc.Dial(ctx, e.url, tok, rtc.Options{
		OnMessage: func(_ *rtc.Participant, m rtc.Message) { log.record(m.Raw) },
		OnError:   func(err error) { t.Errorf("participant: %v", err) },
	})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	t.Cleanup(p.Close)
	go func() {
		<-p.Done()
		log.ended(p.Err())
	}()
	return &rtcClient{client: log, p: p}
}

// mustOK sends a request and fails the test unless it is answered ok.
func (rc *rtcClient) mustOK(fields map[string]any) {
	rc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	typ, _ := fields["type"].(string)
	rest := maps.Clone(fields)
	delete(rest, "type")
	if _, err := rc.p.Request(ctx, typ, rest); err != nil {
		rc.t.Fatalf("%s answered %v", typ, err)
	}
}

// publish offers a VP8 camera and an Opus microphone and sends synthetic
// frames until the test ends.
func (rc *rtcClient) publish() {
	rc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := rc.p.PublishSynthetic(ctx, rtc.Media{Camera: true, Mic: true}); err != nil {
		rc.t.Fatalf("publish: %v", err)
	}
}

// video and audio count the RTP packets received on the subscriber
// connection.
func (rc *rtcClient) video() uint64 { return rc.p.Stats().VideoPackets }
func (rc *rtcClient) audio() uint64 { return rc.p.Stats().AudioPackets }

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
		return student.video() > 10 && student.audio() > 10
	})
	// Nobody published towards the host: it receives nothing.
	if host.video() != 0 {
		t.Fatalf("host received %d video packets of its own", host.video())
	}
	t.Logf("student received %d video and %d audio packets", student.video(), student.audio())

	// ICE restart of the subscriber connection: a new offer comes, is
	// answered, and media keeps flowing.
	offers := student.count(TypeOffer, nil)
	student.mustOK(map[string]any{"type": "restart"})
	eventually(t, "a restarting subscriber offer", func() bool { return student.count(TypeOffer, nil) > offers })
	// ICE restart of the publisher connection: the client offers again
	// (its candidates of the new generation wait for the offer).
	answers := host.count(TypeAnswer, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := host.p.RestartPublisher(ctx); err != nil {
		t.Fatalf("publisher restart: %v", err)
	}
	eventually(t, "the publisher's new answer", func() bool { return host.count(TypeAnswer, nil) > answers })
	v := student.video()
	eventually(t, "video after both restarts", func() bool { return student.video() > v+10 })
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
	eventually(t, "host hears the student", func() bool { return host.audio() > 5 })

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
