package room

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
)

// roomWith joins hosts h1.. and students s1.. and returns their sinks.
func roomWith(t *testing.T, e *env, hosts, students int) (*Room, map[ParticipantID]*sink) {
	t.Helper()
	sinks := map[ParticipantID]*sink{}
	var r *Room
	for i := 1; i <= hosts; i++ {
		id := fmt.Sprintf("h%d", i)
		r, sinks[ParticipantID(id)] = e.join(t, id)
	}
	for i := 1; i <= students; i++ {
		id := fmt.Sprintf("s%d", i)
		r, sinks[ParticipantID(id)] = e.join(t, id)
	}
	return r, sinks
}

func groupsOf(r *Room) map[ParticipantID]GroupID {
	out := map[ParticipantID]GroupID{}
	for _, p := range r.Participants() {
		out[p.ID] = p.Group
	}
	return out
}

func TestAutoAssign(t *testing.T) {
	for _, tc := range []struct {
		mode            string
		students, rooms int
	}{
		{RoundRobin, 7, 3}, {RoundRobin, 2, 5}, {Random, 7, 3}, {Random, 10, 4}, {Random, 1, 1},
	} {
		t.Run(fmt.Sprintf("%s/%d-in-%d", tc.mode, tc.students, tc.rooms), func(t *testing.T) {
			seeded := rand.New(rand.NewPCG(1, 2))
			e := newEnv(t, newMemStore(), func(o *Options) { o.Shuffle = seeded.Shuffle })
			r, _ := roomWith(t, e, 2, tc.students)
			must(t, r.CreateBreakouts("h1", tc.rooms))
			e.media.take()
			must(t, r.AutoAssign("h1", tc.mode))
			g := groupsOf(r)
			if g["h1"] != Main || g["h2"] != Main {
				t.Fatalf("hosts were moved: %v", g)
			}
			// Everyone exactly once, sizes differ by at most one.
			size := map[GroupID]int{}
			for i := 1; i <= tc.students; i++ {
				p := ParticipantID(fmt.Sprintf("s%d", i))
				if !strings.HasPrefix(string(g[p]), "b") {
					t.Fatalf("%s not assigned: %v", p, g)
				}
				size[g[p]]++
			}
			lo, hi := tc.students, 0
			for i := 1; i <= min(tc.rooms, tc.students); i++ {
				n := size[breakoutID(i)]
				lo, hi = min(lo, n), max(hi, n)
			}
			if hi-lo > 1 {
				t.Fatalf("uneven groups %v", size)
			}
			if tc.mode == RoundRobin {
				for i := 1; i <= tc.students; i++ {
					if want := breakoutID((i-1)%tc.rooms + 1); g[ParticipantID(fmt.Sprintf("s%d", i))] != want {
						t.Fatalf("round robin put s%d in %s, want %s", i, g[ParticipantID(fmt.Sprintf("s%d", i))], want)
					}
				}
			}
			calls := e.media.take()
			if len(calls) != tc.students {
				t.Fatalf("%d SetGroup calls for %d students: %q", len(calls), tc.students, calls)
			}
			for i := 1; i <= tc.students; i++ {
				p := ParticipantID(fmt.Sprintf("s%d", i))
				if !slices.Contains(calls, fmt.Sprintf("group class-1 %s=%q", p, g[p])) {
					t.Fatalf("no SetGroup for %s in %q", p, calls)
				}
			}
		})
	}
	e := newEnv(t, newMemStore())
	r, _ := roomWith(t, e, 1, 1)
	wantKind(t, r.AutoAssign("h1", RoundRobin), apperr.Conflict) // none open
	must(t, r.CreateBreakouts("h1", 2))
	wantKind(t, r.AutoAssign("h1", "alphabetical"), apperr.Invalid)
}

func TestBreakouts(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, sinks := roomWith(t, e, 1, 4)
	wantKind(t, r.CreateBreakouts("h1", 0), apperr.Invalid)
	wantKind(t, r.CreateBreakouts("h1", MaxBreakouts+1), apperr.Invalid)
	wantKind(t, r.Assign("h1", map[ParticipantID]GroupID{"s1": "b1"}), apperr.Conflict)
	must(t, r.CreateBreakouts("h1", 2))
	wantKind(t, r.CreateBreakouts("h1", 2), apperr.Conflict)
	if b := lastOf[Breakouts](t, sinks["s1"]); len(b.Groups) != 2 || b.Groups[1].ID != "b2" || b.You != Main {
		t.Fatalf("breakouts event %+v", b)
	}

	// By hand; a bad entry moves nobody.
	wantKind(t, r.Assign("h1", map[ParticipantID]GroupID{"s1": "b1", "s2": "b9"}), apperr.Invalid)
	wantKind(t, r.Assign("h1", map[ParticipantID]GroupID{"s1": "b1", "ghost": "b1"}), apperr.NotFound)
	if g := groupsOf(r); g["s1"] != Main {
		t.Fatalf("a refused assignment moved s1: %v", g)
	}
	e.media.take()
	must(t, r.Assign("h1", map[ParticipantID]GroupID{"s1": "b1", "s2": "b1", "s3": "b2"}))
	wantCalls(t, e.media, `group class-1 s1="b1"`, `group class-1 s2="b1"`, `group class-1 s3="b2"`)
	if b := lastOf[Breakouts](t, sinks["s3"]); b.You != "b2" ||
		!slices.Equal(b.Groups[0].Participants, []ParticipantID{"s1", "s2"}) {
		t.Fatalf("s3 sees %+v", b)
	}

	// Chat stays in its room.
	for _, s := range sinks {
		s.reset()
	}
	must(t, r.Chat("s1", Everyone, "in b1"))
	must(t, r.Chat("s4", Everyone, "in main"))
	readers := func(text string) []ParticipantID {
		var out []ParticipantID
		for _, id := range []ParticipantID{"h1", "s1", "s2", "s3", "s4"} {
			for _, m := range of[Chat](sinks[id]) {
				if m.Text == text {
					out = append(out, id)
				}
			}
		}
		return out
	}
	if got := readers("in b1"); !slices.Equal(got, []ParticipantID{"s1", "s2"}) {
		t.Fatalf("b1 message read by %v", got)
	}
	if got := readers("in main"); !slices.Equal(got, []ParticipantID{"h1", "s4"}) {
		t.Fatalf("main message read by %v", got)
	}
	// A student in a breakout can still ask the hosts.
	must(t, r.Chat("s3", ChatTarget{Hosts: true}, "help"))
	if got := readers("help"); !slices.Equal(got, []ParticipantID{"h1", "s3"}) {
		t.Fatalf("help read by %v", got)
	}

	// The host visits b2 and hears it; then comes back.
	wantKind(t, r.Visit("h1", "b7"), apperr.Invalid)
	must(t, r.Visit("h1", "b2"))
	wantCalls(t, e.media, `group class-1 h1="b2"`)
	must(t, r.Chat("s3", Everyone, "hello visitor"))
	if got := readers("hello visitor"); !slices.Equal(got, []ParticipantID{"h1", "s3"}) {
		t.Fatalf("visited room's message read by %v", got)
	}
	must(t, r.Visit("h1", Main))
	wantCalls(t, e.media, `group class-1 h1=""`)

	// Broadcast reaches every room.
	wantKind(t, r.BroadcastToBreakouts("h1", ""), apperr.Invalid)
	must(t, r.BroadcastToBreakouts("h1", "two minutes left"))
	for id, s := range sinks {
		if b := lastOf[BreakoutBroadcast](t, s); b.Text != "two minutes left" || b.From != "h1" {
			t.Fatalf("%s got broadcast %+v", id, b)
		}
	}

	// Reactions and the active speaker stay in their room too.
	for _, s := range sinks {
		s.reset()
	}
	must(t, r.React("s1", "👍"))
	r.ActiveSpeaker("s1")
	for _, id := range []ParticipantID{"h1", "s3", "s4"} {
		if len(of[Reaction](sinks[id]))+len(of[Speaker](sinks[id])) != 0 {
			t.Fatalf("%s saw b1's reaction or speaker", id)
		}
	}
	if len(of[Reaction](sinks["s2"])) != 1 || len(of[Speaker](sinks["s2"])) != 1 {
		t.Fatal("s2 missed its room's reaction or speaker")
	}

	// Someone joining now lands in the main room.
	_, s5 := e.join(t, "s5")
	if b := mustSnap(t, r, "s5").Breakouts; b.You != Main || len(b.Groups) != 2 {
		t.Fatalf("late joiner sees %+v", b)
	}
	_ = s5

	// Closing brings everyone back.
	e.media.take()
	must(t, r.CloseBreakouts("h1"))
	for id, g := range groupsOf(r) {
		if g != Main {
			t.Fatalf("%s still in %s", id, g)
		}
	}
	wantCalls(t, e.media, `group class-1 s1=""`, `group class-1 s2=""`, `group class-1 s3=""`)
	if b := lastOf[Breakouts](t, sinks["s1"]); len(b.Groups) != 0 || b.You != Main {
		t.Fatalf("after close s1 sees %+v", b)
	}
	wantKind(t, r.CloseBreakouts("h1"), apperr.Conflict)
	// Everyone is in one room again.
	must(t, r.Chat("s1", Everyone, "back"))
	if got := readers("back"); len(got) != 5 {
		t.Fatalf("main message after close read by %v", got)
	}
}

func TestBreakoutTimer(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, sinks := roomWith(t, e, 1, 3)
	must(t, r.CreateBreakouts("h1", 2))
	must(t, r.AutoAssign("h1", RoundRobin))
	wantKind(t, r.SetBreakoutTimer("h1", -time.Second), apperr.Invalid)
	must(t, r.SetBreakoutTimer("h1", 10*time.Minute))
	want := t0.Add(10 * time.Minute)
	if b := lastOf[Breakouts](t, sinks["s2"]); b.TimerEndsAt == nil || !b.TimerEndsAt.Equal(want) {
		t.Fatalf("s2 sees timer %+v", b.TimerEndsAt)
	}
	if b := mustSnap(t, r, "s3").Breakouts; b.TimerEndsAt == nil || !b.TimerEndsAt.Equal(want) {
		t.Fatalf("snapshot timer %+v", b.TimerEndsAt)
	}
	e.m.Tick(e.clk.Advance(10*time.Minute - time.Second))
	if g := groupsOf(r); g["s1"] != "b1" {
		t.Fatalf("closed early: %v", g)
	}
	e.media.take()
	e.m.Tick(e.clk.Advance(time.Second))
	for id, g := range groupsOf(r) {
		if g != Main {
			t.Fatalf("%s still in %s after the timer", id, g)
		}
	}
	if b := lastOf[Breakouts](t, sinks["s1"]); len(b.Groups) != 0 || b.TimerEndsAt != nil {
		t.Fatalf("after the timer s1 sees %+v", b)
	}
	wantCalls(t, e.media, `group class-1 s1=""`, `group class-1 s2=""`, `group class-1 s3=""`)

	// Clearing the timer keeps the rooms open.
	must(t, r.CreateBreakouts("h1", 2))
	must(t, r.SetBreakoutTimer("h1", time.Minute))
	must(t, r.SetBreakoutTimer("h1", 0))
	e.m.Tick(e.clk.Advance(time.Hour))
	if len(mustSnap(t, r, "h1").Breakouts.Groups) != 2 {
		t.Fatal("a cleared timer closed the rooms")
	}
}
