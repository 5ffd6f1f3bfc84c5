package broadcast_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/liveclass/liveclass/internal/audience"
	"github.com/liveclass/liveclass/internal/broadcast"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// TestWHIPRefusals checks every way a publish is refused before any media
// flows: credentials, class, content type, offer, method.
func TestWHIPRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	c := e.class(store.ServiceIVS)
	other := e.class(store.ServiceIVS)
	interactive := e.class(store.ServiceChime)
	key := e.key(c)
	revoked := e.key(c)
	if _, err := e.rules.RevokeStreamKey(ctx, e.mentor, revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	otherKey := e.key(other)
	offer := e.newPublisher("video/H264").offer()
	path := broadcast.WHIPPath + string(c.ID)

	for _, tc := range []struct {
		name, path, bearer, ctype, body string
		status                          int
		code                            string
	}{
		{"no key", path, "", "application/sdp", offer, 401, "UNAUTHENTICATED"},
		{"wrong key", path, key.Secret + "X", "application/sdp", offer, 401, "UNAUTHENTICATED"},
		{"revoked key", path, revoked.Secret, "application/sdp", offer, 401, "UNAUTHENTICATED"},
		{"another class's key", path, otherKey.Secret, "application/sdp", offer, 401, "UNAUTHENTICATED"},
		{"forged token", path, "a.b.c", "application/sdp", offer, 401, "UNAUTHENTICATED"},
		{"student's token", path, e.token(e.student, c), "application/sdp", offer, 403, "FORBIDDEN"},
		{"host token of another class", path, e.token(e.mentor, other), "application/sdp", offer, 403, "FORBIDDEN"},
		{"unknown class", broadcast.WHIPPath + "nope", key.Secret, "application/sdp", offer, 404, "NOT_FOUND"},
		{"interactive class", broadcast.WHIPPath + string(interactive.ID), key.Secret, "application/sdp", offer, 404, "NOT_FOUND"},
		{"not SDP", path, key.Secret, "application/json", `{}`, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"garbage SDP", path, key.Secret, "application/sdp", "v=0\r\nnonsense", 400, "BAD_USER_INPUT"},
		{"empty body", path, key.Secret, "application/sdp", "", 400, "BAD_USER_INPUT"},
	} {
		r := e.post(tc.path, tc.bearer, tc.ctype, tc.body)
		if r.status != tc.status || r.code != tc.code {
			t.Errorf("%s: got %d %s (%s), want %d %s", tc.name, r.status, r.code, r.body, tc.status, tc.code)
		}
		if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
	if n := e.changes.count(c.ID); n != 0 || e.status(c.ID) != store.StatusScheduled {
		t.Fatalf("refused publishes changed the class: %d changes, status %s", n, e.status(c.ID))
	}

	// A stream key does not open the class early: before its join window
	// (15 minutes before the start) a publish is refused.
	later, err := e.rules.CreateClass(ctx, e.mentor, classes.ClassInput{
		Title: "Tomorrow", StartTime: time.Now().Add(24 * time.Hour), EndTime: time.Now().Add(25 * time.Hour), Service: store.ServiceIVS,
		AccessLevel: store.RoleStudent, MaxParticipants: 100, Category: "go", Level: store.LevelBeginner, IsFree: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, "publish before the window", e.post(broadcast.WHIPPath+string(later.ID), e.key(later).Secret, "application/sdp", offer), 403, "FORBIDDEN")

	// No trickle: PATCH is 405 with Allow, as RFC 9725 asks of a server
	// without it; other methods likewise.
	r := e.request(http.MethodPatch, path+"/some-resource", key.Secret)
	mustStatus(t, "PATCH", r, 405, "METHOD_NOT_ALLOWED")
	if !strings.Contains(r.header.Get("Allow"), "DELETE") {
		t.Fatalf("PATCH: Allow %q", r.header.Get("Allow"))
	}
	mustStatus(t, "GET", e.request(http.MethodGet, path, key.Secret), 405, "METHOD_NOT_ALLOWED")
	mustStatus(t, "DELETE unknown publish", e.request(http.MethodDelete, path+"/nope", key.Secret), 404, "NOT_FOUND")

	// CORS: a preflight from a player on another origin is answered, and
	// Location is readable by it.
	pre := e.request(http.MethodOptions, path, "")
	if pre.status != http.StatusNoContent || pre.header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(pre.header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Fatalf("preflight: %d %v", pre.status, pre.header)
	}
}

// TestPublishLifecycle publishes with a stream key (as OBS does) and checks
// one publisher per channel, the class going LIVE on the first media,
// "reconnecting" on a drop, "live" again when a new publish replaces the
// dropped one, "offline" on DELETE, and the stream health.
func TestPublishLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.class(store.ServiceIVS)
	key := e.key(c)

	first := e.newPublisher("video/H264")
	r := e.publish(first, c.ID, key.Secret)
	mustStatus(t, "first publish", r, 201, "")
	if r.header.Get("Content-Type") != "application/sdp" || !strings.HasPrefix(r.location, broadcast.WHIPPath+string(c.ID)+"/") ||
		!strings.Contains(r.body, "a=candidate:") {
		t.Fatalf("first publish answered %v with %q", r.header, r.body)
	}
	waitFor(t, "the class LIVE", func() bool { return e.status(c.ID) == store.StatusLive })
	// Live from the first track; the codec is told once the video arrives
	// (the audio may come first).
	waitFor(t, "the stream live in H.264", func() bool {
		s := e.aud.state(c.ID)
		return s.State == audience.StateLive && s.Codec == "video/H264"
	})
	if e.changes.count(c.ID) != 1 {
		t.Fatalf("LIVE published %d times", e.changes.count(c.ID))
	}
	if got := e.aud.state(c.ID); got.HLS == "" {
		t.Fatalf("live state %+v: want the HLS URL", got)
	}
	waitFor(t, "stream health", func() bool {
		h, ok := e.aud.lastHealth(c.ID)
		return ok && h.Codec == "video/H264" && h.Packets > 0
	})
	if !e.svc.Publishing(c.ID) {
		t.Fatal("Publishing is false with a publisher connected")
	}

	// A second publish, even with the same key, is refused while the first
	// is connected; the first's DELETE needs its own credential.
	second := e.newPublisher("video/H264")
	mustStatus(t, "second publish while connected", e.publish(second, c.ID, key.Secret), 409, "CONFLICT")
	other := e.key(c)
	mustStatus(t, "DELETE with another key", e.request(http.MethodDelete, first.location, other.Secret), 401, "UNAUTHENTICATED")

	// The first drops without a word; viewers are told "reconnecting",
	// and the class stays LIVE.
	first.close()
	waitFor(t, "reconnecting", func() bool { return e.aud.state(c.ID).State == audience.StateReconnecting })
	if e.status(c.ID) != store.StatusLive {
		t.Fatalf("status after a drop: %s", e.status(c.ID))
	}
	// A new publish replaces it, and the stream is live again.
	third := e.newPublisher("video/H264")
	mustStatus(t, "publish after the drop", e.publish(third, c.ID, key.Secret), 201, "")
	waitFor(t, "live again", func() bool { return e.aud.state(c.ID).State == audience.StateLive })

	// DELETE stops it on purpose: "offline", the class still LIVE.
	mustStatus(t, "DELETE", e.stop(third), 200, "")
	waitFor(t, "offline", func() bool { return e.aud.state(c.ID).State == audience.StateOffline })
	mustStatus(t, "DELETE again", e.stop(third), 404, "NOT_FOUND")
	if e.status(c.ID) != store.StatusLive || e.changes.count(c.ID) != 1 {
		t.Fatalf("after DELETE: status %s, %d changes", e.status(c.ID), e.changes.count(c.ID))
	}
	want := []string{audience.StateLive, audience.StateReconnecting, audience.StateLive, audience.StateOffline}
	if got := e.aud.sequence(c.ID); !slices.Equal(got, want) {
		t.Fatalf("stream states %v, want %v", got, want)
	}
}

// TestHostTokenPublishes: the presenter page publishes with its host join
// token, in VP8.
func TestHostTokenPublishes(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.class(store.ServiceIVS)
	p := e.newPublisher("video/VP8")
	r := e.publish(p, c.ID, e.token(e.mentor, c))
	mustStatus(t, "publish with the host token", r, 201, "")
	if links := r.header.Values("Link"); len(links) != 0 {
		t.Errorf("Link headers %q without any ICE server", links)
	}
	waitFor(t, "live in VP8", func() bool {
		s := e.aud.state(c.ID)
		return s.State == audience.StateLive && s.Codec == "video/VP8"
	})
}

// TestAnswersCarryICEServers: with the embedded TURN server on, WHIP and
// WHEP answers name it in Link headers (RFC 9725 §4.6), credentials
// included, so that an encoder behind a firewall can relay unconfigured.
func TestAnswersCarryICEServers(t *testing.T) {
	e := newEnv(t, envOptions{turn: true})
	c := e.class(store.ServiceIVS)
	key := e.key(c)
	p := e.newPublisher("video/VP8")
	r := e.publish(p, c.ID, key.Secret)
	mustStatus(t, "publish", r, 201, "")
	v := e.newViewer()
	w := e.view(v, c.ID, e.token(e.student, c))
	mustStatus(t, "view", w, 201, "")
	for name, res := range map[string]httpResult{"WHIP": r, "WHEP": w} {
		links := res.header.Values("Link")
		if len(links) != 1 || !strings.HasPrefix(links[0], "<turn:") ||
			!strings.Contains(links[0], `rel="ice-server"`) || !strings.Contains(links[0], `username="relay"`) ||
			!strings.Contains(links[0], `credential="s3cret"; credential-type="password"`) {
			t.Errorf("%s answer's Link headers = %q, want the TURN server with its credential", name, links)
		}
	}
}

// TestWHEPViewers checks viewer tokens, that viewers receive the
// publisher's media, the FULL answer with the HLS URL, and DELETE.
func TestWHEPViewers(t *testing.T) {
	e := newEnv(t, envOptions{maxViewers: 2})
	c := e.class(store.ServiceIVS)
	other := e.class(store.ServiceIVS)
	student := e.token(e.student, c)
	path := broadcast.WHEPPath + string(c.ID)

	offer := e.newViewer().offer()
	expired, err := e.signer.Sign(jointoken.Claims{ClassID: string(c.ID), UserID: string(e.student.UserID), Role: jointoken.RoleAttendee,
		Service: "IVS", ID: "x", IssuedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, bearer, ctype string
		status                    int
		code                      string
	}{
		{"no token", path, "", "application/sdp", 401, "UNAUTHENTICATED"},
		{"garbage token", path, "not-a-token", "application/sdp", 401, "UNAUTHENTICATED"},
		{"expired token", path, expired, "application/sdp", 401, "UNAUTHENTICATED"},
		{"token of another class", path, e.token(e.student, other), "application/sdp", 403, "FORBIDDEN"},
		{"not SDP", path, student, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"},
	} {
		r := e.post(tc.path, tc.bearer, tc.ctype, offer)
		if r.status != tc.status || r.code != tc.code {
			t.Errorf("%s: got %d %s (%s), want %d %s", tc.name, r.status, r.code, r.body, tc.status, tc.code)
		}
	}

	// A viewer who comes before the publisher gets the stream when it
	// starts; the host's token is a viewer's too.
	early := e.newViewer()
	mustStatus(t, "viewer before the publisher", e.view(early, c.ID, student), 201, "")
	pub := e.newPublisher("video/H264")
	mustStatus(t, "publish", e.publish(pub, c.ID, e.key(c).Secret), 201, "")
	host := e.newViewer()
	mustStatus(t, "host as a viewer", e.view(host, c.ID, e.token(e.mentor, c)), 201, "")
	for _, v := range []*peer{early, host} {
		waitFor(t, "video and audio at a viewer", func() bool { return v.videoPkts.Load() > 20 && v.audioPkts.Load() > 20 })
		if codec := v.codec.Load(); codec == nil || *codec != "video/H264" {
			t.Fatalf("viewer codec %v", codec)
		}
	}
	if n := e.svc.Viewers(c.ID); n != 2 {
		t.Fatalf("Viewers = %d, want 2", n)
	}

	// Full: the next viewer is sent to HLS.
	r := e.view(e.newViewer(), c.ID, student)
	mustStatus(t, "third viewer", r, 503, "FULL")
	if !strings.HasPrefix(r.hls, "/hls/"+string(c.ID)+"/index.m3u8?") {
		t.Fatalf("FULL answer's hls %q", r.hls)
	}

	// A viewer's session is ended by its own user only; then a seat frees.
	mustStatus(t, "DELETE by another user", e.request(http.MethodDelete, early.location, e.token(e.admin, c)), 403, "FORBIDDEN")
	mustStatus(t, "DELETE", e.stop(early), 200, "")
	waitFor(t, "a seat freed", func() bool { return e.svc.Viewers(c.ID) == 1 })
	mustStatus(t, "viewer after one left", e.view(e.newViewer(), c.ID, student), 201, "")
}

// TestEnd: ending the class disconnects the publisher and the viewers,
// stops HLS, stores ENDED once, and refuses new sessions.
func TestEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	c := e.class(store.ServiceIVS)
	key := e.key(c)
	pub := e.newPublisher("video/H264")
	mustStatus(t, "publish", e.publish(pub, c.ID, key.Secret), 201, "")
	v := e.newViewer()
	mustStatus(t, "view", e.view(v, c.ID, e.token(e.student, c)), 201, "")
	waitFor(t, "media at the viewer", func() bool { return v.videoPkts.Load() > 10 })
	waitFor(t, "HLS fed", func() bool {
		p := e.pkgs.list()
		return len(p) == 1 && p[0].video.Load() > 10 && p[0].audio.Load() > 10
	})

	hostToken := e.token(e.mentor, c)
	if err := e.svc.End(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if e.status(c.ID) != store.StatusEnded || e.aud.state(c.ID).State != audience.StateEnded {
		t.Fatalf("after End: status %s, stream %+v", e.status(c.ID), e.aud.state(c.ID))
	}
	if !e.pkgs.list()[0].closed.Load() {
		t.Fatal("the HLS packager is still open")
	}
	waitFor(t, "the publisher disconnected", func() bool {
		switch pub.pc.ConnectionState() {
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			return true
		}
		return false
	})
	waitFor(t, "no viewers", func() bool { return e.svc.Viewers(c.ID) == 0 })
	changes := e.changes.count(c.ID)
	if err := e.svc.End(ctx, c.ID); err != nil {
		t.Fatalf("End again: %v", err)
	}
	if e.changes.count(c.ID) != changes {
		t.Fatal("ending an ended class published a change")
	}
	mustStatus(t, "publish after the end", e.publish(e.newPublisher("video/H264"), c.ID, key.Secret), 409, "CONFLICT")
	mustStatus(t, "view after the end", e.view(e.newViewer(), c.ID, hostToken), 409, "CONFLICT")
}

// TestHLSFollowsCodec: the packager starts with the publisher's codec,
// keeps running while the same codec returns, and restarts for another.
func TestHLSFollowsCodec(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.class(store.ServiceIVS)
	key := e.key(c)

	h264 := e.newPublisher("video/H264")
	mustStatus(t, "publish H.264", e.publish(h264, c.ID, key.Secret), 201, "")
	waitFor(t, "H.264 packaged", func() bool { p := e.pkgs.list(); return len(p) == 1 && p[0].video.Load() > 10 })
	mustStatus(t, "stop", e.stop(h264), 200, "")
	waitFor(t, "offline", func() bool { return e.aud.state(c.ID).State == audience.StateOffline })

	again := e.newPublisher("video/H264")
	mustStatus(t, "publish H.264 again", e.publish(again, c.ID, key.Secret), 201, "")
	before := e.pkgs.list()[0].video.Load()
	waitFor(t, "the same packager fed again", func() bool { return e.pkgs.list()[0].video.Load() > before+10 })
	if n := len(e.pkgs.list()); n != 1 {
		t.Fatalf("%d packagers for one codec", n)
	}
	mustStatus(t, "stop", e.stop(again), 200, "")

	vp8 := e.newPublisher("video/VP8")
	mustStatus(t, "publish VP8", e.publish(vp8, c.ID, key.Secret), 201, "")
	waitFor(t, "VP8 packaged by a new packager", func() bool {
		p := e.pkgs.list()
		return len(p) == 2 && p[1].codec == "video/VP8" && p[1].video.Load() > 10 && p[0].closed.Load()
	})

	// An hour later the signed URL is renewed, and the audience is told
	// the new one while the stream stays live.
	first := e.aud.state(c.ID).HLS
	if first == "" {
		t.Fatal("the live stream's state carries no HLS URL")
	}
	later := time.Now().Add(time.Hour)
	e.now.Store(&later)
	waitFor(t, "the renewed HLS URL", func() bool {
		st := e.aud.state(c.ID)
		return st.State == audience.StateLive && st.HLS != "" && st.HLS != first
	})
}

// TestEndGrace: a broadcast nobody publishes to is ENDED once past its end
// time plus the grace, and not before.
func TestEndGrace(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.class(store.ServiceIVS)
	pub := e.newPublisher("video/H264")
	mustStatus(t, "publish", e.publish(pub, c.ID, e.key(c).Secret), 201, "")
	waitFor(t, "LIVE", func() bool { return e.status(c.ID) == store.StatusLive })

	// Past the end and the grace, but publishing: the class goes on. The
	// health reports come from the same loop as the sweeps, every 100 ms
	// each, so five more reports mean sweeps have run.
	late := c.EndTime.Add(2 * time.Minute)
	e.now.Store(&late)
	n := e.aud.healthCount(c.ID)
	waitFor(t, "five more health reports", func() bool { return e.aud.healthCount(c.ID) >= n+5 })
	if e.status(c.ID) != store.StatusLive {
		t.Fatalf("a publishing broadcast was ended: %s", e.status(c.ID))
	}
	mustStatus(t, "stop", e.stop(pub), 200, "")
	waitFor(t, "ENDED after the publisher stopped", func() bool { return e.status(c.ID) == store.StatusEnded })
	waitFor(t, "the audience told", func() bool { return e.aud.state(c.ID).State == audience.StateEnded })
}

// TestBannedViewer: a user a host banned from the class's audience loses
// its video too — DropUser ends their WHEP viewers, and the next POST is
// refused — while other viewers and a host's own token are unaffected.
func TestBannedViewer(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.class(store.ServiceIVS)
	ctx := context.Background()
	pub := e.newPublisher("video/H264")
	mustStatus(t, "publish", e.publish(pub, c.ID, e.key(c).Secret), 201, "")
	student, other := e.newViewer(), e.newViewer()
	mustStatus(t, "student views", e.view(student, c.ID, e.token(e.student, c)), 201, "")
	mustStatus(t, "admin views", e.view(other, c.ID, e.token(e.admin, c)), 201, "")
	waitFor(t, "two viewers", func() bool { return e.svc.Viewers(c.ID) == 2 })

	if err := e.st.BanAudienceUser(ctx, c.ID, e.student.UserID, e.mentor.UserID); err != nil {
		t.Fatal(err)
	}
	e.svc.DropUser(c.ID, e.student.UserID)
	waitFor(t, "the banned student's viewer ended", func() bool { return e.svc.Viewers(c.ID) == 1 })
	mustStatus(t, "banned student views again", e.view(e.newViewer(), c.ID, e.token(e.student, c)), 403, "FORBIDDEN")
	before := other.videoPkts.Load()
	waitFor(t, "the other viewer still receives", func() bool { return other.videoPkts.Load() > before+20 })

	// A ban on a host is never stored by the audience, but a host's token
	// passes one anyway, as it does there.
	if err := e.st.BanAudienceUser(ctx, c.ID, e.mentor.UserID, e.admin.UserID); err != nil {
		t.Fatal(err)
	}
	host := e.newViewer()
	mustStatus(t, "host views", e.view(host, c.ID, e.token(e.mentor, c)), 201, "")

	// Lifted, the student watches again.
	if err := e.st.UnbanAudienceUser(ctx, c.ID, e.student.UserID); err != nil {
		t.Fatal(err)
	}
	again := e.newViewer()
	mustStatus(t, "student views after the unban", e.view(again, c.ID, e.token(e.student, c)), 201, "")
	// Both receive, and so have seen each of their streams before the
	// test ends: a connection closed while a first packet of a stream is
	// on its way can leave a goroutine of Pion's SRTP session behind.
	for _, v := range []*peer{host, again} {
		waitFor(t, "video and audio at a viewer", func() bool { return v.videoPkts.Load() > 20 && v.audioPkts.Load() > 20 })
	}
}
