package signal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
)

// ClassReader reads a class; store.Store satisfies it.
type ClassReader interface {
	ClassByID(ctx context.Context, id store.ClassID) (store.LiveClass, error)
}

// Config configures a Handler. Zero durations and sizes take the defaults
// noted.
type Config struct {
	Rooms   *room.Manager     // required
	SFU     *sfu.Server       // required
	Tokens  *jointoken.Signer // required
	Classes ClassReader       // required
	Logger  *slog.Logger      // default: discard
	Now     func() time.Time  // token expiry is checked at Now(); default time.Now
	// PublicURL is the address people open the site at; browsers whose
	// page comes from it may connect even when a proxy rewrites Host.
	PublicURL string
	// AllowedOrigins are further origin host patterns (path.Match, e.g.
	// "*.school.example") whose pages may connect. The request's own host
	// is always allowed.
	AllowedOrigins []string
	// JoinTimeout is how long a new connection has to send its join (10 s).
	JoinTimeout time.Duration
	// ResumeWindow is how long a dropped participant stays in the room,
	// resumable with its key, before it leaves (30 s).
	ResumeWindow time.Duration
	// PingInterval is the keepalive period; a client that does not answer
	// a ping within it is dropped (15 s).
	PingInterval time.Duration
	// WriteTimeout bounds writing one message (10 s).
	WriteTimeout time.Duration
	// SendQueue is how many messages may wait for a slow client before it
	// is dropped (256).
	SendQueue int
	// MessageRate and MessageBurst bound what one client sends: a token
	// bucket of MessageBurst refilled at MessageRate per second (50, 200).
	// Over it, requests are refused with TOO_MANY_REQUESTS; far over it
	// (twice the burst refused in a row) the connection is closed.
	MessageRate  float64
	MessageBurst int
}

func (c *Config) defaults() error {
	switch {
	case c.Rooms == nil:
		return errors.New("signal: Config.Rooms is required")
	case c.SFU == nil:
		return errors.New("signal: Config.SFU is required")
	case c.Tokens == nil:
		return errors.New("signal: Config.Tokens is required")
	case c.Classes == nil:
		return errors.New("signal: Config.Classes is required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.ResumeWindow <= 0 {
		c.ResumeWindow = 30 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.MessageRate <= 0 {
		c.MessageRate = 50
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = 200
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || u.Host == "" {
			return errors.New("signal: Config.PublicURL is not an absolute URL")
		}
		c.AllowedOrigins = append(append([]string(nil), c.AllowedOrigins...), u.Host)
	}
	return nil
}

// Handler serves the signalling WebSocket. Mount it as
// mux.Handle("GET /rtc", h).
type Handler struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	conns  map[*conn]struct{}
	parked map[string]*parked // resume key → dropped participant
	// encoders encode each room event once for all of a class's
	// connections.
	encoders map[store.ClassID]*encoder
	serving  sync.WaitGroup
}

// parked is a participant whose connection dropped: still in the room
// until its timer fires, resumable with its key until then.
type parked struct {
	claims jointoken.Claims
	conn   uint64 // room.Participant.Conn of the dropped connection
	timer  *time.Timer
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Handler{
		cfg:      cfg,
		log:      cfg.Logger,
		conns:    map[*conn]struct{}{},
		parked:   map[string]*parked{},
		encoders: map[store.ClassID]*encoder{},
	}, nil
}

// ServeHTTP upgrades the request to a WebSocket and serves one
// participant until the connection ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.cfg.AllowedOrigins})
	if err != nil {
		// Accept has written the HTTP error (a foreign Origin is 403).
		h.log.Debug("signal: upgrade refused", "err", err, "origin", r.Header.Get("Origin"))
		return
	}
	ws.SetReadLimit(MaxMessageSize)
	c := newConn(h, ws)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ws.Close(CloseGoingAway, "server shutting down")
		return
	}
	h.conns[c] = struct{}{}
	h.serving.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		h.serving.Done()
	}()
	// The request's context ends with the handler; the connection's life
	// is its own.
	c.serve(context.WithoutCancel(r.Context()))
}

// Close closes every connection with 1001, makes the participants whose
// connections had dropped leave now, and waits for the connections to
// end. The participants of closed connections leave their rooms at once:
// a server going away keeps no resume window.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	waiting := h.parked
	h.parked = map[string]*parked{}
	h.mu.Unlock()
	for _, c := range conns {
		c.abort(CloseGoingAway, "server shutting down", true)
	}
	h.serving.Wait()
	for _, p := range waiting {
		if p.timer.Stop() {
			h.leave(p)
		}
	}
}

// Connections reports how many WebSockets are open.
func (h *Handler) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// park keeps a dropped participant in the room for the resume window.
func (h *Handler) park(key string, cl jointoken.Claims, connID uint64) {
	p := &parked{claims: cl, conn: connID}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.leave(p)
		return
	}
	defer h.mu.Unlock()
	p.timer = time.AfterFunc(h.cfg.ResumeWindow, func() {
		h.mu.Lock()
		own := h.parked[key] == p
		if own {
			delete(h.parked, key)
		}
		h.mu.Unlock()
		if own {
			h.leave(p)
		}
	})
	h.parked[key] = p
}

// unpark takes the participant a resume key names, if its window is
// still open.
func (h *Handler) unpark(key string) (*parked, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.parked[key]
	if !ok || !p.timer.Stop() {
		return nil, false
	}
	delete(h.parked, key)
	return p, true
}

func (h *Handler) leave(p *parked) {
	h.cfg.Rooms.LeaveConn(context.Background(), store.ClassID(p.claims.ClassID), room.ParticipantID(p.claims.UserID), p.conn)
	h.log.Debug("signal: resume window passed", "class", p.claims.ClassID, "participant", p.claims.UserID)
}

// newKey returns a fresh resume key: 256 random bits.
func newKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// authenticate turns a join message into the claims to join with: those
// of the resumed connection when its key is still good, else the token's.
func (h *Handler) authenticate(ctx context.Context, j *Join) (jointoken.Claims, bool, error) {
	var cl jointoken.Claims
	resumed := false
	if j.Resume != "" {
		if p, ok := h.unpark(j.Resume); ok {
			cl, resumed = p.claims, true
		}
	}
	if !resumed {
		if j.Token == "" {
			return cl, false, apperr.New(apperr.Unauthenticated, "the resume key has expired; join with a token")
		}
		var err error
		if cl, err = h.cfg.Tokens.Verify(j.Token, h.cfg.Now()); err != nil {
			return cl, false, apperr.Wrap(apperr.Unauthenticated, err, "join token refused")
		}
	}
	if j.Class != "" && j.Class != cl.ClassID {
		return cl, resumed, apperr.New(apperr.Forbidden, "the join token is for another class")
	}
	return cl, resumed, nil
}

// class reads the class a participant joins and checks it is interactive.
func (h *Handler) class(ctx context.Context, cl jointoken.Claims) (store.LiveClass, error) {
	c, err := h.cfg.Classes.ClassByID(ctx, store.ClassID(cl.ClassID))
	if err != nil {
		return c, err
	}
	if c.Service != store.ServiceChime {
		return c, apperr.New(apperr.Forbidden, "class %s is not an interactive (CHIME) class", c.ID)
	}
	return c, nil
}
