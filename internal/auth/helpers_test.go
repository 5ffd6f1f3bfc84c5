package auth

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// clock is a settable clock for Options.Now, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fastHash keeps tests quick where the hash cost is not what is tested;
// the parameters still go through argon2id and the PHC encoding.
func fastHash() HashParams {
	return HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// openStore opens a real SQLite file in the test's temp dir.
func openStore(t testing.TB) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "liveclass.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("opening SQLite store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return db
}

type fixture struct {
	st  store.Store
	clk *clock
	svc *Service
}

// newFixture returns a Service over a fresh SQLite store with a test clock;
// mod adjusts the options first.
func newFixture(t testing.TB, mod func(*Options)) *fixture {
	t.Helper()
	f := &fixture{st: openStore(t), clk: newClock()}
	opt := Options{
		Now:           f.clk.Now,
		SignupEnabled: true,
		Key:           []byte("0123456789abcdef0123456789abcdef"),
		HashParams:    fastHash(),
	}
	if mod != nil {
		mod(&opt)
	}
	f.svc = New(f.st, opt)
	return f
}

// user creates an account with a password and returns it with its actor.
func (f *fixture) user(t testing.TB, email string, role store.Role) (store.User, Actor) {
	t.Helper()
	u, err := f.svc.AddUser(context.Background(), email, "User "+email, "correct horse", role)
	if err != nil {
		t.Fatalf("AddUser(%s): %v", email, err)
	}
	return u, Actor{UserID: u.ID, Role: u.Role, Name: u.Name}
}

func wantKind(t testing.TB, err error, k apperr.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", k.Code())
	}
	if got := apperr.KindOf(err); got != k {
		t.Fatalf("got %s (%v), want %s", got.Code(), err, k.Code())
	}
}

func wantField(t testing.TB, err error, field string) {
	t.Helper()
	wantKind(t, err, apperr.Invalid)
	if got := apperr.FieldOf(err); got != field {
		t.Fatalf("error %q names field %q, want %q", err, got, field)
	}
}
