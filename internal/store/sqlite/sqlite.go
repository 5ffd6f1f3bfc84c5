// Package sqlite is liveclass's default store engine: one SQLite file,
// through the pure-Go modernc.org/sqlite driver (no cgo), with the queries
// shared with PostgreSQL in package sqldb.
//
// SQLite allows one writer at a time. Rather than let concurrent writers
// collide and retry on SQLITE_BUSY, the store keeps a write pool of exactly
// one connection (whose transactions begin IMMEDIATE, so a transaction that
// reads before it writes cannot be upgraded into a deadlock) beside a pool
// of read-only connections; with WAL, readers never wait for the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/liveclass/liveclass/internal/store/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a connection waits for a lock held by another
// process (for example `liveclass user add` beside a running server)
// before failing.
const busyTimeout = 10 * time.Second

// DB is a SQLite store. It implements store.Store.
type DB struct {
	*sqldb.DB
	path string
}

// Dialect is how sqldb speaks SQLite: times as INTEGER Unix milliseconds,
// tags as a JSON array text searched with json_each.
func Dialect() sqldb.Dialect {
	return sqldb.Dialect{
		Name: "sqlite",
		Time: func(t time.Time) any { return t.UnixMilli() },
		Tags: sqldb.JSONTags,
		TagsHas: func(col string) string {
			return "EXISTS (SELECT 1 FROM json_each(" + col + ") WHERE json_each.value = ?)"
		},
		Instr: "instr",
		IsUnique: func(err error) bool {
			return hasCode(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
		},
		IsForeignKey: func(err error) bool { return hasCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) },
	}
}

func hasCode(err error, codes ...int) bool {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code() == c {
			return true
		}
	}
	return false
}

// Open opens (creating if needed) the SQLite database file at path and
// applies pending migrations.
func Open(ctx context.Context, path string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w, r, err := openPools(ctx, path)
	if err != nil {
		return nil, err
	}
	if _, err := sqldb.Migrate(ctx, w, Dialect(), migrations, "migrations", log); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, err
	}
	return &DB{DB: sqldb.New(r, w, Dialect(), log), path: path}, nil
}

// Migrate applies pending migrations to the database at path and returns
// the versions it applied (for `liveclass migrate`).
func Migrate(ctx context.Context, path string, log *slog.Logger) ([]string, error) {
	w, r, err := openPools(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	defer w.Close()
	return sqldb.Migrate(ctx, w, Dialect(), migrations, "migrations", log)
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// openPools opens the one-connection write pool and the read pool.
func openPools(ctx context.Context, path string) (w, r *sql.DB, err error) {
	if path == "" {
		return nil, nil, errors.New("sqlite: empty database path")
	}
	if strings.ContainsRune(path, '?') {
		// The driver would take what follows for connection parameters.
		return nil, nil, fmt.Errorf("sqlite: database path %q must not contain '?'", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, nil, fmt.Errorf("sqlite: create directory for %s: %w", path, err)
		}
	}
	// The file holds password and session hashes: readable by its owner
	// only. Created empty here (an empty file is an empty database), so
	// that SQLite, which gives its -wal and -shm files the database's
	// mode, never makes them wider.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_ = f.Close()
	} else if !errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)", busyTimeout.Milliseconds())

	w, err = sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// The writer connects first, so the file exists and is in WAL mode
	// before any reader opens it.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	r, err = sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		_ = w.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return w, r, nil
}
