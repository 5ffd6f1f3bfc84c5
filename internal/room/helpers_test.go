package room

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// clock is a test clock moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// sink records the events delivered to one participant.
type sink struct {
	mu     sync.Mutex
	events []Event
}

func (s *sink) Deliver(e Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *sink) all() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func (s *sink) reset() {
	s.mu.Lock()
	s.events = nil
	s.mu.Unlock()
}

// of returns the events of type T delivered so far.
func of[T Event](s *sink) []T {
	var out []T
	for _, e := range s.all() {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// lastOf returns the last event of type T, failing the test when none came.
func lastOf[T Event](t *testing.T, s *sink) T {
	t.Helper()
	evs := of[T](s)
	if len(evs) == 0 {
		var zero T
		t.Fatalf("no %s event among %v", zero.EventType(), s.all())
	}
	return evs[len(evs)-1]
}

// fakeMedia records what the room asks of the media plane. The real sfu
// has its own tests; here only the room's side of the seam is checked.
type fakeMedia struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeMedia) add(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeMedia) SetGroup(c store.ClassID, p ParticipantID, g GroupID) {
	f.add(fmt.Sprintf("group %s %s=%q", c, p, g))
}

func (f *fakeMedia) Block(c store.ClassID, p ParticipantID, src string, b bool) {
	f.add(fmt.Sprintf("block %s %s/%s %v", c, p, src, b))
}

func (f *fakeMedia) Disconnect(c store.ClassID, p ParticipantID) {
	f.add(fmt.Sprintf("disconnect %s %s", c, p))
}

func (f *fakeMedia) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

// memStore is an in-memory room.Store for the state-machine tests; the
// tests in sqlite_test.go run the same room over a real SQLite store.
type memStore struct {
	mu       sync.Mutex
	stays    []store.Attendance
	chats    []store.ChatMessage
	polls    map[store.PollID]*store.Poll
	votes    map[store.PollID]map[store.UserID]store.PollVote
	status   map[store.ClassID]store.Status
	count    map[store.ClassID]int
	attended map[store.UserID][2]int // attended (0/1), minutes
	failChat bool
	dropChat bool // keep no messages (benchmarks)
}

func newMemStore() *memStore {
	return &memStore{
		polls:    map[store.PollID]*store.Poll{},
		votes:    map[store.PollID]map[store.UserID]store.PollVote{},
		status:   map[store.ClassID]store.Status{},
		count:    map[store.ClassID]int{},
		attended: map[store.UserID][2]int{},
	}
}

func (s *memStore) RecordJoin(_ context.Context, a *store.Attendance) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stays = append(s.stays, *a)
	return nil
}

func (s *memStore) RecordLeave(_ context.Context, id store.AttendanceID, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.stays {
		if s.stays[i].ID == id && s.stays[i].LeftAt == nil {
			s.stays[i].LeftAt = &at
			return nil
		}
	}
	return apperr.New(apperr.NotFound, "no open stay %s", id)
}

func (s *memStore) AttendanceOf(_ context.Context, c store.ClassID, u store.UserID) ([]store.Attendance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Attendance
	for _, a := range s.stays {
		if a.ClassID == c && a.UserID == u {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *memStore) UpdateAttendance(_ context.Context, _ store.ClassID, u store.UserID, attended bool, minutes int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := 0
	if attended {
		a = 1
	}
	s.attended[u] = [2]int{a, minutes}
	return nil
}

func (s *memStore) SaveChat(_ context.Context, m *store.ChatMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failChat {
		return fmt.Errorf("disk full")
	}
	if s.dropChat {
		return nil
	}
	s.chats = append(s.chats, *m)
	return nil
}

func (s *memStore) SavePoll(_ context.Context, p *store.Poll) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *p
	s.polls[p.ID] = &cp
	return nil
}

func (s *memStore) ClosePoll(_ context.Context, id store.PollID, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.polls[id]
	if !ok || p.ClosedAt != nil {
		return apperr.New(apperr.NotFound, "no open poll %s", id)
	}
	p.ClosedAt = &at
	return nil
}

func (s *memStore) SaveVote(_ context.Context, v store.PollVote) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.votes[v.PollID] == nil {
		s.votes[v.PollID] = map[store.UserID]store.PollVote{}
	}
	if _, ok := s.votes[v.PollID][v.UserID]; ok {
		return apperr.New(apperr.Conflict, "already voted")
	}
	s.votes[v.PollID][v.UserID] = v
	return nil
}

func (s *memStore) SetClassStatus(_ context.Context, id store.ClassID, st store.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[id] = st
	return nil
}

func (s *memStore) SetCurrentParticipants(_ context.Context, id store.ClassID, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[id] = n
	return nil
}

func (s *memStore) get(f func(*memStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// env is one manager with one class, over whatever Store the test gives.
type env struct {
	m       *Manager
	clk     *clock
	media   *fakeMedia
	class   store.LiveClass
	mu      sync.Mutex
	changed []store.ClassID
}

var t0 = time.Date(2030, 5, 6, 9, 0, 0, 0, time.UTC)

func newEnv(t testing.TB, st Store, tweak ...func(*Options)) *env {
	t.Helper()
	e := &env{clk: &clock{t: t0}, media: &fakeMedia{}}
	e.class = store.LiveClass{
		ID: "class-1", Title: "Go", Service: store.ServiceChime, Status: store.StatusScheduled,
		StartTime: t0, EndTime: t0.Add(time.Hour), Duration: 60, MaxParticipants: 50,
	}
	opt := Options{
		Store: st, Media: e.media, Now: e.clk.Now,
		OnClassChange: func(c store.ClassID) {
			e.mu.Lock()
			e.changed = append(e.changed, c)
			e.mu.Unlock()
		},
	}
	for _, f := range tweak {
		f(&opt)
	}
	e.m = NewManager(opt)
	return e
}

func (e *env) changes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.changed)
}

// join joins user id with role; a host's ID starts with "h".
func (e *env) join(t testing.TB, id string) (*Room, *sink) {
	t.Helper()
	s := &sink{}
	r, _, err := e.m.Join(context.Background(), e.req(id), s)
	if err != nil {
		t.Fatalf("join %s: %v", id, err)
	}
	return r, s
}

func (e *env) req(id string) JoinRequest {
	role := jointoken.RoleAttendee
	if id[0] == 'h' {
		role = jointoken.RoleHost
	}
	return JoinRequest{Class: e.class, UserID: store.UserID(id), Name: "Name " + id, Role: role, TokenID: "tok-" + id}
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantKind fails unless err has kind k.
func wantKind(t testing.TB, err error, k apperr.Kind) {
	t.Helper()
	if err == nil || apperr.KindOf(err) != k {
		t.Fatalf("err = %v (kind %v), want kind %s", err, apperr.KindOf(err), k.Code())
	}
}
