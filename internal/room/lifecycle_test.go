package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

func TestLifecycle(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	ctx := context.Background()
	status := func() (s store.Status, n int) {
		st.get(func(m *memStore) { s, n = m.status["class-1"], m.count["class-1"] })
		return
	}

	r, _ := e.join(t, "s1")
	if s, n := status(); s != "" || n != 1 || r.Status() != store.StatusScheduled {
		t.Fatalf("after a student joined: status %q, count %d", s, n)
	}
	if e.changes() != 1 {
		t.Fatalf("%d class changes announced, want 1 (the count)", e.changes())
	}
	e.join(t, "h1")
	if s, n := status(); s != store.StatusLive || n != 2 || r.Status() != store.StatusLive {
		t.Fatalf("after the host joined: status %q, count %d", s, n)
	}
	e.join(t, "h2")
	e.m.Leave(ctx, "class-1", "h1")
	e.m.Leave(ctx, "class-1", "h2")
	e.m.Leave(ctx, "class-1", "s1")
	e.m.Leave(ctx, "class-1", "s1") // twice is harmless
	if s, n := status(); s != store.StatusLive || n != 0 {
		t.Fatalf("after everyone left: status %q, count %d", s, n)
	}

	// Empty, but within endTime + grace: it stays live for a comeback.
	e.clk.Advance(time.Hour + 9*time.Minute)
	e.m.Tick(e.clk.Now())
	if s, _ := status(); s != store.StatusLive {
		t.Fatalf("ended too early: %s", s)
	}
	e.join(t, "h1")
	e.m.Leave(ctx, "class-1", "h1")
	e.m.Tick(e.clk.Advance(time.Minute))
	if s, n := status(); s != store.StatusEnded || n != 0 || r.Status() != store.StatusEnded {
		t.Fatalf("after the grace: status %q, count %d", s, n)
	}
	_, _, err := e.m.Join(ctx, e.req("s1"), &sink{})
	if !errors.Is(err, ErrEnded) {
		t.Fatalf("join after the end: %v", err)
	}
	if e.m.Rooms() != 1 {
		t.Fatal("the ended room was forgotten at once")
	}
	e.m.Tick(e.clk.Advance(10 * time.Minute))
	if e.m.Rooms() != 0 {
		t.Fatal("the ended room was kept")
	}
	ended := e.req("s1")
	ended.Class.Status = store.StatusEnded
	if _, _, err := e.m.Join(ctx, ended, &sink{}); !errors.Is(err, ErrEnded) {
		t.Fatalf("join of an ended class: %v", err)
	}
}

func TestEndByHost(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	r, sinks := roomWith(t, e, 1, 2)
	must(t, r.CreateBreakouts("h1", 1))
	e.media.take()
	e.clk.Advance(30 * time.Minute)
	must(t, r.End("h1"))
	for id, s := range sinks {
		lastOf[Ended](t, s)
		if _, err := r.Snapshot(id); !errors.Is(err, ErrEnded) {
			t.Fatalf("%s snapshot after end: %v", id, err)
		}
	}
	wantCalls(t, e.media, "disconnect class-1 h1", "disconnect class-1 s1", "disconnect class-1 s2")
	st.get(func(s *memStore) {
		if s.status["class-1"] != store.StatusEnded || s.count["class-1"] != 0 {
			t.Fatalf("stored status %s count %d", s.status["class-1"], s.count["class-1"])
		}
		for _, a := range s.stays {
			if a.LeftAt == nil || !a.LeftAt.Equal(t0.Add(30*time.Minute)) {
				t.Fatalf("stay not closed at the end: %+v", a)
			}
		}
		if s.attended["s1"] != [2]int{1, 30} {
			t.Fatalf("s1 attendance %v", s.attended["s1"])
		}
	})
	wantKind(t, r.Chat("s1", Everyone, "still here?"), apperr.Conflict)
	wantKind(t, r.RaiseHand("s1"), apperr.Conflict)
}

func TestUnhostedRoomIsForgotten(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	e.join(t, "s1")
	e.m.Leave(context.Background(), "class-1", "s1")
	e.m.Tick(e.clk.Advance(2 * time.Hour))
	if e.m.Rooms() != 0 {
		t.Fatal("an empty room nobody hosted was kept")
	}
	st.get(func(s *memStore) {
		if _, ok := s.status["class-1"]; ok {
			t.Fatalf("status of a class nobody hosted changed to %s", s.status["class-1"])
		}
	})
}

func TestJoinValidation(t *testing.T) {
	e := newEnv(t, newMemStore())
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		edit  func(*JoinRequest)
		field string
	}{
		{"no class", func(r *JoinRequest) { r.Class.ID = "" }, "class"},
		{"no user", func(r *JoinRequest) { r.UserID = "" }, "user"},
		{"bad role", func(r *JoinRequest) { r.Role = "OWNER" }, "role"},
		{"broadcast class", func(r *JoinRequest) { r.Class.Service = store.ServiceIVS }, ""},
	} {
		req := e.req("s1")
		tc.edit(&req)
		_, _, err := e.m.Join(ctx, req, &sink{})
		wantKind(t, err, apperr.Invalid)
		if apperr.FieldOf(err) != tc.field {
			t.Fatalf("%s: %v names %q", tc.name, err, apperr.FieldOf(err))
		}
	}
	if _, _, err := e.m.Join(ctx, e.req("s1"), nil); apperr.FieldOf(err) != "sink" {
		t.Fatalf("nil sink: %v", err)
	}
	if e.m.Rooms() != 0 {
		t.Fatal("a refused join made a room")
	}
}

func TestAttended(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	stay := func(from, to int) store.Attendance {
		a := store.Attendance{JoinedAt: at(from)}
		if to >= 0 {
			l := at(to)
			a.LeftAt = &l
		}
		return a
	}
	for _, tc := range []struct {
		name  string
		stays []store.Attendance
		now   int
		want  int
	}{
		{"none", nil, 60, 0},
		{"one", []store.Attendance{stay(0, 45)}, 60, 45},
		{"apart", []store.Attendance{stay(0, 10), stay(20, 35)}, 60, 25},
		{"overlapping", []store.Attendance{stay(0, 30), stay(20, 40)}, 60, 40},
		{"contained", []store.Attendance{stay(0, 50), stay(10, 20)}, 60, 50},
		{"touching", []store.Attendance{stay(0, 10), stay(10, 20)}, 60, 20},
		{"unordered", []store.Attendance{stay(40, 50), stay(0, 10), stay(5, 15)}, 60, 25},
		{"open", []store.Attendance{stay(0, 10), stay(30, -1)}, 60, 40},
		{"open overlapping", []store.Attendance{stay(30, -1), stay(0, 45)}, 60, 60},
		{"empty stay", []store.Attendance{stay(10, 10)}, 60, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Attended(tc.stays, at(tc.now)); got != time.Duration(tc.want)*time.Minute {
				t.Fatalf("Attended = %v, want %d minutes", got, tc.want)
			}
		})
	}
	for d, want := range map[time.Duration]int{0: 0, 29 * time.Second: 0, 30 * time.Second: 1, 90 * time.Second: 2, time.Hour: 60} {
		if got := Minutes(d); got != want {
			t.Errorf("Minutes(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestAttendanceUpdates(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	ctx := context.Background()
	e.join(t, "h1")
	e.join(t, "s1")
	e.clk.Advance(10 * time.Minute)
	e.m.Leave(ctx, "class-1", "s1")
	want := func(u store.UserID, attended, minutes int) {
		t.Helper()
		st.get(func(s *memStore) {
			if got := s.attended[u]; got != [2]int{attended, minutes} {
				t.Fatalf("%s attendance %v, want %d minutes", u, got, minutes)
			}
		})
	}
	want("s1", 1, 10)
	e.clk.Advance(10 * time.Minute)
	e.join(t, "s1")
	// The same user was also inside from another node for a while: the
	// overlap counts once.
	other := t0.Add(22 * time.Minute)
	st.get(func(s *memStore) {
		s.stays = append(s.stays, store.Attendance{ID: "other-node", ClassID: "class-1", UserID: "s1",
			JoinedAt: t0.Add(15 * time.Minute), LeftAt: &other})
	})
	e.clk.Advance(15 * time.Minute)
	e.m.Leave(ctx, "class-1", "s1")
	want("s1", 1, 10+5+15) // 0–10, then 15–35 (15–22 elsewhere, 20–35 here)
	st.get(func(s *memStore) {
		if len(s.stays) != 4 { // h1, s1 twice, other node
			t.Fatalf("stays %+v", s.stays)
		}
	})
}

// TestConcurrent joins, acts and leaves from many goroutines at once, as
// connections do; run with -race.
func TestConcurrent(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	r, _ := e.join(t, "h1")
	must(t, r.CreateBreakouts("h1", 3))
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("s%d", i)
			for round := range 3 {
				room, p, err := e.m.Join(context.Background(), e.req(id), &sink{})
				if err != nil {
					t.Errorf("join %s: %v", id, err)
					return
				}
				_ = room.RaiseHand(p.ID)
				_ = room.SetMedia(p.ID, MediaState{Mic: round%2 == 0, Camera: true})
				if err := room.Chat(p.ID, Everyone, "hi"); err != nil && !apperr.Is(err, apperr.TooMany) {
					t.Errorf("chat %s: %v", id, err)
				}
				_ = room.React(p.ID, "👍")
				if _, err := room.Snapshot(p.ID); err != nil {
					t.Errorf("snapshot %s: %v", id, err)
				}
				e.m.LeaveConn(context.Background(), "class-1", p.ID, p.Conn)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			_ = r.MuteAll("h1")
			_ = r.AutoAssign("h1", Random)
			_ = r.LowerAllHands("h1")
			r.ActiveSpeaker("h1")
			_ = r.Chat("h1", Everyone, "hosting")
		}
	}()
	wg.Wait()
	wantPeople(t, r, "h1")
	wantHands(t, r)
	st.get(func(s *memStore) {
		if s.count["class-1"] != 1 {
			t.Fatalf("current participants %d, want 1", s.count["class-1"])
		}
		open := 0
		for _, a := range s.stays {
			if a.LeftAt == nil {
				open++
			}
		}
		if len(s.stays) != 1+3*n || open != 1 {
			t.Fatalf("%d stays, %d open", len(s.stays), open)
		}
	})
}

// TestEventJSON checks that every event marshals with its protocol name.
func TestEventJSON(t *testing.T) {
	events := []Event{
		ParticipantJoined{Type: TypeParticipantJoined}, ParticipantLeft{Type: TypeParticipantLeft},
		ParticipantUpdated{Type: TypeParticipantUpdated}, Chat{Type: TypeChat}, Hands{Type: TypeHands},
		Reaction{Type: TypeReaction}, Speaker{Type: TypeSpeaker}, Quality{Type: TypeQuality},
		Breakouts{Type: TypeBreakouts}, BreakoutBroadcast{Type: TypeBreakoutBroadcast}, Poll{Type: TypePoll},
		PollResults{Type: TypePollResults}, Muted{Type: TypeMuted}, VideoStopped{Type: TypeVideoStopped},
		Removed{Type: TypeRemoved}, Locked{Type: TypeLocked}, Ended{Type: TypeEnded}, Replaced{Type: TypeReplaced},
	}
	for _, ev := range events {
		b, err := json.Marshal(ev)
		must(t, err)
		var m map[string]any
		must(t, json.Unmarshal(b, &m))
		if m["type"] != ev.EventType() {
			t.Errorf("%T marshals type %v, want %q", ev, m["type"], ev.EventType())
		}
	}
	// Every event the room sends carries its Type: collect from a busy room.
	e := newEnv(t, newMemStore())
	r, sinks := roomWith(t, e, 1, 2)
	must(t, r.RaiseHand("s1"))
	must(t, r.Chat("s1", Everyone, "x"))
	must(t, r.Mute("h1", "s1"))
	must(t, r.StopVideo("h1", "s1"))
	must(t, r.Lock("h1", true))
	must(t, r.CreateBreakouts("h1", 1))
	must(t, r.BroadcastToBreakouts("h1", "x"))
	must(t, r.React("s1", "🎉"))
	r.ActiveSpeaker("s1")
	r.Quality("s1", 2)
	id, err := r.CreatePoll("h1", "Q", []string{"a", "b"}, false)
	must(t, err)
	must(t, r.Vote("s1", id, []int{1}))
	must(t, r.ClosePoll("h1", id))
	e.join(t, "s1") // replaced
	must(t, r.Remove("h1", "s2"))
	must(t, r.End("h1"))
	seen := map[string]bool{}
	for _, s := range sinks {
		for _, ev := range s.all() {
			if reflect.ValueOf(ev).FieldByName("Type").String() != ev.EventType() {
				t.Fatalf("%T sent with Type %q", ev, reflect.ValueOf(ev).FieldByName("Type").String())
			}
			seen[ev.EventType()] = true
		}
	}
	for _, ev := range events {
		if !seen[ev.EventType()] {
			t.Errorf("the busy room sent no %s", ev.EventType())
		}
	}
}

func TestJoinWithState(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, _ := roomWith(t, e, 1, 1)
	must(t, r.Chat("s1", Everyone, "before"))
	must(t, r.RaiseHand("s1"))
	s := &sink{}
	r2, st, err := e.m.JoinWithState(context.Background(), e.req("h2"), s)
	must(t, err)
	if r2 != r || st.You.ID != "h2" || len(st.Participants) != 3 || len(st.Chat) != 1 ||
		len(st.Hands) != 1 || st.Status != store.StatusLive || len(st.Reactions) != len(Reactions()) {
		t.Fatalf("state %+v", st)
	}
	if evs := s.all(); len(evs) != 0 {
		t.Fatalf("events before any change: %v", evs)
	}
	must(t, r.Chat("s1", Everyone, "after"))
	if msgs := of[Chat](s); len(msgs) != 1 || msgs[0].Text != "after" {
		t.Fatalf("events after the state: %+v", msgs)
	}
	if _, _, err := e.m.JoinWithState(context.Background(), JoinRequest{}, s); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("bad request: %v", err)
	}
}
