package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink that the server's goroutines and the test may
// touch at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type pingFunc func(context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

type mountFunc func(*http.ServeMux)

func (f mountFunc) Mount(mux *http.ServeMux) { f(mux) }

func testServer(t *testing.T, opt Options) (*httptest.Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opt.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := httptest.NewServer(New(opt).Handler())
	t.Cleanup(ts.Close)
	return ts, logs
}

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHealthAndReadiness(t *testing.T) {
	var dbErr error
	var mu sync.Mutex
	ts, logs := testServer(t, Options{DB: pingFunc(func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return dbErr
	})})

	resp, body := get(t, ts.URL+"/healthz", nil)
	if resp.StatusCode != 200 || body != `{"status":"ok"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("healthz: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
	resp, body = get(t, ts.URL+"/readyz", nil)
	if resp.StatusCode != 200 || body != `{"status":"ok"}` {
		t.Fatalf("readyz with a database: %d %q", resp.StatusCode, body)
	}

	mu.Lock()
	dbErr = errors.New("dial tcp 10.0.0.5:5432: connection refused")
	mu.Unlock()
	resp, body = get(t, ts.URL+"/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "database unreachable") {
		t.Fatalf("readyz without a database: %d %q", resp.StatusCode, body)
	}
	if strings.Contains(body, "10.0.0.5") {
		t.Fatalf("readyz leaks the cause to the caller: %q", body)
	}
	if !strings.Contains(logs.String(), "10.0.0.5") {
		t.Fatalf("readyz did not log the cause: %s", logs)
	}

	resp, _ = get(t, ts.URL+"/healthz", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("healthz must not depend on the database: %d", resp.StatusCode)
	}
}

func TestRequestID(t *testing.T) {
	ts, logs := testServer(t, Options{Web: mountFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
			Logger(r.Context()).Info("inside handler")
			_, _ = io.WriteString(w, RequestID(r.Context()))
		})
	})})

	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"sane incoming kept", "abc-123_x.y:z", true},
		{"none", "", false},
		{"too long", strings.Repeat("a", 65), false},
		{"log forging", "a\" injected=1", false},
		{"unicode", "ünï", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.incoming != "" {
				h.Set(RequestIDHeader, tt.incoming)
			}
			resp, body := get(t, ts.URL+"/hello", h)
			id := resp.Header.Get(RequestIDHeader)
			if id == "" || body != id {
				t.Fatalf("header %q, context %q", id, body)
			}
			if tt.keep != (id == tt.incoming) {
				t.Fatalf("incoming %q, got %q", tt.incoming, id)
			}
			if seen[id] {
				t.Fatalf("request ID %q reused", id)
			}
			seen[id] = true
			var inside, access bool
			for line := range strings.Lines(logs.String()) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if rec["request_id"] != id {
					continue
				}
				inside = inside || rec["msg"] == "inside handler"
				access = access || (rec["msg"] == "request" && rec["path"] == "/hello" && rec["status"] == float64(200))
			}
			if !inside || !access {
				t.Fatalf("handler log %v, access log %v for %q in:\n%s", inside, access, id, logs)
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	ts, logs := testServer(t, Options{Web: mountFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	})})
	resp, body := get(t, ts.URL+"/boom", nil)
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got struct {
		Error     struct{ Code, Message string }
		RequestID string
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if got.Error.Code != "INTERNAL_SERVER_ERROR" || got.RequestID != resp.Header.Get(RequestIDHeader) {
		t.Fatalf("body %q", body)
	}
	if strings.Contains(body, "kaboom") {
		t.Fatalf("panic value leaked to the client: %q", body)
	}
	if l := logs.String(); !strings.Contains(l, "kaboom") || !strings.Contains(l, `"status":500`) {
		t.Fatalf("panic not logged with its value and the 500:\n%s", l)
	}
	// The server lives on.
	if resp, _ := get(t, ts.URL+"/healthz", nil); resp.StatusCode != 200 {
		t.Fatalf("after panic: %d", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if IsBodyTooLarge(err) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		_, _ = w.Write(b)
	})
	ts, _ := testServer(t, Options{MaxBodyBytes: 100, GraphQL: echo})
	tests := []struct {
		name   string
		body   io.Reader
		status int
	}{
		{"under", strings.NewReader(strings.Repeat("a", 100)), 200},
		{"declared over", strings.NewReader(strings.Repeat("a", 101)), 413},
		// No Content-Length: the limit still holds while reading.
		{"chunked over", io.MultiReader(strings.NewReader(strings.Repeat("a", 101))), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(ts.URL+"/graphql", "application/json", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func TestSecurityHeadersAndAuth(t *testing.T) {
	ts, _ := testServer(t, Options{
		Authenticate: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Test-Authenticated", "yes")
				next.ServeHTTP(w, r)
			})
		},
		Auth: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				w.WriteHeader(http.StatusMethodNotAllowed)
				return
			}
			w.WriteHeader(204)
		}),
	})
	resp, _ := get(t, ts.URL+"/healthz", nil)
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "strict-origin-when-cross-origin",
		"Content-Security-Policy": contentSecurityPolicy,
		"X-Test-Authenticated":    "yes",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(contentSecurityPolicy, "default-src 'self'") {
		t.Errorf("CSP must allow only self: %q", contentSecurityPolicy)
	}
	if resp, _ := get(t, ts.URL+"/auth/login", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /auth/login: %d, want 405", resp.StatusCode)
	}
	r, err := http.Post(ts.URL+"/auth/login", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 204 {
		t.Errorf("POST /auth/login: %d", r.StatusCode)
	}
}

// TestHijackThroughMiddleware checks that the WebSocket path (a hijacked
// connection) survives the access log's response wrapper.
func TestHijackThroughMiddleware(t *testing.T) {
	ts, logs := testServer(t, Options{GraphQL: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhello")
		_ = rw.Flush()
	})})
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /graphql HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// After a 101 the connection is the upgraded protocol's.
	b, _ := io.ReadAll(br)
	if string(b) != "hello" {
		t.Fatalf("body %q", b)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), `"path":"/graphql"`) })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServeShutdownNoLeak starts and stops a real server: a request in
// flight at shutdown completes, Serve returns nil, and no goroutine
// outlives it.
func TestServeShutdownNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()

	entered := make(chan struct{})
	release := make(chan struct{})
	srv := New(Options{ShutdownTimeout: 5 * time.Second, Web: mountFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		})
	})})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	client := &http.Client{Transport: &http.Transport{}}
	base := "http://" + ln.Addr().String()
	for range 5 {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	slow := make(chan string, 1)
	go func() {
		resp, err := client.Get(base + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-entered
	cancel()
	// Shutdown has begun once new connections are refused.
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if got := <-slow; got != "done" {
		t.Fatalf("in-flight request: %q", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	client.CloseIdleConnections()

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines before, %d after shutdown:\n%s", before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkHealthzThroughMiddleware(b *testing.B) {
	h := New(Options{}).Handler()
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
	}
}

// TestRTCBypassesSignInAndBodyLimit checks the signalling route: a request
// the sign-in middleware would refuse, with a declared body over the limit,
// still reaches the RTC handler, which takes the connection over through
// the outer middleware (request ID, access log). Other methods on the path
// go to the application as before.
func TestRTCBypassesSignInAndBodyLimit(t *testing.T) {
	ts, logs := testServer(t, Options{
		MaxBodyBytes: 16,
		Authenticate: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
			})
		},
		RTC: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer conn.Close()
			_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = rw.Flush()
			// Echo lines until the client goes: a long-lived conversation.
			for {
				line, err := rw.ReadString('\n')
				if err != nil {
					return
				}
				_, _ = rw.WriteString("echo " + line)
				_ = rw.Flush()
			}
		}),
	})
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET "+RTCPath+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 1000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("GET %s: status %d, want 101 (sign-in and body limit must not apply)", RTCPath, resp.StatusCode)
	}
	for _, msg := range []string{"one\n", "two\n"} {
		_, _ = io.WriteString(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != "echo "+msg {
			t.Fatalf("after the upgrade: %q, %v", got, err)
		}
	}
	conn.Close()
	// The access log saw it, with a request ID: the outer chain ran.
	waitFor(t, func() bool { return strings.Contains(logs.String(), `"path":"`+RTCPath+`"`) })
	if !strings.Contains(logs.String(), `"request_id"`) {
		t.Errorf("access log without request ID:\n%s", logs)
	}

	// Only GET is the signalling route; the rest is the application's,
	// behind sign-in.
	r, err := http.Post(ts.URL+RTCPath, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST %s: %d, want the application's 401", RTCPath, r.StatusCode)
	}
	// Without an RTC handler the path is the application's too.
	plain, _ := testServer(t, Options{})
	if resp, _ := get(t, plain.URL+RTCPath, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s with no RTC handler: %d, want 404", RTCPath, resp.StatusCode)
	}
}

// TestBroadcastRoutesBypassSignIn checks that WHIP, WHEP, HLS and the
// audience socket reach their handlers with a credential the sign-in
// middleware would refuse and a body over the application's limit, each
// handler checking its own credential; everything else stays behind
// sign-in.
func TestBroadcastRoutesBypassSignIn(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("%s: read body: %v", name, err)
			}
			w.Header().Set("X-Handler", name)
			_, _ = io.WriteString(w, name+" "+r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization")+" "+strings.Repeat("+", len(b)/1000))
		})
	}
	ts, _ := testServer(t, Options{
		MaxBodyBytes: 16,
		Authenticate: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
			})
		},
		Broadcast: named("broadcast"),
		HLS:       named("hls"),
		Audience:  named("audience"),
	})
	offer := strings.Repeat("a", 4000) // over the application's 16 bytes
	for _, tc := range []struct {
		method, path, body, want string
	}{
		{http.MethodPost, "/whip/c1", offer, "broadcast POST /whip/c1 Bearer stream-key ++++"},
		{http.MethodDelete, "/whip/c1/r1", "", "broadcast DELETE /whip/c1/r1 Bearer stream-key "},
		{http.MethodPatch, "/whip/c1/r1", "", "broadcast PATCH /whip/c1/r1 Bearer stream-key "},
		{http.MethodOptions, "/whep/c1", "", "broadcast OPTIONS /whep/c1 Bearer stream-key "},
		{http.MethodPost, "/whep/c1", offer, "broadcast POST /whep/c1 Bearer stream-key ++++"},
		{http.MethodGet, "/hls/c1/index.m3u8", "", "hls GET /hls/c1/index.m3u8 Bearer stream-key "},
		{http.MethodGet, "/audience", "", "audience GET /audience Bearer stream-key "},
	} {
		req, err := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer stream-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != tc.want {
			t.Errorf("%s %s: %d %q, want 200 %q", tc.method, tc.path, resp.StatusCode, b, tc.want)
		}
		if resp.Header.Get(RequestIDHeader) == "" {
			t.Errorf("%s %s: no request ID: the outer middleware did not run", tc.method, tc.path)
		}
	}
	// POST /audience is the application's, behind sign-in.
	r, err := http.Post(ts.URL+"/audience", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /audience: %d, want the application's 401", r.StatusCode)
	}
}
