package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/liveclass/liveclass/internal/auth"
)

// wsMessage is a graphql-transport-ws message.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan wsMessage
}

// dialWS opens a graphql-transport-ws connection and completes
// connection_init with payload (nil: none).
func (e *env) dialWS(t *testing.T, header http.Header, payload map[string]any) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/graphql"
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
		HTTPHeader:   header,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &wsClient{t: t, conn: conn, msgs: make(chan wsMessage, 64)}
	t.Cleanup(func() { _ = conn.Close(websocket.StatusNormalClosure, "") })
	go func() {
		defer close(c.msgs)
		for {
			var m wsMessage
			if err := wsjson.Read(context.Background(), conn, &m); err != nil {
				return
			}
			if m.Type == "ping" {
				_ = wsjson.Write(context.Background(), conn, wsMessage{Type: "pong"})
				continue
			}
			c.msgs <- m
		}
	}()
	init := wsMessage{Type: "connection_init"}
	if payload != nil {
		init.Payload, _ = json.Marshal(payload)
	}
	c.send(init)
	if m := c.next(); m.Type != "connection_ack" {
		t.Fatalf("connection_init: got %s %s", m.Type, m.Payload)
	}
	return c
}

func (c *wsClient) send(m wsMessage) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := wsjson.Write(ctx, c.conn, m); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	c.send(wsMessage{ID: id, Type: "subscribe", Payload: p})
}

// next waits for the next message, failing after a deadline.
func (c *wsClient) next() wsMessage {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatal("connection closed")
		}
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatal("no message within 10s")
	}
	return wsMessage{}
}

// subscribeOutcome subscribes and reports "ok" once the subscription is
// registered with the broker, or the error code the server answers with.
func (e *env) subscribeOutcome(c *wsClient, id, query string) string {
	c.t.Helper()
	before := e.broker.Subscribers()
	c.subscribe(id, query, nil)
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m := <-c.msgs:
			if m.Type == "complete" && m.ID != id {
				continue // the end of an earlier, failed subscription
			}
			if m.ID != id {
				c.t.Fatalf("unexpected message %s %s", m.Type, m.Payload)
			}
			var errs []gqlError
			if m.Type == "error" && json.Unmarshal(m.Payload, &errs) == nil && len(errs) > 0 {
				code, _ := errs[0].Extensions["code"].(string)
				return code
			}
			var r gqlResponse
			if m.Type == "next" && json.Unmarshal(m.Payload, &r) == nil && len(r.Errors) > 0 {
				return r.code()
			}
			c.t.Fatalf("unexpected message %s %s", m.Type, m.Payload)
		case <-tick.C:
			if e.broker.Subscribers() > before {
				return ok
			}
		case <-deadline:
			c.t.Fatalf("subscription %s neither started nor failed", id)
		}
	}
}

// TestSubscriptionMatrix subscribes to every subscription of the schema
// as each actor: classes are public; enrollments, recordings and users
// need a sign-in, and their events are filtered per subscriber.
func TestSubscriptionMatrix(t *testing.T) {
	subs := []struct {
		field string
		want  want
	}{
		{"onCreateLiveClass", want{ok, ok, ok, ok, ok}},
		{"onUpdateLiveClass", want{ok, ok, ok, ok, ok}},
		{"onDeleteLiveClass", want{ok, ok, ok, ok, ok}},
		{"onCreateLiveClassEnrollment", want{unauth, ok, ok, ok, ok}},
		{"onUpdateLiveClassEnrollment", want{unauth, ok, ok, ok, ok}},
		{"onDeleteLiveClassEnrollment", want{unauth, ok, ok, ok, ok}},
		{"onCreateLiveClassRecording", want{unauth, ok, ok, ok, ok}},
		{"onUpdateLiveClassRecording", want{unauth, ok, ok, ok, ok}},
		{"onDeleteLiveClassRecording", want{unauth, ok, ok, ok, ok}},
		{"onCreateUser", want{unauth, ok, ok, ok, ok}},
		{"onUpdateUser", want{unauth, ok, ok, ok, ok}},
		{"onDeleteUser", want{unauth, ok, ok, ok, ok}},
	}
	for i, actor := range actorNames {
		t.Run(actor, func(t *testing.T) {
			// A fresh server each: subscriptions of a closed connection
			// leave the broker asynchronously, which would blur the count.
			e := newEnv(t, envOptions{})
			var payload map[string]any
			if tok := e.tokens[actor]; tok != "" {
				payload = map[string]any{"Authorization": "Bearer " + tok}
			}
			c := e.dialWS(t, nil, payload)
			for n, s := range subs {
				got := e.subscribeOutcome(c, fmt.Sprint(n), "subscription { "+s.field+" { id } }")
				if got != s.want[i] {
					t.Errorf("%s as %s: got %s, want %s", s.field, actor, got, s.want[i])
				}
			}
		})
	}
}

// TestOnUpdateLiveClass shows a dashboard receiving a class's update over
// graphql-transport-ws after an updateLiveClass mutation, with the
// subscription's filter applied.
func TestOnUpdateLiveClass(t *testing.T) {
	e := newEnv(t, envOptions{})
	watched := e.newClass(classSpec{startIn: time.Hour})
	other := e.newClass(classSpec{startIn: time.Hour})
	c := e.dialWS(t, nil, nil) // anonymous: classes are public
	if got := e.subscribeOutcome(c, "1", fmt.Sprintf(`subscription { onUpdateLiveClass(filter: {id: {eq: %q}}) { id title isUpcoming instructor { name } } }`, watched.ID)); got != ok {
		t.Fatalf("subscribe: %s", got)
	}
	for _, cl := range []string{string(other.ID), string(watched.ID)} {
		r := e.do(mentorOwn, `mutation($id: ID!) { updateLiveClass(input: {id: $id, title: "Now with generics"}) { id } }`, map[string]any{"id": cl})
		e.mustOK(r, nil)
	}
	m := c.next()
	if m.Type != "next" || m.ID != "1" {
		t.Fatalf("got %s %s", m.Type, m.Payload)
	}
	var got struct {
		Data struct {
			OnUpdateLiveClass struct {
				ID         string
				Title      string
				IsUpcoming bool
				Instructor struct{ Name string }
			}
		}
	}
	if err := json.Unmarshal(m.Payload, &got); err != nil {
		t.Fatal(err)
	}
	u := got.Data.OnUpdateLiveClass
	if u.ID != string(watched.ID) || u.Title != "Now with generics" || !u.IsUpcoming || u.Instructor.Name != e.users[mentorOwn].Name {
		t.Errorf("event %+v, want the watched class renamed, upcoming, with its instructor", u)
	}
}

// TestEnrollmentEventsReachOnlyThoseWhoMaySee: the class's instructor sees
// a student's enrollment, another mentor does not (the first event the
// other mentor receives is their own enrollment, published later).
func TestEnrollmentEventsReachOnlyThoseWhoMaySee(t *testing.T) {
	e := newEnv(t, envOptions{})
	cl := e.newClass(classSpec{startIn: time.Hour})
	own := e.dialWS(t, nil, map[string]any{"authToken": e.tokens[mentorOwn]})
	other := e.dialWS(t, nil, map[string]any{"token": e.tokens[mentorOther]})
	q := "subscription { onCreateLiveClassEnrollment { userId liveClassId } }"
	if e.subscribeOutcome(own, "a", q) != ok || e.subscribeOutcome(other, "b", q) != ok {
		t.Fatal("subscribe failed")
	}
	e.enroll(student, cl)
	e.enroll(mentorOther, e.newClass(classSpec{instructor: admin, startIn: time.Hour}))
	userOf := func(m wsMessage) string {
		var r struct {
			Data struct{ OnCreateLiveClassEnrollment struct{ UserID string } }
		}
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatal(err)
		}
		return r.Data.OnCreateLiveClassEnrollment.UserID
	}
	if got := userOf(own.next()); got != string(e.users[student].ID) {
		t.Errorf("instructor got the enrollment of %s, want the student's", got)
	}
	if got := userOf(other.next()); got != string(e.users[mentorOther].ID) {
		t.Errorf("other mentor first got the enrollment of %s, want only their own", got)
	}
}

// TestWebSocketCookieAuth: the session cookie authenticates an upgrade
// from the same origin; from a foreign origin the socket is anonymous.
func TestWebSocketCookieAuth(t *testing.T) {
	e := newEnv(t, envOptions{})
	host := strings.TrimPrefix(e.srv.URL, "http://")
	for _, tc := range []struct {
		origin string
		want   string
	}{
		{"http://" + host, ok},
		{"https://evil.example", unauth},
	} {
		h := http.Header{}
		h.Set("Cookie", auth.CookieName+"="+e.tokens[student])
		h.Set("Origin", tc.origin)
		c := e.dialWS(t, h, nil)
		if got := e.subscribeOutcome(c, "1", "subscription { onUpdateUser { id } }"); got != tc.want {
			t.Errorf("origin %s: got %s, want %s", tc.origin, got, tc.want)
		}
	}
}

// TestWebSocketBadToken: a wrong token in connection_init closes the
// connection instead of leaving it anonymous.
func TestWebSocketBadToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := wsjson.Write(ctx, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer nope"}}); err != nil {
		t.Fatal(err)
	}
	var m wsMessage
	err = wsjson.Read(ctx, conn, &m)
	if err == nil && m.Type == "connection_ack" {
		t.Fatalf("connection acknowledged with a bad token")
	}
	if status := websocket.CloseStatus(err); err != nil && status == -1 {
		t.Fatalf("read: %v", err)
	}
}
