package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// CookieName is the session cookie's name.
const CookieName = "liveclass_session"

// CSRFHeader and CSRFField carry the CSRF token of a cookie-authenticated
// unsafe request: the header for scripts, the form field for plain forms.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// maxBody bounds the JSON bodies of the /auth endpoints.
const maxBody = 64 << 10

// The paths the Handler serves. Sign-in and sign-up are exempt from the
// CSRF check: the caller has no session whose token could be checked yet.
const (
	PathSignup = "/auth/signup"
	PathLogin  = "/auth/login"
	PathLogout = "/auth/logout"
)

// UserJSON is how the /auth endpoints show a user: the caller's own
// record, so the email is included.
type UserJSON struct {
	ID        store.UserID `json:"id"`
	Name      string       `json:"name"`
	Email     string       `json:"email"`
	Role      store.Role   `json:"role"`
	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`
}

// SessionJSON is the body of a successful sign-in or sign-up. CSRFToken
// is what a script that relies on the cookie sends as X-CSRF-Token.
type SessionJSON struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	CSRFToken string    `json:"csrfToken"`
	User      UserJSON  `json:"user"`
}

type errorJSON struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Handler serves POST /auth/signup, /auth/login and /auth/logout; mount it
// at "/auth/". It runs behind Middleware (applying it itself when the
// wiring has not), so that logout knows the session and checks CSRF.
//
// Sign-up signs the new user in: it answers 201 with the same body as
// sign-in and sets the session cookie, so that a browser lands signed in.
// Both take only application/json bodies, which a cross-site HTML form
// cannot send, so that another site cannot sign a browser into an
// account of its choosing.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathSignup, s.postOnly(s.handleSignup))
	mux.HandleFunc(PathLogin, s.postOnly(s.handleLogin))
	mux.HandleFunc(PathLogout, s.postOnly(s.handleLogout))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, apperr.New(apperr.NotFound, "no such endpoint %s", r.URL.Path))
	})
	return s.Middleware(mux)
}

func (s *Service) postOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSON(w, http.StatusMethodNotAllowed, errorJSON{errorBody{Code: "METHOD_NOT_ALLOWED", Message: "use POST"}})
			return
		}
		h(w, r)
	}
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (s *Service) handleSignup(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !s.readJSON(w, r, &c) {
		return
	}
	if err := s.LimitAddress(s.clientAddr(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.Signup(r.Context(), c.Email, c.Password, c.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.NewSession(r.Context(), u)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("auth: signed up", "user", u.ID)
	s.SetSessionCookie(w, r, sess)
	writeJSON(w, http.StatusCreated, s.sessionJSON(sess))
}

func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if !s.readJSON(w, r, &c) {
		return
	}
	sess, err := s.Login(r.Context(), c.Email, c.Password, s.clientAddr(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.SetSessionCookie(w, r, sess)
	writeJSON(w, http.StatusOK, s.sessionJSON(sess))
}

func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) {
	if info, ok := r.Context().Value(infoKey{}).(*reqInfo); ok && info.token != "" {
		if err := s.Logout(r.Context(), info.token); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	s.ClearSessionCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) sessionJSON(sess Session) SessionJSON {
	u := sess.User
	return SessionJSON{
		Token:     sess.Token,
		ExpiresAt: sess.ExpiresAt.UTC(),
		CSRFToken: s.CSRFToken(sess.Token),
		User:      UserJSON{ID: u.ID, Name: u.Name, Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()},
	}
}

// readJSON decodes one JSON object of at most maxBody bytes, answering the
// request itself when it cannot.
func (s *Service) readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, errorJSON{errorBody{Code: "UNSUPPORTED_MEDIA_TYPE", Message: "Content-Type must be application/json"}})
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	err = dec.Decode(v)
	if err == nil {
		// Exactly one value: trailing data means a client bug.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorJSON{errorBody{Code: "PAYLOAD_TOO_LARGE", Message: "request body is larger than 64 KiB"}})
			return false
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			s.writeError(w, r, apperr.Field(typeErr.Field, "must be a %s", typeErr.Type))
			return false
		}
		s.writeError(w, r, apperr.New(apperr.Invalid, "malformed JSON body: %v", err))
		return false
	}
	return true
}

// writeError answers with the error's kind as status and code. Internal
// errors are logged and shown without detail.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	k := apperr.KindOf(err)
	body := errorBody{Code: k.Code(), Message: "internal server error"}
	var e *apperr.Error
	if k == apperr.Internal || !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) {
			return // the client went away; nobody reads the answer
		}
		s.log.Error("auth: request failed", "path", r.URL.Path, "err", err)
	} else {
		body.Message, body.Field = e.Message, e.Field
		if e.Field != "" {
			body.Message = e.Field + ": " + e.Message
		}
	}
	if d, ok := RetryAfter(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
	if k == apperr.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="liveclass"`)
	}
	writeJSON(w, k.HTTPStatus(), errorJSON{body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// An error here means the client went away.
	_ = json.NewEncoder(w).Encode(v)
}

// SetSessionCookie sets the session cookie of sess, for front ends (the
// web UI's sign-in form) that sign in without the /auth endpoints.
func (s *Service) SetSessionCookie(w http.ResponseWriter, r *http.Request, sess Session) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    sess.Token,
		Path:     "/",
		Expires:  sess.ExpiresAt,
		MaxAge:   int(sess.ExpiresAt.Sub(s.now()).Seconds()),
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// ClearSessionCookie tells the browser to drop the session cookie.
func (s *Service) ClearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
}

// secure reports whether the browser reached us over https, directly or
// through a proxy, or the deployment says it is https.
func (s *Service) secure(r *http.Request) bool {
	return s.publicTLS || r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// clientAddr is the address the per-address limit counts.
func (s *Service) clientAddr(r *http.Request) string {
	if s.trustXFF {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			// The rightmost entry is the one our own proxy added; the
			// ones before it are whatever the client claimed.
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if a := strings.TrimSpace(last); a != "" {
				return a
			}
		}
	}
	return r.RemoteAddr
}

// CSRFToken is the CSRF token that goes with a session token:
// base64url(HMAC-SHA256(key, sessionToken)). Being derived, it needs no
// storage and is the same on every node that shares the key.
func (s *Service) CSRFToken(sessionToken string) string {
	if s.randomKey {
		s.keyWarn.Do(func() {
			s.log.Warn("auth: no CSRF key configured; using a random one, so CSRF tokens end with this process")
		})
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(sessionToken))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

type infoKey struct{}

// reqInfo is what Middleware learned about the request.
type reqInfo struct {
	token string // session token, from bearer or cookie; empty when anonymous
	csrf  string // CSRF token; empty unless cookie-authenticated
}

// CSRFTokenFromContext returns the CSRF token of a cookie-authenticated
// request, for pages to put in forms and a meta tag; empty otherwise.
func CSRFTokenFromContext(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return info.csrf
	}
	return ""
}

// Middleware finds who is asking and puts the Actor in the request
// context. `Authorization: Bearer <token>` comes first: an invalid bearer
// token is a 401, since the client meant to authenticate. Otherwise the
// session cookie: an invalid one is dropped and the request goes on
// anonymously. A cookie-authenticated unsafe request must carry the CSRF
// token (X-CSRF-Token header or csrf_token form field), because the
// browser attaches the cookie to cross-site requests too; a bearer token
// it never attaches by itself, so those need none.
//
// Mount it in front of the API and the pages, not in front of endpoints
// whose bearer tokens are something else (WHIP and WHEP take stream keys
// and join tokens as bearer tokens): it would refuse those as invalid
// sessions.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, done := r.Context().Value(infoKey{}).(*reqInfo); done {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		info := &reqInfo{}
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, token, _ := strings.Cut(h, " ")
			token = strings.TrimSpace(token)
			if !strings.EqualFold(scheme, "Bearer") || token == "" {
				s.writeError(w, r, apperr.New(apperr.Unauthenticated, "the Authorization header must be \"Bearer <token>\""))
				return
			}
			a, err := s.Authenticate(ctx, token)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			info.token = token
			ctx = WithActor(ctx, a)
		} else if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
			a, err := s.Authenticate(ctx, c.Value)
			switch {
			case apperr.Is(err, apperr.Unauthenticated):
				s.ClearSessionCookie(w, r)
			case err != nil:
				// The store failed: refuse rather than serve the request
				// as anonymous and drop a cookie that may still be good.
				s.writeError(w, r, err)
				return
			default:
				info.token, info.csrf = c.Value, s.CSRFToken(c.Value)
				if unsafeMethod(r.Method) && r.URL.Path != PathLogin && r.URL.Path != PathSignup && !csrfOK(r, info.csrf) {
					s.log.Info("auth: CSRF check failed", "path", r.URL.Path, "user", a.UserID)
					s.writeError(w, r, apperr.New(apperr.Forbidden, "missing or invalid CSRF token"))
					return
				}
				ctx = WithActor(ctx, a)
			}
		}
		ctx = context.WithValue(ctx, infoKey{}, info)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func unsafeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// csrfOK compares the request's CSRF token with want in constant time.
// The form is consulted only for form bodies, and only when the header is
// absent, so that JSON and upload bodies are left unread for the handler.
func csrfOK(r *http.Request, want string) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch mt {
		case "application/x-www-form-urlencoded":
			// ParseForm caps the body at 10 MB itself.
			if r.ParseForm() != nil {
				return false
			}
			got = r.PostForm.Get(CSRFField)
		case "multipart/form-data":
			if r.ParseMultipartForm(1<<20) != nil {
				return false
			}
			got = r.PostFormValue(CSRFField)
		}
	}
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}
