package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"
)

// RequestIDHeader carries the request ID in and out.
const RequestIDHeader = "X-Request-ID"

type ctxKey int

const (
	loggerKey ctxKey = iota
	requestIDKey
)

// Logger returns the request's logger (it carries request_id), or a
// logger that discards when ctx is not a request's.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// RequestID returns the request's ID, or "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// middleware wraps the mux; the first in the list runs first.
func (s *Server) middleware(h http.Handler) http.Handler {
	if s.opt.Authenticate != nil {
		h = s.opt.Authenticate(h)
	}
	h = s.limitBody(h)
	h = s.front(h)
	h = securityHeaders(h)
	h = s.recoverPanics(h)
	h = s.accessLog(h)
	h = s.requestID(h)
	return h
}

// idSource makes request IDs from a random per-process prefix and a
// counter: unique across restarts, and far cheaper per request than
// reading the random source each time.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &idSource{prefix: hex.EncodeToString(b) + "-"}
}

func (s *idSource) next() string {
	return s.prefix + strconv.FormatUint(s.n.Add(1), 10)
}

// saneRequestID accepts an incoming ID from a proxy when it is short and
// made of characters that cannot forge log lines or headers.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = s.ids.next()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = context.WithValue(ctx, loggerKey, s.log.With("request_id", id))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusWriter records the status and size for the access log. It passes
// Flush and Hijack through (via Unwrap and http.ResponseController), which
// streaming responses and WebSocket upgrades need.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets streaming handlers that type-assert http.Flusher work.
func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			// Hijacked (WebSocket) or nothing written: net/http sends 200.
			status = http.StatusOK
		}
		log := Logger(r.Context())
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status < 300 && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz"):
			// Probes come every few seconds from every load balancer;
			// successful ones would drown the log.
			level = slog.LevelDebug
		}
		log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", sw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				// The handler's way to drop the connection; net/http handles it.
				panic(v)
			}
			Logger(r.Context()).Error("panic serving request", "panic", v, "stack", string(debug.Stack()))
			body, _ := json.Marshal(map[string]any{
				"error":     map[string]string{"code": "INTERNAL_SERVER_ERROR", "message": "internal error"},
				"requestId": RequestID(r.Context()),
			})
			// If the handler already wrote headers this cannot change the
			// status; the client sees a truncated response, the log the cause.
			writeJSON(w, http.StatusInternalServerError, string(body))
		}()
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows only the server's own origin: no inline
// scripts, no third-party code, no framing.
const contentSecurityPolicy = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.opt.MaxBodyBytes {
			writeJSON(w, http.StatusRequestEntityTooLarge, `{"error":{"code":"BAD_USER_INPUT","message":"request body too large"}}`)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// IsBodyTooLarge reports whether err came from reading past the body limit.
func IsBodyTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
