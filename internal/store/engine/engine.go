// Package engine opens the store engine that a database URL names, so that
// the wiring code and `liveclass migrate` take one setting,
// --database-url, and need not know the engines.
//
//	postgres://… or postgresql://…        PostgreSQL
//	sqlite:///abs/path, sqlite:rel/path  SQLite
//	file:path, or a bare path            SQLite
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/postgres"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// Kind names an engine.
type Kind string

// The engines.
const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// Parse tells which engine a database URL names and what to hand it: the
// URL itself for PostgreSQL, the file path for SQLite. Any other scheme is
// an error naming it.
func Parse(databaseURL string) (Kind, string, error) {
	raw := strings.TrimSpace(databaseURL)
	if raw == "" {
		return "", "", fmt.Errorf("database URL is empty")
	}
	scheme, rest, hasScheme := strings.Cut(raw, ":")
	// A Windows drive letter ("C:\data") or a path with a colon later on
	// ("./a:b") is a path, not a scheme.
	if !hasScheme || len(scheme) < 2 || strings.ContainsAny(scheme, `/\.`) {
		return SQLite, raw, nil
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return Postgres, raw, nil
	case "sqlite", "sqlite3", "file":
		path := rest
		if strings.HasPrefix(path, "//") {
			// sqlite:///abs/path or file:///abs/path: an empty host, then
			// the absolute path. A host is not meaningful for a file.
			u, err := url.Parse(raw)
			if err != nil {
				return "", "", fmt.Errorf("database URL: %w", err)
			}
			if u.Host != "" && u.Host != "localhost" {
				return "", "", fmt.Errorf("database URL %s: a %s URL names a local file; use %s:///absolute/path or %s:relative/path", scheme, scheme, scheme, scheme)
			}
			path = u.Path
		} else if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
		if i := strings.IndexByte(path, '?'); i >= 0 {
			// Connection parameters are the engine's to choose (WAL,
			// busy timeout, foreign keys); refuse rather than ignore them.
			return "", "", fmt.Errorf("database URL: parameters after '?' are not supported for SQLite")
		}
		if path == "" {
			return "", "", fmt.Errorf("database URL %q names no file", raw)
		}
		return SQLite, path, nil
	}
	return "", "", fmt.Errorf("database URL: unsupported scheme %q (use postgres://, sqlite: or a file path)", scheme)
}

// Open opens the store that databaseURL names, applying pending
// migrations.
func Open(ctx context.Context, databaseURL string, log *slog.Logger) (store.Store, error) {
	kind, target, err := Parse(databaseURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case Postgres:
		return postgres.Open(ctx, target, log)
	default:
		return sqlite.Open(ctx, target, log)
	}
}

// Migrate applies pending migrations to the database that databaseURL
// names and returns the versions it applied, oldest first.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) ([]string, error) {
	kind, target, err := Parse(databaseURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case Postgres:
		return postgres.Migrate(ctx, target, log)
	default:
		return sqlite.Migrate(ctx, target, log)
	}
}
