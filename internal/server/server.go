// Package server is liveclass's HTTP front door: the route table, the
// middleware every request passes through (request ID, access log, panic
// recovery, security headers, body limit, sign-in; the live classes'
// signalling WebSocket, the broadcast endpoints (WHIP, WHEP, HLS, the
// audience WebSocket) skip the last two), health and readiness,
// and the http.Server with its timeouts and graceful shutdown. It knows the
// other components only as http.Handlers and small interfaces, so that the
// wiring in internal/cli decides what stands behind each route.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Pinger reports whether the database answers (store.Store has it).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Mounter adds its own routes to the mux (the web UI).
type Mounter interface {
	Mount(mux *http.ServeMux)
}

// Options configures a Server; nil handlers leave their routes out.
type Options struct {
	// Log receives the access log and server errors.
	Log *slog.Logger
	// DB is pinged by /readyz.
	DB Pinger
	// Auth serves /auth/ (sign-up, sign-in, sign-out).
	Auth http.Handler
	// GraphQL serves /graphql (queries, mutations and the WebSocket
	// upgrade for subscriptions).
	GraphQL http.Handler
	// Web mounts the browser UI's pages and /static/.
	Web Mounter
	// RTC serves GET /rtc, the signalling WebSocket of live classes. It
	// bypasses Authenticate (the join token comes in the first message,
	// not in a cookie or header) and the body limit (a WebSocket has no
	// body; its messages are capped by the handler).
	RTC http.Handler
	// Broadcast serves WHIP under /whip/ and WHEP under /whep/, with their
	// CORS preflights. Like RTC it bypasses Authenticate (each request
	// carries its own Bearer credential: a stream key or a join token)
	// and the body limit (it caps SDP offers itself).
	Broadcast http.Handler
	// HLS serves GET /hls/ (playlists and segments, each URL signed). It
	// bypasses Authenticate: a CDN in front fetches without cookies.
	HLS http.Handler
	// Audience serves GET /audience, the broadcast audience WebSocket; the
	// join token comes in its first message, as for RTC.
	Audience http.Handler
	// Authenticate puts the signed-in actor into each request's context
	// (auth.Service.Middleware); nil leaves every request anonymous.
	Authenticate func(http.Handler) http.Handler
	// MaxBodyBytes caps request bodies; 1 MiB when zero.
	MaxBodyBytes int64
	// ShutdownTimeout bounds the wait for requests in flight on shutdown;
	// 10 s when zero.
	ShutdownTimeout time.Duration
	// ReadyTimeout bounds the database ping of /readyz; 2 s when zero.
	ReadyTimeout time.Duration
}

// Where the handlers that bypass the sign-in are mounted.
const (
	// RTCPath is where Options.RTC is mounted; the live page connects there.
	RTCPath = "/rtc"
	// WHIPPath and WHEPPath prefix Options.Broadcast's endpoints.
	WHIPPath = "/whip/"
	WHEPPath = "/whep/"
	// HLSPath prefixes Options.HLS.
	HLSPath = "/hls/"
	// AudiencePath is where Options.Audience is mounted.
	AudiencePath = "/audience"
)

// Server serves liveclass over HTTP.
type Server struct {
	opt     Options
	log     *slog.Logger
	handler http.Handler
	ids     *idSource
}

// New returns a server; it does not listen until Serve.
func New(opt Options) *Server {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.MaxBodyBytes == 0 {
		opt.MaxBodyBytes = 1 << 20
	}
	if opt.ShutdownTimeout == 0 {
		opt.ShutdownTimeout = 10 * time.Second
	}
	if opt.ReadyTimeout == 0 {
		opt.ReadyTimeout = 2 * time.Second
	}
	s := &Server{opt: opt, log: opt.Log, ids: newIDSource()}
	s.handler = s.middleware(s.routes())
	return s
}

// front splits off the routes that must not pass the application's
// middleware (sign-in, body limit) before app, which gets everything else.
// Both sides still pass the outer chain: request ID, access log, panic
// recovery, security headers.
func (s *Server) front(app http.Handler) http.Handler {
	if s.opt.RTC == nil && s.opt.Broadcast == nil && s.opt.HLS == nil && s.opt.Audience == nil {
		return app
	}
	mux := http.NewServeMux()
	if s.opt.RTC != nil {
		mux.Handle("GET "+RTCPath, s.opt.RTC)
	}
	if s.opt.Broadcast != nil {
		// Every method: the handler answers POST, DELETE, OPTIONS and
		// refuses the others (PATCH, as a server without trickle does)
		// with 405 and Allow itself.
		mux.Handle(WHIPPath, s.opt.Broadcast)
		mux.Handle(WHEPPath, s.opt.Broadcast)
	}
	if s.opt.HLS != nil {
		mux.Handle(HLSPath, s.opt.HLS)
	}
	if s.opt.Audience != nil {
		mux.Handle("GET "+AudiencePath, s.opt.Audience)
	}
	mux.Handle("/", app)
	return mux
}

// Handler is the whole server as one handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// routes is the route table: every path liveclass serves starts here,
// except RTCPath, the broadcast endpoints, HLS and the audience socket,
// which front mounts before sign-in.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.opt.Auth != nil {
		// POST /auth/signup, /auth/login, /auth/logout; the handler routes
		// within /auth/ and answers other methods itself.
		mux.Handle("/auth/", s.opt.Auth)
	}
	if s.opt.GraphQL != nil {
		// GET carries the WebSocket upgrade for subscriptions (and queries
		// in the URL); POST the usual requests; OPTIONS the CORS preflight.
		mux.Handle("/graphql", s.opt.GraphQL)
	}
	if s.opt.Web != nil {
		s.opt.Web.Mount(mux)
	}
	return mux
}

// Serve accepts connections on ln until ctx ends, then shuts down
// gracefully: it stops accepting, waits up to ShutdownTimeout for
// requests in flight, and returns. A clean shutdown returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: s.handler,
		// Slow-loris protection. There is no ReadTimeout or WriteTimeout:
		// they would also cut the long-lived WebSocket connections of
		// subscriptions and of live classes (/rtc), and request bodies are
		// capped by MaxBodyBytes. With ReadTimeout zero, net/http clears
		// the header deadline once the headers are in, so a hijacked
		// connection carries no deadline; IdleTimeout applies only between
		// requests of a kept-alive connection, never to a hijacked one.
		// The WebSocket handlers keep their connections alive with pings.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	// Requests do not inherit ctx's cancellation, so that a shutdown lets
	// them finish; base is cancelled only once they have, which ends the
	// hijacked WebSocket connections that Shutdown does not wait for.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv.BaseContext = func(net.Listener) context.Context { return base }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.opt.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("requests still in flight at the shutdown deadline; closing them")
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, `{"status":"ok"}`)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opt.DB == nil {
		writeJSON(w, http.StatusOK, `{"status":"ok"}`)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.ReadyTimeout)
	defer cancel()
	if err := s.opt.DB.Ping(ctx); err != nil {
		// The cause goes to the log, not to whoever asks: it may name hosts.
		Logger(r.Context()).Warn("readiness: database unreachable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, `{"status":"unavailable","reason":"database unreachable"}`)
		return
	}
	writeJSON(w, http.StatusOK, `{"status":"ok"}`)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
