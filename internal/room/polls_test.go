package room

import (
	"strings"
	"testing"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

func TestPollValidation(t *testing.T) {
	e := newEnv(t, newMemStore())
	r, _ := roomWith(t, e, 1, 1)
	opts := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = strings.Repeat("o", i+1)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		question string
		options  []string
		field    string
	}{
		{"no question", "  ", opts(2), "question"},
		{"long question", strings.Repeat("q", 501), opts(2), "question"},
		{"one option", "Q?", opts(1), "options"},
		{"eleven options", "Q?", opts(11), "options"},
		{"empty option", "Q?", []string{"a", " "}, "options[1]"},
		{"long option", "Q?", []string{"a", strings.Repeat("x", 201)}, "options[1]"},
		{"two", "Q?", opts(2), ""},
		{"ten", "Q?", opts(10), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.CreatePoll("h1", tc.question, tc.options, false)
			if tc.field == "" {
				must(t, err)
				return
			}
			wantKind(t, err, apperr.Invalid)
			if f := apperr.FieldOf(err); f != tc.field {
				t.Fatalf("error %v names %q, want %q", err, f, tc.field)
			}
		})
	}
}

func TestPolls(t *testing.T) {
	st := newMemStore()
	e := newEnv(t, st)
	r, sinks := roomWith(t, e, 1, 3)
	single, err := r.CreatePoll("h1", "Ready?", []string{"yes", "no"}, false)
	must(t, err)
	multi, err := r.CreatePoll("h1", "Which languages?", []string{"Go", "Rust", "C"}, true)
	must(t, err)
	if p := lastOf[Poll](t, sinks["s1"]).Poll; p.ID != multi || !p.Multiple || len(p.Options) != 3 || p.Closed {
		t.Fatalf("s1 sees poll %+v", p)
	}

	for _, tc := range []struct {
		name    string
		voter   ParticipantID
		poll    PollID
		choices []int
		kind    apperr.Kind
	}{
		{"host", "h1", single, []int{0}, apperr.Forbidden},
		{"no choice", "s1", single, nil, apperr.Invalid},
		{"two on single", "s1", single, []int{0, 1}, apperr.Invalid},
		{"out of range", "s1", single, []int{2}, apperr.Invalid},
		{"negative", "s1", single, []int{-1}, apperr.Invalid},
		{"twice the same", "s1", multi, []int{1, 1}, apperr.Invalid},
		{"no poll", "s1", "nope", []int{0}, apperr.NotFound},
	} {
		wantKind(t, r.Vote(tc.voter, tc.poll, tc.choices), tc.kind)
	}
	for _, s := range sinks {
		s.reset()
	}
	must(t, r.Vote("s1", single, []int{0}))
	wantKind(t, r.Vote("s1", single, []int{1}), apperr.Conflict) // one vote each
	must(t, r.Vote("s2", single, []int{0}))
	must(t, r.Vote("s1", multi, []int{0, 2}))
	must(t, r.Vote("s2", multi, []int{0}))

	// Hosts see the counts live; students see only their own vote.
	res := lastOf[PollResults](t, sinks["h1"])
	if res.Poll != multi || res.Voters != 2 || res.Counts[0] != 2 || res.Counts[1] != 0 || res.Counts[2] != 1 {
		t.Fatalf("host sees %+v", res)
	}
	for _, id := range []ParticipantID{"s1", "s2", "s3"} {
		if n := len(of[PollResults](sinks[id])); n != 0 {
			t.Fatalf("%s saw %d results of an open poll", id, n)
		}
		if n := len(mustSnap(t, r, id).Results); n != 0 {
			t.Fatalf("%s's snapshot shows results of open polls", id)
		}
	}
	if v := lastOf[Poll](t, sinks["s1"]).Poll; v.ID != multi || len(v.YourVote) != 2 {
		t.Fatalf("s1 sees own vote %+v", v)
	}
	if n := len(mustSnap(t, r, "h1").Results); n != 2 {
		t.Fatalf("host snapshot shows %d results", n)
	}

	wantKind(t, r.ClosePoll("h1", "nope"), apperr.NotFound)
	must(t, r.ClosePoll("h1", single))
	wantKind(t, r.ClosePoll("h1", single), apperr.Conflict)
	wantKind(t, r.Vote("s3", single, []int{1}), apperr.Conflict)
	for _, id := range []ParticipantID{"h1", "s1", "s2", "s3"} {
		res := lastOf[PollResults](t, sinks[id])
		if res.Poll != single || res.Voters != 2 || res.Counts[0] != 2 || res.Counts[1] != 0 {
			t.Fatalf("%s sees closing results %+v", id, res)
		}
		if p := lastOf[Poll](t, sinks[id]).Poll; !p.Closed {
			t.Fatalf("%s not told the poll closed", id)
		}
	}
	if n := len(mustSnap(t, r, "s3").Results); n != 1 {
		t.Fatalf("s3's snapshot shows %d results, want the closed poll's", n)
	}

	st.get(func(s *memStore) {
		if len(s.polls) != 2 || s.polls[single].ClosedAt == nil || s.polls[multi].ClosedAt != nil {
			t.Fatalf("stored polls %+v", s.polls)
		}
		if v := s.votes[multi][store.UserID("s1")]; len(v.Choices) != 2 || len(s.votes[single]) != 2 {
			t.Fatalf("stored votes %+v", s.votes)
		}
	})
}
