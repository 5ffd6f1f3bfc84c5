// Package sqldb is the one database/sql implementation of store.Store that
// the SQLite and PostgreSQL engines share. What differs between the two
// (placeholders, how times and tags are stored, how a constraint violation
// is recognised, a few SQL functions) is a small Dialect that each engine
// hands in, so the queries, the pagination and the filter compiler exist
// once.
//
// Choices the store.Store interface leaves open, made here for both engines:
//
//   - Create methods fill an empty ID (a random UUID) and zero CreatedAt /
//     UpdatedAt (now), and write the stored values back into the record;
//     update methods set a zero UpdatedAt to now.
//   - Times are stored in UTC truncated to the millisecond, and read back
//     as UTC, equal to what was written. An empty tag list reads back as nil.
//   - Filters follow DynamoDB: a missing (NULL) attribute fails every
//     positive test and passes ne and notContains, so NOT is an exact
//     complement. contains and beginsWith are case-sensitive and take no
//     wildcards. On tags, eq and contains both mean "is one of the tags"
//     (exact match), ne and notContains the opposite.
//   - Text compares by bytes on both engines (PostgreSQL columns use the
//     "C" collation), so ordering and lt/gt filters agree.
//   - Lists are keyset-paginated by (a time, id); the cursor stays valid
//     when rows are added or deleted.
//   - Deleting a user who instructs a class is a Conflict; deleting any
//     other user removes their sessions and enrollments and frees the
//     seats.
package sqldb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Dialect is what an engine tells sqldb about its SQL.
type Dialect struct {
	// Name names the engine in logs and errors ("sqlite", "postgres").
	Name string
	// NumberedParams rewrites the '?' placeholders that sqldb writes into
	// $1, $2, … (PostgreSQL).
	NumberedParams bool
	// Time encodes a UTC, millisecond-truncated time as a query parameter.
	// Scanning accepts both encodings sqldb knows: int64 Unix milliseconds
	// and time.Time.
	Time func(time.Time) any
	// Tags encodes a tag list as a query parameter; scanning accepts the
	// JSON array text (string or []byte) that both engines return.
	Tags func([]string) (any, error)
	// TagsHas returns SQL that is true when the tags column col holds the
	// value bound to the single '?' in the returned text.
	TagsHas func(col string) string
	// Instr is the SQL function giving the 1-based position of a substring
	// (0 when absent): "instr" in SQLite, "strpos" in PostgreSQL. sqldb uses
	// it for contains and beginsWith, so they are case-sensitive and need no
	// LIKE escaping.
	Instr string
	// IsUnique reports whether err is a unique or primary-key violation.
	IsUnique func(error) bool
	// IsForeignKey reports whether err is a foreign-key violation.
	IsForeignKey func(error) bool
	// MigrationLock is SQL run first in every migration transaction so that
	// several processes migrating at once take turns; empty for none.
	MigrationLock string
}

// DB implements store.Store over database/sql. Reads go to the read pool,
// writes and every transaction to the write pool; an engine may pass the
// same *sql.DB twice (PostgreSQL) or a one-connection write pool beside a
// read pool (SQLite, which allows one writer at a time).
type DB struct {
	r, w *sql.DB
	d    Dialect
	log  *slog.Logger

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // prepared reads of the hot path, by query text
}

// New returns a store over the given pools. It takes ownership of them:
// Close closes both.
func New(read, write *sql.DB, d Dialect, log *slog.Logger) *DB {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DB{r: read, w: write, d: d, log: log, stmts: map[string]*sql.Stmt{}}
}

// queryRow runs a single-row read through a statement prepared once per
// store (database/sql prepares it on each pooled connection as needed).
// The join path looks up a session, a class and an enrollment per request,
// and parsing the SQL again each time is a large part of the cost on
// SQLite.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	db.mu.Lock()
	st, ok := db.stmts[query]
	db.mu.Unlock()
	if !ok {
		var err error
		st, err = db.r.PrepareContext(ctx, db.q(query))
		if err != nil {
			// The plain query reports the same error through the Row.
			return db.r.QueryRowContext(ctx, db.q(query), args...)
		}
		db.mu.Lock()
		if prev, raced := db.stmts[query]; raced {
			_ = st.Close()
			st = prev
		} else {
			db.stmts[query] = st
		}
		db.mu.Unlock()
	}
	return st.QueryRowContext(ctx, args...)
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: ping: %w", db.d.Name, err)
	}
	if db.w != db.r {
		if err := db.w.PingContext(ctx); err != nil {
			return fmt.Errorf("%s: ping: %w", db.d.Name, err)
		}
	}
	return nil
}

// Close closes the prepared statements and the pools.
func (db *DB) Close() error {
	db.mu.Lock()
	var err error
	for q, st := range db.stmts {
		err = errors.Join(err, st.Close())
		delete(db.stmts, q)
	}
	db.mu.Unlock()
	err = errors.Join(err, db.r.Close())
	if db.w != db.r {
		err = errors.Join(err, db.w.Close())
	}
	return err
}

// Reader is the pool for reads, for engines' own checks and tests.
func (db *DB) Reader() *sql.DB { return db.r }

// Writer is the pool for writes and transactions.
func (db *DB) Writer() *sql.DB { return db.w }

var _ store.Store = (*DB)(nil)

// q rewrites sqldb's '?' placeholders for the dialect. sqldb never puts a
// '?' inside a string literal, so a plain scan is enough.
func (db *DB) q(s string) string {
	if !db.d.NumberedParams || !strings.Contains(s, "?") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.w.ExecContext(ctx, db.q(query), args...)
}

// tx runs fn in a write transaction, committing when fn returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", db.d.Name, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error from fn is the one worth reporting
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", db.d.Name, err)
	}
	return nil
}

// ts normalises a time to what the store keeps: UTC, truncated to the
// millisecond, so that a value read back equals the value written on both
// engines (SQLite keeps Unix milliseconds, PostgreSQL microseconds).
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// now is the store's clock for timestamps the caller left zero.
func now() time.Time { return ts(time.Now()) }

func (db *DB) tm(t time.Time) any { return db.d.Time(ts(t)) }

func (db *DB) tmp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return db.d.Time(ts(*t))
}

// newID returns a random version-4 UUID, the shape of Amplify's ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// wrap gives a driver error context; errors that already carry a kind, and
// context errors, pass through so callers can still tell them apart.
func (db *DB) wrap(err error, op string) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("%s: %s: %w", db.d.Name, op, err)
}

func notFound(what string, id any) error {
	return apperr.New(apperr.NotFound, "%s %v not found", what, id)
}

func conflictField(field, msg string) error {
	return &apperr.Error{Kind: apperr.Conflict, Field: field, Message: msg}
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// timeScan scans either time encoding into a UTC time.
type timeScan struct{ t *time.Time }

func (s timeScan) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*s.t = time.UnixMilli(v).UTC()
	case time.Time:
		*s.t = v.UTC()
	default:
		return fmt.Errorf("cannot scan %T into a time", src)
	}
	return nil
}

// nullTimeScan is timeScan for a nullable column.
type nullTimeScan struct{ t **time.Time }

func (s nullTimeScan) Scan(src any) error {
	if src == nil {
		*s.t = nil
		return nil
	}
	var t time.Time
	if err := (timeScan{&t}).Scan(src); err != nil {
		return err
	}
	*s.t = &t
	return nil
}
