package testpg

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func query(t *testing.T, url, sql string, dst ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestNewDatabase: each call gets its own empty database on the shared
// server, as an unprivileged user, with the byte-order "C" locale.
func TestNewDatabase(t *testing.T) {
	a, b := NewDatabase(t), NewDatabase(t)
	if a == b {
		t.Fatalf("two databases share the URL %s", a)
	}
	var nameA, nameB string
	query(t, a, "SELECT current_database()", &nameA)
	query(t, b, "SELECT current_database()", &nameB)
	if nameA == nameB || !strings.HasPrefix(nameA, "test_") {
		t.Fatalf("databases %q and %q", nameA, nameB)
	}
	var tables int
	query(t, a, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'", &tables)
	if tables != 0 {
		t.Fatalf("a new database has %d tables", tables)
	}
	if os.Getenv(EnvURL) == "" {
		var collate string
		query(t, a, "SELECT datcollate FROM pg_database WHERE datname = current_database()", &collate)
		if collate != "C" {
			t.Fatalf("collation %q, want C", collate)
		}
		var dir string
		query(t, a, "SHOW data_directory", &dir)
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if uid := statUID(fi); uid == 0 {
				t.Fatalf("the server's data directory %s belongs to root", dir)
			}
		}
	}
}

// TestStartStop runs a private server, and points an external-server
// configuration at it, as LIVECLASS_TEST_DATABASE_URL would.
func TestStartStop(t *testing.T) {
	s := Start(t)
	ext, err := external(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	// A subtest, so that its database is dropped before the server stops.
	t.Run("external", func(t *testing.T) {
		url := ext.NewDatabase(t)
		var one int
		query(t, url, "SELECT 1", &one)
		if err := ext.Stop(); err != nil {
			t.Fatalf("stopping an external server: %v", err)
		}
		query(t, url, "SELECT 1", &one) // still up: Stop of an external server does nothing
	})

	dir := s.dir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("server directory %s left behind: %v", dir, err)
	}
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, s.url.String()); err == nil {
		conn.Close(ctx)
		t.Fatal("server still accepts connections after Stop")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestExternalURLMustBePostgres(t *testing.T) {
	if _, err := external("mysql://x/y"); err == nil {
		t.Fatal("external accepted a mysql URL")
	}
}

func TestBinariesMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findBin(filepath.Join(t.TempDir(), "*", "bin"))
	if err == nil || !strings.Contains(err.Error(), "run `make test`") {
		t.Fatalf("findBin with no PostgreSQL = %v, want the make test hint", err)
	}
}
