// Package audience is the interactive side of a broadcast (IVS) class for
// thousands of viewers: chat with moderation, polls, emoji reactions, the
// viewer count, the stream's state and health, over one WebSocket per
// viewer (GET /audience, docs/protocol.md "Broadcast audience protocol").
// It also keeps each viewer's attendance.
//
// It is built for fan-out: every message for many recipients is encoded
// once and the same bytes are queued for each of them; each connection has
// a bounded queue and one writer goroutine, so a viewer that does not keep
// up loses messages (counted) and is disconnected if it stays behind, and
// never slows the others. Reactions, poll results and the viewer count are
// aggregated and pushed at fixed intervals, never once per action.
//
// The package knows neither Pion nor GraphQL: the broadcast lifecycle
// (package broadcast) tells it the stream's state and health through
// SetStream and SetHealth, and hears of a host's "end" through
// Options.OnEnd.
package audience

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/store"
)

// Store is the part of the database the hub uses; every store engine
// satisfies it.
type Store interface {
	ClassByID(ctx context.Context, id store.ClassID) (store.LiveClass, error)
	RecordJoin(ctx context.Context, a *store.Attendance) error
	RecordLeave(ctx context.Context, id store.AttendanceID, at time.Time) error
	AttendanceOf(ctx context.Context, class store.ClassID, user store.UserID) ([]store.Attendance, error)
	UpdateAttendance(ctx context.Context, class store.ClassID, user store.UserID, attended bool, minutes int) error
	SaveChat(ctx context.Context, m *store.ChatMessage) error
	// DeleteChat marks a message deleted, so that a replay leaves it out.
	DeleteChat(ctx context.Context, class store.ClassID, id store.ChatMessageID, at time.Time) error
	SavePoll(ctx context.Context, p *store.Poll) error
	ClosePoll(ctx context.Context, id store.PollID, at time.Time) error
	SaveVote(ctx context.Context, v store.PollVote) error
	SetClassStatus(ctx context.Context, id store.ClassID, s store.Status) error
	// Read when a class's audience starts in this process, so that a
	// restart keeps its recent chat and its polls.
	ListChat(ctx context.Context, q store.ChatQuery) (store.List[store.ChatMessage], error)
	PollsOf(ctx context.Context, class store.ClassID) ([]store.Poll, error)
	VotesOf(ctx context.Context, id store.PollID) ([]store.PollVote, error)
	UsersByIDs(ctx context.Context, ids []store.UserID) ([]store.User, error)
	// Bans are stored before they take effect, and read when a class's
	// audience starts in this process, so that a restart lifts none.
	BanAudienceUser(ctx context.Context, class store.ClassID, user, by store.UserID) error
	UnbanAudienceUser(ctx context.Context, class store.ClassID, user store.UserID) error
	AudienceBans(ctx context.Context, class store.ClassID) ([]store.AudienceBan, error)
}

// Every store engine is an audience Store as it is.
var _ Store = store.Store(nil)

// Verifier verifies join tokens; *jointoken.Signer is one.
type Verifier interface {
	Verify(token string, now time.Time) (jointoken.Claims, error)
}

// Stream states, as StreamState.State and in the protocol.
const (
	StateOffline      = "offline"      // nothing published yet, or the publisher stopped
	StateLive         = "live"         // the publisher is sending
	StateReconnecting = "reconnecting" // the publisher dropped; viewers wait for it to return
	StateEnded        = "ended"        // the class is over: every viewer is disconnected
)

// StreamState is what viewers are told of the broadcast's stream.
type StreamState struct {
	// State is one of StateOffline, StateLive, StateReconnecting, StateEnded.
	State string `json:"state"`
	// Codec is the published video codec ("video/H264", "video/VP8").
	Codec string `json:"codec,omitempty"`
	// Since is when the stream entered this state.
	Since time.Time `json:"since,omitzero"`
	// HLS is the signed playlist URL a player falls back to, if known.
	HLS string `json:"hls,omitempty"`
}

// Health is the publisher's stream as the server receives it; hosts see
// it (the presenter page's stream health).
type Health struct {
	Codec         string    `json:"codec,omitempty"`
	Layers        int       `json:"layers"`
	BitrateBps    int       `json:"bitrateBps"`
	FrameRate     float64   `json:"frameRate"`
	Packets       uint64    `json:"packets"`
	PacketsLost   uint64    `json:"packetsLost"`
	WebRTCViewers int       `json:"webrtcViewers"`
	At            time.Time `json:"at,omitzero"`
}

// Options configures a Hub. Zero fields take the defaults noted.
type Options struct {
	// Store holds attendance, chat, polls and bans. Required.
	Store Store
	// Tokens verifies join tokens, as the /rtc signalling does. Required.
	Tokens Verifier
	// Logger receives failures no caller waits for (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnEnd is called when a host sends "end"; the broadcast service stops
	// the stream, marks the class ENDED and calls SetStream with
	// StateEnded. When nil, the hub marks the class ENDED in the store and
	// ends its audience itself.
	OnEnd func(ctx context.Context, class store.ClassID) error
	// OnBan is told of each ban once it is stored, so that the wiring
	// can take the banned user's video away too (their WHEP
	// connections). It is called outside any lock; nil: nothing.
	OnBan func(class store.ClassID, user store.UserID)
	// OnCount is told the number of people connected to a class's
	// audience, at most once per CountInterval and only when it changed,
	// so that the wiring can keep currentParticipants without a database
	// write per join. It is called from one goroutine, outside any lock.
	OnCount func(class store.ClassID, n int)
	// PublicURL is the address people open the site at; pages from it may
	// connect even when a proxy rewrites Host.
	PublicURL string
	// AllowedOrigins are further origin host patterns (path.Match) whose
	// pages may connect. The request's own host is always allowed.
	AllowedOrigins []string

	// ChatMax is the longest chat message in characters (500).
	ChatMax int
	// ChatRate limits each user's chat messages (5 per 5 s).
	ChatRate room.Rate
	// ReactionRate limits each user's reactions (10 per 5 s).
	ReactionRate room.Rate
	// ChatHistory is how many recent messages a joining viewer gets (50).
	ChatHistory int
	// MaxSlowMode caps a host's slow mode (1 hour).
	MaxSlowMode time.Duration

	// ReactionInterval is how often aggregated reactions go out (500 ms).
	ReactionInterval time.Duration
	// ResultsInterval is how often hosts get the live results of a poll
	// that received votes (250 ms).
	ResultsInterval time.Duration
	// CountInterval is how often the viewer count goes out, and OnCount
	// is called, when it changed (1 s).
	CountInterval time.Duration

	// JoinTimeout is how long a new connection has to send hello (10 s).
	JoinTimeout time.Duration
	// PingInterval is the keepalive period; a client that does not answer
	// a ping within it is dropped (15 s).
	PingInterval time.Duration
	// WriteTimeout bounds writing one frame (10 s).
	WriteTimeout time.Duration
	// SendQueue is how many messages may wait for one viewer; more are
	// dropped (256).
	SendQueue int
	// MaxPerUser is how many audience connections one user may hold in a
	// class at once (5): a few tabs and devices, not an unbounded number
	// from one account. A connection beyond it replaces that user's
	// oldest one.
	MaxPerUser int
	// Coalesce is the least time between two frames to one viewer:
	// messages that come closer together wait for the rest of it and go
	// out in one frame, so that a busy class costs each viewer far fewer
	// writes (and the viewer's device far fewer wake-ups). A message after
	// a quiet spell goes out at once (20 ms; negative: off).
	Coalesce time.Duration
	// SlowTimeout is how long a viewer may keep losing messages to a full
	// queue before it is disconnected (5 s).
	SlowTimeout time.Duration
	// MessageRate and MessageBurst bound all messages one connection sends
	// (10 a second, bursts of 40).
	MessageRate  float64
	MessageBurst int
	// StoreTimeout bounds each store call (10 s).
	StoreTimeout time.Duration

	// EncodePerViewer encodes every message once per recipient instead of
	// once for all: the baseline the benchmarks compare the hub with. It
	// only costs CPU; never set it in a server.
	EncodePerViewer bool
}

func (o *Options) defaults() error {
	switch {
	case o.Store == nil:
		return errors.New("audience: Options.Store is required")
	case o.Tokens == nil:
		return errors.New("audience: Options.Tokens is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	setInt(&o.ChatMax, 500)
	setRate(&o.ChatRate, room.Rate{N: 5, Per: 5 * time.Second})
	setRate(&o.ReactionRate, room.Rate{N: 10, Per: 5 * time.Second})
	setInt(&o.ChatHistory, 50)
	setDur(&o.MaxSlowMode, time.Hour)
	setDur(&o.ReactionInterval, 500*time.Millisecond)
	setDur(&o.ResultsInterval, 250*time.Millisecond)
	setDur(&o.CountInterval, time.Second)
	setDur(&o.JoinTimeout, 10*time.Second)
	setDur(&o.PingInterval, 15*time.Second)
	setDur(&o.WriteTimeout, 10*time.Second)
	setInt(&o.SendQueue, 256)
	setInt(&o.MaxPerUser, 5)
	setDur(&o.SlowTimeout, 5*time.Second)
	if o.Coalesce == 0 {
		o.Coalesce = 20 * time.Millisecond
	}
	if o.MessageRate <= 0 {
		o.MessageRate = 10
	}
	setInt(&o.MessageBurst, 40)
	setDur(&o.StoreTimeout, 10*time.Second)
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || u.Host == "" {
			return errors.New("audience: Options.PublicURL is not an absolute URL")
		}
		o.AllowedOrigins = append(append([]string(nil), o.AllowedOrigins...), u.Host)
	}
	return nil
}

func setInt(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}

func setDur(v *time.Duration, def time.Duration) {
	if *v <= 0 {
		*v = def
	}
}

func setRate(v *room.Rate, def room.Rate) {
	if v.N <= 0 || v.Per <= 0 {
		*v = def
	}
}

// Hub serves the audiences of every broadcast class. Mount it as
// mux.Handle("GET /audience", hub), in front of cookie sign-in: the join
// token in the first message is the credential.
type Hub struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	halls   map[store.ClassID]*hall
	conns   map[*conn]struct{} // every open WebSocket, joined or not
	serving sync.WaitGroup
	// shut is closed, readable without mu: a hall refuses newcomers once
	// it is set, so that Close finishes every connection it let in.
	shut atomic.Bool

	stop     chan struct{} // closed by Close: the ticker and notifier end
	loops    sync.WaitGroup
	counts   countQueue
	dropped  atomic.Uint64 // messages not queued for slow viewers
	tooSlow  atomic.Uint64 // viewers disconnected for staying behind
	sentMsgs atomic.Uint64 // messages queued for viewers
	frames   atomic.Uint64 // frames written to viewers
}

// NewHub returns a hub and starts its ticker; Close stops it.
func NewHub(opt Options) (*Hub, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	h := &Hub{
		opt:   opt,
		log:   opt.Logger,
		halls: map[store.ClassID]*hall{},
		conns: map[*conn]struct{}{},
		stop:  make(chan struct{}),
	}
	h.counts.wake = make(chan struct{}, 1)
	h.loops.Add(2)
	go h.tickLoop()
	go h.countLoop()
	return h, nil
}

// Stats are the hub's counters since it started.
type Stats struct {
	Connections int    // open audience WebSockets
	Queued      uint64 // messages queued for viewers
	Dropped     uint64 // messages a slow viewer's full queue did not take
	TooSlow     uint64 // viewers disconnected for staying behind
	Frames      uint64 // frames written (each holds one or more messages)
}

// Stats reports the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	halls := make([]*hall, 0, len(h.halls))
	for _, hl := range h.halls {
		halls = append(halls, hl)
	}
	h.mu.Unlock()
	n := 0
	for _, hl := range halls {
		hl.mu.Lock()
		n += len(hl.conns)
		hl.mu.Unlock()
	}
	return Stats{Connections: n, Queued: h.sentMsgs.Load(), Dropped: h.dropped.Load(), TooSlow: h.tooSlow.Load(), Frames: h.frames.Load()}
}
