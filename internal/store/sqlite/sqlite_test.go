package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
	"github.com/liveclass/liveclass/internal/store/storetest"
)

func open(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "liveclass.db"))
	})
}

// TestSettings checks the connection settings the package promises.
func TestSettings(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "lc.db"))
	ctx := context.Background()
	var mode string
	var fk, busy int
	if err := db.Writer().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	for _, pool := range []struct {
		name string
		q    func(string, ...any) error
	}{
		{"writer", func(s string, dst ...any) error { return db.Writer().QueryRowContext(ctx, s).Scan(dst...) }},
		{"reader", func(s string, dst ...any) error { return db.Reader().QueryRowContext(ctx, s).Scan(dst...) }},
	} {
		if err := pool.q("PRAGMA foreign_keys", &fk); err != nil || fk != 1 {
			t.Fatalf("%s: foreign_keys = %d, %v", pool.name, fk, err)
		}
		if err := pool.q("PRAGMA busy_timeout", &busy); err != nil || busy < 1000 {
			t.Fatalf("%s: busy_timeout = %d, %v", pool.name, busy, err)
		}
	}
	if _, err := db.Reader().ExecContext(ctx, "DELETE FROM users"); err == nil {
		t.Fatal("the read pool accepted a write")
	}
	var versions int
	if err := db.Reader().QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&versions); err != nil || versions < 1 {
		t.Fatalf("schema_migrations has %d rows, %v", versions, err)
	}
}

// TestTwoProcesses opens the same file twice, as a server and the
// `liveclass user` command beside it do, and races enrollments through
// both: the busy timeout and IMMEDIATE transactions keep every writer from
// failing with SQLITE_BUSY, and the seat rule holds across them.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	a, b := open(t, path), open(t, path)
	ctx := context.Background()
	m := store.User{Email: "m@example.org", Name: "M", Role: store.RoleMentor}
	if err := a.CreateUser(ctx, &m); err != nil {
		t.Fatal(err)
	}
	c := store.LiveClass{Title: "C", InstructorID: m.ID, StartTime: time.Now(), EndTime: time.Now().Add(time.Hour),
		Duration: 60, Service: store.ServiceChime, AccessLevel: store.RoleStudent, MaxParticipants: 10,
		Category: "x", Level: store.LevelBeginner, IsFree: true, Status: store.StatusScheduled}
	if err := b.CreateClass(ctx, &c); err != nil {
		t.Fatal(err)
	}
	const n = 60
	users := make([]store.UserID, n)
	for i := range users {
		u := store.User{Email: fmt.Sprintf("s%d@example.org", i), Name: "S", Role: store.RoleStudent}
		if err := a.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		users[i] = u.ID
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := a
			if i%2 == 1 {
				st = b
			}
			errs[i] = st.Enroll(ctx, &store.Enrollment{UserID: users[i], ClassID: c.ID})
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case apperr.Is(err, apperr.Conflict) && strings.Contains(err.Error(), "full"):
		default:
			t.Errorf("enrollment %d: %v", i, err)
		}
	}
	got, err := b.ClassByID(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok != 10 || got.EnrolledCount != 10 {
		t.Fatalf("%d admitted, EnrolledCount %d; want 10 and 10", ok, got.EnrolledCount)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := sqlite.Open(ctx, "", nil); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
	if _, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db?mode=ro"), nil); err == nil {
		t.Fatal("Open with '?' in the path succeeded")
	}
}

func BenchmarkReads(b *testing.B) {
	storetest.Benchmark(b, open(b, filepath.Join(b.TempDir(), "bench.db")))
}

func TestNewFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.db")
	open(t, path)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Fatalf("%s has mode %o, want 600", filepath.Base(p), mode)
		}
	}
}
