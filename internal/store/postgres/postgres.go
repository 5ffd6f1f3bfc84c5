// Package postgres is liveclass's PostgreSQL store engine, for production
// and for several nodes sharing one database. It talks to the server with
// pgx through database/sql, so that the queries are the ones package sqldb
// shares with SQLite.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/liveclass/liveclass/internal/store/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockKey is the advisory lock that makes several servers starting
// at once apply migrations one after the other. Any constant does; this
// one spells "lc-mig" in ASCII.
const migrationLockKey = 0x6c632d6d6967

// DB is a PostgreSQL store. It implements store.Store.
type DB struct {
	*sqldb.DB
}

// Dialect is how sqldb speaks PostgreSQL: $n placeholders, TIMESTAMPTZ
// times, tags as a JSONB array matched with @>.
func Dialect() sqldb.Dialect {
	return sqldb.Dialect{
		Name:           "postgres",
		NumberedParams: true,
		Time:           func(t time.Time) any { return t },
		Tags:           sqldb.JSONTags,
		TagsHas:        func(col string) string { return col + " @> jsonb_build_array(CAST(? AS text))" },
		Instr:          "strpos",
		IsUnique:       func(err error) bool { return hasCode(err, "23505") },
		IsForeignKey:   func(err error) bool { return hasCode(err, "23503") },
		MigrationLock:  fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockKey),
	}
}

func hasCode(err error, code string) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == code
}

// Open connects to the database at url (postgres://…), checks that it
// answers and applies pending migrations.
func Open(ctx context.Context, url string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := openPool(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := sqldb.Migrate(ctx, db, Dialect(), migrations, "migrations", log); err != nil {
		_ = db.Close()
		return nil, err
	}
	// PostgreSQL has no single-writer limit: reads and writes share a pool.
	return &DB{DB: sqldb.New(db, db, Dialect(), log)}, nil
}

// Migrate applies pending migrations to the database at url and returns
// the versions it applied (for `liveclass migrate`).
func Migrate(ctx context.Context, url string, log *slog.Logger) ([]string, error) {
	db, err := openPool(ctx, url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return sqldb.Migrate(ctx, db, Dialect(), migrations, "migrations", log)
}

func openPool(ctx context.Context, url string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The parse error repeats the URL, password included; name the
		// problem without it.
		return nil, errors.New("postgres: cannot parse the database URL")
	}
	db := stdlib.OpenDB(*cfg)
	// Enough connections to keep two cores busy with short queries while
	// leaving the server's default limit of 100 to other nodes and tools.
	n := max(10, 4*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	return db, nil
}
