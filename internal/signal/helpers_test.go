package signal

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// waitTime bounds every wait of these tests.
const waitTime = 15 * time.Second

// env is a whole signalling stack over real parts: a SQLite file, a room
// manager, an sfu bound to loopback, and the handler behind an HTTP
// server on a random port.
type env struct {
	t      *testing.T
	db     *sqlite.DB
	rooms  *room.Manager
	sfu    *sfu.Server
	signer *jointoken.Signer
	h      *Handler
	srv    *httptest.Server
	url    string
	class  store.LiveClass
	host   store.User
	tokens int
	mu     sync.Mutex
}

type envOptions struct {
	cfg      func(*Config)
	room     func(*room.Options)
	listener func(net.Listener) net.Listener
	max      int
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "live.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	rs, ok := any(db).(room.Store)
	if !ok {
		t.Fatal("the SQLite store does not implement room.Store (store.Live)")
	}
	ropt := room.Options{Store: rs, Logger: log}
	if o.room != nil {
		o.room(&ropt)
	}
	rooms := room.NewManager(ropt)
	srv, err := sfu.New(sfu.Config{IncludeLoopback: true, DisableTCP: true, Logger: log, Events: MediaEvents(rooms, log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	rooms.SetMedia(RoomMedia(srv))
	signer, err := jointoken.NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, rooms: rooms, sfu: srv, signer: signer}
	e.host = e.user("host", store.RoleMentor)
	max := o.max
	if max == 0 {
		max = 50
	}
	e.class = e.newClass(store.ServiceChime, max)
	cfg := Config{Rooms: rooms, SFU: srv, Tokens: signer, Classes: db, Logger: log}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if e.h, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(e.h)
	if o.listener != nil {
		e.srv.Listener = o.listener(e.srv.Listener)
	}
	e.srv.Start()
	// The handler closes first so that its connections end while the
	// room, sfu and database still stand.
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.h.Close)
	e.url = "ws" + strings.TrimPrefix(e.srv.URL, "http")
	return e
}

func (e *env) user(name string, role store.Role) store.User {
	e.t.Helper()
	u := store.User{Name: name, Email: fmt.Sprintf("%s-%d@example.com", name, time.Now().UnixNano()), Role: role}
	if err := e.db.CreateUser(context.Background(), &u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) newClass(svc store.Service, max int) store.LiveClass {
	e.t.Helper()
	now := time.Now()
	c := store.LiveClass{
		Title: "Go concurrency", InstructorID: e.host.ID,
		StartTime: now.Add(-time.Minute), EndTime: now.Add(time.Hour), Duration: 61,
		Service: svc, AccessLevel: store.RoleStudent, MaxParticipants: max,
		Category: "programming", Level: store.LevelBeginner, IsFree: true, Status: store.StatusScheduled,
	}
	if err := e.db.CreateClass(context.Background(), &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// token signs a join token of u for class c.
func (e *env) token(c store.LiveClass, u store.User, role jointoken.Role, mod func(*jointoken.Claims)) string {
	e.t.Helper()
	e.mu.Lock()
	e.tokens++
	n := e.tokens
	e.mu.Unlock()
	now := time.Now()
	cl := jointoken.Claims{
		ClassID: string(c.ID), UserID: string(u.ID), Name: u.Name, Role: role, Service: string(c.Service),
		ID: fmt.Sprintf("tok-%d", n), IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	if mod != nil {
		mod(&cl)
	}
	tok, err := e.signer.Sign(cl)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// msg is one message a client received.
type msg struct {
	raw    []byte
	fields map[string]any
}

func (m msg) typ() string { return m.str("type") }

func (m msg) str(k string) string { s, _ := m.fields[k].(string); return s }

func (m msg) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(m.raw, v); err != nil {
		t.Fatalf("decode %s: %v", m.raw, err)
	}
}

// client is a participant's signalling connection in a test, speaking
// raw frames so that tests can send what no well-behaved client would.
// Its reader records every message; a media participant (rtcClient)
// records into one without a socket of its own.
type client struct {
	t  *testing.T
	ws *websocket.Conn

	mu       sync.Mutex
	msgs     []msg
	closeErr error
	changed  chan struct{}
	nextID   int64
}

// dial connects without joining.
func (e *env) dial(opts *websocket.DialOptions) *client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.url, opts)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: e.t, ws: ws, changed: make(chan struct{})}
	e.t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

// listen starts the reader.
func (c *client) listen() *client {
	go func() {
		for {
			_, b, err := c.ws.Read(context.Background())
			if err != nil {
				c.ended(err)
				return
			}
			c.record(b)
		}
	}()
	return c
}

// newLog returns a client that only records what it is given: the
// message log of a participant whose socket client/rtc owns.
func newLog(t *testing.T) *client {
	return &client{t: t, changed: make(chan struct{})}
}

// record keeps one server message.
func (c *client) record(b []byte) {
	m := msg{raw: b}
	if json.Unmarshal(b, &m.fields) != nil {
		m.fields = map[string]any{}
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// ended records why the connection ended.
func (c *client) ended(err error) {
	c.mu.Lock()
	c.closeErr = err
	close(c.changed)
	c.mu.Unlock()
}

// join dials, sends a join and waits for joined.
func (e *env) join(tok string, muted bool) (*client, Joined) {
	e.t.Helper()
	c := e.dial(nil).listen()
	c.send(map[string]any{"type": "join", "v": 1, "token": tok, "muted": muted})
	var j Joined
	c.wait("joined", nil).decode(e.t, &j)
	return c, j
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("send %s: %v", b, err)
	}
}

// request sends a message with a fresh id and waits for its ok or error.
func (c *client) request(fields map[string]any) msg {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	fields["id"] = id
	c.send(fields)
	return c.wait("", func(m msg) bool {
		n, _ := m.fields["id"].(float64)
		return int64(n) == id && (m.typ() == TypeOK || m.typ() == TypeError)
	})
}

// mustOK is request that fails the test unless the answer is ok.
func (c *client) mustOK(fields map[string]any) msg {
	c.t.Helper()
	typ := fields["type"]
	m := c.request(fields)
	if m.typ() != TypeOK {
		c.t.Fatalf("%v answered %s", typ, m.raw)
	}
	return m
}

// wait returns the first message (of type typ, if not empty) matching
// pred, waiting for it.
func (c *client) wait(typ string, pred func(msg) bool) msg {
	c.t.Helper()
	deadline := time.After(waitTime)
	for {
		c.mu.Lock()
		for _, m := range c.msgs {
			if (typ == "" || m.typ() == typ) && (pred == nil || pred(m)) {
				c.mu.Unlock()
				return m
			}
		}
		ch, closed := c.changed, c.closeErr
		c.mu.Unlock()
		if closed != nil {
			c.t.Fatalf("connection closed (%v) before a %q message; got %s", closed, typ, c.dump())
		}
		select {
		case <-ch:
		case <-deadline:
			c.t.Fatalf("no %q message in %s; got %s", typ, waitTime, c.dump())
		}
	}
}

// count reports how many messages of type typ match pred so far.
func (c *client) count(typ string, pred func(msg) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if m.typ() == typ && (pred == nil || pred(m)) {
			n++
		}
	}
	return n
}

// last returns the latest message of type typ.
func (c *client) last(typ string) (msg, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.msgs) - 1; i >= 0; i-- {
		if c.msgs[i].typ() == typ {
			return c.msgs[i], true
		}
	}
	return msg{}, false
}

func (c *client) dump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for i, m := range c.msgs {
		if i > 30 {
			b.WriteString(" …")
			break
		}
		s := string(m.raw)
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		b.WriteString("\n  " + s)
	}
	return b.String()
}

// closed waits for the server to close the connection and returns the
// close code.
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.closedCh():
	case <-time.After(waitTime):
		c.t.Fatalf("connection still open after %s; got %s", waitTime, c.dump())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return websocket.CloseStatus(c.closeErr)
}

// closedCh returns a channel closed once the reader has stopped.
func (c *client) closedCh() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for {
			c.mu.Lock()
			ch, err := c.changed, c.closeErr
			c.mu.Unlock()
			if err != nil {
				close(done)
				return
			}
			<-ch
		}
	}()
	return done
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitTime)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// smallBuffers shrinks the kernel buffers of the server's accepted
// connections, so that a client that does not read blocks the server's
// writes after a few kilobytes rather than megabytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// tinyReadClient returns an HTTP client whose connections have a small
// receive buffer.
func tinyReadClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(2048)
			}
			return c, err
		},
	}}
}
