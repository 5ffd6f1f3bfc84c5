package room

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// sqliteEnv is an env over a real SQLite file with users h1, s1, s2, s3
// (s1 and s2 enrolled) and one class.
func sqliteEnv(t testing.TB) (*env, store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "room.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, id := range []string{"h1", "s1", "s2", "s3"} {
		role := store.RoleStudent
		if id == "h1" {
			role = store.RoleMentor
		}
		u := store.User{ID: store.UserID(id), Email: id + "@example.org", Name: "Name " + id, Role: role}
		must(t, st.CreateUser(ctx, &u))
	}
	e := newEnv(t, st)
	c := e.class
	c.ID, c.InstructorID, c.AccessLevel, c.Category, c.Level = "", "h1", store.RoleStudent, "general", store.LevelBeginner
	must(t, st.CreateClass(ctx, &c))
	e.class = c
	for _, id := range []store.UserID{"s1", "s2"} {
		must(t, st.Enroll(ctx, &store.Enrollment{UserID: id, ClassID: c.ID}))
	}
	return e, st
}

func TestOverSQLite(t *testing.T) {
	e, st := sqliteEnv(t)
	ctx := context.Background()
	class := func() store.LiveClass {
		c, err := st.ClassByID(ctx, e.class.ID)
		must(t, err)
		return c
	}
	r, _ := e.join(t, "h1")
	e.join(t, "s1")
	e.join(t, "s3") // not enrolled: attends, but has no enrollment to update
	if c := class(); c.Status != store.StatusLive || c.CurrentParticipants != 3 {
		t.Fatalf("class after joins: %s, %d inside", c.Status, c.CurrentParticipants)
	}
	if e.changes() < 3 {
		t.Fatalf("%d class changes announced", e.changes())
	}

	must(t, r.Chat("s1", Everyone, "<script>alert(1)</script>"))
	e.clk.Advance(time.Second)
	must(t, r.Chat("s1", ChatTarget{Hosts: true}, "a private question"))
	e.clk.Advance(time.Second)
	must(t, r.Chat("h1", ChatTarget{Participant: "s1"}, "a private answer"))
	msgs, err := st.ListChat(ctx, store.ChatQuery{ClassID: e.class.ID})
	must(t, err)
	if len(msgs.Items) != 3 || msgs.Items[0].Text != "<script>alert(1)</script>" || !msgs.Items[1].ToHosts ||
		msgs.Items[2].ToUser != "s1" || !msgs.Items[0].SentAt.Equal(t0) {
		t.Fatalf("stored chat %+v", msgs.Items)
	}

	id, err := r.CreatePoll("h1", "Ready?", []string{"yes", "no"}, false)
	must(t, err)
	must(t, r.Vote("s1", id, []int{0}))
	must(t, r.Vote("s3", id, []int{1}))
	must(t, r.ClosePoll("h1", id))
	polls, err := st.PollsOf(ctx, e.class.ID)
	must(t, err)
	votes, err := st.VotesOf(ctx, id)
	must(t, err)
	if len(polls) != 1 || polls[0].ClosedAt == nil || polls[0].CreatedBy != "h1" || len(votes) != 2 {
		t.Fatalf("stored polls %+v votes %+v", polls, votes)
	}

	e.clk.Advance(20 * time.Minute)
	e.m.Leave(ctx, e.class.ID, "s1")
	en, err := st.EnrollmentByUserClass(ctx, "s1", e.class.ID)
	must(t, err)
	if en.Attended == nil || !*en.Attended || en.AttendanceDuration == nil || *en.AttendanceDuration != 20 {
		t.Fatalf("s1's enrollment after leaving: %+v", en)
	}
	if c := class(); c.CurrentParticipants != 2 {
		t.Fatalf("%d inside after a leave", c.CurrentParticipants)
	}
	e.join(t, "s2")
	e.clk.Advance(5 * time.Minute)
	must(t, r.End("h1"))
	c := class()
	if c.Status != store.StatusEnded || c.CurrentParticipants != 0 {
		t.Fatalf("class after the end: %s, %d inside", c.Status, c.CurrentParticipants)
	}
	en, err = st.EnrollmentByUserClass(ctx, "s2", e.class.ID)
	must(t, err)
	if en.Attended == nil || !*en.Attended || *en.AttendanceDuration != 5 {
		t.Fatalf("s2's enrollment after the end: %+v", en)
	}
	for _, u := range []store.UserID{"h1", "s1", "s2", "s3"} {
		stays, err := st.AttendanceOf(ctx, e.class.ID, u)
		must(t, err)
		if len(stays) != 1 || stays[0].LeftAt == nil {
			t.Fatalf("%s's stays %+v", u, stays)
		}
	}
}

// BenchmarkChatFanout sends one message to everyone in a class of 50.
func BenchmarkChatFanout(b *testing.B) {
	st := newMemStore()
	st.dropChat = true
	e := newEnv(b, st, func(o *Options) { o.ChatRate = Rate{N: 1 << 30, Per: time.Second} })
	r, _ := e.join(b, "h1")
	for i := range 49 {
		_, _, err := e.m.Join(context.Background(), e.req("s"+string(rune('A'+i/26))+string(rune('a'+i%26))), SinkFunc(func(Event) {}))
		must(b, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := r.Chat("h1", Everyone, "hello, class"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentOverSQLite joins and leaves from many goroutines over a
// real database: the count in the database ends true and every stay closed.
func TestConcurrentOverSQLite(t *testing.T) {
	e, st := sqliteEnv(t)
	ctx := context.Background()
	r, _ := e.join(t, "h1")
	var wg sync.WaitGroup
	for _, id := range []string{"s1", "s2", "s3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				_, p, err := e.m.Join(ctx, e.req(id), &sink{})
				if err != nil {
					t.Errorf("join %s: %v", id, err)
					return
				}
				_ = r.Chat(p.ID, Everyone, "hi")
				e.m.LeaveConn(ctx, e.class.ID, p.ID, p.Conn)
			}
		}()
	}
	wg.Wait()
	c, err := st.ClassByID(ctx, e.class.ID)
	must(t, err)
	if c.CurrentParticipants != 1 {
		t.Fatalf("%d inside in the database, want 1", c.CurrentParticipants)
	}
	for _, u := range []store.UserID{"s1", "s2", "s3"} {
		stays, err := st.AttendanceOf(ctx, e.class.ID, u)
		must(t, err)
		for _, s := range stays {
			if s.LeftAt == nil {
				t.Fatalf("%s has an open stay %+v", u, s)
			}
		}
		if len(stays) != 4 {
			t.Fatalf("%s has %d stays, want 4", u, len(stays))
		}
	}
}
