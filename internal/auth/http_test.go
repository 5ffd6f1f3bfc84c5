package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

// httpFixture is a real HTTP server with the /auth endpoints and, behind
// Middleware, /api/whoami, which reports what the middleware found.
type httpFixture struct {
	*fixture
	srv *httptest.Server
}

type whoami struct {
	UserID store.UserID `json:"userId"`
	Role   store.Role   `json:"role"`
	CSRF   string       `json:"csrf"`
	Form   string       `json:"form"`
	Body   string       `json:"body"`
}

func newHTTPFixture(t *testing.T, mod func(*Options)) *httpFixture {
	t.Helper()
	f := &httpFixture{fixture: newFixture(t, mod)}
	mux := http.NewServeMux()
	mux.Handle("/auth/", f.svc.Handler())
	mux.HandleFunc("/api/whoami", func(w http.ResponseWriter, r *http.Request) {
		a := ActorFrom(r.Context())
		out := whoami{UserID: a.UserID, Role: a.Role, CSRF: CSRFTokenFromContext(r.Context())}
		if r.Method == http.MethodPost {
			if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") {
				out.Form = r.FormValue("title")
			} else {
				b, _ := io.ReadAll(r.Body)
				out.Body = string(b)
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	f.srv = httptest.NewServer(f.svc.Middleware(mux))
	t.Cleanup(f.srv.Close)
	return f
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func withCookie(token string) reqOpt {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: CookieName, Value: token}) }
}

func (f *httpFixture) do(t *testing.T, method, path, contentType, body string, opts ...reqOpt) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (f *httpFixture) postJSON(t *testing.T, path string, v any, opts ...reqOpt) *http.Response {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return f.do(t, http.MethodPost, path, "application/json", string(b), opts...)
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decoding %d response: %v", resp.StatusCode, err)
	}
	return v
}

func wantStatus(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
}

// wantError checks an error answer: status, JSON content type and body.
func wantError(t *testing.T, resp *http.Response, status int, code, field string) errorBody {
	t.Helper()
	wantStatus(t, resp, status)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q", ct)
	}
	e := decode[errorJSON](t, resp).Error
	if e.Code != code || e.Field != field || e.Message == "" {
		t.Fatalf("error %+v, want code %s field %q", e, code, field)
	}
	return e
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", CookieName, resp.Header.Values("Set-Cookie"))
	return nil
}

func TestHTTPSignupSignsIn(t *testing.T) {
	f := newHTTPFixture(t, nil)
	resp := f.postJSON(t, PathSignup, map[string]string{"email": "Ada@Example.com", "password": "correct horse", "name": "Ada"})
	wantStatus(t, resp, http.StatusCreated)
	body := decode[SessionJSON](t, resp)
	if body.Token == "" || body.User.Email != "ada@example.com" || body.User.Role != store.RoleStudent || body.User.ID == "" {
		t.Fatalf("sign-up body %+v", body)
	}
	if body.CSRFToken != f.svc.CSRFToken(body.Token) {
		t.Errorf("csrfToken %q does not match the session", body.CSRFToken)
	}
	c := sessionCookie(t, resp)
	if c.Value != body.Token || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie %+v: want the token, HttpOnly, SameSite=Lax, Path=/, not Secure over plain http", c)
	}
	who := decode[whoami](t, f.do(t, http.MethodGet, "/api/whoami", "", "", withCookie(c.Value)))
	if who.UserID != body.User.ID || who.CSRF != body.CSRFToken {
		t.Fatalf("signed-up cookie gives %+v", who)
	}

	resp = f.postJSON(t, PathSignup, map[string]string{"email": "ada@example.com", "password": "correct horse", "name": "Ada"})
	wantError(t, resp, http.StatusConflict, "CONFLICT", "email")
	resp = f.postJSON(t, PathSignup, map[string]string{"email": "bob@example.com", "password": "short", "name": "Bob"})
	e := wantError(t, resp, http.StatusBadRequest, "BAD_USER_INPUT", "password")
	if !strings.Contains(e.Message, "at least 8") {
		t.Errorf("message %q", e.Message)
	}

	off := newHTTPFixture(t, func(o *Options) { o.SignupEnabled = false })
	resp = off.postJSON(t, PathSignup, map[string]string{"email": "ada@example.com", "password": "correct horse", "name": "Ada"})
	e = wantError(t, resp, http.StatusForbidden, "FORBIDDEN", "")
	if e.Message != "sign-up is disabled" {
		t.Errorf("message %q", e.Message)
	}
}

func TestHTTPLogin(t *testing.T) {
	f := newHTTPFixture(t, nil)
	u, _ := f.user(t, "ada@example.com", store.RoleMentor)
	resp := f.postJSON(t, PathLogin, map[string]string{"email": "ada@example.com", "password": "correct horse"})
	wantStatus(t, resp, http.StatusOK)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q: a token must not be cached", cc)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// The exact shape a client relies on.
	var shape map[string]any
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	user, _ := shape["user"].(map[string]any)
	for _, k := range []string{"token", "expiresAt", "csrfToken"} {
		if _, ok := shape[k].(string); !ok {
			t.Errorf("login body lacks string %q: %s", k, raw)
		}
	}
	for _, k := range []string{"id", "name", "email", "role", "createdAt", "updatedAt"} {
		if _, ok := user[k].(string); !ok {
			t.Errorf("login body's user lacks string %q: %s", k, raw)
		}
	}
	if _, ok := user["passwordHash"]; ok || bytes.Contains(raw, []byte("argon2")) {
		t.Fatalf("login body leaks the hash: %s", raw)
	}
	var body SessionJSON
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	if body.User.ID != u.ID || !body.ExpiresAt.Equal(f.clk.Now().Add(7*24*time.Hour)) {
		t.Errorf("body %+v", body)
	}
	c := sessionCookie(t, resp)
	if c.Value != body.Token || c.MaxAge <= 0 {
		t.Errorf("cookie %+v", c)
	}
	who := decode[whoami](t, f.do(t, http.MethodGet, "/api/whoami", "", "", withHeader("Authorization", "Bearer "+body.Token)))
	if who.UserID != u.ID || who.Role != store.RoleMentor || who.CSRF != "" {
		t.Fatalf("bearer gives %+v (a bearer request has no CSRF token)", who)
	}

	// Unknown email and wrong password: the same answer, byte for byte.
	r1 := f.postJSON(t, PathLogin, map[string]string{"email": "ada@example.com", "password": "wrong password"})
	r2 := f.postJSON(t, PathLogin, map[string]string{"email": "nobody@example.com", "password": "wrong password"})
	b1, _ := io.ReadAll(r1.Body)
	b2, _ := io.ReadAll(r2.Body)
	if r1.StatusCode != http.StatusUnauthorized || r1.StatusCode != r2.StatusCode || !bytes.Equal(b1, b2) {
		t.Fatalf("wrong password: %d %s; unknown email: %d %s", r1.StatusCode, b1, r2.StatusCode, b2)
	}
	if !bytes.Contains(b1, []byte(`"code":"UNAUTHENTICATED"`)) || !bytes.Contains(b1, []byte("invalid email or password")) {
		t.Fatalf("body %s", b1)
	}
	for _, r := range []*http.Response{r1, r2} {
		for _, c := range r.Cookies() {
			if c.Name == CookieName && c.Value != "" {
				t.Fatal("a failed sign-in set a session cookie")
			}
		}
	}
}

func TestHTTPSecureCookie(t *testing.T) {
	for _, tc := range []struct {
		name      string
		publicURL string
		header    string
		want      bool
	}{
		{"plain http", "http://localhost:8080", "", false},
		{"forwarded https", "", "https", true},
		{"forwarded http", "", "http", false},
		{"https public URL", "https://class.example.com", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHTTPFixture(t, func(o *Options) { o.PublicURL = tc.publicURL })
			f.user(t, "ada@example.com", store.RoleStudent)
			var opts []reqOpt
			if tc.header != "" {
				opts = append(opts, withHeader("X-Forwarded-Proto", tc.header))
			}
			resp := f.postJSON(t, PathLogin, map[string]string{"email": "ada@example.com", "password": "correct horse"}, opts...)
			wantStatus(t, resp, http.StatusOK)
			if c := sessionCookie(t, resp); c.Secure != tc.want {
				t.Fatalf("Secure = %v, want %v", c.Secure, tc.want)
			}
		})
	}
	// Over TLS directly.
	f := &httpFixture{fixture: newFixture(t, nil)}
	f.srv = httptest.NewTLSServer(f.svc.Handler())
	t.Cleanup(f.srv.Close)
	f.user(t, "ada@example.com", store.RoleStudent)
	resp := f.postJSON(t, PathLogin, map[string]string{"email": "ada@example.com", "password": "correct horse"})
	wantStatus(t, resp, http.StatusOK)
	if c := sessionCookie(t, resp); !c.Secure {
		t.Fatal("cookie over TLS is not Secure")
	}
}

func TestHTTPBadRequests(t *testing.T) {
	f := newHTTPFixture(t, nil)
	f.user(t, "ada@example.com", store.RoleStudent)
	big := `{"email":"ada@example.com","password":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code, field                     string
	}{
		{"too large", "POST", PathLogin, "application/json", big, 413, "PAYLOAD_TOO_LARGE", ""},
		{"malformed", "POST", PathLogin, "application/json", `{"email":`, 400, "BAD_USER_INPUT", ""},
		{"not an object", "POST", PathLogin, "application/json", `["a"]`, 400, "BAD_USER_INPUT", ""},
		{"wrong type", "POST", PathLogin, "application/json", `{"email":5,"password":"x"}`, 400, "BAD_USER_INPUT", "email"},
		{"trailing data", "POST", PathLogin, "application/json", `{"email":"a@example.com","password":"x"} {}`, 400, "BAD_USER_INPUT", ""},
		{"form body", "POST", PathLogin, "application/x-www-form-urlencoded", `email=a%40example.com&password=x`, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"text/plain (cross-site form)", "POST", PathSignup, "text/plain", `{"email":"a@example.com","password":"xxxxxxxxx","name":"A"}`, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"GET login", "GET", PathLogin, "", "", 405, "METHOD_NOT_ALLOWED", ""},
		{"PUT signup", "PUT", PathSignup, "application/json", `{}`, 405, "METHOD_NOT_ALLOWED", ""},
		{"GET logout", "GET", PathLogout, "", "", 405, "METHOD_NOT_ALLOWED", ""},
		{"unknown path", "POST", "/auth/nope", "application/json", `{}`, 404, "NOT_FOUND", ""},
		{"bad email", "POST", PathSignup, "application/json", `{"email":"x","password":"correct horse","name":"X"}`, 400, "BAD_USER_INPUT", "email"},
		{"bad name", "POST", PathSignup, "application/json", `{"email":"x@example.com","password":"correct horse","name":""}`, 400, "BAD_USER_INPUT", "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.do(t, tc.method, tc.path, tc.ctype, tc.body)
			wantError(t, resp, tc.status, tc.code, tc.field)
			if tc.status == 405 && resp.Header.Get("Allow") != "POST" {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
		})
	}
	// Nothing above stored anything.
	if n, err := f.st.CountUsers(t.Context()); err != nil || n != 1 {
		t.Fatalf("users = %d, %v; want the one account", n, err)
	}
}

func TestHTTPRateLimit(t *testing.T) {
	f := newHTTPFixture(t, func(o *Options) { o.Limits = RateLimits{AddressAttempts: 3} })
	f.user(t, "ada@example.com", store.RoleStudent)
	creds := map[string]string{"email": "ada@example.com", "password": "wrong password"}
	for range 3 {
		wantStatus(t, f.postJSON(t, PathLogin, creds), http.StatusUnauthorized)
	}
	resp := f.postJSON(t, PathLogin, creds)
	e := wantError(t, resp, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "")
	if resp.Header.Get("Retry-After") != "60" || !strings.Contains(e.Message, "try again in 60 seconds") {
		t.Fatalf("Retry-After %q, message %q", resp.Header.Get("Retry-After"), e.Message)
	}
	// Sign-up from the same address is limited too.
	resp = f.postJSON(t, PathSignup, map[string]string{"email": "bob@example.com", "password": "correct horse", "name": "Bob"})
	wantError(t, resp, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "")

	// Behind a trusted proxy the forwarded address counts instead.
	p := newHTTPFixture(t, func(o *Options) { o.Limits = RateLimits{AddressAttempts: 1}; o.TrustProxy = true })
	p.user(t, "ada@example.com", store.RoleStudent)
	for i := range 3 {
		resp := p.postJSON(t, PathLogin, map[string]string{"email": "ada@example.com", "password": "correct horse"},
			withHeader("X-Forwarded-For", fmt.Sprintf("10.9.9.9, 198.51.100.%d", i+1)))
		wantStatus(t, resp, http.StatusOK)
	}
	resp = p.postJSON(t, PathLogin, map[string]string{"email": "ada@example.com", "password": "correct horse"},
		withHeader("X-Forwarded-For", "10.0.0.1, 198.51.100.1"))
	wantStatus(t, resp, http.StatusTooManyRequests)
}

func TestHTTPLogout(t *testing.T) {
	f := newHTTPFixture(t, nil)
	f.user(t, "ada@example.com", store.RoleStudent)
	login := func() SessionJSON {
		resp := f.postJSON(t, PathLogin, map[string]string{"email": "ada@example.com", "password": "correct horse"})
		wantStatus(t, resp, http.StatusOK)
		return decode[SessionJSON](t, resp)
	}

	// With the cookie: the CSRF token is required.
	s := login()
	wantError(t, f.do(t, "POST", PathLogout, "", "", withCookie(s.Token)), http.StatusForbidden, "FORBIDDEN", "")
	if _, err := f.svc.Authenticate(t.Context(), s.Token); err != nil {
		t.Fatalf("a forged logout ended the session: %v", err)
	}
	resp := f.do(t, "POST", PathLogout, "", "", withCookie(s.Token), withHeader(CSRFHeader, s.CSRFToken))
	wantStatus(t, resp, http.StatusNoContent)
	if c := sessionCookie(t, resp); c.Value != "" || c.MaxAge >= 0 {
		t.Errorf("logout cookie %+v, want it cleared", c)
	}
	if _, err := f.svc.Authenticate(t.Context(), s.Token); err == nil {
		t.Fatal("session still valid after logout")
	}

	// With a bearer token.
	s = login()
	wantStatus(t, f.do(t, "POST", PathLogout, "", "", withHeader("Authorization", "Bearer "+s.Token)), http.StatusNoContent)
	wantError(t, f.do(t, "GET", "/api/whoami", "", "", withHeader("Authorization", "Bearer "+s.Token)), http.StatusUnauthorized, "UNAUTHENTICATED", "")

	// Anonymous: nothing to end, still fine.
	wantStatus(t, f.do(t, "POST", PathLogout, "", ""), http.StatusNoContent)
}

func TestMiddleware(t *testing.T) {
	f := newHTTPFixture(t, nil)
	u, _ := f.user(t, "ada@example.com", store.RoleMentor)
	sess, err := f.svc.Login(t.Context(), "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	csrf := f.svc.CSRFToken(sess.Token)
	other, err := f.svc.Login(t.Context(), "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	cookie, bearer := withCookie(sess.Token), withHeader("Authorization", "Bearer "+sess.Token)
	form := url.Values{"title": {"Algebra"}, CSRFField: {csrf}}.Encode()
	badForm := url.Values{"title": {"Algebra"}, CSRFField: {"nope"}}.Encode()

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	if err := mw.WriteField(CSRFField, csrf); err != nil {
		t.Fatal(err)
	}
	if err := mw.WriteField("title", "Algebra"); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		method, ctype string
		body          string
		opts          []reqOpt
		status        int
		user          store.UserID // expected actor on success
		cleared       bool         // the response clears the cookie
	}{
		{"anonymous GET", "GET", "", "", nil, 200, "", false},
		{"anonymous POST needs no CSRF", "POST", "application/json", `{}`, nil, 200, "", false},
		{"bearer GET", "GET", "", "", []reqOpt{bearer}, 200, u.ID, false},
		{"bearer POST needs no CSRF", "POST", "application/json", `{"q":1}`, []reqOpt{bearer}, 200, u.ID, false},
		{"bearer lower-case scheme", "GET", "", "", []reqOpt{withHeader("Authorization", "bearer "+sess.Token)}, 200, u.ID, false},
		{"bearer wins over cookie", "GET", "", "", []reqOpt{bearer, withCookie("stale")}, 200, u.ID, false},
		{"invalid bearer", "GET", "", "", []reqOpt{withHeader("Authorization", "Bearer nope")}, 401, "", false},
		{"invalid bearer with a good cookie", "GET", "", "", []reqOpt{withHeader("Authorization", "Bearer nope"), cookie}, 401, "", false},
		{"basic auth", "GET", "", "", []reqOpt{withHeader("Authorization", "Basic YTpi")}, 401, "", false},
		{"empty bearer", "GET", "", "", []reqOpt{withHeader("Authorization", "Bearer ")}, 401, "", false},
		{"cookie GET", "GET", "", "", []reqOpt{cookie}, 200, u.ID, false},
		{"invalid cookie is anonymous and cleared", "GET", "", "", []reqOpt{withCookie("nope")}, 200, "", true},
		{"invalid cookie POST is anonymous", "POST", "application/json", `{}`, []reqOpt{withCookie("nope")}, 200, "", true},
		{"cookie POST without CSRF", "POST", "application/json", `{}`, []reqOpt{cookie}, 403, "", false},
		{"cookie PUT without CSRF", "PUT", "application/json", `{}`, []reqOpt{cookie}, 403, "", false},
		{"cookie PATCH without CSRF", "PATCH", "application/json", `{}`, []reqOpt{cookie}, 403, "", false},
		{"cookie DELETE without CSRF", "DELETE", "", "", []reqOpt{cookie}, 403, "", false},
		{"cookie POST wrong CSRF", "POST", "application/json", `{}`, []reqOpt{cookie, withHeader(CSRFHeader, "nope")}, 403, "", false},
		{"cookie POST another session's CSRF", "POST", "application/json", `{}`, []reqOpt{cookie, withHeader(CSRFHeader, f.svc.CSRFToken(other.Token))}, 403, "", false},
		{"cookie POST right CSRF header", "POST", "application/json", `{"q":1}`, []reqOpt{cookie, withHeader(CSRFHeader, csrf)}, 200, u.ID, false},
		{"cookie DELETE right CSRF header", "DELETE", "", "", []reqOpt{cookie, withHeader(CSRFHeader, csrf)}, 200, u.ID, false},
		{"cookie form right CSRF field", "POST", "application/x-www-form-urlencoded", form, []reqOpt{cookie}, 200, u.ID, false},
		{"cookie multipart right CSRF field", "POST", mw.FormDataContentType(), mp.String(), []reqOpt{cookie}, 200, u.ID, false},
		{"cookie form wrong CSRF field", "POST", "application/x-www-form-urlencoded", badForm, []reqOpt{cookie}, 403, "", false},
		{"CSRF field in a JSON body does not count", "POST", "application/json", `{"csrf_token":"` + csrf + `"}`, []reqOpt{cookie}, 403, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.do(t, tc.method, "/api/whoami", tc.ctype, tc.body, tc.opts...)
			cleared := false
			for _, c := range resp.Cookies() {
				if c.Name == CookieName && c.MaxAge < 0 {
					cleared = true
				}
			}
			if cleared != tc.cleared {
				t.Errorf("cookie cleared = %v, want %v", cleared, tc.cleared)
			}
			switch tc.status {
			case 401:
				wantError(t, resp, 401, "UNAUTHENTICATED", "")
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
				}
				return
			case 403:
				e := wantError(t, resp, 403, "FORBIDDEN", "")
				if e.Message != "missing or invalid CSRF token" {
					t.Errorf("message %q", e.Message)
				}
				return
			}
			wantStatus(t, resp, tc.status)
			who := decode[whoami](t, resp)
			if who.UserID != tc.user {
				t.Fatalf("actor %q, want %q", who.UserID, tc.user)
			}
			viaCookie := tc.user != "" && !strings.Contains(tc.name, "bearer")
			if (who.CSRF != "") != viaCookie || (viaCookie && who.CSRF != csrf) {
				t.Errorf("CSRFTokenFromContext = %q; want it only for cookie requests", who.CSRF)
			}
			// The handler still reads what the middleware looked at.
			if (tc.ctype == "application/x-www-form-urlencoded" || strings.HasPrefix(tc.ctype, "multipart/")) && who.Form != "Algebra" {
				t.Errorf("form field lost: %+v", who)
			}
			if tc.ctype == "application/json" && who.Body != tc.body {
				t.Errorf("body %q reached the handler as %q", tc.body, who.Body)
			}
		})
	}
}

func TestMiddlewareLoginIsCSRFExempt(t *testing.T) {
	f := newHTTPFixture(t, nil)
	f.user(t, "ada@example.com", store.RoleStudent)
	sess, err := f.svc.Login(t.Context(), "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	// A browser that is signed in already signs in again (another account).
	resp := f.postJSON(t, PathLogin, map[string]string{"email": "ada@example.com", "password": "correct horse"}, withCookie(sess.Token))
	wantStatus(t, resp, http.StatusOK)
	resp = f.postJSON(t, PathSignup, map[string]string{"email": "bob@example.com", "password": "correct horse", "name": "Bob"}, withCookie(sess.Token))
	wantStatus(t, resp, http.StatusCreated)
}

func TestMiddlewareExpiredCookie(t *testing.T) {
	f := newHTTPFixture(t, func(o *Options) { o.SessionTTL = time.Hour })
	f.user(t, "ada@example.com", store.RoleStudent)
	sess, err := f.svc.Login(t.Context(), "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour)
	resp := f.do(t, "GET", "/api/whoami", "", "", withCookie(sess.Token))
	wantStatus(t, resp, 200)
	if who := decode[whoami](t, resp); who.UserID != "" {
		t.Fatalf("expired cookie still signs in: %+v", who)
	}
	if c := sessionCookie(t, resp); c.MaxAge >= 0 {
		t.Fatalf("expired cookie not cleared: %+v", c)
	}
	wantError(t, f.do(t, "GET", "/api/whoami", "", "", withHeader("Authorization", "Bearer "+sess.Token)), 401, "UNAUTHENTICATED", "")
}

func TestStoreFailureIsNotAnonymous(t *testing.T) {
	f := newHTTPFixture(t, nil)
	f.user(t, "ada@example.com", store.RoleStudent)
	sess, err := f.svc.Login(t.Context(), "ada@example.com", "correct horse", "192.0.2.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	resp := f.do(t, "GET", "/api/whoami", "", "", withCookie(sess.Token))
	e := wantError(t, resp, 500, "INTERNAL_SERVER_ERROR", "")
	if e.Message != "internal server error" {
		t.Errorf("internal detail leaked: %q", e.Message)
	}
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			t.Fatal("a store failure cleared a good cookie")
		}
	}
}

func TestCSRFKey(t *testing.T) {
	st := openStore(t)
	a := New(st, Options{Key: []byte("0123456789abcdef0123456789abcdef")})
	b := New(st, Options{Key: []byte("0123456789abcdef0123456789abcdef")})
	if a.CSRFToken("tok") != b.CSRFToken("tok") || a.CSRFToken("tok") == a.CSRFToken("tok2") {
		t.Fatal("CSRF tokens must depend on the key and the session only")
	}
	// Without a key each process gets its own random one.
	c, d := New(st, Options{}), New(st, Options{Key: []byte("short")})
	if c.CSRFToken("tok") == "" || c.CSRFToken("tok") == d.CSRFToken("tok") || c.CSRFToken("tok") == a.CSRFToken("tok") {
		t.Fatal("a missing or short key must be replaced by a random one")
	}
}
