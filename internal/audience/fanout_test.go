package audience

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// joinAll joins a viewer for each user, a few at a time.
func (e *env) joinAll(users []store.User) []*client {
	e.t.Helper()
	out := make([]*client, len(users))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(users))
	for i, u := range users {
		tok := e.token(e.class, u, jointoken.RoleAttendee, nil)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), waitTime)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, e.url+"/audience", nil)
			if err != nil {
				errs <- err
				return
			}
			c := &client{t: e.t, ws: ws, changed: make(chan struct{})}
			c.listen()
			b := fmt.Appendf(nil, `{"type":"hello","v":1,"token":%q}`, tok)
			if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
				errs <- err
				return
			}
			out[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatalf("join: %v", err)
	}
	for _, c := range out {
		e.t.Cleanup(func() { _ = c.ws.CloseNow() })
		c.wait(TypeWelcome, nil)
	}
	return out
}

// lastCount is the viewer count a client was last told.
func (c *client) lastCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := -1
	for _, m := range c.msgs {
		switch m.typ() {
		case TypeWelcome:
			n = m.num("viewers")
		case TypeViewers:
			n = m.num("count")
		}
	}
	return n
}

// TestFanout500 is the test: chat, a poll and reactions reach
// 500 WebSocket clients.
func TestFanout500(t *testing.T) {
	const total = 500
	e := newEnv(t, envOptions{opt: func(o *Options) {
		o.ReactionInterval = 250 * time.Millisecond
		o.ResultsInterval = 250 * time.Millisecond
	}})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	viewers := e.joinAll(e.users("v", total-1))
	everyone := append([]*client{host}, viewers...)

	eventually(t, "every client told 500 viewers", func() bool {
		for _, c := range everyone {
			if c.lastCount() != total {
				return false
			}
		}
		return true
	})

	// Chat: the host's and a viewer's message reach all 500.
	host.ok(map[string]any{"type": "chat", "text": "Welcome, all 499 of you"})
	viewers[7].ok(map[string]any{"type": "chat", "text": "hi from v7"})
	for _, c := range everyone {
		c.wait(TypeChat, func(m msg) bool { return m.str("text") == "Welcome, all 499 of you" })
		c.wait(TypeChat, func(m msg) bool { return m.str("text") == "hi from v7" })
	}

	// A poll: everyone sees it; every viewer votes; the host sees the
	// count live, coalesced; everyone sees the results when it closes.
	id := host.ok(map[string]any{"type": "poll.create", "question": "Ready?", "options": []string{"yes", "no"}}).str("poll")
	for _, c := range everyone {
		c.wait(TypePoll, func(m msg) bool { return strings.Contains(string(m.raw), id) })
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, c := range viewers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b := fmt.Appendf(nil, `{"type":"poll.vote","poll":%q,"choices":[%d]}`, id, i%2)
			ctx, cancel := context.WithTimeout(context.Background(), waitTime)
			defer cancel()
			_ = c.ws.Write(ctx, websocket.MessageText, b)
		}()
	}
	wg.Wait()
	host.wait(TypePollResults, func(m msg) bool { return m.num("voters") == total-1 })
	if n := host.count(TypePollResults); n > 100 {
		t.Fatalf("the host got %d results messages for %d votes: not coalesced", n, total-1)
	}
	host.ok(map[string]any{"type": "poll.close", "poll": id})
	for _, c := range everyone {
		c.wait(TypePollResults, func(m msg) bool { return m.num("voters") == total-1 && m.str("poll") == id })
	}

	// Reactions: 200 viewers clap; everyone gets the totals, in a few
	// messages rather than 200.
	for _, c := range viewers[:200] {
		b := []byte(`{"type":"react","emoji":"👏"}`)
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	for _, c := range everyone {
		eventually(t, "200 claps seen", func() bool {
			n := 0
			for _, m := range c.all(TypeReactions) {
				var r reactionsOut
				m.decode(t, &r)
				n += r.Counts["👏"]
			}
			return n == 200
		})
		if n := c.count(TypeReactions); n >= 50 {
			t.Fatalf("%d reactions messages for 200 reactions", n)
		}
	}
	if s := e.hub.Stats(); s.Dropped != 0 || s.Connections != total {
		t.Fatalf("stats = %+v", s)
	}
}

// smallBuffers makes the server's socket buffers tiny, so that a client
// that does not read fills them after a few kilobytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSlowViewer: a viewer that never reads loses messages and is
// disconnected; the others get every message meanwhile.
func TestSlowViewer(t *testing.T) {
	e := newEnv(t, envOptions{
		opt: func(o *Options) {
			o.SendQueue = 16
			o.SlowTimeout = 200 * time.Millisecond
			o.ChatRate.N, o.ChatRate.Per = 10000, time.Second
			o.MessageRate, o.MessageBurst = 10000, 10000
		},
		listener: func(l net.Listener) net.Listener { return smallBuffers{l} },
	})
	host, _ := e.join(e.token(e.class, e.host, jointoken.RoleHost, nil))
	readers := e.joinAll(e.users("r", 5))

	// The slow viewer: a client with a tiny receive buffer that says
	// hello and never reads again.
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	dialer := &net.Dialer{Control: nil}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}}
	slow, _, err := websocket.Dial(ctx, e.url+"/audience", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	slowUser := e.user("slow", store.RoleStudent)
	hello := fmt.Appendf(nil, `{"type":"hello","v":1,"token":%q}`, e.token(e.class, slowUser, jointoken.RoleAttendee, nil))
	if err := slow.Write(ctx, websocket.MessageText, hello); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slow viewer joined", func() bool { return e.hub.Viewers(e.class.ID) == 7 })

	// Messages of a kilobyte, ten at a time, each ten read by every
	// reader before the next: the readers keep up (their queues hold 16),
	// while the slow viewer's socket buffers and queue fill, it loses
	// messages and, behind for longer than SlowTimeout, is disconnected.
	text := strings.Repeat("é", 490)
	n := 0
	for e.hub.Stats().TooSlow == 0 {
		if n >= 2000 {
			t.Fatalf("the slow viewer is still connected after %d messages; stats %+v", n, e.hub.Stats())
		}
		for range 10 {
			host.send(map[string]any{"type": "chat", "text": fmt.Sprintf("%04d %s", n, text)})
			n++
		}
		for _, c := range append(readers, host) {
			eventually(t, "every message read", func() bool { return c.count(TypeChat) == n })
		}
	}
	if errs := host.all(TypeError); len(errs) > 0 {
		t.Fatalf("the host's messages were refused: %s", errs[0].raw)
	}
	eventually(t, "the slow viewer gone", func() bool { return e.hub.Viewers(e.class.ID) == 6 })
	if s := e.hub.Stats(); s.Dropped == 0 {
		t.Fatalf("stats = %+v: nothing dropped", s)
	}
	// Order is kept for the readers.
	for _, c := range readers {
		for i, m := range c.all(TypeChat) {
			if !strings.HasPrefix(m.str("text"), fmt.Sprintf("%04d ", i)) {
				t.Fatalf("message %d is %.10q", i, m.str("text"))
			}
		}
	}
}

// TestLoad runs the load tester small: every message reaches every
// client, and the report adds up.
func TestLoad(t *testing.T) {
	e := newEnv(t, envOptions{})
	users := e.users("l", 40)
	toks := make([]string, len(users))
	for i, u := range users {
		toks[i] = e.token(e.class, u, jointoken.RoleAttendee, nil)
	}
	rep, err := Load(context.Background(), LoadOptions{
		URL: e.url + "/audience", Tokens: toks, Senders: 10, Rate: 20,
		Warmup: 200 * time.Millisecond, Duration: time.Second, Drain: 15 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Joined != 40 || rep.Sent < 10 || rep.Refused != 0 || rep.Received != rep.Expected || rep.Closed != 0 {
		t.Fatalf("report = %+v", rep)
	}
	if rep.P99 <= 0 || rep.P99 > rep.Max+histStep || rep.P50 > rep.P99 {
		t.Fatalf("latencies = %v %v %v", rep.P50, rep.P99, rep.Max)
	}
}
