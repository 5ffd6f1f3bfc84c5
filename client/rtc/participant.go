// Package rtc is a Go client of liveclass's media protocol
// (docs/protocol.md): one participant of a live class, joined over the
// signalling WebSocket at /rtc, with a publisher and a subscriber Pion
// PeerConnection negotiated through it. It answers the server's offers,
// trickles candidates after their descriptions, matches requests to their
// ok or error answers, and counts what the subscriber receives.
//
// The integration tests and the room load tester go through it, so it is
// what any Go program joining a class would use: a bot, a recorder, a
// test participant.
package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
)

// ProtocolVersion is the version of docs/protocol.md this package speaks.
const ProtocolVersion = 1

// writeTimeout bounds one message's write, as the server bounds its own.
const writeTimeout = 10 * time.Second

// Options configure Dial. The zero value joins with the microphone on
// and Pion APIs built by NewAPIs.
type Options struct {
	Class  string // the class the caller means; the server checks it is the token's
	Muted  bool   // join with the microphone off
	Resume string // the resume key of an earlier connection (docs/protocol.md section 9)

	// PublisherAPI and SubscriberAPI build the two connections; a
	// process with many participants shares one pair (NewAPIs).
	PublisherAPI, SubscriberAPI *webrtc.API
	// HTTPClient makes the WebSocket handshake (default http.DefaultClient).
	HTTPClient *http.Client

	// OnMessage sees every server message, in order, after the client
	// has acted on it (an offer answered, a request's waiter not yet
	// woken) and before a request it answers returns. It runs on the
	// reading goroutine: it may call Send, but not the methods that wait
	// for an answer.
	OnMessage func(p *Participant, m Message)
	// OnPacket sees every RTP packet the subscriber receives, on that
	// track's reading goroutine; Payload is valid only during the call.
	OnPacket func(Packet)
	// OnError reports what went wrong locally after the join: an offer
	// or answer Pion refused, a candidate it could not add.
	OnError func(error)
}

// Participant is one joined participant. Its methods are safe for
// concurrent use.
type Participant struct {
	opt    Options
	ws     *websocket.Conn
	joined Joined

	pub, sub *webrtc.PeerConnection

	mu       sync.Mutex
	ready    map[string]bool // the description is out: candidates may follow
	pending  map[string][]webrtc.ICECandidateInit
	waiting  map[int64]chan Message
	pubDesc  []map[string]any // the publisher's tracks, for an ICE restart
	recv     map[string]*trackRecv
	shutting bool // Close began: no new track readers

	joinedCh chan struct{}
	joinErr  error
	done     chan struct{} // the socket ended
	closeErr error

	nextID  atomic.Int64
	in      atomic.Bool // Dial returned the participant: Close leaves
	closing atomic.Bool
	stop    chan struct{} // closed by Close: ends the synthetic media
	wg      sync.WaitGroup
}

// Dial joins a live class: it opens the WebSocket at wsURL (ws:// or
// wss://…/rtc), sends the join with token, and returns once the server
// answered joined. A refused join returns the server's *Error (its Code
// and Reason say why); ctx bounds the whole join.
func Dial(ctx context.Context, wsURL, token string, opt Options) (*Participant, error) {
	if opt.PublisherAPI == nil || opt.SubscriberAPI == nil {
		pub, sub, err := NewAPIs(APIOptions{})
		if err != nil {
			return nil, err
		}
		opt.PublisherAPI, opt.SubscriberAPI = pub, sub
	}
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: opt.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	// The joined message carries the room's state and chat: allow more
	// than the protocol's 64 KiB a client may send.
	ws.SetReadLimit(1 << 20)
	p := &Participant{
		opt: opt, ws: ws,
		ready: map[string]bool{}, pending: map[string][]webrtc.ICECandidateInit{},
		waiting: map[int64]chan Message{}, recv: map[string]*trackRecv{},
		joinedCh: make(chan struct{}), done: make(chan struct{}), stop: make(chan struct{}),
	}
	p.wg.Go(p.readLoop)
	join := map[string]any{"type": "join", "v": ProtocolVersion, "muted": opt.Muted}
	if token != "" {
		join["token"] = token
	}
	if opt.Class != "" {
		join["class"] = opt.Class
	}
	if opt.Resume != "" {
		join["resume"] = opt.Resume
	}
	if err := p.write(ctx, join); err != nil {
		p.Close()
		return nil, err
	}
	select {
	case <-p.joinedCh:
	case <-ctx.Done():
		p.Close()
		return nil, fmt.Errorf("no joined message: %w", ctx.Err())
	}
	if p.joinErr != nil {
		p.Close()
		return nil, p.joinErr
	}
	p.in.Store(true)
	return p, nil
}

// Joined returns the server's joined message.
func (p *Participant) Joined() Joined { return p.joined }

// ID returns the participant's id in the room (the user's id).
func (p *Participant) ID() string { return p.joined.You.ID }

// Publisher returns the publisher connection, for a caller that adds
// what Publish does not (statistics, its own transceivers).
func (p *Participant) Publisher() *webrtc.PeerConnection { return p.pub }

// Subscriber returns the subscriber connection.
func (p *Participant) Subscriber() *webrtc.PeerConnection { return p.sub }

// Done is closed once the WebSocket has ended; Err then says why.
func (p *Participant) Done() <-chan struct{} { return p.done }

// Err returns why the WebSocket ended (CloseCode gives its close code),
// or nil while it is open.
func (p *Participant) Err() error {
	select {
	case <-p.done:
		return p.closeErr
	default:
		return nil
	}
}

// write sends one message; coder/websocket serialises concurrent writes.
func (p *Participant) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return p.ws.Write(ctx, websocket.MessageText, b)
}

// message builds a client message of type typ with fields and id (0: none).
func message(typ string, id int64, fields map[string]any) map[string]any {
	m := make(map[string]any, len(fields)+2)
	maps.Copy(m, fields)
	m["type"] = typ
	if id != 0 {
		m["id"] = id
	}
	return m
}

// Send sends a request of type typ with fields and a fresh id, and
// returns without waiting for its answer: the ok or error reaches
// OnMessage. It suits requests sent from OnMessage and the requests that
// the connection's close answers (end).
func (p *Participant) Send(ctx context.Context, typ string, fields map[string]any) (id int64, err error) {
	id = p.nextID.Add(1)
	return id, p.write(ctx, message(typ, id, fields))
}

// Request sends a request of type typ (chat, hand, mute, poll.create …,
// docs/protocol.md section 5) with fields and waits for its answer: OK,
// or the server's *Error.
func (p *Participant) Request(ctx context.Context, typ string, fields map[string]any) (OK, error) {
	return p.roundTrip(ctx, typ, fields, nil)
}

// roundTrip sends a request with a fresh id, calls sent once it is out,
// and waits for its answer.
func (p *Participant) roundTrip(ctx context.Context, typ string, fields map[string]any, sent func()) (OK, error) {
	id := p.nextID.Add(1)
	ch := make(chan Message, 1)
	p.mu.Lock()
	p.waiting[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
	}()
	if err := p.write(ctx, message(typ, id, fields)); err != nil {
		return OK{}, fmt.Errorf("%s: %w", typ, err)
	}
	if sent != nil {
		sent()
	}
	return p.await(ctx, typ, ch)
}

// await waits for the answer on ch.
func (p *Participant) await(ctx context.Context, typ string, ch chan Message) (OK, error) {
	var m Message
	select {
	case m = <-ch:
	case <-p.done:
		// An answer read just before the socket ended still counts.
		select {
		case m = <-ch:
		default:
			return OK{}, fmt.Errorf("%s: connection closed before the answer: %w", typ, p.closeErr)
		}
	case <-ctx.Done():
		return OK{}, fmt.Errorf("%s: no answer: %w", typ, ctx.Err())
	}
	if m.Type == TypeError {
		e := &Error{}
		if err := m.Decode(e); err != nil {
			return OK{}, err
		}
		return OK{}, e
	}
	var ok OK
	return ok, m.Decode(&ok)
}

// Subscribe asks for the videos to receive, replacing the earlier list.
func (p *Participant) Subscribe(ctx context.Context, video []Video) error {
	if video == nil {
		video = []Video{}
	}
	_, err := p.Request(ctx, "subscribe", map[string]any{"video": video})
	return err
}

// SetMedia tells the room what the participant publishes now.
func (p *Participant) SetMedia(ctx context.Context, m Media) error {
	_, err := p.Request(ctx, "media", map[string]any{"mic": m.Mic, "camera": m.Camera, "screen": m.Screen})
	return err
}

// Chat sends a chat message to "everyone", "hosts" or a participant id.
func (p *Participant) Chat(ctx context.Context, to, text string) error {
	_, err := p.Request(ctx, "chat", map[string]any{"to": to, "text": text})
	return err
}

// Ping checks that the server answers.
func (p *Participant) Ping(ctx context.Context) error {
	_, err := p.Request(ctx, "ping", nil)
	return err
}

// RestartSubscriber restarts ICE on the subscriber connection: the server
// answers ok and sends a new offer, which the client answers.
func (p *Participant) RestartSubscriber(ctx context.Context) error {
	_, err := p.Request(ctx, "restart", nil)
	return err
}

func (p *Participant) readLoop() {
	joined := false
	for {
		_, b, err := p.ws.Read(context.Background())
		if err != nil {
			p.mu.Lock()
			p.closeErr = err
			p.mu.Unlock()
			if !joined {
				p.joinErr = fmt.Errorf("connection closed before joined: %w", err)
				close(p.joinedCh)
			}
			close(p.done)
			return
		}
		var h header
		if err := json.Unmarshal(b, &h); err != nil {
			p.report(fmt.Errorf("server message %.100q: %w", b, err))
			continue
		}
		m := Message{Type: h.Type, Raw: b}
		if !joined {
			// Before joined, only a refusal can come.
			switch h.Type {
			case TypeJoined:
				p.joinErr = p.onJoined(m)
			case TypeError:
				e := &Error{}
				if p.joinErr = m.Decode(e); p.joinErr == nil {
					p.joinErr = e
				}
			default:
				continue
			}
			joined = true
			close(p.joinedCh)
			if p.joinErr != nil {
				continue
			}
		}
		p.act(m)
		if p.opt.OnMessage != nil {
			p.opt.OnMessage(p, m)
		}
		if h.Type == TypeOK || h.Type == TypeError {
			if id, err := strconv.ParseInt(string(h.ID), 10, 64); err == nil && id > 0 {
				p.mu.Lock()
				ch := p.waiting[id]
				p.mu.Unlock()
				if ch != nil {
					ch <- m
				}
			}
		}
	}
}

// onJoined keeps the joined message and builds both connections with the
// ICE servers it names.
func (p *Participant) onJoined(m Message) error {
	if err := m.Decode(&p.joined); err != nil {
		return err
	}
	cfg := webrtc.Configuration{ICEServers: p.joined.ICEServers}
	var err error
	if p.pub, err = p.opt.PublisherAPI.NewPeerConnection(cfg); err != nil {
		return err
	}
	if p.sub, err = p.opt.SubscriberAPI.NewPeerConnection(cfg); err != nil {
		return err
	}
	p.pub.OnICECandidate(func(c *webrtc.ICECandidate) { p.candidate(PCPub, c) })
	p.sub.OnICECandidate(func(c *webrtc.ICECandidate) { p.candidate(PCSub, c) })
	p.sub.OnTrack(p.onTrack)
	return nil
}

// act does what the protocol asks of the client for m.
func (p *Participant) act(m Message) {
	switch m.Type {
	case TypeOffer:
		var o sdpMsg
		if err := m.Decode(&o); err != nil {
			p.report(err)
			return
		}
		p.answer(o.SDP)
	case TypeAnswer:
		var a sdpMsg
		if err := m.Decode(&a); err != nil {
			p.report(err)
			return
		}
		if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.SDP}); err != nil {
			p.report(fmt.Errorf("publisher answer: %w", err))
		}
	case TypeCandidate:
		var c candidateMsg
		if err := m.Decode(&c); err != nil {
			p.report(err)
			return
		}
		if c.Candidate.Candidate == "" {
			return // end of candidates
		}
		pc := p.pub
		if c.PC == PCSub {
			pc = p.sub
		}
		if err := pc.AddICECandidate(c.Candidate); err != nil {
			p.report(fmt.Errorf("add %s candidate: %w", c.PC, err))
		}
	}
}

// report hands a local failure to OnError, unless the participant is
// closing, when failures of closed connections are expected.
func (p *Participant) report(err error) {
	if p.opt.OnError != nil && !p.closing.Load() {
		p.opt.OnError(err)
	}
}

// answer answers the server's subscriber offer.
func (p *Participant) answer(offer string) {
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.report(fmt.Errorf("subscriber offer: %w", err))
		return
	}
	ans, err := p.sub.CreateAnswer(nil)
	p.setReady(PCSub, false) // this answer's candidates follow it
	if err == nil {
		err = p.sub.SetLocalDescription(ans)
	}
	if err != nil {
		p.report(fmt.Errorf("subscriber answer: %w", err))
		return
	}
	if err := p.write(context.Background(), map[string]any{"type": TypeAnswer, "pc": PCSub, "sdp": ans.SDP}); err == nil {
		p.setReady(PCSub, true)
	}
}

// candidate trickles a local candidate once its description is out
// (docs/protocol.md section 4), queueing it until then.
func (p *Participant) candidate(pc string, c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	init := c.ToJSON()
	p.mu.Lock()
	if !p.ready[pc] {
		p.pending[pc] = append(p.pending[pc], init)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	// A candidate after the socket closed has nowhere to go.
	_ = p.write(context.Background(), candidateMsg{Type: TypeCandidate, PC: pc, Candidate: init})
}

// setReady marks whether pc's description is out, and sends the
// candidates that waited for it.
func (p *Participant) setReady(pc string, ready bool) {
	p.mu.Lock()
	p.ready[pc] = ready
	var queued []webrtc.ICECandidateInit
	if ready {
		queued = p.pending[pc]
		delete(p.pending, pc)
	}
	p.mu.Unlock()
	for _, c := range queued {
		_ = p.write(context.Background(), candidateMsg{Type: TypeCandidate, PC: pc, Candidate: c})
	}
}

// Close leaves the room (no resume), closes the WebSocket and both
// connections, stops the media PublishSynthetic started, and waits for
// the participant's goroutines. It is safe to call more than once, but
// not from OnMessage.
func (p *Participant) Close() {
	if p.closing.Swap(true) {
		return
	}
	close(p.stop)
	p.mu.Lock()
	p.shutting = true
	p.mu.Unlock()
	if p.in.Load() && p.Err() == nil {
		_ = p.write(context.Background(), map[string]any{"type": "leave"})
		_ = p.ws.Close(websocket.StatusNormalClosure, "")
	}
	_ = p.ws.CloseNow()
	// The reader builds the connections: once it has stopped, they are
	// what they will stay.
	<-p.done
	if p.pub != nil {
		_ = p.pub.Close()
	}
	if p.sub != nil {
		_ = p.sub.Close()
	}
	p.wg.Wait()
}

// spawn runs f on a goroutine Close waits for, unless Close has begun.
func (p *Participant) spawn(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutting {
		return false
	}
	p.wg.Go(f)
	return true
}

// errClosed is returned by the methods that need an open participant.
var errClosed = errors.New("rtc: participant closed")
