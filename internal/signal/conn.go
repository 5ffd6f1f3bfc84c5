package signal

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/keepalive"
	"github.com/liveclass/liveclass/internal/ratelimit"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/webrtc/v4"
)

// outMsg is one queued message; a non-zero close closes the connection
// with that code once data is written.
type outMsg struct {
	data   []byte
	close  websocket.StatusCode
	reason string
}

// conn is one participant's WebSocket. Three goroutines serve it: the
// reader (the HTTP handler's, which also routes requests), the writer,
// which alone writes messages, and the pinger. The room and the sfu hand
// it messages through send, which never blocks: a client that lets
// SendQueue messages pile up is dropped.
type conn struct {
	h    *Handler
	ws   *websocket.Conn
	log  *slog.Logger
	out  chan outMsg
	done chan struct{} // closed when the connection is over
	over sync.Once
	wg   sync.WaitGroup

	mu       sync.Mutex
	started  bool     // joined is queued; before, messages wait in held
	held     []outMsg // room events that came before joined
	closing  bool     // a close is queued or done: nothing more is sent
	terminal bool     // removed, ended, replaced or left: no resume

	// Set by join, then read by the reader goroutine only.
	claims jointoken.Claims
	room   *room.Room
	pid    room.ParticipantID
	connID uint64
	key    string
	peer   *sfu.Peer
	enc    *encoder // the class's; set before the room can deliver

	bucket ratelimit.Bucket
}

func newConn(h *Handler, ws *websocket.Conn) *conn {
	return &conn{
		h: h, ws: ws, log: h.log,
		out:    make(chan outMsg, h.cfg.SendQueue),
		done:   make(chan struct{}),
		bucket: ratelimit.New(h.cfg.MessageRate, h.cfg.MessageBurst),
	}
}

// Deliver implements room.Sink. The event is encoded here, under the
// room's lock, so that the writer sends bytes that no later change of the
// room can touch, and once for all the class's connections.
func (c *conn) Deliver(e room.Event) {
	b, err := c.enc.encode(e)
	if err != nil {
		c.log.Error("signal: cannot encode event", "type", e.EventType(), "err", err)
		return
	}
	switch e.(type) {
	case room.Removed:
		c.queue(outMsg{data: b, close: CloseRefused, reason: "removed from the class"}, true)
	case room.Ended:
		c.queue(outMsg{data: b, close: CloseEnded, reason: "the class has ended"}, true)
	case room.Replaced:
		c.queue(outMsg{data: b, close: CloseReplaced, reason: "joined from another connection"}, true)
	default:
		c.queue(outMsg{data: b}, false)
	}
}

// sendJSON queues v.
func (c *conn) sendJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.log.Error("signal: cannot encode message", "err", err)
		return
	}
	c.queue(outMsg{data: b}, false)
}

// queue queues m without blocking; terminal marks the end of the
// participant's presence (no resume after it).
func (c *conn) queue(m outMsg, terminal bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if terminal {
		c.terminal = true
	}
	if c.closing {
		return
	}
	if m.close != 0 {
		c.closing = true
	}
	if !c.started {
		if len(c.held) >= cap(c.out) {
			c.slowLocked()
			return
		}
		c.held = append(c.held, m)
		return
	}
	select {
	case c.out <- m:
	default:
		c.slowLocked()
	}
}

// start queues joined, then what the room said meanwhile.
func (c *conn) start(joined []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true
	for _, m := range append([]outMsg{{data: joined}}, c.held...) {
		select {
		case c.out <- m:
		default:
			c.slowLocked()
			return
		}
	}
	c.held = nil
}

// slowLocked drops a client that does not keep up. There is no close
// handshake: the client is not reading.
func (c *conn) slowLocked() {
	c.closing = true
	c.log.Warn("signal: client too slow, dropped")
	c.abort(CloseTooSlow, "too slow", false)
}

// abort ends the connection now: with a close handshake (the server is
// going away) or without one (the client is not reading). It never
// blocks.
func (c *conn) abort(code websocket.StatusCode, reason string, handshake bool) {
	c.over.Do(func() { close(c.done) })
	if handshake {
		go func() { _ = c.ws.Close(code, reason) }()
	} else {
		go func() { _ = c.ws.CloseNow() }()
	}
}

// refuse answers a connection that did not join, and closes it.
func (c *conn) refuse(code websocket.StatusCode, e Error) {
	if b, err := json.Marshal(e); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.h.cfg.WriteTimeout)
		_ = c.ws.Write(ctx, websocket.MessageText, b)
		cancel()
	}
	_ = c.ws.Close(code, e.Message[:min(len(e.Message), 120)])
}

// serve runs the connection: the join, then the request loop.
func (c *conn) serve(ctx context.Context) {
	timedOut := make(chan struct{})
	timer := time.AfterFunc(c.h.cfg.JoinTimeout, func() {
		defer close(timedOut)
		c.refuse(CloseNotJoined, Error{Type: TypeError, Code: apperr.Unauthenticated.Code(), Message: "no join message in time"})
	})
	typ, data, err := c.ws.Read(ctx)
	if !timer.Stop() {
		<-timedOut
		return
	}
	if err != nil {
		return // gone before joining, or over the size limit (1009)
	}
	if typ != websocket.MessageText {
		c.refuse(CloseBadMessage, errorFor(0, apperr.New(apperr.Invalid, "messages are JSON text frames")))
		return
	}
	m, err := Decode(data)
	if err != nil {
		c.refuse(CloseBadMessage, errorFor(peekID(data), err))
		return
	}
	j, ok := m.(*Join)
	if !ok {
		c.refuse(CloseNotJoined, errorFor(m.RequestID(), apperr.New(apperr.Unauthenticated, "the first message must be join")))
		return
	}
	err = c.join(ctx, j)
	if c.enc != nil {
		// A participant parked after the connection keeps the encoder
		// it has; the class's shared one is for live connections.
		defer c.h.releaseEncoder(store.ClassID(c.claims.ClassID))
	}
	if err != nil {
		if apperr.KindOf(err) == apperr.Internal {
			c.log.Error("signal: join failed", "err", err)
		}
		c.refuse(joinCloseCode(err), errorFor(j.ID, err))
		return
	}
	c.wg.Add(2)
	go c.writeLoop()
	go c.pingLoop()
	c.readLoop(ctx)
	c.finish()
}

// join verifies the join message and puts the participant in the room
// and the sfu.
func (c *conn) join(ctx context.Context, j *Join) error {
	h := c.h
	cl, resumed, err := h.authenticate(ctx, j)
	if err != nil {
		return err
	}
	class, err := h.class(ctx, cl)
	if err != nil {
		return err
	}
	c.claims = cl
	c.log = h.log.With("class", cl.ClassID, "participant", cl.UserID)
	c.enc = h.encoderFor(class.ID)
	r, p, err := h.cfg.Rooms.Join(ctx, room.JoinRequest{
		Class: class, UserID: store.UserID(cl.UserID), Name: cl.Name, Role: cl.Role,
		TokenID: cl.ID, Muted: j.Muted,
	}, c)
	if err != nil {
		return err
	}
	c.room, c.pid, c.connID = r, p.ID, p.Conn
	st, err := r.Snapshot(p.ID)
	if err != nil {
		// Removed or ended between the two calls: the sink has the news.
		return err
	}
	c.key = newKey()
	joined, err := json.Marshal(Joined{
		Type: TypeJoined, You: st.You, Room: st, Resume: c.key,
		ResumeWithin: int(h.cfg.ResumeWindow / time.Second), Resumed: resumed,
		ICEServers: h.cfg.SFU.ICEServers(),
	})
	if err != nil {
		h.cfg.Rooms.LeaveConn(ctx, r.ID(), p.ID, p.Conn)
		return err
	}
	c.start(joined)
	peer, err := h.cfg.SFU.Join(r.ID(), sfu.ParticipantID(p.ID), signaller{c})
	if err != nil {
		h.cfg.Rooms.LeaveConn(ctx, r.ID(), p.ID, p.Conn)
		return err
	}
	c.peer = peer
	c.log.Info("signal: joined", "role", cl.Role, "resumed", resumed)
	return nil
}

func (c *conn) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case m := <-c.out:
			if m.data != nil {
				ctx, cancel := context.WithTimeout(context.Background(), c.h.cfg.WriteTimeout)
				err := c.ws.Write(ctx, websocket.MessageText, m.data)
				cancel()
				if err != nil {
					c.abort(CloseTooSlow, "write failed", false)
					return
				}
			}
			if m.close != 0 {
				c.over.Do(func() { close(c.done) })
				_ = c.ws.Close(m.close, m.reason)
				return
			}
		}
	}
}

func (c *conn) pingLoop() {
	defer c.wg.Done()
	if keepalive.Run(c.ws, c.h.cfg.PingInterval, c.done) != nil {
		c.abort(CloseTooSlow, "no answer to ping", false)
	}
}

// finish ends a joined connection: its media closes, and unless the
// participant left for good, it stays in the room for the resume window.
func (c *conn) finish() {
	c.over.Do(func() { close(c.done) })
	c.wg.Wait()
	_ = c.ws.CloseNow()
	if c.peer != nil {
		c.peer.Close()
	}
	c.mu.Lock()
	terminal := c.terminal
	c.closing = true
	c.mu.Unlock()
	if !terminal {
		c.h.park(c.key, c.claims, c.connID)
	}
	c.log.Info("signal: connection closed", "resumable", !terminal)
}

// readLoop reads and routes requests until the connection ends.
func (c *conn) readLoop(ctx context.Context) {
	refused := 0
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			c.fail(CloseBadMessage, errorFor(0, apperr.New(apperr.Invalid, "messages are JSON text frames")))
			continue
		}
		if !c.bucket.Allow(time.Now()) {
			refused++
			if refused > 2*c.h.cfg.MessageBurst {
				c.fail(CloseRateLimited, errorFor(0, apperr.New(apperr.TooMany, "far too many messages")))
				continue
			}
			c.sendJSON(errorFor(peekID(data), apperr.New(apperr.TooMany, "at most %g messages a second", c.h.cfg.MessageRate)))
			continue
		}
		refused = 0
		m, err := Decode(data)
		if err != nil {
			if f := apperr.FieldOf(err); f == "" || f == "type" {
				// Not this protocol: nothing after it can be trusted.
				c.fail(CloseBadMessage, errorFor(peekID(data), err))
				continue
			}
			c.sendJSON(errorFor(peekID(data), err))
			continue
		}
		ok, err := c.route(m)
		switch {
		case err != nil:
			if apperr.KindOf(err) == apperr.Internal {
				c.log.Error("signal: request failed", "type", m.MessageType(), "err", err)
			}
			c.sendJSON(errorFor(m.RequestID(), err))
		case m.RequestID() != 0:
			ok.Type, ok.ID = TypeOK, m.RequestID()
			c.sendJSON(ok)
		}
		if m.MessageType() == TypeLeave {
			c.queue(outMsg{close: CloseNormal, reason: "left"}, true)
		}
	}
}

// fail sends e and closes the connection with code.
func (c *conn) fail(code websocket.StatusCode, e Error) {
	b, _ := json.Marshal(e)
	c.queue(outMsg{data: b, close: code, reason: e.Message[:min(len(e.Message), 120)]}, false)
}

// route hands a request to the room or the sfu.
func (c *conn) route(m Message) (OK, error) {
	r, me := c.room, c.pid
	switch m := m.(type) {
	case *Join:
		return OK{}, apperr.New(apperr.Conflict, "already joined")
	case *Offer:
		tracks := make([]sfu.PublishedTrack, len(m.Tracks))
		for i, t := range m.Tracks {
			tracks[i] = sfu.PublishedTrack{Mid: t.Mid, Source: sfu.Source(t.Source), Simulcast: t.Simulcast}
		}
		return OK{}, c.peer.PublisherOffer(m.SDP, tracks)
	case *Answer:
		return OK{}, c.peer.SubscriberAnswer(m.SDP)
	case *Candidate:
		if m.Candidate.Candidate == "" {
			return OK{}, nil // end of candidates: nothing to do with ICE lite-free trickle
		}
		return OK{}, c.peer.AddCandidate(sfu.PC(m.PC), m.Candidate)
	case *Restart:
		return OK{}, c.peer.RestartICE()
	case *Subscribe:
		video := make([]sfu.VideoRequest, len(m.Video))
		for i, v := range m.Video {
			video[i] = sfu.VideoRequest{Track: sfu.TrackID(v.Track), Width: v.Width, Height: v.Height}
		}
		return OK{}, c.peer.Subscribe(video)
	case *Chat:
		return OK{}, r.Chat(me, room.ParseChatTarget(m.To), m.Text)
	case *Hand:
		if m.Raised {
			return OK{}, r.RaiseHand(me)
		}
		return OK{}, r.LowerHand(me, me)
	case *ParticipantRequest:
		target := room.ParticipantID(m.Participant)
		switch m.Type {
		case TypeLowerHand:
			return OK{}, r.LowerHand(me, target)
		case TypeMute:
			return OK{}, r.Mute(me, target)
		case TypeStopVideo:
			return OK{}, r.StopVideo(me, target)
		case TypeRemove:
			return OK{}, r.Remove(me, target)
		}
	case *Media:
		return OK{}, r.SetMedia(me, room.MediaState{Mic: m.Mic, Camera: m.Camera, Screen: m.Screen})
	case *LockRequest:
		if m.Type == TypeLockMics {
			return OK{}, r.LockMics(me, m.Locked)
		}
		return OK{}, r.Lock(me, m.Locked)
	case *BreakoutsCreate:
		return OK{}, r.CreateBreakouts(me, m.Count)
	case *BreakoutsAssign:
		to := make(map[room.ParticipantID]room.GroupID, len(m.Assignments))
		for p, g := range m.Assignments {
			to[room.ParticipantID(p)] = room.GroupID(g)
		}
		return OK{}, r.Assign(me, to)
	case *BreakoutsAuto:
		return OK{}, r.AutoAssign(me, m.Mode)
	case *BreakoutsTimer:
		return OK{}, r.SetBreakoutTimer(me, time.Duration(m.Seconds)*time.Second)
	case *BreakoutsBroadcast:
		return OK{}, r.BroadcastToBreakouts(me, m.Text)
	case *BreakoutsVisit:
		return OK{}, r.Visit(me, room.GroupID(m.Group))
	case *React:
		return OK{}, r.React(me, m.Emoji)
	case *PollCreate:
		id, err := r.CreatePoll(me, m.Question, m.Options, m.Multiple)
		return OK{Poll: string(id)}, err
	case *PollVote:
		return OK{}, r.Vote(me, room.PollID(m.Poll), m.Choices)
	case *PollClose:
		return OK{}, r.ClosePoll(me, room.PollID(m.Poll))
	case *Bare:
		switch m.Type {
		case TypeLowerAllHands:
			return OK{}, r.LowerAllHands(me)
		case TypeMuteAll:
			return OK{}, r.MuteAll(me)
		case TypeEnd:
			return OK{}, r.End(me)
		case TypeBreakoutsClose:
			return OK{}, r.CloseBreakouts(me)
		case TypeLeave:
			c.mu.Lock()
			c.terminal = true
			c.mu.Unlock()
			c.h.cfg.Rooms.LeaveConn(context.Background(), r.ID(), me, c.connID)
			return OK{}, nil
		case TypePing:
			return OK{}, nil
		}
	}
	return OK{}, apperr.Field("type", "unhandled message type %q", m.MessageType())
}

// peekID reads the id of a message that did not decode, so that the
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

// signaller carries the sfu's messages for one participant to its
// connection's queue.
type signaller struct{ c *conn }

func (s signaller) Answer(sdp string) {
	s.c.sendJSON(SessionDescription{Type: TypeAnswer, PC: PCPub, SDP: sdp})
}

func (s signaller) Offer(sdp string) {
	s.c.sendJSON(SessionDescription{Type: TypeOffer, PC: PCSub, SDP: sdp})
}

func (s signaller) Candidate(pc sfu.PC, c webrtc.ICECandidateInit) {
	s.c.sendJSON(ServerCandidate{Type: TypeCandidate, PC: string(pc), Candidate: c})
}

func (s signaller) Tracks(tracks []sfu.TrackInfo) {
	if tracks == nil {
		tracks = []sfu.TrackInfo{}
	}
	s.c.sendJSON(Tracks{Type: TypeTracks, Tracks: tracks})
}

func (s signaller) Mapping(mids map[string]sfu.TrackID) {
	s.c.sendJSON(Mapping{Type: TypeMapping, Mids: mids})
}
