package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/events"
	"github.com/liveclass/liveclass/internal/graph"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// The actors of the authorization matrix.
const (
	anon        = "anonymous"
	student     = "student"
	mentorOwn   = "mentor-own"
	mentorOther = "mentor-other"
	admin       = "admin"
)

var actorNames = []string{anon, student, mentorOwn, mentorOther, admin}

// countingStore counts the store's read calls, to show that nested
// fields are loaded in batches rather than one query per parent.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) UserByID(ctx context.Context, id store.UserID) (store.User, error) {
	c.reads.Add(1)
	return c.Store.UserByID(ctx, id)
}
func (c *countingStore) UsersByIDs(ctx context.Context, ids []store.UserID) ([]store.User, error) {
	c.reads.Add(1)
	return c.Store.UsersByIDs(ctx, ids)
}
func (c *countingStore) ClassByID(ctx context.Context, id store.ClassID) (store.LiveClass, error) {
	c.reads.Add(1)
	return c.Store.ClassByID(ctx, id)
}
func (c *countingStore) ClassesByIDs(ctx context.Context, ids []store.ClassID) ([]store.LiveClass, error) {
	c.reads.Add(1)
	return c.Store.ClassesByIDs(ctx, ids)
}
func (c *countingStore) ListClasses(ctx context.Context, q store.ClassQuery) (store.List[store.LiveClass], error) {
	c.reads.Add(1)
	return c.Store.ListClasses(ctx, q)
}
func (c *countingStore) EnrollmentByID(ctx context.Context, id store.EnrollmentID) (store.Enrollment, error) {
	c.reads.Add(1)
	return c.Store.EnrollmentByID(ctx, id)
}
func (c *countingStore) EnrollmentByUserClass(ctx context.Context, u store.UserID, cl store.ClassID) (store.Enrollment, error) {
	c.reads.Add(1)
	return c.Store.EnrollmentByUserClass(ctx, u, cl)
}
func (c *countingStore) ListEnrollments(ctx context.Context, q store.EnrollmentQuery) (store.List[store.Enrollment], error) {
	c.reads.Add(1)
	return c.Store.ListEnrollments(ctx, q)
}
func (c *countingStore) EnrollmentsByClassIDs(ctx context.Context, ids []store.ClassID) ([]store.Enrollment, error) {
	c.reads.Add(1)
	return c.Store.EnrollmentsByClassIDs(ctx, ids)
}
func (c *countingStore) RecordingByID(ctx context.Context, id store.RecordingID) (store.Recording, error) {
	c.reads.Add(1)
	return c.Store.RecordingByID(ctx, id)
}
func (c *countingStore) ListRecordings(ctx context.Context, q store.RecordingQuery) (store.List[store.Recording], error) {
	c.reads.Add(1)
	return c.Store.ListRecordings(ctx, q)
}
func (c *countingStore) RecordingsByClassIDs(ctx context.Context, ids []store.ClassID) ([]store.Recording, error) {
	c.reads.Add(1)
	return c.Store.RecordingsByClassIDs(ctx, ids)
}

// env is a running API over a real SQLite file, with the real classes and
// auth services and auth.Middleware in front, as the server mounts it.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	st      *countingStore
	classes *classes.Service
	auth    *auth.Service
	broker  *events.Broker
	tokens  map[string]string     // actor → bearer token
	users   map[string]store.User // actor → account
	seq     atomic.Int64
}

type envOptions struct {
	introspection bool
	maxDepth      int
	maxComplexity int
}

func newEnv(t *testing.T, opt envOptions) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "liveclass.db"), nil)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	st := &countingStore{Store: db}
	broker := events.New()
	signer, err := jointoken.NewSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	cls := classes.New(st, broker, signer, classes.Options{PublicURL: "http://liveclass.test"})
	au := auth.New(st, auth.Options{
		Key:        bytes.Repeat([]byte("c"), 32),
		HashParams: auth.HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		Logger:     slog.New(slog.DiscardHandler),
		OnUserChange: func(kind string, u store.User) {
			broker.Publish(classes.Event{Kind: classes.EventKind(kind), User: &u})
		},
	})
	h := graph.NewHandler(graph.Config{
		Classes:       cls,
		Auth:          au,
		Broker:        broker,
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Introspection: opt.introspection,
		MaxDepth:      opt.maxDepth,
		MaxComplexity: opt.maxComplexity,
	})
	mux := http.NewServeMux()
	mux.Handle("/graphql", au.Middleware(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, st: st, classes: cls, auth: au, broker: broker,
		tokens: map[string]string{}, users: map[string]store.User{}}
	for _, a := range []struct {
		name string
		role store.Role
	}{{student, store.RoleStudent}, {mentorOwn, store.RoleMentor}, {mentorOther, store.RoleMentor}, {admin, store.RoleAdmin}} {
		u, err := au.AddUser(ctx, a.name+"@example.com", "User "+a.name, "password-"+a.name, a.role)
		if err != nil {
			t.Fatalf("add %s: %v", a.name, err)
		}
		s, err := au.NewSession(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		e.users[a.name], e.tokens[a.name] = u, s.Token
	}
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *env) actor(name string) auth.Actor {
	u := e.users[name]
	return auth.Actor{UserID: u.ID, Role: u.Role, Name: u.Name}
}

// gqlError is one GraphQL error as a client sees it.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
	status int
}

func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return "ok"
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

func (r gqlResponse) field() string {
	if len(r.Errors) == 0 {
		return ""
	}
	f, _ := r.Errors[0].Extensions["field"].(string)
	return f
}

// do posts a GraphQL request as actor (anon: no token).
func (e *env) do(actor, query string, vars map[string]any) gqlResponse {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		e.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok := e.tokens[actor]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) gqlResponse {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	out.status = resp.StatusCode
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			e.t.Fatalf("decode response (status %d): %v", resp.StatusCode, err)
		}
	}
	return out
}

// mustOK fails the test unless the response has no errors, and decodes data into v.
func (e *env) mustOK(r gqlResponse, v any) {
	e.t.Helper()
	if len(r.Errors) > 0 {
		e.t.Fatalf("unexpected errors: %+v", r.Errors)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			e.t.Fatalf("decode data %s: %v", r.Data, err)
		}
	}
}

// classSpec is what a test class looks like; times are relative to now.
type classSpec struct {
	instructor string
	startIn    time.Duration
	length     time.Duration
	price      float64
	title      string
	category   string
	tags       []string
	service    store.Service // CHIME when empty
}

// newClass creates a class through the service as its instructor.
func (e *env) newClass(s classSpec) store.LiveClass {
	e.t.Helper()
	if s.instructor == "" {
		s.instructor = mentorOwn
	}
	if s.length == 0 {
		s.length = time.Hour
	}
	if s.title == "" {
		s.title = fmt.Sprintf("Class %d", e.seq.Add(1))
	}
	if s.category == "" {
		s.category = "go"
	}
	if s.service == "" {
		s.service = store.ServiceChime
	}
	start := time.Now().Add(s.startIn).Truncate(time.Second)
	c, err := e.classes.CreateClass(context.Background(), e.actor(s.instructor), classes.ClassInput{
		Title: s.title, StartTime: start, EndTime: start.Add(s.length),
		Service: s.service, RequiresEnrollment: true, AccessLevel: store.RoleStudent,
		MaxParticipants: 50, Category: s.category, Level: store.LevelBeginner,
		Price: s.price, IsFree: s.price == 0, Tags: s.tags,
	})
	if err != nil {
		e.t.Fatalf("create class: %v", err)
	}
	return c
}

func (e *env) enroll(actor string, c store.LiveClass) store.Enrollment {
	e.t.Helper()
	en, err := e.classes.Enroll(context.Background(), e.actor(actor), c.ID, "")
	if err != nil {
		e.t.Fatalf("enroll %s: %v", actor, err)
	}
	return en
}

func (e *env) newRecording(c store.LiveClass) store.Recording {
	e.t.Helper()
	key, bucket, dur := fmt.Sprintf("rec/%d.mp4", e.seq.Add(1)), "recordings", 60
	r, err := e.classes.CreateRecording(context.Background(), e.actor(admin), classes.RecordingInput{
		ClassID: c.ID, S3Key: &key, S3Bucket: &bucket, Duration: &dur,
	})
	if err != nil {
		e.t.Fatalf("create recording: %v", err)
	}
	return r
}
