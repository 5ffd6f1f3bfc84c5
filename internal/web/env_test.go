package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/events"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
	"github.com/liveclass/liveclass/internal/web"
)

// clock is a settable clock shared by the services of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time // zero: the real time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// env is a whole server: a real SQLite file, the real services, auth's
// middleware and /auth endpoints, and the UI.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	st      *sqlite.DB
	auth    *auth.Service
	classes *classes.Service
	clock   *clock
	media   *sfu.Server // the live classes' media, when there is one
}

type envOptions struct {
	fixedClock     bool // start the clock at a fixed moment instead of real time
	signupDisabled bool
	hlsURL         func(store.ClassID, time.Time) string
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "liveclass.db"), log)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{}
	if o.fixedClock {
		clk.Set(time.Date(2030, 3, 4, 10, 0, 0, 0, time.UTC))
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	as := auth.New(st, auth.Options{
		Now:           clk.Now,
		SignupEnabled: !o.signupDisabled,
		Logger:        log,
		Key:           key,
		// Cheap hashes: the tests sign in often, and the cost of a real
		// hash proves nothing about the pages.
		HashParams: auth.HashParams{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	})
	signer, err := jointoken.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	cs := classes.New(st, events.New(), signer, classes.Options{Now: clk.Now})
	ui, err := web.New(web.Config{Classes: cs, Auth: as, Logger: log, SignupDisabled: o.signupDisabled, HLSURL: o.hlsURL})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", as.Handler())
	ui.Mount(mux)
	srv := httptest.NewServer(as.Middleware(mux))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, st: st, auth: as, classes: cs, clock: clk}
	return e
}

// user creates an account with a role directly through auth.Service.
func (e *env) user(email, name string, role store.Role) store.User {
	e.t.Helper()
	u, err := e.auth.AddUser(context.Background(), email, name, "password123", role)
	if err != nil {
		e.t.Fatalf("add user %s: %v", email, err)
	}
	return u
}

// actor is how the services see u.
func actor(u store.User) auth.Actor { return auth.Actor{UserID: u.ID, Role: u.Role, Name: u.Name} }

// class creates a class starting at start for an hour, with overrides.
func (e *env) class(instr store.User, title string, start time.Time, mod func(*classes.ClassInput)) store.LiveClass {
	e.t.Helper()
	in := classes.ClassInput{
		Title: title, StartTime: start, EndTime: start.Add(time.Hour),
		Service: store.ServiceChime, RequiresEnrollment: true, AccessLevel: store.RoleStudent,
		MaxParticipants: 10, Category: "Programming", Level: store.LevelBeginner, IsFree: true,
		Tags: []string{"go"},
	}
	if mod != nil {
		mod(&in)
	}
	c, err := e.classes.CreateClass(context.Background(), actor(instr), in)
	if err != nil {
		e.t.Fatalf("create class %q: %v", title, err)
	}
	return c
}

// browser is a cookie-keeping client that does not follow redirects, so
// that a test sees the POST → 303 of a form.
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &browser{e: e, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// response is a finished request.
type response struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) response {
	b.e.t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return response{status: res.StatusCode, body: string(body), location: res.Header.Get("Location"), header: res.Header}
}

func (b *browser) get(path string) response {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form as a browser without JavaScript does.
func (b *browser) post(path string, form url.Values) response {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the CSRF token from the form on page path.
func (b *browser) csrf(path string) string {
	b.e.t.Helper()
	r := b.get(path)
	m := csrfRE.FindStringSubmatch(r.body)
	if m == nil {
		b.e.t.Fatalf("no csrf_token field on %s (status %d)", path, r.status)
	}
	return m[1]
}

// submit posts form to action with the CSRF token of page.
func (b *browser) submit(page, action string, form url.Values) response {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", b.csrf(page))
	return b.post(action, form)
}

// signIn signs in through the form.
func (b *browser) signIn(email string) {
	b.e.t.Helper()
	r := b.submit("/signin", "/signin", url.Values{"email": {email}, "password": {"password123"}})
	if r.status != http.StatusSeeOther {
		b.e.t.Fatalf("sign in %s: status %d, body:\n%s", email, r.status, r.body)
	}
}

func (e *env) signedIn(u store.User) *browser {
	b := e.browser()
	b.signIn(u.Email)
	return b
}

// mustContain fails unless body contains every want.
func mustContain(t *testing.T, r response, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.body, w) {
			t.Errorf("page (status %d) lacks %q", r.status, w)
		}
	}
	if t.Failed() {
		t.Logf("body:\n%s", r.body)
		t.FailNow()
	}
}

// mustLack fails if body contains any of absent.
func mustLack(t *testing.T, r response, absent ...string) {
	t.Helper()
	for _, w := range absent {
		if strings.Contains(r.body, w) {
			t.Errorf("page (status %d) has %q", r.status, w)
		}
	}
	if t.Failed() {
		t.Logf("body:\n%s", r.body)
		t.FailNow()
	}
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; location %q; body:\n%s", r.status, want, r.location, r.body)
	}
}
