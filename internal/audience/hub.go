package audience

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/store"
)

// Refusals of a hello, each with its close code (closeCodeFor).
var (
	errEnded    error = withReason(apperr.New(apperr.Conflict, "the class has ended"), ReasonEnded)
	errBanned   error = withReason(apperr.New(apperr.Forbidden, "a host has banned you from this class's audience"), ReasonBanned)
	errInternal error = errors.New("audience: internal failure")
)

// ServeHTTP upgrades GET /audience to a WebSocket and serves one viewer or
// host until the connection ends.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.opt.AllowedOrigins})
	if err != nil {
		// Accept has written the HTTP error (a foreign Origin is 403).
		h.log.Debug("audience: upgrade refused", "err", err, "origin", r.Header.Get("Origin"))
		return
	}
	ws.SetReadLimit(MaxMessageSize)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ws.Close(CloseGoingAway, "server shutting down")
		return
	}
	c := newConn(h, ws)
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
	h.serve(context.WithoutCancel(r.Context()), c)
}

// refuse answers a connection that did not join, and closes it.
func (h *Hub) refuse(ws *websocket.Conn, code websocket.StatusCode, e errorOut) {
	if b, err := json.Marshal(e); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.opt.WriteTimeout)
		_ = ws.Write(ctx, websocket.MessageText, b)
		cancel()
	}
	_ = ws.Close(code, e.Message[:min(len(e.Message), 120)])
}

func (h *Hub) serve(ctx context.Context, c *conn) {
	hl, id, err := h.hello(ctx, c)
	if err != nil {
		if err == errSilent {
			return
		}
		if apperr.KindOf(err) == apperr.Internal {
			h.log.Error("audience: join failed", "err", err)
		}
		h.refuse(c.ws, closeCodeFor(err), errorFor(id, err))
		return
	}
	c.hall = hl
	done := make(chan struct{}, 2)
	go func() { c.writeLoop(); done <- struct{}{} }()
	go func() { c.pingLoop(); done <- struct{}{} }()
	// The welcome is on its way while the stay is stored. A store that
	// fails here costs this interval's attendance, not the viewer's
	// place: attendance is bookkeeping, as in the interactive room.
	if err := h.startStay(c); err != nil {
		h.log.Error("audience: cannot record attendance", "class", hl.id, "user", c.user, "err", err)
	}
	h.readLoop(ctx, c)
	c.over.Do(func() { close(c.done) })
	<-done
	<-done
	_ = c.ws.CloseNow()
	hl.remove(c)
	h.endStay(c)
}

// errSilent: the connection went away before a hello; nothing to answer.
var errSilent = errors.New("audience: gone before hello")

// hello reads and checks the first message and puts the connection in its
// class's hall, its welcome queued.
func (h *Hub) hello(ctx context.Context, c *conn) (*hall, int64, error) {
	// A timer, not the read's context: coder/websocket closes the
	// connection without a word when a read's context ends, and the
	// client should learn why (4001).
	timedOut := make(chan struct{})
	timer := time.AfterFunc(h.opt.JoinTimeout, func() {
		defer close(timedOut)
		h.refuse(c.ws, CloseNotJoined, errorFor(0, apperr.New(apperr.Unauthenticated, "no hello message in time")))
	})
	typ, data, err := c.ws.Read(ctx)
	if !timer.Stop() {
		<-timedOut
		return nil, 0, errSilent
	}
	switch {
	case err != nil:
		return nil, 0, errSilent
	case typ != websocket.MessageText:
		return nil, 0, badMessage(apperr.New(apperr.Invalid, "messages are JSON text frames"))
	}
	m, id, err := decode(data)
	if err != nil {
		return nil, id, badMessage(err)
	}
	hm, ok := m.(*hello)
	if !ok {
		return nil, id, apperr.New(apperr.Unauthenticated, "the first message must be hello")
	}
	if hm.V != Version {
		return nil, id, badMessage(apperr.Field("v", "protocol version %d is not served; this server speaks %d", hm.V, Version))
	}
	if hm.Token == "" {
		return nil, id, apperr.New(apperr.Unauthenticated, "hello carries no token")
	}
	cl, err := h.opt.Tokens.Verify(hm.Token, h.opt.Now())
	if err != nil {
		return nil, id, apperr.Wrap(apperr.Unauthenticated, err, "join token refused")
	}
	if hm.Class != "" && hm.Class != cl.ClassID {
		return nil, id, apperr.New(apperr.Forbidden, "the join token is for another class")
	}
	sctx, scancel := context.WithTimeout(ctx, h.opt.StoreTimeout)
	class, err := h.opt.Store.ClassByID(sctx, store.ClassID(cl.ClassID))
	scancel()
	switch {
	case err != nil:
		return nil, id, err
	case class.Service != store.ServiceIVS:
		return nil, id, apperr.New(apperr.Forbidden, "class %s is not a broadcast (IVS) class", class.ID)
	case class.Status == store.StatusEnded || class.Status == store.StatusCancelled:
		return nil, id, errEnded
	}
	c.user, c.name, c.host = store.UserID(cl.UserID), cl.Name, cl.Role == jointoken.RoleHost
	hl, err := h.hallFor(class.ID)
	if err != nil {
		return nil, id, err
	}
	c.hall = hl
	lctx, lcancel := context.WithTimeout(ctx, h.opt.StoreTimeout)
	err = hl.restore(lctx, class)
	lcancel()
	if err != nil {
		return nil, id, err
	}
	if err := hl.add(c); err != nil {
		return nil, id, err
	}
	h.log.Debug("audience: joined", "class", class.ID, "user", c.user, "role", c.role())
	return hl, id, nil
}

// badMessage marks a hello that is not this protocol.
func badMessage(err error) error { return &protocolError{err} }

type protocolError struct{ error }

func (e *protocolError) Unwrap() error { return e.error }

func closeCodeFor(err error) websocket.StatusCode {
	var pe *protocolError
	switch {
	case errors.As(err, &pe):
		return CloseBadMessage
	case errors.Is(err, errEnded):
		return CloseEnded
	case errors.Is(err, errBanned):
		return CloseBanned
	case errors.Is(err, errClosing):
		return CloseGoingAway
	}
	switch apperr.KindOf(err) {
	case apperr.Unauthenticated:
		return CloseNotJoined
	case apperr.Forbidden:
		return CloseWrongClass
	case apperr.NotFound:
		return CloseNoClass
	}
	return CloseInternal
}

var errClosing = errors.New("audience: server shutting down")

// hallFor returns the class's hall, creating it.
func (h *Hub) hallFor(class store.ClassID) (*hall, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errClosing
	}
	hl, ok := h.halls[class]
	if !ok {
		hl = newHall(h, class)
		h.halls[class] = hl
	}
	return hl, nil
}

// hall returns the class's hall if it exists.
func (h *Hub) hall(class store.ClassID) (*hall, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hl, ok := h.halls[class]
	return hl, ok
}

func mustEncode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// readLoop reads and routes requests until the connection ends.
func (h *Hub) readLoop(ctx context.Context, c *conn) {
	refused := 0
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.finish(mustEncode(errorFor(0, apperr.New(apperr.Invalid, "messages are JSON text frames"))), CloseBadMessage, "binary frame")
			continue
		}
		if !c.bucket.Allow(time.Now()) {
			refused++
			if refused > 2*h.opt.MessageBurst {
				c.finish(mustEncode(errorFor(0, apperr.New(apperr.TooMany, "far too many messages"))), CloseRateLimited, "far too many messages")
				continue
			}
			c.send(mustEncode(errorFor(peekID(data), withReason(apperr.New(apperr.TooMany, "at most %g messages a second", h.opt.MessageRate), ReasonRateLimit))))
			continue
		}
		refused = 0
		m, id, err := decode(data)
		if err != nil {
			if f := apperr.FieldOf(err); f == "" || f == "type" {
				// Not this protocol: nothing after it can be trusted.
				c.finish(mustEncode(errorFor(id, err)), CloseBadMessage, "not this protocol")
				continue
			}
			c.send(mustEncode(errorFor(id, err)))
			continue
		}
		ok, err := h.route(c, m)
		switch {
		case err != nil:
			if apperr.KindOf(err) == apperr.Internal {
				h.log.Error("audience: request failed", "class", c.hall.id, "user", c.user, "err", err)
			}
			c.send(mustEncode(errorFor(id, err)))
		case id != 0:
			ok.Type, ok.ID = TypeOK, id
			c.send(mustEncode(ok))
		}
	}
}

// peekID reads the id of a message that was not decoded, so that the
// error still answers the request.
func peekID(data []byte) int64 {
	var e struct {
		ID int64 `json:"id"`
	}
	if json.Unmarshal(data, &e) != nil || e.ID < 0 {
		return 0
	}
	return e.ID
}

var errNotHost error = apperr.New(apperr.Forbidden, "only a host may do this")

// route carries out one request.
func (h *Hub) route(c *conn, m any) (okOut, error) {
	hl := c.hall
	hostOnly := func() error {
		if !c.host {
			return errNotHost
		}
		return nil
	}
	switch m := m.(type) {
	case *hello:
		return okOut{}, apperr.New(apperr.Conflict, "already joined")
	case *chatIn:
		id, err := hl.chatFrom(c, m.Text)
		return okOut{Chat: string(id)}, err
	case *reactIn:
		return okOut{}, hl.react(c, m.Emoji)
	case *pollVoteIn:
		return okOut{}, hl.vote(c, store.PollID(m.Poll), m.Choices)
	case *bareIn:
		if m.Type == TypePing {
			return okOut{}, nil
		}
		if err := hostOnly(); err != nil {
			return okOut{}, err
		}
		return okOut{}, h.end(hl.id)
	}
	if err := hostOnly(); err != nil {
		return okOut{}, err
	}
	switch m := m.(type) {
	case *chatDeleteIn:
		return okOut{}, hl.deleteChat(store.ChatMessageID(m.Message))
	case *muteIn:
		if m.Muted == nil {
			return okOut{}, apperr.Field("muted", "is required")
		}
		return okOut{}, hl.mute(store.UserID(m.User), *m.Muted)
	case *userIn:
		if m.Type == TypeUnban {
			return okOut{}, hl.unban(store.UserID(m.User))
		}
		return okOut{}, hl.ban(c, store.UserID(m.User))
	case *slowModeIn:
		if m.Seconds == nil {
			return okOut{}, apperr.Field("seconds", "is required")
		}
		return okOut{}, hl.setSlowMode(*m.Seconds)
	case *pollCreateIn:
		id, err := hl.createPoll(c, m.Question, m.Options, m.Multiple)
		return okOut{Poll: id}, err
	case *pollIn:
		return okOut{}, hl.closePoll(store.PollID(m.Poll))
	}
	return okOut{}, apperr.Field("type", "unhandled message type")
}

// end ends the class, through OnEnd when the wiring set it.
func (h *Hub) end(class store.ClassID) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.opt.StoreTimeout)
	defer cancel()
	if h.opt.OnEnd != nil {
		return h.opt.OnEnd(ctx, class)
	}
	if err := h.opt.Store.SetClassStatus(ctx, class, store.StatusEnded); err != nil {
		return err
	}
	h.SetStream(class, StreamState{State: StateEnded, Since: h.opt.Now()})
	return nil
}

// startStay records the start of c's watching interval.
func (h *Hub) startStay(c *conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.opt.StoreTimeout)
	defer cancel()
	a := store.Attendance{ClassID: c.hall.id, UserID: c.user, JoinedAt: h.opt.Now()}
	if err := h.opt.Store.RecordJoin(ctx, &a); err != nil {
		return err
	}
	c.stay = a.ID
	return nil
}

// endStay closes c's watching interval and updates the enrollment's
// attended and attendanceDuration from all the user's stays, as the
// interactive room does.
func (h *Hub) endStay(c *conn) {
	if c.stay == "" {
		return
	}
	at := h.opt.Now()
	ctx, cancel := context.WithTimeout(context.Background(), h.opt.StoreTimeout)
	defer cancel()
	st := h.opt.Store
	err := st.RecordLeave(ctx, c.stay, at)
	if err == nil || apperr.Is(err, apperr.NotFound) {
		var stays []store.Attendance
		stays, err = st.AttendanceOf(ctx, c.hall.id, c.user)
		if err == nil {
			d := room.Attended(stays, at)
			err = st.UpdateAttendance(ctx, c.hall.id, c.user, len(stays) > 0, room.Minutes(d))
		}
	}
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		h.log.Error("audience: cannot record attendance", "class", c.hall.id, "user", c.user, "err", err)
	}
}
