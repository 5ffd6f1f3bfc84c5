package room

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// TestHostOnly runs every host control as an attendee (refused, nothing
// changes) and as a host (done).
func TestHostOnly(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *Room) // run as the host before the attempt
		do    func(r *Room, actor ParticipantID) error
		check func(t *testing.T, r *Room)
	}{
		{"Mute", nil, func(r *Room, a ParticipantID) error { return r.Mute(a, "s2") },
			func(t *testing.T, r *Room) { wantMedia(t, r, "s2", MediaState{Camera: true}) }},
		{"MuteAll", nil, func(r *Room, a ParticipantID) error { return r.MuteAll(a) },
			func(t *testing.T, r *Room) { wantMedia(t, r, "s2", MediaState{Camera: true}) }},
		{"LockMics", nil, func(r *Room, a ParticipantID) error { return r.LockMics(a, true) },
			func(t *testing.T, r *Room) {
				must(t, r.SetMedia("s2", MediaState{}))
				wantKind(t, r.SetMedia("s2", MediaState{Mic: true}), apperr.Forbidden)
			}},
		{"StopVideo", nil, func(r *Room, a ParticipantID) error { return r.StopVideo(a, "s2") },
			func(t *testing.T, r *Room) { wantMedia(t, r, "s2", MediaState{Mic: true}) }},
		{"Remove", nil, func(r *Room, a ParticipantID) error { return r.Remove(a, "s2") },
			func(t *testing.T, r *Room) { wantPeople(t, r, "h1", "s1") }},
		{"Lock", nil, func(r *Room, a ParticipantID) error { return r.Lock(a, true) },
			func(t *testing.T, r *Room) {
				if _, err := r.Snapshot("h1"); err != nil || !mustSnap(t, r, "h1").Locked {
					t.Fatal("room not locked")
				}
			}},
		{"End", nil, func(r *Room, a ParticipantID) error { return r.End(a) },
			func(t *testing.T, r *Room) {
				if r.Status() != store.StatusEnded {
					t.Fatalf("status %s", r.Status())
				}
			}},
		{"LowerAllHands", func(r *Room) { must(t, r.RaiseHand("s2")) },
			func(r *Room, a ParticipantID) error { return r.LowerAllHands(a) },
			func(t *testing.T, r *Room) { wantHands(t, r) }},
		{"LowerOthersHand", func(r *Room) { must(t, r.RaiseHand("s2")) },
			func(r *Room, a ParticipantID) error { return r.LowerHand(a, "s2") },
			func(t *testing.T, r *Room) { wantHands(t, r) }},
		{"CreateBreakouts", nil, func(r *Room, a ParticipantID) error { return r.CreateBreakouts(a, 2) },
			func(t *testing.T, r *Room) { wantGroups(t, r, 2) }},
		{"Assign", func(r *Room) { must(t, r.CreateBreakouts("h1", 2)) },
			func(r *Room, a ParticipantID) error { return r.Assign(a, map[ParticipantID]GroupID{"s2": "b2"}) },
			func(t *testing.T, r *Room) { wantGroup(t, r, "s2", "b2") }},
		{"AutoAssign", func(r *Room) { must(t, r.CreateBreakouts("h1", 2)) },
			func(r *Room, a ParticipantID) error { return r.AutoAssign(a, RoundRobin) },
			func(t *testing.T, r *Room) { wantGroup(t, r, "s2", "b2") }},
		{"SetBreakoutTimer", func(r *Room) { must(t, r.CreateBreakouts("h1", 2)) },
			func(r *Room, a ParticipantID) error { return r.SetBreakoutTimer(a, time.Minute) },
			func(t *testing.T, r *Room) {
				if mustSnap(t, r, "s1").Breakouts.TimerEndsAt == nil {
					t.Fatal("no timer")
				}
			}},
		{"BroadcastToBreakouts", func(r *Room) { must(t, r.CreateBreakouts("h1", 2)) },
			func(r *Room, a ParticipantID) error { return r.BroadcastToBreakouts(a, "5 minutes left") }, nil},
		{"Visit", func(r *Room) { must(t, r.CreateBreakouts("h1", 2)) },
			func(r *Room, a ParticipantID) error { return r.Visit(a, "b1") },
			func(t *testing.T, r *Room) { wantGroup(t, r, "h1", "b1") }},
		{"CloseBreakouts", func(r *Room) { must(t, r.CreateBreakouts("h1", 2)) },
			func(r *Room, a ParticipantID) error { return r.CloseBreakouts(a) },
			func(t *testing.T, r *Room) { wantGroups(t, r, 0) }},
		{"CreatePoll", nil, func(r *Room, a ParticipantID) error {
			_, err := r.CreatePoll(a, "Ready?", []string{"yes", "no"}, false)
			return err
		}, func(t *testing.T, r *Room) {
			if n := len(mustSnap(t, r, "s1").Polls); n != 1 {
				t.Fatalf("%d polls", n)
			}
		}},
		{"ClosePoll", nil, func(r *Room, a ParticipantID) error {
			return r.ClosePoll(a, mustSnap(t, r, "h1").Polls[0].ID)
		}, func(t *testing.T, r *Room) {
			if !mustSnap(t, r, "s1").Polls[0].Closed {
				t.Fatal("poll open")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, newMemStore())
			r, _ := e.join(t, "h1")
			e.join(t, "s1")
			e.join(t, "s2")
			must(t, r.SetMedia("s2", MediaState{Mic: true, Camera: true}))
			if tc.name == "ClosePoll" {
				if _, err := r.CreatePoll("h1", "Ready?", []string{"yes", "no"}, false); err != nil {
					t.Fatal(err)
				}
			}
			if tc.setup != nil {
				tc.setup(r)
			}
			before := mustSnap(t, r, "h1")
			wantKind(t, tc.do(r, "s1"), apperr.Forbidden)
			after := mustSnap(t, r, "h1")
			if !sameState(before, after) {
				t.Fatalf("an attendee's refused %s changed the room:\n%+v\n%+v", tc.name, before, after)
			}
			must(t, tc.do(r, "h1"))
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// sameState compares what an attendee's refused action could have changed.
func sameState(a, b State) bool {
	return a.Locked == b.Locked && a.MicsLocked == b.MicsLocked && slices.Equal(a.Hands, b.Hands) &&
		slices.EqualFunc(a.Participants, b.Participants, func(x, y Participant) bool { return x == y }) &&
		len(a.Breakouts.Groups) == len(b.Breakouts.Groups) && a.Status == b.Status &&
		len(a.Polls) == len(b.Polls) && (a.Breakouts.TimerEndsAt == nil) == (b.Breakouts.TimerEndsAt == nil) &&
		slices.EqualFunc(a.Polls, b.Polls, func(x, y PollView) bool { return x.Closed == y.Closed })
}

func mustSnap(t testing.TB, r *Room, p ParticipantID) State {
	t.Helper()
	s, err := r.Snapshot(p)
	if err != nil {
		t.Fatalf("snapshot %s: %v", p, err)
	}
	return s
}

func find(t testing.TB, r *Room, p ParticipantID) Participant {
	t.Helper()
	for _, x := range r.Participants() {
		if x.ID == p {
			return x
		}
	}
	t.Fatalf("%s is not in the room", p)
	return Participant{}
}

func wantMedia(t *testing.T, r *Room, p ParticipantID, want MediaState) {
	t.Helper()
	if got := find(t, r, p).Media; got != want {
		t.Fatalf("%s media = %+v, want %+v", p, got, want)
	}
}

func wantPeople(t *testing.T, r *Room, want ...ParticipantID) {
	t.Helper()
	var got []ParticipantID
	for _, p := range r.Participants() {
		got = append(got, p.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("participants %v, want %v", got, want)
	}
}

func wantHands(t *testing.T, r *Room, want ...ParticipantID) {
	t.Helper()
	if got := r.Hands(); !slices.Equal(got, want) {
		t.Fatalf("hands %v, want %v", got, want)
	}
}

func wantGroups(t *testing.T, r *Room, n int) {
	t.Helper()
	if got := len(mustSnap(t, r, r.Participants()[0].ID).Breakouts.Groups); got != n {
		t.Fatalf("%d breakout groups, want %d", got, n)
	}
}

func wantGroup(t *testing.T, r *Room, p ParticipantID, g GroupID) {
	t.Helper()
	if got := find(t, r, p).Group; got != g {
		t.Fatalf("%s in group %q, want %q", p, got, g)
	}
}

func TestMuteAndLockMics(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, hs := e.join(t, "h1")
	_, s1 := e.join(t, "s1")
	_, s2 := e.join(t, "s2")
	must(t, r.SetMedia("s1", MediaState{Mic: true, Camera: true}))
	must(t, r.SetMedia("s2", MediaState{Mic: true}))
	must(t, r.SetMedia("h1", MediaState{Mic: true}))
	e.media.take()

	must(t, r.Mute("h1", "s1"))
	if m := lastOf[Muted](t, s1); m.By != "h1" {
		t.Fatalf("muted by %q", m.By)
	}
	if len(of[Muted](s2)) != 0 {
		t.Fatal("s2 told it was muted")
	}
	wantMedia(t, r, "s1", MediaState{Camera: true})
	if u := lastOf[ParticipantUpdated](t, hs); u.Participant.ID != "s1" || u.Participant.Media.Mic {
		t.Fatalf("host saw %+v", u)
	}
	wantCalls(t, e.media, "block class-1 s1/mic true")

	// A muted student may unmute, which lifts the server-side block.
	must(t, r.SetMedia("s1", MediaState{Mic: true, Camera: true}))
	wantCalls(t, e.media, "block class-1 s1/mic false")

	must(t, r.LockMics("h1", true))
	if l := lastOf[Locked](t, s2); !l.Mics || l.Room {
		t.Fatalf("locked event %+v", l)
	}
	must(t, r.MuteAll("h1"))
	wantMedia(t, r, "s1", MediaState{Camera: true})
	wantMedia(t, r, "s2", MediaState{})
	wantMedia(t, r, "h1", MediaState{Mic: true})
	wantCalls(t, e.media, "block class-1 s1/mic true", "block class-1 s2/mic true")
	wantKind(t, r.SetMedia("s2", MediaState{Mic: true}), apperr.Forbidden)
	must(t, r.SetMedia("s2", MediaState{Camera: true})) // the camera is not locked
	must(t, r.SetMedia("h1", MediaState{}))
	must(t, r.SetMedia("h1", MediaState{Mic: true})) // hosts are never locked
	if !mustSnap(t, r, "s2").MicsLocked {
		t.Fatal("snapshot does not show the lock")
	}
	must(t, r.LockMics("h1", false))
	must(t, r.SetMedia("s2", MediaState{Mic: true}))
	wantCalls(t, e.media, "block class-1 s2/mic false")

	// A student joining while mics are locked joins muted even if asked not to.
	must(t, r.LockMics("h1", true))
	req := e.req("s3")
	_, p, err := e.m.Join(context.Background(), req, &sink{})
	must(t, err)
	if p.Media.Mic {
		t.Fatal("s3 joined unmuted while mics are locked")
	}
}

func wantCalls(t *testing.T, f *fakeMedia, want ...string) {
	t.Helper()
	if got := f.take(); !slices.Equal(got, want) {
		t.Fatalf("media calls\n%q\nwant\n%q", got, want)
	}
}

func TestStopVideo(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, _ := e.join(t, "h1")
	_, s1 := e.join(t, "s1")
	must(t, r.SetMedia("s1", MediaState{Camera: true, Screen: true}))
	e.media.take()
	must(t, r.StopVideo("h1", "s1"))
	lastOf[VideoStopped](t, s1)
	wantMedia(t, r, "s1", MediaState{Screen: true})
	wantCalls(t, e.media, "block class-1 s1/camera true")
	wantKind(t, r.StopVideo("h1", "nobody"), apperr.NotFound)
	must(t, r.SetMedia("s1", MediaState{Camera: true}))
	wantCalls(t, e.media, "block class-1 s1/camera false")
}

func TestRemove(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	r, hs := e.join(t, "h1")
	_, s1 := e.join(t, "s1")
	e.join(t, "h2")
	e.media.take()

	wantKind(t, r.Remove("h1", "h2"), apperr.Forbidden)
	must(t, r.Remove("h1", "s1"))
	if ev := lastOf[Removed](t, s1); ev.By != "h1" {
		t.Fatalf("removed %+v", ev)
	}
	if l := lastOf[ParticipantLeft](t, hs); l.Participant != "s1" || l.Reason != LeftRemoved {
		t.Fatalf("left %+v", l)
	}
	wantCalls(t, e.media, "disconnect class-1 s1")
	wantPeople(t, r, "h1", "h2")

	_, _, err := e.m.Join(context.Background(), e.req("s1"), &sink{})
	if !errors.Is(err, ErrRemoved) || apperr.KindOf(err) != apperr.Forbidden {
		t.Fatalf("rejoin with the same token: %v", err)
	}
	// A new token (issued after the host let them back) gets in.
	req := e.req("s1")
	req.TokenID = "tok-s1-again"
	_, _, err = e.m.Join(context.Background(), req, &sink{})
	must(t, err)
	st.get(func(s *memStore) {
		if s.count["class-1"] != 3 {
			t.Fatalf("current participants %d", s.count["class-1"])
		}
	})
}

func TestLockAndCapacity(t *testing.T) {
	e := newEnv(t, newMemStore())
	e.class.MaxParticipants = 3
	r, _ := e.join(t, "h1")
	e.join(t, "s1")
	must(t, r.Lock("h1", true))
	_, _, err := e.m.Join(context.Background(), e.req("s2"), &sink{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("locked room let s2 in: %v", err)
	}
	e.join(t, "h2") // hosts still get in
	must(t, r.Lock("h1", false))
	_, _, err = e.m.Join(context.Background(), e.req("s2"), &sink{})
	if !errors.Is(err, ErrFull) || apperr.KindOf(err) != apperr.Conflict {
		t.Fatalf("full room let s2 in: %v", err)
	}
	e.join(t, "h3") // hosts get in past the limit
	e.join(t, "s1") // a rejoin takes no new seat
	e.m.Leave(context.Background(), "class-1", "h3")
	e.m.Leave(context.Background(), "class-1", "h2")
	e.join(t, "s2")
	wantPeople(t, r, "h1", "s1", "s2")
}

func TestReplaceOnRejoin(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	r, hs := e.join(t, "h1")
	old := &sink{}
	_, p1, err := e.m.Join(context.Background(), e.req("s1"), old)
	must(t, err)
	must(t, r.RaiseHand("s1"))
	hs.reset()

	fresh := &sink{}
	r2, p2, err := e.m.Join(context.Background(), e.req("s1"), fresh)
	must(t, err)
	if r2 != r || p2.ID != p1.ID || p2.Conn == p1.Conn {
		t.Fatalf("rejoin: room %p/%p, participant %+v then %+v", r, r2, p1, p2)
	}
	lastOf[Replaced](t, old)
	if len(of[ParticipantJoined](hs)) != 0 {
		t.Fatal("a rejoin was announced as a new participant")
	}
	if !p2.Hand {
		t.Fatal("the raised hand was lost on rejoin")
	}
	wantPeople(t, r, "h1", "s1")
	old.reset()
	must(t, r.Chat("h1", Everyone, "hello"))
	if len(of[Chat](old)) != 0 || len(of[Chat](fresh)) != 1 {
		t.Fatal("events went to the replaced connection")
	}
	// The old connection closing later must not take the new one out.
	e.m.LeaveConn(context.Background(), "class-1", "s1", p1.Conn)
	wantPeople(t, r, "h1", "s1")
	e.m.LeaveConn(context.Background(), "class-1", "s1", p2.Conn)
	wantPeople(t, r, "h1")
	st.get(func(s *memStore) {
		if len(s.stays) != 2 {
			t.Fatalf("stays %+v: a rejoin is not a new stay", s.stays)
		}
	})
}

func TestHands(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, hs := e.join(t, "h1")
	_, s1 := e.join(t, "s1")
	e.join(t, "s2")
	e.join(t, "s3")
	must(t, r.RaiseHand("s2"))
	must(t, r.RaiseHand("s3"))
	must(t, r.RaiseHand("s1"))
	must(t, r.RaiseHand("s2")) // raising again keeps the place
	wantHands(t, r, "s2", "s3", "s1")
	if q := lastOf[Hands](t, hs).Queue; !slices.Equal(q, []ParticipantID{"s2", "s3", "s1"}) {
		t.Fatalf("host saw queue %v", q)
	}
	if len(of[Hands](s1)) != 0 || len(mustSnap(t, r, "s1").Hands) != 0 {
		t.Fatal("an attendee saw the queue")
	}
	if !find(t, r, "s1").Hand {
		t.Fatal("s1's hand not shown in the list")
	}
	wantKind(t, r.LowerHand("s1", "s2"), apperr.Forbidden)
	must(t, r.LowerHand("s3", "s3"))
	wantHands(t, r, "s2", "s1")
	must(t, r.LowerHand("h1", "s2"))
	wantHands(t, r, "s1")
	if q := mustSnap(t, r, "h1").Hands; !slices.Equal(q, []ParticipantID{"s1"}) {
		t.Fatalf("snapshot queue %v", q)
	}
	must(t, r.RaiseHand("s3"))
	e.m.Leave(context.Background(), "class-1", "s1") // leaving lowers the hand
	wantHands(t, r, "s3")
	must(t, r.LowerAllHands("h1"))
	wantHands(t, r)
	if q := lastOf[Hands](t, hs).Queue; len(q) != 0 {
		t.Fatalf("host queue %v", q)
	}
}

func TestChatRouting(t *testing.T) {
	tests := []struct {
		name    string
		from    ParticipantID
		to      string
		visit   bool // h1 visits b1 first
		readers []ParticipantID
		err     apperr.Kind
	}{
		{"everyone in main", "s1", "everyone", false, []ParticipantID{"h1", "h2", "s1", "s2"}, -1},
		{"student to hosts", "s1", "hosts", false, []ParticipantID{"h1", "h2", "s1"}, -1},
		{"host to hosts", "h1", "hosts", false, []ParticipantID{"h1", "h2"}, -1},
		{"host to one student", "h1", "s3", false, []ParticipantID{"h1", "s3"}, -1},
		{"student to a host", "s3", "h2", false, []ParticipantID{"h2", "s3"}, -1},
		{"student to student", "s1", "s2", false, nil, apperr.Forbidden},
		{"to self", "h1", "h1", false, nil, apperr.Invalid},
		{"to nobody", "h1", "ghost", false, nil, apperr.NotFound},
		{"everyone in a breakout", "s3", "everyone", false, []ParticipantID{"s3", "s4"}, -1},
		{"breakout with a visiting host", "s4", "", true, []ParticipantID{"h1", "s3", "s4"}, -1},
		{"main while a host visits", "s1", "everyone", true, []ParticipantID{"h2", "s1", "s2"}, -1},
		{"unknown sender", "ghost", "everyone", false, nil, apperr.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			e := newEnv(t, st)
			sinks := map[ParticipantID]*sink{}
			var r *Room
			for _, id := range []string{"h1", "h2", "s1", "s2", "s3", "s4"} {
				r, sinks[ParticipantID(id)] = e.join(t, id)
			}
			must(t, r.CreateBreakouts("h1", 2))
			must(t, r.Assign("h1", map[ParticipantID]GroupID{"s3": "b1", "s4": "b1"}))
			if tc.visit {
				must(t, r.Visit("h1", "b1"))
			}
			err := r.Chat(tc.from, ParseChatTarget(tc.to), "  <b>hi</b> ")
			if tc.err >= 0 {
				wantKind(t, err, tc.err)
				st.get(func(s *memStore) {
					if len(s.chats) != 0 {
						t.Fatal("a refused message was stored")
					}
				})
				return
			}
			must(t, err)
			var got []ParticipantID
			for _, id := range []ParticipantID{"h1", "h2", "s1", "s2", "s3", "s4"} {
				msgs := of[Chat](sinks[id])
				if len(msgs) > 1 {
					t.Fatalf("%s got %d messages", id, len(msgs))
				}
				if len(msgs) == 1 {
					got = append(got, id)
					if m := msgs[0]; m.Text != "<b>hi</b>" || m.From != tc.from || m.SentAt != t0 {
						t.Fatalf("message %+v", m)
					}
				}
				// What a late snapshot shows follows the same rule.
				if n := len(mustSnap(t, r, id).Chat); n != len(msgs) {
					t.Fatalf("%s: snapshot shows %d messages, live %d", id, n, len(msgs))
				}
			}
			if !slices.Equal(got, tc.readers) {
				t.Fatalf("read by %v, want %v", got, tc.readers)
			}
			st.get(func(s *memStore) {
				if len(s.chats) != 1 || s.chats[0].Text != "<b>hi</b>" || !s.chats[0].SentAt.Equal(t0) ||
					s.chats[0].FromUser != store.UserID(tc.from) {
					t.Fatalf("stored %+v", s.chats)
				}
			})
		})
	}
}

func TestChatLimits(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	r, _ := e.join(t, "h1")
	e.join(t, "s1")
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{"", false},
		{"   ", false},
		{strings.Repeat("é", 1000), true},
		{strings.Repeat("é", 1001), false},
		{"bad \xff utf-8", false},
	} {
		err := r.Chat("s1", Everyone, tc.text)
		if tc.ok {
			must(t, err)
		} else {
			wantKind(t, err, apperr.Invalid)
			if apperr.FieldOf(err) != "text" {
				t.Fatalf("error %v does not name the field", err)
			}
		}
	}
	// 5 per 5 s: one went above; four more pass, the sixth is refused.
	for i := range 4 {
		must(t, r.Chat("s1", Everyone, "m"))
		e.clk.Advance(time.Second * time.Duration(i%2))
	}
	wantKind(t, r.Chat("s1", Everyone, "too fast"), apperr.TooMany)
	must(t, r.Chat("h1", Everyone, "others are not limited by s1"))
	e.clk.Advance(5 * time.Second)
	must(t, r.Chat("s1", Everyone, "later"))
	st.get(func(s *memStore) {
		if len(s.chats) != 7 {
			t.Fatalf("%d messages stored, want 7", len(s.chats))
		}
	})

	st.get(func(s *memStore) { s.failChat = true })
	e.clk.Advance(time.Minute)
	_, s2 := e.join(t, "s2")
	if err := r.Chat("s1", Everyone, "lost?"); err == nil {
		t.Fatal("a message that could not be stored was accepted")
	}
	if len(of[Chat](s2)) != 0 {
		t.Fatal("a message that could not be stored was shown")
	}
}

func TestReactions(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, hs := e.join(t, "h1")
	e.join(t, "s1")
	_, s2 := e.join(t, "s2")
	wantKind(t, r.React("s1", "💩"), apperr.Invalid)
	for range 5 {
		must(t, r.React("s1", "👍"))
	}
	wantKind(t, r.React("s1", "👏"), apperr.TooMany)
	if n := len(of[Reaction](s2)); n != 5 {
		t.Fatalf("s2 saw %d reactions", n)
	}
	must(t, r.CreateBreakouts("h1", 1))
	must(t, r.Assign("h1", map[ParticipantID]GroupID{"s2": "b1"}))
	e.clk.Advance(5 * time.Second)
	must(t, r.React("s1", "🎉"))
	if n := len(of[Reaction](s2)); n != 5 {
		t.Fatal("a reaction crossed into a breakout room")
	}
	if ev := lastOf[Reaction](t, hs); ev.Emoji != "🎉" || ev.Participant != "s1" {
		t.Fatalf("reaction %+v", ev)
	}
}

func TestSpeakerAndQuality(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, hs := e.join(t, "h1")
	_, s1 := e.join(t, "s1")
	_, s2 := e.join(t, "s2")
	r.ActiveSpeaker("s1")
	if ev := lastOf[Speaker](t, s2); ev.Participant != "s1" {
		t.Fatalf("speaker %+v", ev)
	}
	r.Quality("s1", 7)
	if q := lastOf[Quality](t, hs); q.Level != 3 || q.Participant != "s1" {
		t.Fatalf("host saw quality %+v", q)
	}
	lastOf[Quality](t, s1)
	if len(of[Quality](s2)) != 0 {
		t.Fatal("another attendee saw s1's quality")
	}
	r.ActiveSpeaker("ghost") // an unknown participant is ignored
}
