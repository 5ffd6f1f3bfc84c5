package audience

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// waitTime bounds every wait of these tests: generous, because a machine
// running other suites at once can starve 500 clients under -race for
// tens of seconds; a passing run never waits for it.
const waitTime = 60 * time.Second

// env is an audience hub over real parts: a SQLite file, a join-token
// signer, and the hub behind an HTTP server on a random port.
type env struct {
	t      *testing.T
	db     *sqlite.DB
	signer *jointoken.Signer
	hub    *Hub
	srv    *httptest.Server
	url    string
	class  store.LiveClass
	host   store.User
	tokens atomic.Int64
	opt    Options

	countMu sync.Mutex
	counts  []int // what OnCount was told, in order
}

type envOptions struct {
	opt      func(*Options)
	listener func(net.Listener) net.Listener
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audience.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	signer, err := jointoken.NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, signer: signer}
	e.host = e.user("host", store.RoleMentor)
	e.class = e.newClass(store.ServiceIVS)
	e.opt = Options{
		Store: db, Tokens: signer, Logger: log,
		OnCount: func(_ store.ClassID, n int) {
			e.countMu.Lock()
			e.counts = append(e.counts, n)
			e.countMu.Unlock()
		},
		// Keepalive is not what these tests test: a starved client
		// missing a pong must not leave a class.
		PingInterval:     time.Minute,
		ReactionInterval: 100 * time.Millisecond,
		ResultsInterval:  100 * time.Millisecond,
		CountInterval:    100 * time.Millisecond,
	}
	if o.opt != nil {
		o.opt(&e.opt)
	}
	e.start(o.listener)
	return e
}

// start serves a new hub over the env's database.
func (e *env) start(listener func(net.Listener) net.Listener) {
	e.t.Helper()
	var err error
	if e.hub, err = NewHub(e.opt); err != nil {
		e.t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(e.hub)
	if listener != nil {
		e.srv.Listener = listener(e.srv.Listener)
	}
	e.srv.Start()
	// The hub closes first, so that its connections end (and write their
	// attendance) while the database still stands.
	e.t.Cleanup(e.srv.Close)
	e.t.Cleanup(e.hub.Close)
	e.url = "ws" + strings.TrimPrefix(e.srv.URL, "http")
}

// restart stops the hub and serves a new one over the same database, as
// a restarted process would.
func (e *env) restart() {
	e.t.Helper()
	e.hub.Close()
	e.srv.Close()
	e.start(nil)
}

func (e *env) user(name string, role store.Role) store.User {
	e.t.Helper()
	u := store.User{Name: name, Email: fmt.Sprintf("%s-%d@example.com", name, time.Now().UnixNano()), Role: role}
	if err := e.db.CreateUser(context.Background(), &u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// users creates n students in one go.
func (e *env) users(prefix string, n int) []store.User {
	e.t.Helper()
	out := make([]store.User, n)
	for i := range out {
		out[i] = e.user(fmt.Sprintf("%s%d", prefix, i), store.RoleStudent)
	}
	return out
}

func (e *env) newClass(svc store.Service) store.LiveClass {
	e.t.Helper()
	now := time.Now()
	c := store.LiveClass{
		Title: "Broadcast Go", InstructorID: e.host.ID,
		StartTime: now.Add(-time.Minute), EndTime: now.Add(time.Hour), Duration: 61,
		Service: svc, AccessLevel: store.RoleStudent, MaxParticipants: 5000,
		Category: "programming", Level: store.LevelBeginner, IsFree: true, Status: store.StatusLive,
	}
	if err := e.db.CreateClass(context.Background(), &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// token signs a join token of u for class c.
func (e *env) token(c store.LiveClass, u store.User, role jointoken.Role, mod func(*jointoken.Claims)) string {
	e.t.Helper()
	now := time.Now()
	cl := jointoken.Claims{
		ClassID: string(c.ID), UserID: string(u.ID), Name: u.Name, Role: role, Service: string(c.Service),
		ID: fmt.Sprintf("tok-%d", e.tokens.Add(1)), IssuedAt: now, ExpiresAt: now.Add(time.Hour),
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

func (m msg) num(k string) int { f, _ := m.fields[k].(float64); return int(f) }

func (m msg) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(m.raw, v); err != nil {
		t.Fatalf("decode %s: %v", m.raw, err)
	}
}

// client is an audience connection in a test, speaking raw frames. Its
// reader records every message (a frame may hold several, one a line).
type client struct {
	t  *testing.T
	ws *websocket.Conn

	mu       sync.Mutex
	msgs     []msg
	closeErr error
	changed  chan struct{}
	nextID   int64
}

// dial connects without saying hello.
func (e *env) dial() *client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.url+"/audience", nil)
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
			for line := range bytes.SplitSeq(b, []byte{'\n'}) {
				c.record(line)
			}
		}
	}()
	return c
}

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

func (c *client) ended(err error) {
	c.mu.Lock()
	c.closeErr = err
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// join dials, says hello with tok and waits for the welcome.
func (e *env) join(tok string) (*client, welcome) {
	e.t.Helper()
	c := e.dial().listen()
	c.send(map[string]any{"type": "hello", "v": 1, "token": tok})
	var w welcome
	c.wait(TypeWelcome, nil).decode(e.t, &w)
	return c, w
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
		c.t.Fatalf("send: %v", err)
	}
}

// request sends v with a fresh id and returns the ok or error answering it.
func (c *client) request(v map[string]any) msg {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.mu.Unlock()
	v["id"] = id
	c.send(v)
	return c.wait("", func(m msg) bool {
		return (m.typ() == TypeOK || m.typ() == TypeError) && int64(m.num("id")) == id
	})
}

// ok sends v and fails the test unless it is answered ok.
func (c *client) ok(v map[string]any) msg {
	c.t.Helper()
	m := c.request(v)
	if m.typ() != TypeOK {
		c.t.Fatalf("%v: got %s", v, m.raw)
	}
	return m
}

// refused sends v and checks it is refused with code (and reason, if set).
func (c *client) refused(v map[string]any, code, reason string) msg {
	c.t.Helper()
	m := c.request(v)
	if m.typ() != TypeError || m.str("code") != code || (reason != "" && m.str("reason") != reason) {
		c.t.Fatalf("%v: got %s, want error %s %s", v, m.raw, code, reason)
	}
	if m.str("message") == "" {
		c.t.Fatalf("%v: error without a message: %s", v, m.raw)
	}
	return m
}

// wait returns the first message of type typ (any type when empty) that
// match accepts (any when nil), waiting for it.
func (c *client) wait(typ string, match func(msg) bool) msg {
	c.t.Helper()
	deadline := time.NewTimer(waitTime)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for _, m := range c.msgs {
			if (typ == "" || m.typ() == typ) && (match == nil || match(m)) {
				c.mu.Unlock()
				return m
			}
		}
		ch, closed := c.changed, c.closeErr
		c.mu.Unlock()
		if closed != nil {
			c.t.Fatalf("connection closed (%v) before a %q message", closed, typ)
		}
		select {
		case <-ch:
		case <-deadline.C:
			c.t.Fatalf("no %q message within %s; got %d messages", typ, waitTime, c.count(""))
		}
	}
}

// all returns the messages of type typ received so far.
func (c *client) all(typ string) []msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []msg
	for _, m := range c.msgs {
		if m.typ() == typ {
			out = append(out, m)
		}
	}
	return out
}

func (c *client) count(typ string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if typ == "" {
		return len(c.msgs)
	}
	n := 0
	for _, m := range c.msgs {
		if m.typ() == typ {
			n++
		}
	}
	return n
}

// closed waits for the connection to end and returns its close code.
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	deadline := time.NewTimer(waitTime)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		err, ch := c.closeErr, c.changed
		c.mu.Unlock()
		if err != nil {
			return websocket.CloseStatus(err)
		}
		select {
		case <-ch:
		case <-deadline.C:
			c.t.Fatal("the connection did not close")
		}
	}
}

// refusedHello dials, sends hello (or any first message) and returns the
// error and close code it gets.
func (e *env) refusedHello(first any) (msg, websocket.StatusCode) {
	e.t.Helper()
	c := e.dial().listen()
	c.send(first)
	code := c.closed()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) != 1 || c.msgs[0].typ() != TypeError {
		e.t.Fatalf("refused hello: got %d messages %v, want one error", len(c.msgs), c.msgs)
	}
	return c.msgs[0], code
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitTime)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
