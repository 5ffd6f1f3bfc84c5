package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrate applies the numbered migrations in dir of fsys (files named
// NNNN_name.sql) that schema_migrations does not list yet, each in its own
// transaction together with its row in schema_migrations, in order. It
// returns the versions it applied (file names without .sql). Migrations
// once released are never edited; a change is a new file.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, fsys fs.FS, dir string, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	files, err := migrationFiles(fsys, dir)
	if err != nil {
		return nil, err
	}
	tmp := &DB{r: db, w: db, d: d}
	lock := func(tx *sql.Tx) error {
		if d.MigrationLock == "" {
			return nil
		}
		if _, err := tx.ExecContext(ctx, d.MigrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return nil
	}
	err = tmp.tx(ctx, func(tx *sql.Tx) error {
		// Under the lock too: two PostgreSQL servers racing on CREATE TABLE
		// IF NOT EXISTS can otherwise both try to create it.
		if err := lock(tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version TEXT PRIMARY KEY,
			applied_at TEXT NOT NULL
		)`)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: create schema_migrations: %w", d.Name, err)
	}
	var applied []string
	for _, name := range files {
		version := strings.TrimSuffix(name, ".sql")
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return applied, fmt.Errorf("%s: read migration %s: %w", d.Name, name, err)
		}
		did := false
		err = tmp.tx(ctx, func(tx *sql.Tx) error {
			if err := lock(tx); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, tmp.q("SELECT COUNT(*) FROM schema_migrations WHERE version = ?"), version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, tmp.q("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
				version, time.Now().UTC().Format(time.RFC3339))
			did = err == nil
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("%s: migration %s: %w", d.Name, version, err)
		}
		if did {
			log.Info("applied migration", "engine", d.Name, "version", version)
			applied = append(applied, version)
		}
	}
	return applied, nil
}

// migrationFiles lists dir's NNNN_*.sql files in numeric order; two files
// with the same number are an error, since their order would be a guess.
func migrationFiles(fsys fs.FS, dir string) ([]string, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	type mig struct {
		n    int
		name string
	}
	var migs []mig
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", name)
		}
		if other, dup := seen[n]; dup {
			return nil, fmt.Errorf("migrations %s and %s share number %d", other, name, n)
		}
		seen[n] = name
		migs = append(migs, mig{n, name})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].n < migs[j].n })
	out := make([]string, len(migs))
	for i, m := range migs {
		out[i] = m.name
	}
	return out, nil
}
