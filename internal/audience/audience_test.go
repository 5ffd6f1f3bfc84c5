package audience

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

func TestWelcome(t *testing.T) {
	e := newEnv(t, envOptions{})
	h, hw := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	if hw.You.Role != RoleHost || hw.You.ID != e.host.ID || hw.Class != e.class.ID || hw.V != Version {
		t.Fatalf("host welcome = %+v", hw)
	}
	if hw.Stream.State != StateOffline || hw.Viewers != 1 || len(hw.Reactions) == 0 || hw.Limits.ChatMax != 500 {
		t.Fatalf("host welcome = %+v", hw)
	}
	s := e.user("sam", store.RoleStudent)
	_, vw := e.join(e.token(e.class, s, jointoken.RoleAttendee, nil))
	if vw.You.Role != RoleViewer || vw.You.Name != "sam" || vw.Viewers != 2 || vw.Health != nil {
		t.Fatalf("viewer welcome = %+v", vw)
	}
	// The same user in a second tab is one viewer.
	_, vw2 := e.join(e.token(e.class, s, jointoken.RoleAttendee, nil))
	if vw2.Viewers != 2 {
		t.Fatalf("second tab: viewers = %d, want 2", vw2.Viewers)
	}
	if n := e.hub.Viewers(e.class.ID); n != 2 {
		t.Fatalf("Viewers = %d, want 2", n)
	}
	h.wait(TypeViewers, func(m msg) bool { return m.num("count") == 2 })
	h.ok(map[string]any{"type": "ping"})
}

func TestHelloRefused(t *testing.T) {
	e := newEnv(t, envOptions{opt: func(o *Options) { o.JoinTimeout = 300 * time.Millisecond }})
	s := e.user("sam", store.RoleStudent)
	chime := e.newClass(store.ServiceChime)
	ended := e.newClass(store.ServiceIVS)
	if err := e.db.SetClassStatus(context.Background(), ended.ID, store.StatusEnded); err != nil {
		t.Fatal(err)
	}
	gone := e.newClass(store.ServiceIVS)
	goneTok := e.token(gone, s, jointoken.RoleAttendee, nil)
	if err := e.db.DeleteClass(context.Background(), gone.ID); err != nil {
		t.Fatal(err)
	}
	other, err := jointoken.NewSigner([]byte(strings.Repeat("x", 32)))
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Sign(jointoken.Claims{ClassID: string(e.class.ID), UserID: string(s.ID), Role: jointoken.RoleAttendee,
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	good := e.token(e.class, s, jointoken.RoleAttendee, nil)
	hello := func(tok string) map[string]any { return map[string]any{"type": "hello", "v": 1, "token": tok} }
	for _, tc := range []struct {
		name  string
		first map[string]any
		code  string
		close websocket.StatusCode
	}{
		{"garbage token", hello("not-a-token"), "UNAUTHENTICATED", CloseNotJoined},
		{"another key", hello(forged), "UNAUTHENTICATED", CloseNotJoined},
		{"expired", hello(e.token(e.class, s, jointoken.RoleAttendee, func(c *jointoken.Claims) {
			c.IssuedAt, c.ExpiresAt = time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
		})), "UNAUTHENTICATED", CloseNotJoined},
		{"no token", map[string]any{"type": "hello", "v": 1}, "UNAUTHENTICATED", CloseNotJoined},
		{"wrong class", map[string]any{"type": "hello", "v": 1, "token": good, "class": string(chime.ID)}, "FORBIDDEN", CloseWrongClass},
		{"not IVS", hello(e.token(chime, s, jointoken.RoleAttendee, nil)), "FORBIDDEN", CloseWrongClass},
		{"no such class", hello(goneTok), "NOT_FOUND", CloseNoClass},
		{"ended", hello(e.token(ended, s, jointoken.RoleAttendee, nil)), "CONFLICT", CloseEnded},
		{"not hello first", map[string]any{"type": "chat", "text": "hi"}, "UNAUTHENTICATED", CloseNotJoined},
		{"unknown field", map[string]any{"type": "hello", "v": 1, "token": good, "x": 1}, "BAD_USER_INPUT", CloseBadMessage},
		{"wrong version", map[string]any{"type": "hello", "v": 2, "token": good}, "BAD_USER_INPUT", CloseBadMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, code := e.refusedHello(tc.first)
			if m.str("code") != tc.code || code != tc.close {
				t.Fatalf("got %s and close %d, want %s and %d", m.raw, code, tc.code, tc.close)
			}
		})
	}
	t.Run("silence", func(t *testing.T) {
		c := e.dial().listen()
		defer func() {
			if m := c.all(TypeError); len(m) != 1 || m[0].str("code") != "UNAUTHENTICATED" {
				t.Errorf("silence: got %v, want one UNAUTHENTICATED error", m)
			}
		}()
		if code := c.closed(); code != CloseNotJoined {
			t.Fatalf("close %d, want %d", code, CloseNotJoined)
		}
	})
	if n := e.hub.Viewers(e.class.ID); n != 0 {
		t.Fatalf("refused hellos left %d viewers", n)
	}
}

func TestChat(t *testing.T) {
	t0 := time.Now()
	e := newEnv(t, envOptions{opt: func(o *Options) {
		o.ChatHistory = 3
		o.Now = func() time.Time { return t0 } // the rate limit counts by it
	}})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	ann := e.user("ann", store.RoleStudent)
	a, _ := e.join(e.token(e.class, ann, jointoken.RoleAttendee, nil))
	ok := a.ok(map[string]any{"type": "chat", "text": "  hello <b>all</b>  "})
	id := ok.str("chat")
	for _, c := range []*client{a, host} {
		m := c.wait(TypeChat, nil)
		if m.str("id") != id || m.str("text") != "hello <b>all</b>" || m.str("from") != string(ann.ID) ||
			m.str("fromName") != "ann" || m.str("role") != RoleViewer {
			t.Fatalf("chat = %s", m.raw)
		}
	}
	list, err := e.db.ListChat(context.Background(), store.ChatQuery{ClassID: e.class.ID})
	if err != nil || len(list.Items) != 1 || string(list.Items[0].ID) != id || list.Items[0].FromUser != ann.ID {
		t.Fatalf("stored chat = %+v, %v", list.Items, err)
	}
	a.refused(map[string]any{"type": "chat", "text": strings.Repeat("é", 501)}, "BAD_USER_INPUT", "")
	a.refused(map[string]any{"type": "chat", "text": "   "}, "BAD_USER_INPUT", "")
	a.refused(map[string]any{"type": "chat", "text": 5}, "BAD_USER_INPUT", "")
	a.ok(map[string]any{"type": "chat", "text": strings.Repeat("é", 500)})
	// The rate limit: 5 per 5 s, two used.
	for i := range 3 {
		a.ok(map[string]any{"type": "chat", "text": "m" + string(rune('0'+i))})
	}
	a.refused(map[string]any{"type": "chat", "text": "one too many"}, "TOO_MANY_REQUESTS", ReasonRateLimit)
	// A late viewer gets the last ChatHistory messages.
	_, w := e.join(e.token(e.class, e.user("bo", store.RoleStudent), jointoken.RoleAttendee, nil))
	var texts []string
	for _, m := range w.Chat {
		texts = append(texts, m.Text)
	}
	if len(w.Chat) < 3 || texts[len(texts)-1] != "m2" || w.Chat[0].Type != "" {
		t.Fatalf("late viewer's history = %v", texts)
	}
}

func TestModeration(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	troll := e.user("troll", store.RoleStudent)
	tc, _ := e.join(e.token(e.class, troll, jointoken.RoleAttendee, nil))
	kind := e.user("kind", store.RoleStudent)
	kc, _ := e.join(e.token(e.class, kind, jointoken.RoleAttendee, nil))

	// Only hosts moderate.
	id := tc.ok(map[string]any{"type": "chat", "text": "spam"}).str("chat")
	for _, req := range []map[string]any{
		{"type": "chat.delete", "message": id},
		{"type": "mute", "user": string(troll.ID), "muted": true},
		{"type": "ban", "user": string(troll.ID)},
		{"type": "unban", "user": string(troll.ID)},
		{"type": "slowmode", "seconds": 10},
		{"type": "poll.create", "question": "q", "options": []string{"a", "b"}},
		{"type": "end"},
	} {
		kc.refused(req, "FORBIDDEN", "")
	}

	// Delete: gone from every screen and from the history.
	host.ok(map[string]any{"type": "chat.delete", "message": id})
	for _, c := range []*client{host, tc, kc} {
		c.wait(TypeChatDeleted, func(m msg) bool { return m.str("id") == id })
	}
	if _, w := e.join(e.token(e.class, e.user("late", store.RoleStudent), jointoken.RoleAttendee, nil)); len(w.Chat) != 0 {
		t.Fatalf("a deleted message is in the history: %+v", w.Chat)
	}
	list, err := e.db.ListChat(context.Background(), store.ChatQuery{ClassID: e.class.ID})
	if err != nil || len(list.Items) != 0 {
		t.Fatalf("stored chat after delete = %+v, %v", list.Items, err)
	}
	host.refused(map[string]any{"type": "chat.delete", "message": "no-such-message"}, "NOT_FOUND", "")
	// A message of another class is not this class's to delete.
	other := store.ChatMessage{ClassID: e.newClass(store.ServiceIVS).ID, FromUser: troll.ID, Text: "elsewhere", SentAt: time.Now()}
	if err := e.db.SaveChat(context.Background(), &other); err != nil {
		t.Fatal(err)
	}
	host.refused(map[string]any{"type": "chat.delete", "message": string(other.ID)}, "NOT_FOUND", "")

	// Mute: the user and the hosts are told; the user cannot chat until unmuted.
	host.ok(map[string]any{"type": "mute", "user": string(troll.ID), "muted": true})
	tc.wait(TypeMuted, func(m msg) bool { return m.fields["muted"] == true })
	host.wait(TypeMuted, func(m msg) bool { return m.str("user") == string(troll.ID) })
	tc.refused(map[string]any{"type": "chat", "text": "let me speak"}, "FORBIDDEN", ReasonMuted)
	kc.ok(map[string]any{"type": "chat", "text": "I still can"})
	if _, w := e.join(e.token(e.class, troll, jointoken.RoleAttendee, nil)); !w.Muted {
		t.Fatal("a muted user's new connection is not told it is muted")
	}
	host.ok(map[string]any{"type": "mute", "user": string(troll.ID), "muted": false})
	tc.wait(TypeMuted, func(m msg) bool { return m.fields["muted"] == false })
	tc.ok(map[string]any{"type": "chat", "text": "sorry"})
	host.refused(map[string]any{"type": "mute", "user": string(e.host.ID), "muted": true}, "FORBIDDEN", "")
	host.refused(map[string]any{"type": "mute", "user": string(troll.ID)}, "BAD_USER_INPUT", "")

	// Ban: every connection of the user goes, and none may come back.
	host.ok(map[string]any{"type": "ban", "user": string(troll.ID)})
	tc.wait(TypeBanned, nil)
	if code := tc.closed(); code != CloseBanned {
		t.Fatalf("banned close = %d, want %d", code, CloseBanned)
	}
	host.wait(TypeBanned, func(m msg) bool { return m.str("user") == string(troll.ID) })
	m, code := e.refusedHello(map[string]any{"type": "hello", "v": 1, "token": e.token(e.class, troll, jointoken.RoleAttendee, nil)})
	if code != CloseBanned || m.str("reason") != ReasonBanned || m.str("code") != "FORBIDDEN" {
		t.Fatalf("banned user's hello: %s close %d", m.raw, code)
	}
	host.refused(map[string]any{"type": "ban", "user": string(e.host.ID)}, "FORBIDDEN", "")
	kc.ok(map[string]any{"type": "chat", "text": "still here"})

	// A co-host (an admin) bans and mutes the instructor while the
	// instructor is away: their host token still gets in and chats.
	admin := e.user("admin", store.RoleAdmin)
	ac, _ := e.join(e.token(e.class, admin, jointoken.RoleHost, nil))
	_ = host.ws.Close(websocket.StatusNormalClosure, "away")
	eventually(t, "the instructor gone", func() bool { return e.hub.Viewers(e.class.ID) == 3 })
	ac.ok(map[string]any{"type": "ban", "user": string(e.host.ID)})
	ac.ok(map[string]any{"type": "mute", "user": string(e.host.ID), "muted": true})
	back, w := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	if w.Muted {
		t.Fatal("a host is told it is muted")
	}
	back.ok(map[string]any{"type": "chat", "text": "I am back"})
}

func TestSlowMode(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	v, _ := e.join(e.token(e.class, e.user("v", store.RoleStudent), jointoken.RoleAttendee, nil))
	host.refused(map[string]any{"type": "slowmode", "seconds": -1}, "BAD_USER_INPUT", "")
	host.refused(map[string]any{"type": "slowmode", "seconds": 3601}, "BAD_USER_INPUT", "")
	host.ok(map[string]any{"type": "slowmode", "seconds": 30})
	v.wait(TypeSlowMode, func(m msg) bool { return m.num("seconds") == 30 })
	v.ok(map[string]any{"type": "chat", "text": "first"})
	m := v.refused(map[string]any{"type": "chat", "text": "second"}, "TOO_MANY_REQUESTS", ReasonSlowMode)
	if !strings.Contains(m.str("message"), "30 s") {
		t.Fatalf("slow mode refusal says %q", m.str("message"))
	}
	// Hosts are exempt.
	host.ok(map[string]any{"type": "chat", "text": "one"})
	host.ok(map[string]any{"type": "chat", "text": "two"})
	_, w := e.join(e.token(e.class, e.user("w", store.RoleStudent), jointoken.RoleAttendee, nil))
	if w.SlowMode != 30 {
		t.Fatalf("welcome slowMode = %d, want 30", w.SlowMode)
	}
	host.ok(map[string]any{"type": "slowmode", "seconds": 0})
	v.wait(TypeSlowMode, func(m msg) bool { return m.num("seconds") == 0 })
	v.ok(map[string]any{"type": "chat", "text": "second, now"})
}

func TestPolls(t *testing.T) {
	e := newEnv(t, envOptions{opt: func(o *Options) { o.ResultsInterval = 300 * time.Millisecond }})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	var viewers []*client
	for _, u := range e.users("v", 6) {
		c, _ := e.join(e.token(e.class, u, jointoken.RoleAttendee, nil))
		viewers = append(viewers, c)
	}
	host.refused(map[string]any{"type": "poll.create", "question": "q", "options": []string{"only"}}, "BAD_USER_INPUT", "")
	host.refused(map[string]any{"type": "poll.create", "question": " ", "options": []string{"a", "b"}}, "BAD_USER_INPUT", "")
	id := host.ok(map[string]any{"type": "poll.create", "question": "Tabs or spaces?", "options": []string{"tabs", "spaces", "both"}, "multiple": false}).str("poll")
	for _, c := range viewers {
		c.wait(TypePoll, func(m msg) bool { return strings.Contains(string(m.raw), id) })
	}
	host.refused(map[string]any{"type": "poll.vote", "poll": id, "choices": []int{0}}, "FORBIDDEN", "")
	viewers[0].refused(map[string]any{"type": "poll.vote", "poll": id, "choices": []int{0, 1}}, "BAD_USER_INPUT", "")
	viewers[0].refused(map[string]any{"type": "poll.vote", "poll": id, "choices": []int{3}}, "BAD_USER_INPUT", "")
	viewers[0].refused(map[string]any{"type": "poll.vote", "poll": "nope", "choices": []int{0}}, "NOT_FOUND", "")
	for i, c := range viewers {
		c.ok(map[string]any{"type": "poll.vote", "poll": id, "choices": []int{i % 2}})
	}
	viewers[0].refused(map[string]any{"type": "poll.vote", "poll": id, "choices": []int{1}}, "CONFLICT", "")
	// Hosts see the count live, coalesced: far fewer messages than votes.
	host.wait(TypePollResults, func(m msg) bool { return m.num("voters") == 6 })
	if n := host.count(TypePollResults); n > 4 {
		t.Fatalf("host got %d results messages for 6 votes; results are not coalesced", n)
	}
	for _, c := range viewers {
		if n := c.count(TypePollResults); n != 0 {
			t.Fatalf("a viewer saw results of an open poll")
		}
	}
	host.ok(map[string]any{"type": "poll.close", "poll": id})
	for _, c := range append(viewers, host) {
		m := c.wait(TypePollResults, func(m msg) bool { return m.num("voters") == 6 && m.str("poll") == id })
		var r pollResults
		m.decode(t, &r)
		if !slices.Equal(r.Counts, []int{3, 3, 0}) {
			t.Fatalf("results = %+v", r)
		}
	}
	viewers[1].refused(map[string]any{"type": "poll.vote", "poll": id, "choices": []int{0}}, "CONFLICT", "")
	host.refused(map[string]any{"type": "poll.close", "poll": id}, "CONFLICT", "")
	votes, err := e.db.VotesOf(context.Background(), store.PollID(id))
	if err != nil || len(votes) != 6 {
		t.Fatalf("stored votes = %d, %v", len(votes), err)
	}
	// A viewer joining later sees the poll, its vote and the results.
	_, w := e.join(e.token(e.class, e.user("late", store.RoleStudent), jointoken.RoleAttendee, nil))
	if len(w.Polls) != 1 || !w.Polls[0].Closed || len(w.Results) != 1 || w.Results[0].Voters != 6 {
		t.Fatalf("late welcome polls = %+v results = %+v", w.Polls, w.Results)
	}
}

func TestReactionsAggregated(t *testing.T) {
	// A stopped clock: the rate limit's bucket refills by it, not by how
	// long the test takes.
	t0 := time.Now()
	e := newEnv(t, envOptions{opt: func(o *Options) {
		o.ReactionInterval = 200 * time.Millisecond
		o.Now = func() time.Time { return t0 }
	}})
	const n = 20
	var cs []*client
	for _, u := range e.users("r", n) {
		c, _ := e.join(e.token(e.class, u, jointoken.RoleAttendee, nil))
		cs = append(cs, c)
	}
	for _, c := range cs {
		c.ok(map[string]any{"type": "react", "emoji": "👏"})
		c.ok(map[string]any{"type": "react", "emoji": "🎉"})
	}
	cs[0].refused(map[string]any{"type": "react", "emoji": "💩"}, "BAD_USER_INPUT", "")
	for _, c := range cs {
		total := func() (clap, party, msgs int) {
			for _, m := range c.all(TypeReactions) {
				var r reactionsOut
				m.decode(t, &r)
				clap += r.Counts["👏"]
				party += r.Counts["🎉"]
				msgs++
			}
			return
		}
		eventually(t, "all reactions counted", func() bool { a, b, _ := total(); return a == n && b == n })
		if _, _, msgs := total(); msgs >= n {
			t.Fatalf("%d reactions messages for %d reactions: not aggregated", msgs, 2*n)
		}
	}
	// The per-user limit: 10 per 5 s.
	for range 8 {
		cs[1].ok(map[string]any{"type": "react", "emoji": "👍"})
	}
	cs[1].refused(map[string]any{"type": "react", "emoji": "👍"}, "TOO_MANY_REQUESTS", ReasonRateLimit)
}

func TestViewerCount(t *testing.T) {
	e := newEnv(t, envOptions{})
	h, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	var cs []*client
	for _, u := range e.users("c", 5) {
		c, _ := e.join(e.token(e.class, u, jointoken.RoleAttendee, nil))
		cs = append(cs, c)
	}
	h.wait(TypeViewers, func(m msg) bool { return m.num("count") == 6 })
	if n := h.count(TypeViewers); n >= 6 {
		t.Fatalf("%d count messages for 6 joins: not debounced", n)
	}
	eventually(t, "OnCount told 6", func() bool {
		e.countMu.Lock()
		defer e.countMu.Unlock()
		return len(e.counts) > 0 && e.counts[len(e.counts)-1] == 6
	})
	e.countMu.Lock()
	calls := len(e.counts)
	e.countMu.Unlock()
	if calls >= 6 {
		t.Fatalf("OnCount called %d times for 6 joins", calls)
	}
	_ = cs[0].ws.Close(websocket.StatusNormalClosure, "bye")
	_ = cs[1].ws.Close(websocket.StatusNormalClosure, "bye")
	h.wait(TypeViewers, func(m msg) bool { return m.num("count") == 4 })
	if n := e.hub.Viewers(e.class.ID); n != 4 {
		t.Fatalf("Viewers = %d", n)
	}
}

// TestConnectionsPerUser: one account holds at most MaxPerUser audience
// connections in a class; one more sends the oldest away ("replaced",
// close 4011), and the user still counts as one viewer.
func TestConnectionsPerUser(t *testing.T) {
	e := newEnv(t, envOptions{})
	stu := e.user("tabs", store.RoleStudent)
	tok := e.token(e.class, stu, jointoken.RoleAttendee, nil)
	var tabs []*client
	for range 5 {
		c, _ := e.join(tok)
		tabs = append(tabs, c)
	}
	sixth, _ := e.join(tok)
	tabs[0].wait(TypeReplaced, func(msg) bool { return true })
	if code := tabs[0].closed(); code != CloseReplaced {
		t.Fatalf("the oldest connection closed with %d, want %d", code, CloseReplaced)
	}
	// The others stay: a chat message reaches the second and the newest.
	if err := sixth.ws.Write(context.Background(), websocket.MessageText, []byte(`{"type":"chat","id":1,"text":"still here"}`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{tabs[1], sixth} {
		c.wait(TypeChat, func(m msg) bool { return m.str("text") == "still here" })
	}
	eventually(t, "one viewer for one user", func() bool { return e.hub.Viewers(e.class.ID) == 1 })
}

func TestStreamHealthAndEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	stu := e.user("stu", store.RoleStudent)
	en := store.Enrollment{UserID: stu.ID, ClassID: e.class.ID}
	if err := e.db.Enroll(context.Background(), &en); err != nil {
		t.Fatal(err)
	}
	v, _ := e.join(e.token(e.class, stu, jointoken.RoleAttendee, nil))

	e.hub.SetStream(e.class.ID, StreamState{State: StateLive, Codec: "video/H264"})
	for _, c := range []*client{host, v} {
		c.wait(TypeStream, func(m msg) bool { return m.str("state") == StateLive && m.str("codec") == "video/H264" })
	}
	e.hub.SetHealth(e.class.ID, Health{BitrateBps: 2_500_000, FrameRate: 30, Layers: 3})
	host.wait(TypeHealth, func(m msg) bool { return m.num("bitrateBps") == 2_500_000 })
	e.hub.SetStream(e.class.ID, StreamState{State: StateReconnecting})
	v.wait(TypeStream, func(m msg) bool { return m.str("state") == StateReconnecting })
	if n := v.count(TypeHealth); n != 0 {
		t.Fatal("a viewer got the stream's health")
	}
	_, hw := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	if hw.Health == nil || hw.Health.BitrateBps != 2_500_000 || hw.Stream.State != StateReconnecting {
		t.Fatalf("late host welcome: health %+v stream %+v", hw.Health, hw.Stream)
	}
	_, vw := e.join(e.token(e.class, stu, jointoken.RoleAttendee, nil))
	if vw.Health != nil || vw.Stream.State != StateReconnecting {
		t.Fatalf("late viewer welcome: health %+v stream %+v", vw.Health, vw.Stream)
	}

	// A host's end, with no OnEnd wired: the hub ends the class itself.
	host.send(map[string]any{"type": "end", "id": 1})
	for _, c := range []*client{host, v} {
		c.wait(TypeStream, func(m msg) bool { return m.str("state") == StateEnded })
		c.wait(TypeEnded, nil)
		if code := c.closed(); code != CloseEnded {
			t.Fatalf("close after end = %d, want %d", code, CloseEnded)
		}
	}
	c, err := e.db.ClassByID(context.Background(), e.class.ID)
	if err != nil || c.Status != store.StatusEnded {
		t.Fatalf("class status = %s, %v", c.Status, err)
	}
	// Every stay is closed and the enrollment's attendance written.
	eventually(t, "attendance written", func() bool {
		got, err := e.db.EnrollmentByID(context.Background(), en.ID)
		return err == nil && got.Attended != nil && *got.Attended && got.AttendanceDuration != nil
	})
	eventually(t, "stays closed", func() bool {
		stays, err := e.db.AttendanceOf(context.Background(), e.class.ID, stu.ID)
		if err != nil || len(stays) != 2 {
			return false
		}
		for _, s := range stays {
			if s.LeftAt == nil {
				return false
			}
		}
		return true
	})
	// The host's connection, closed by the end like the others, may still
	// be leaving.
	eventually(t, "no viewer left after the end", func() bool { return e.hub.Viewers(e.class.ID) == 0 })
}

func TestEndThroughOnEnd(t *testing.T) {
	ended := make(chan store.ClassID, 1)
	var e *env
	e = newEnv(t, envOptions{opt: func(o *Options) {
		o.OnEnd = func(_ context.Context, class store.ClassID) error {
			ended <- class
			e.hub.SetStream(class, StreamState{State: StateEnded})
			return nil
		}
	}})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	host.send(map[string]any{"type": "end"})
	if got := <-ended; got != e.class.ID {
		t.Fatalf("OnEnd(%s), want %s", got, e.class.ID)
	}
	if code := host.closed(); code != CloseEnded {
		t.Fatalf("close = %d", code)
	}
	// OnEnd's failure is the host's error.
	e2 := newEnv(t, envOptions{opt: func(o *Options) {
		o.OnEnd = func(context.Context, store.ClassID) error { return apperr.New(apperr.Conflict, "not live") }
	}})
	h2, _ := e2.join(e2.token(e2.class, e2.host, jointoken.RoleHost, nil))
	h2.refused(map[string]any{"type": "end"}, "CONFLICT", "")
}

func TestProtocolErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	v, _ := e.join(e.token(e.class, e.user("v", store.RoleStudent), jointoken.RoleAttendee, nil))
	v.refused(map[string]any{"type": "hello", "v": 1, "token": "x"}, "CONFLICT", "")
	v.refused(map[string]any{"type": "poll.vote", "poll": 7}, "BAD_USER_INPUT", "")
	v.send(map[string]any{"type": "dance"})
	v.wait(TypeError, func(m msg) bool { return m.str("field") == "type" })
	if code := v.closed(); code != CloseBadMessage {
		t.Fatalf("close = %d, want %d", code, CloseBadMessage)
	}
}

func TestRestart(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	ann := e.user("ann", store.RoleStudent)
	a, _ := e.join(e.token(e.class, ann, jointoken.RoleAttendee, nil))
	host.ok(map[string]any{"type": "chat", "text": "before the restart"})
	a.ok(map[string]any{"type": "chat", "text": "me too"})
	open := host.ok(map[string]any{"type": "poll.create", "question": "Open?", "options": []string{"a", "b"}}).str("poll")
	closed := host.ok(map[string]any{"type": "poll.create", "question": "Closed?", "options": []string{"x", "y", "z"}, "multiple": true}).str("poll")
	a.ok(map[string]any{"type": "poll.vote", "poll": open, "choices": []int{1}})
	a.ok(map[string]any{"type": "poll.vote", "poll": closed, "choices": []int{0, 2}})
	host.ok(map[string]any{"type": "poll.close", "poll": closed})

	e.restart()
	if code := a.closed(); code != CloseGoingAway {
		t.Fatalf("close on shutdown = %d, want %d", code, CloseGoingAway)
	}
	_, w := e.join(e.token(e.class, ann, jointoken.RoleAttendee, nil))
	if len(w.Chat) != 2 || w.Chat[0].Text != "before the restart" || w.Chat[0].Role != RoleHost || w.Chat[1].FromName != "ann" {
		t.Fatalf("chat after a restart = %+v", w.Chat)
	}
	if len(w.Polls) != 2 || w.Polls[0].Closed || !w.Polls[1].Closed || !slices.Equal(w.Polls[0].YourVote, []int{1}) {
		t.Fatalf("polls after a restart = %+v", w.Polls)
	}
	if len(w.Results) != 1 || !slices.Equal(w.Results[0].Counts, []int{1, 0, 1}) {
		t.Fatalf("results after a restart = %+v", w.Results)
	}
	h2, hw := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	if len(hw.Results) != 2 || hw.Results[0].Voters != 1 {
		t.Fatalf("host results after a restart = %+v", hw.Results)
	}
	// The restored poll still counts once per user.
	b, _ := e.join(e.token(e.class, e.user("bo", store.RoleStudent), jointoken.RoleAttendee, nil))
	b.ok(map[string]any{"type": "poll.vote", "poll": open, "choices": []int{0}})
	h2.wait(TypePollResults, func(m msg) bool { return m.str("poll") == open && m.num("voters") == 2 })
}

// TestCloseLeavesNoGoroutines: after Close, nothing of the hub runs.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	e := newEnv(t, envOptions{})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	for _, c := range e.joinAll(e.users("g", 10)) {
		c.ok(map[string]any{"type": "react", "emoji": "🎉"})
	}
	host.ok(map[string]any{"type": "chat", "text": "bye"})
	silent := e.dial().listen() // connected, no hello yet
	eventually(t, "the silent connection is served", func() bool {
		e.hub.mu.Lock()
		defer e.hub.mu.Unlock()
		return len(e.hub.conns) == 12
	})
	e.hub.Close()
	e.srv.Close()
	if code := host.closed(); code != CloseGoingAway {
		t.Fatalf("close = %d, want %d", code, CloseGoingAway)
	}
	// Close did not wait for the silent one's hello timeout (4001).
	if code := silent.closed(); code != CloseGoingAway {
		t.Fatalf("silent connection's close = %d, want %d", code, CloseGoingAway)
	}
	eventually(t, "the hub's goroutines end", func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return !strings.Contains(string(buf), "internal/audience.(*")
	})
	// Every stay is closed.
	stays, err := e.db.AttendanceOf(context.Background(), e.class.ID, e.host.ID)
	if err != nil || len(stays) != 1 || stays[0].LeftAt == nil {
		t.Fatalf("host's stays = %+v, %v", stays, err)
	}
	e.countMu.Lock()
	last := e.counts[len(e.counts)-1]
	e.countMu.Unlock()
	if last != 0 {
		t.Fatalf("OnCount's last count = %d, want 0", last)
	}
}
