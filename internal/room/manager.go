package room

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// Rate is a limit of N actions per sliding window Per.
type Rate struct {
	N   int
	Per time.Duration
}

// Options configures a Manager. Zero fields take the defaults noted.
type Options struct {
	// Store receives attendance, chat, polls, status and counts. Required.
	Store Store
	// Media is the media plane; it may be set later with SetMedia (the sfu
	// is built after the room manager because it reports into it).
	Media Media
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives failures of the bookkeeping writes that no caller
	// waits for (default: discard).
	Logger *slog.Logger
	// EndGrace is how long after its end time an empty live class waits
	// before it is ended (default 10 minutes).
	EndGrace time.Duration
	// ChatMax is the longest chat message in characters (default 1000).
	ChatMax int
	// ChatRate limits each participant's chat messages (default 5 per 5 s).
	ChatRate Rate
	// ReactionRate limits each participant's reactions (default 5 per 5 s).
	ReactionRate Rate
	// ChatHistory is how many recent messages a room keeps in memory for
	// participants who join late (default 200).
	ChatHistory int
	// StoreTimeout bounds each store call a room makes (default 10 s).
	StoreTimeout time.Duration
	// Shuffle permutes n items for random breakout assignment (default
	// math/rand/v2); tests pass a seeded one.
	Shuffle func(n int, swap func(i, j int))
	// OnClassChange is called, outside any lock, after the room changed a
	// class's status or participant count in the store, so that the wiring
	// can re-read the class and publish it to GraphQL subscribers.
	OnClassChange func(class store.ClassID)
}

// Reactions returns the fixed set of emoji a participant may send (a new
// slice each call: callers may keep or change it).
func Reactions() []string { return []string{"👍", "👏", "😂", "😮", "❤️", "🎉", "✋"} }

// Errors a join is refused with; test them with errors.Is. The signalling
// layer maps ErrEnded to close code 4010 and the others to 4009.
var (
	ErrEnded   error = &apperr.Error{Kind: apperr.Conflict, Message: "the class has ended"}
	ErrFull    error = &apperr.Error{Kind: apperr.Conflict, Message: "the class is full"}
	ErrLocked  error = &apperr.Error{Kind: apperr.Forbidden, Message: "the room is locked"}
	ErrRemoved error = &apperr.Error{Kind: apperr.Forbidden, Message: "you were removed from this class"}
)

// Manager holds the rooms of the live classes, one per class.
type Manager struct {
	opt   Options
	media atomic.Pointer[mediaBox]
	conns atomic.Uint64

	mu    sync.Mutex
	rooms map[store.ClassID]*Room
}

type mediaBox struct{ m Media }

// NewManager returns a manager with no rooms.
func NewManager(opt Options) *Manager {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.EndGrace <= 0 {
		opt.EndGrace = 10 * time.Minute
	}
	if opt.ChatMax <= 0 {
		opt.ChatMax = 1000
	}
	if opt.ChatRate.N <= 0 || opt.ChatRate.Per <= 0 {
		opt.ChatRate = Rate{N: 5, Per: 5 * time.Second}
	}
	if opt.ReactionRate.N <= 0 || opt.ReactionRate.Per <= 0 {
		opt.ReactionRate = Rate{N: 5, Per: 5 * time.Second}
	}
	if opt.ChatHistory <= 0 {
		opt.ChatHistory = 200
	}
	if opt.StoreTimeout <= 0 {
		opt.StoreTimeout = 10 * time.Second
	}
	if opt.Shuffle == nil {
		opt.Shuffle = mrand.Shuffle
	}
	m := &Manager{opt: opt, rooms: make(map[store.ClassID]*Room)}
	if opt.Media != nil {
		m.SetMedia(opt.Media)
	}
	return m
}

// SetMedia sets the media plane (nil for none).
func (m *Manager) SetMedia(md Media) { m.media.Store(&mediaBox{md}) }

func (m *Manager) mediaPlane() Media {
	if b := m.media.Load(); b != nil {
		return b.m
	}
	return nil
}

// JoinRequest is who joins which class, as the verified join token says.
type JoinRequest struct {
	Class   store.LiveClass
	UserID  store.UserID
	Name    string
	Role    jointoken.Role
	TokenID string // the join token's ID, refused after a removal
	Muted   bool   // joins with the microphone off
}

// Join puts the participant in the class's room, creating the room if
// needed, and returns the room and the participant as others see them.
// A participant already inside is replaced: the old connection gets
// Replaced, and the new one inherits the participant's state (hand, group,
// media). The participant's media state starts as the join asked
// (microphone on unless Muted or locked) and then follows SetMedia.
//
// Events may reach sink before Join returns. A connection that sends the
// room's state first and events after should use JoinWithState.
func (m *Manager) Join(ctx context.Context, req JoinRequest, sink Sink) (*Room, Participant, error) {
	r, p, _, err := m.join(ctx, req, sink, false)
	return r, p, err
}

// JoinWithState is Join that also returns the participant's snapshot,
// taken atomically with the join: the events sink gets are exactly those
// that happened after it.
func (m *Manager) JoinWithState(ctx context.Context, req JoinRequest, sink Sink) (*Room, State, error) {
	r, _, s, err := m.join(ctx, req, sink, true)
	return r, s, err
}

func (m *Manager) join(ctx context.Context, req JoinRequest, sink Sink, withState bool) (*Room, Participant, State, error) {
	fail := func(err error) (*Room, Participant, State, error) { return nil, Participant{}, State{}, err }
	switch {
	case req.Class.ID == "":
		return fail(apperr.Field("class", "is required"))
	case req.UserID == "":
		return fail(apperr.Field("user", "is required"))
	case req.Role != jointoken.RoleHost && req.Role != jointoken.RoleAttendee:
		return fail(apperr.Field("role", "must be HOST or ATTENDEE"))
	case sink == nil:
		return fail(apperr.Field("sink", "is required"))
	case req.Class.Service != store.ServiceChime:
		return fail(apperr.New(apperr.Invalid, "class %s is not an interactive (CHIME) class", req.Class.ID))
	case req.Class.Status == store.StatusEnded || req.Class.Status == store.StatusCancelled:
		return fail(ErrEnded)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	m.mu.Lock()
	r, ok := m.rooms[req.Class.ID]
	if !ok {
		r = newRoom(m, req.Class)
		m.rooms[req.Class.ID] = r
	}
	m.mu.Unlock()
	var st State
	var state *State
	if withState {
		state = &st
	}
	p, err := r.join(req, sink, m.conns.Add(1), state)
	if err != nil {
		return fail(err)
	}
	return r, p, st, nil
}

// Leave takes the participant out of the class's room (the connection
// closed and its resume window passed). It does nothing for a participant
// who is not inside. A connection that received Replaced must not call
// it; LeaveConn is the safe form.
func (m *Manager) Leave(ctx context.Context, class store.ClassID, p ParticipantID) {
	if r, ok := m.Room(class); ok {
		r.leave(p, 0)
	}
}

// LeaveConn is Leave for one connection: it does nothing when the
// participant has since joined again on another connection (conn is
// Participant.Conn as Join returned it).
func (m *Manager) LeaveConn(ctx context.Context, class store.ClassID, p ParticipantID, conn uint64) {
	if r, ok := m.Room(class); ok {
		r.leave(p, conn)
	}
}

// Room returns the class's room, if anyone has joined it.
func (m *Manager) Room(class store.ClassID) (*Room, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[class]
	return r, ok
}

// Tick runs what time decides: it closes breakout rooms whose timer ran
// out, ends live classes that are empty EndGrace after their end time, and
// forgets rooms that are over. The owner calls it about once a second.
func (m *Manager) Tick(now time.Time) {
	m.mu.Lock()
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	for _, r := range rooms {
		if r.tick(now) {
			m.mu.Lock()
			if m.rooms[r.id] == r {
				delete(m.rooms, r.id)
			}
			m.mu.Unlock()
		}
	}
}

// Rooms reports how many rooms the manager holds.
func (m *Manager) Rooms() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}

// effect is a write to the store or a call to the media plane, run after
// the room's state lock is released.
type effect func(ctx context.Context) error

// run runs effects in order, each under its own timeout, logging failures:
// they are bookkeeping no caller waits for (the people in the room have
// already been told), so the log is where a failure must show.
func (m *Manager) run(class store.ClassID, fx []effect) {
	for _, f := range fx {
		ctx, cancel := context.WithTimeout(context.Background(), m.opt.StoreTimeout)
		err := f(ctx)
		cancel()
		if err != nil {
			m.opt.Logger.Error("room: bookkeeping failed", "class", class, "err", err)
		}
	}
}

func (m *Manager) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), m.opt.StoreTimeout)
}

// newID returns a random version-4 UUID, the shape of the store's IDs.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ignoreNotFound turns a NotFound into nil, for writes that legitimately
// find nothing (a host holds no enrollment).
func ignoreNotFound(err error) error {
	if apperr.Is(err, apperr.NotFound) {
		return nil
	}
	return err
}
