package sqldb_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite" // the driver of the real database the migrations run on

	"github.com/liveclass/liveclass/internal/store/sqldb"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

func rawDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestMigrateOrderAndRecord(t *testing.T) {
	db := rawDB(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		// Numeric, not lexical, order: 10 after 2.
		"m/0010_third.sql":  file("INSERT INTO t (v) VALUES ('third');"),
		"m/0002_second.sql": file("INSERT INTO t (v) VALUES ('second');"),
		"m/0001_first.sql":  file("CREATE TABLE t (n INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT); INSERT INTO t (v) VALUES ('first');"),
		"m/README.md":       file("not a migration"),
	}
	applied, err := sqldb.Migrate(ctx, db, sqlite.Dialect(), fsys, "m", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0001_first", "0002_second", "0010_third"}; !reflect.DeepEqual(applied, want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	rows, err := db.QueryContext(ctx, "SELECT v FROM t ORDER BY n")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		order = append(order, v)
	}
	rows.Close()
	if want := []string{"first", "second", "third"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("ran in order %v", order)
	}

	// A new file is applied alone; the old ones are not run again.
	fsys["m/0011_fourth.sql"] = file("INSERT INTO t (v) VALUES ('fourth');")
	applied, err = sqldb.Migrate(ctx, db, sqlite.Dialect(), fsys, "m", nil)
	if err != nil || !reflect.DeepEqual(applied, []string{"0011_fourth"}) {
		t.Fatalf("second run applied %v, %v", applied, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d rows, %v; want 4", n, err)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	db := rawDB(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"m/0001_ok.sql":  file("CREATE TABLE t (v TEXT);"),
		"m/0002_bad.sql": file("INSERT INTO t (v) VALUES ('half'); INSERT INTO nowhere VALUES (1);"),
	}
	applied, err := sqldb.Migrate(ctx, db, sqlite.Dialect(), fsys, "m", nil)
	if err == nil || !strings.Contains(err.Error(), "0002_bad") {
		t.Fatalf("Migrate = %v, want an error naming 0002_bad", err)
	}
	if !reflect.DeepEqual(applied, []string{"0001_ok"}) {
		t.Fatalf("applied %v before failing", applied)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the failed migration left %d rows (%v)", n, err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = '0002_bad'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the failed migration was recorded (%d, %v)", n, err)
	}
	// Fixed by a later release, it runs.
	fsys["m/0002_bad.sql"] = file("INSERT INTO t (v) VALUES ('whole');")
	applied, err = sqldb.Migrate(ctx, db, sqlite.Dialect(), fsys, "m", nil)
	if err != nil || !reflect.DeepEqual(applied, []string{"0002_bad"}) {
		t.Fatalf("retry applied %v, %v", applied, err)
	}
}

func TestMigrateBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"duplicate number": {"m/0001_a.sql": file(""), "m/1_b.sql": file("")},
		"no number":        {"m/init.sql": file("")},
	} {
		if _, err := sqldb.Migrate(context.Background(), rawDB(t), sqlite.Dialect(), fsys, "m", nil); err == nil {
			t.Errorf("%s: Migrate succeeded", name)
		}
	}
}
