package signal

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
)

func TestJoin(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, hj := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	if hj.You.ID != room.ParticipantID(e.host.ID) || hj.You.Role != jointoken.RoleHost || hj.Resume == "" || hj.Resumed {
		t.Fatalf("joined = %+v", hj)
	}
	if hj.ResumeWithin != 30 || len(hj.Room.Participants) != 1 || hj.Room.Class != e.class.ID {
		t.Fatalf("joined room = %+v, resumeWithin %d", hj.Room, hj.ResumeWithin)
	}
	// The sfu's first subscriber offer follows the joined message.
	if off := host.wait(TypeOffer, nil); off.str("pc") != PCSub || off.str("sdp") == "" {
		t.Fatalf("offer = %s", off.raw)
	}
	student := e.user("ada", store.RoleStudent)
	_, sj := e.join(e.token(e.class, student, jointoken.RoleAttendee, nil), true)
	if sj.You.Media.Mic || len(sj.Room.Participants) != 2 {
		t.Fatalf("student joined = %+v", sj)
	}
	pj := host.wait(room.TypeParticipantJoined, nil)
	var ev room.ParticipantJoined
	pj.decode(t, &ev)
	if ev.Participant.ID != room.ParticipantID(student.ID) || ev.Participant.Name != "ada" {
		t.Fatalf("participant.joined = %s", pj.raw)
	}
	// The class went live with its host and counts two people.
	eventually(t, "class live with 2 participants", func() bool {
		c, err := e.db.ClassByID(context.Background(), e.class.ID)
		return err == nil && c.Status == store.StatusLive && c.CurrentParticipants == 2
	})
	host.mustOK(map[string]any{"type": "ping"})
}

func TestJoinRefused(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.JoinTimeout = 300 * time.Millisecond }})
	student := e.user("bob", store.RoleStudent)
	good := e.token(e.class, student, jointoken.RoleAttendee, nil)
	ivs := e.newClass(store.ServiceIVS, 10)
	other := e.newClass(store.ServiceChime, 10)
	tampered := []byte(good)
	tampered[len(tampered)/2] ^= 1
	join := func(tok string, extra map[string]any) map[string]any {
		m := map[string]any{"type": "join", "v": 1, "token": tok}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		first any // nil: send nothing
		code  websocket.StatusCode
		err   string // expected error code, "" for none sent
	}{
		{"tampered", join(string(tampered), nil), CloseNotJoined, "UNAUTHENTICATED"},
		{"expired", join(e.token(e.class, student, jointoken.RoleAttendee, func(c *jointoken.Claims) {
			c.IssuedAt, c.ExpiresAt = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
		}), nil), CloseNotJoined, "UNAUTHENTICATED"},
		{"another class", join(e.token(other, student, jointoken.RoleAttendee, nil), map[string]any{"class": string(e.class.ID)}), CloseForbidden, "FORBIDDEN"},
		{"broadcast class", join(e.token(ivs, student, jointoken.RoleAttendee, nil), nil), CloseForbidden, "FORBIDDEN"},
		{"unknown class", join(e.token(store.LiveClass{ID: "nope", Service: store.ServiceChime}, student, jointoken.RoleAttendee, nil), nil), CloseNotFound, "NOT_FOUND"},
		{"not join first", map[string]any{"type": "chat", "text": "hi"}, CloseNotJoined, "UNAUTHENTICATED"},
		{"unknown type", map[string]any{"type": "hello"}, CloseBadMessage, "BAD_USER_INPUT"},
		{"old version", map[string]any{"type": "join", "v": 0, "token": good}, CloseBadMessage, "BAD_USER_INPUT"},
		{"silence", nil, CloseNotJoined, "UNAUTHENTICATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dial(nil).listen()
			if tt.first != nil {
				c.send(tt.first)
			}
			if got := c.closed(); got != tt.code {
				t.Fatalf("close code %d, want %d; got %s", got, tt.code, c.dump())
			}
			if n := c.count(TypeError, func(m msg) bool { return m.str("code") == tt.err }); n != 1 {
				t.Fatalf("no %s error before the close; got %s", tt.err, c.dump())
			}
		})
	}
	if r, ok := e.rooms.Room(e.class.ID); ok && len(r.Participants()) != 0 {
		t.Fatalf("refused joins left participants %v", r.Participants())
	}
	// The good token still works after all that.
	e.join(good, true)
}

func TestForeignOriginRefused(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.PublicURL = "https://school.example" }})
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v, response %v", err, resp)
	}
	// The public URL's pages may connect even through a proxy that
	// rewrites Host.
	ws, _, err := websocket.Dial(ctx, e.url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://school.example"}}})
	if err != nil {
		t.Fatalf("public origin refused: %v", err)
	}
	_ = ws.CloseNow()
}

func TestChatBothWays(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	u := e.user("cy", store.RoleStudent)
	student, _ := e.join(e.token(e.class, u, jointoken.RoleAttendee, nil), true)
	host.mustOK(map[string]any{"type": "chat", "to": "everyone", "text": "Welcome <b>all</b>"})
	got := student.wait(room.TypeChat, nil)
	var ch room.Chat
	got.decode(t, &ch)
	if ch.Text != "Welcome <b>all</b>" || ch.From != room.ParticipantID(e.host.ID) || ch.To != "everyone" {
		t.Fatalf("student got %s", got.raw)
	}
	student.mustOK(map[string]any{"type": "chat", "to": "hosts", "text": "a question"})
	q := host.wait(room.TypeChat, func(m msg) bool { return m.str("text") == "a question" })
	if q.str("to") != "hosts" || q.str("from") != string(u.ID) {
		t.Fatalf("host got %s", q.raw)
	}
	// Field errors answer the request and keep the connection.
	bad := student.request(map[string]any{"type": "chat", "text": ""})
	if bad.typ() != TypeError || bad.str("field") != "text" || bad.str("code") != "BAD_USER_INPUT" {
		t.Fatalf("empty chat answered %s", bad.raw)
	}
	// A student may not act as a host.
	forbidden := student.request(map[string]any{"type": "muteAll"})
	if forbidden.str("code") != "FORBIDDEN" {
		t.Fatalf("student muteAll answered %s", forbidden.raw)
	}
	student.mustOK(map[string]any{"type": "ping"})
}

func TestResume(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	u := e.user("dee", store.RoleStudent)
	tok := e.token(e.class, u, jointoken.RoleAttendee, nil)
	student, j := e.join(tok, true)
	student.mustOK(map[string]any{"type": "hand", "raised": true})
	host.wait(room.TypeHands, func(m msg) bool { return len(m.fields["queue"].([]any)) == 1 })

	// The network drops: no close frame.
	_ = student.ws.CloseNow()
	eventually(t, "server noticed the drop", func() bool { return e.h.Connections() == 1 })

	// Back within the window with only the key (the token may have
	// expired meanwhile).
	again := e.dial(nil).listen()
	again.send(map[string]any{"type": "join", "v": 1, "resume": j.Resume})
	var j2 Joined
	again.wait(TypeJoined, nil).decode(t, &j2)
	if !j2.Resumed || j2.You.ID != j.You.ID || !j2.You.Hand || j2.Resume == j.Resume {
		t.Fatalf("resumed as %+v (resumed %v)", j2.You, j2.Resumed)
	}
	again.mustOK(map[string]any{"type": "chat", "text": "back"})
	host.wait(room.TypeChat, func(m msg) bool { return m.str("text") == "back" })
	if n := host.count(room.TypeParticipantLeft, nil); n != 0 {
		t.Fatalf("the host saw %d participant.left during a resume", n)
	}
	// A used key does not work twice.
	third := e.dial(nil).listen()
	third.send(map[string]any{"type": "join", "v": 1, "resume": j.Resume})
	if code := third.closed(); code != CloseNotJoined {
		t.Fatalf("reused key: close %d", code)
	}
	// Leaving is for good: the host sees it at once.
	again.mustOK(map[string]any{"type": "leave"})
	if code := again.closed(); code != CloseNormal {
		t.Fatalf("leave: close %d", code)
	}
	host.wait(room.TypeParticipantLeft, func(m msg) bool { return m.str("participant") == string(u.ID) })
}

func TestResumeWindowPasses(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.ResumeWindow = 200 * time.Millisecond }})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	u := e.user("eve", store.RoleStudent)
	student, j := e.join(e.token(e.class, u, jointoken.RoleAttendee, nil), true)
	_ = student.ws.CloseNow()
	host.wait(room.TypeParticipantLeft, func(m msg) bool { return m.str("participant") == string(u.ID) })
	late := e.dial(nil).listen()
	late.send(map[string]any{"type": "join", "v": 1, "resume": j.Resume})
	if code := late.closed(); code != CloseNotJoined {
		t.Fatalf("expired key: close %d", code)
	}
}

func TestReplaced(t *testing.T) {
	e := newEnv(t, envOptions{})
	u := e.user("fay", store.RoleStudent)
	e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	first, _ := e.join(e.token(e.class, u, jointoken.RoleAttendee, nil), true)
	first.mustOK(map[string]any{"type": "hand", "raised": true})
	second, j := e.join(e.token(e.class, u, jointoken.RoleAttendee, nil), true)
	if code := first.closed(); code != CloseReplaced {
		t.Fatalf("first tab: close %d", code)
	}
	first.wait(room.TypeReplaced, nil)
	if !j.You.Hand {
		t.Fatalf("second tab lost the hand: %+v", j.You)
	}
	second.mustOK(map[string]any{"type": "ping"})
	if r, _ := e.rooms.Room(e.class.ID); len(r.Participants()) != 2 {
		t.Fatalf("participants %v", r.Participants())
	}
}

func TestRemove(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	u := e.user("gus", store.RoleStudent)
	tok := e.token(e.class, u, jointoken.RoleAttendee, nil)
	student, _ := e.join(tok, true)
	host.mustOK(map[string]any{"type": "remove", "participant": string(u.ID)})
	student.wait(room.TypeRemoved, nil)
	if code := student.closed(); code != CloseRefused {
		t.Fatalf("removed: close %d", code)
	}
	host.wait(room.TypeParticipantLeft, func(m msg) bool { return m.str("reason") == room.LeftRemoved })

	again := e.dial(nil).listen()
	again.send(map[string]any{"type": "join", "v": 1, "token": tok})
	if code := again.closed(); code != CloseRefused {
		t.Fatalf("removed token: close %d", code)
	}
	if again.count(TypeError, func(m msg) bool { return m.str("reason") == "removed" }) != 1 {
		t.Fatalf("no removed error: %s", again.dump())
	}
}

func TestLock(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	host.mustOK(map[string]any{"type": "lock", "locked": true})
	host.wait(room.TypeLocked, nil)
	u := e.user("hal", store.RoleStudent)
	c := e.dial(nil).listen()
	c.send(map[string]any{"type": "join", "v": 1, "token": e.token(e.class, u, jointoken.RoleAttendee, nil)})
	if code := c.closed(); code != CloseRefused {
		t.Fatalf("locked room: close %d", code)
	}
	if c.count(TypeError, func(m msg) bool { return m.str("reason") == "locked" && m.str("code") == "FORBIDDEN" }) != 1 {
		t.Fatalf("no locked error: %s", c.dump())
	}
	// A co-host still gets in.
	admin := e.user("ida", store.RoleAdmin)
	e.join(e.token(e.class, admin, jointoken.RoleHost, nil), false)
}

func TestCapacity(t *testing.T) {
	e := newEnv(t, envOptions{max: 2})
	e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	e.join(e.token(e.class, e.user("jo", store.RoleStudent), jointoken.RoleAttendee, nil), true)
	c := e.dial(nil).listen()
	c.send(map[string]any{"type": "join", "v": 1, "token": e.token(e.class, e.user("kim", store.RoleStudent), jointoken.RoleAttendee, nil)})
	if code := c.closed(); code != CloseRefused {
		t.Fatalf("full class: close %d", code)
	}
	if c.count(TypeError, func(m msg) bool { return m.str("reason") == "full" && m.str("code") == "CONFLICT" }) != 1 {
		t.Fatalf("no full error: %s", c.dump())
	}
}

func TestEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	u := e.user("lu", store.RoleStudent)
	tok := e.token(e.class, u, jointoken.RoleAttendee, nil)
	student, _ := e.join(tok, true)
	// The answer to end is the ended event and the close, which the
	// room sends before any ok could follow.
	host.send(map[string]any{"type": "end", "id": 1})
	for _, c := range []*client{host, student} {
		c.wait(room.TypeEnded, nil)
		if code := c.closed(); code != CloseEnded {
			t.Fatalf("ended: close %d", code)
		}
	}
	late := e.dial(nil).listen()
	late.send(map[string]any{"type": "join", "v": 1, "token": tok})
	if code := late.closed(); code != CloseEnded {
		t.Fatalf("join after the end: close %d", code)
	}
}

// TestSlowReaderDropped floods a room while one participant never reads:
// that participant is dropped, and the sender keeps getting everything.
func TestSlowReaderDropped(t *testing.T) {
	e := newEnv(t, envOptions{
		cfg: func(c *Config) {
			c.SendQueue = 32
			c.ResumeWindow = 100 * time.Millisecond
			c.MessageRate, c.MessageBurst = 100000, 100000
		},
		room:     func(o *room.Options) { o.ChatRate = room.Rate{N: 100000, Per: time.Second} },
		listener: func(l net.Listener) net.Listener { return smallBuffers{l} },
	})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	u := e.user("max", store.RoleStudent)
	slow := e.dial(&websocket.DialOptions{HTTPClient: tinyReadClient()})
	slow.send(map[string]any{"type": "join", "v": 1, "token": e.token(e.class, u, jointoken.RoleAttendee, nil), "muted": true})
	host.wait(room.TypeParticipantJoined, nil)

	sent := 0
	text := fmt.Sprintf("%0200d", 0)
	for host.count(room.TypeParticipantLeft, nil) == 0 {
		if sent > 5000 {
			t.Fatalf("the slow reader was not dropped after %d messages", sent)
		}
		host.mustOK(map[string]any{"type": "chat", "text": text})
		sent++
	}
	host.wait(room.TypeParticipantLeft, func(m msg) bool { return m.str("participant") == string(u.ID) })
	eventually(t, "every chat echoed to the sender", func() bool { return host.count(room.TypeChat, nil) == sent })
	host.mustOK(map[string]any{"type": "ping"})
	t.Logf("slow reader dropped after %d messages", sent)
}

// TestUnansweredPingsDrop drops a client that stops answering pings (it
// never reads, so its WebSocket library never answers them).
func TestUnansweredPingsDrop(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) {
		c.PingInterval = 100 * time.Millisecond
		c.ResumeWindow = 100 * time.Millisecond
	}})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	u := e.user("quin", store.RoleStudent)
	mute := e.dial(nil) // never reads
	mute.send(map[string]any{"type": "join", "v": 1, "token": e.token(e.class, u, jointoken.RoleAttendee, nil)})
	host.wait(room.TypeParticipantJoined, nil)
	host.wait(room.TypeParticipantLeft, func(m msg) bool { return m.str("participant") == string(u.ID) })
	// The host, who reads, answers every ping and stays.
	host.mustOK(map[string]any{"type": "ping"})
}

func TestLimits(t *testing.T) {
	e := newEnv(t, envOptions{cfg: func(c *Config) { c.MessageRate, c.MessageBurst = 0.001, 3 }})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	// The join is read before the bucket applies: three requests pass,
	// the fourth is refused.
	for range 3 {
		host.mustOK(map[string]any{"type": "ping"})
	}
	if m := host.request(map[string]any{"type": "ping"}); m.str("code") != "TOO_MANY_REQUESTS" {
		t.Fatalf("fourth ping answered %s", m.raw)
	}
	// A message over the size limit closes the connection with 1009.
	host.send(map[string]any{"type": "chat", "text": strings.Repeat("x", MaxMessageSize)})
	if code := host.closed(); code != websocket.StatusMessageTooBig {
		t.Fatalf("oversized message: close %d", code)
	}
}

// TestBreakoutIsolation checks, through the protocol, that breakout rooms
// isolate chat and media: a student in b2 loses sight of the tracks of a
// student in b1, and gets them back when the rooms close.
func TestBreakoutIsolation(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil), false)
	ua, ub := e.user("ana", store.RoleStudent), e.user("ben", store.RoleStudent)
	a := e.rtcJoin(e.token(e.class, ua, jointoken.RoleAttendee, nil))
	b := e.rtcJoin(e.token(e.class, ub, jointoken.RoleAttendee, nil))
	a.publish()
	cam := sfu.MakeTrackID(sfu.ParticipantID(ua.ID), sfu.SourceCamera)
	b.wait(TypeTracks, func(m msg) bool { return hasTrack(t, m, cam) })

	host.mustOK(map[string]any{"type": "breakouts.create", "count": 2})
	host.mustOK(map[string]any{"type": "breakouts.assign", "assignments": map[string]string{string(ua.ID): "b1", string(ub.ID): "b2"}})
	b.wait(room.TypeBreakouts, func(m msg) bool { return m.str("you") == "b2" })
	eventually(t, "b2 no longer sees b1's camera", func() bool {
		last, ok := b.last(TypeTracks)
		return ok && !hasTrack(t, last, cam)
	})
	a.mustOK(map[string]any{"type": "chat", "text": "only b1"})
	b.mustOK(map[string]any{"type": "chat", "text": "only b2"})
	b.wait(room.TypeChat, func(m msg) bool { return m.str("text") == "only b2" })
	a.wait(room.TypeChat, func(m msg) bool { return m.str("text") == "only b1" })
	if a.count(room.TypeChat, func(m msg) bool { return m.str("text") == "only b2" }) != 0 ||
		b.count(room.TypeChat, func(m msg) bool { return m.str("text") == "only b1" }) != 0 {
		t.Fatal("chat crossed breakout rooms")
	}

	host.mustOK(map[string]any{"type": "breakouts.close"})
	eventually(t, "b1's camera is back for ben", func() bool {
		last, ok := b.last(TypeTracks)
		return ok && hasTrack(t, last, cam)
	})
}
