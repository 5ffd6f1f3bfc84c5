package keepalive

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// pair returns the server's side of a WebSocket and the client's.
func pair(t *testing.T) (server, client *websocket.Conn) {
	t.Helper()
	conns := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		conns <- ws
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = client.CloseNow() })
	select {
	case server = <-conns:
	case <-ctx.Done():
		t.Fatal("no connection accepted")
	}
	t.Cleanup(func() { _ = server.CloseNow() })
	return server, client
}

// run starts Run and returns where its result arrives.
func run(ws *websocket.Conn, period time.Duration, done <-chan struct{}) <-chan error {
	res := make(chan error, 1)
	go func() { res <- Run(ws, period, done) }()
	return res
}

func wait(t *testing.T, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

func TestAnsweredPingsKeepGoingUntilDone(t *testing.T) {
	server, client := pair(t)
	// Both sides read, as the callers' read loops do, so pings are answered.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server.CloseRead(ctx)
	client.CloseRead(ctx)
	done := make(chan struct{})
	// A period long enough for a pong on a loaded machine, watched for
	// four of them.
	res := run(server, 250*time.Millisecond, done)
	select {
	case err := <-res:
		t.Fatalf("Run returned %v while the peer answered", err)
	case <-time.After(time.Second):
	}
	close(done)
	if err := wait(t, res); err != nil {
		t.Fatalf("Run after done = %v, want nil", err)
	}
}

func TestUnansweredPingEnds(t *testing.T) {
	server, client := pair(t)
	// The server reads, so that its pong waits work; the client never
	// reads, so it never answers.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server.CloseRead(ctx)
	_ = client
	if err := wait(t, run(server, 20*time.Millisecond, make(chan struct{}))); err == nil {
		t.Fatal("Run = nil for a peer that does not answer")
	}
}
