package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/liveclass/liveclass/internal/store/engine"
	"github.com/liveclass/liveclass/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func TestParse(t *testing.T) {
	tests := []struct {
		url, kind, target, err string
	}{
		{url: "postgres://u:p@db:5432/lc?sslmode=disable", kind: "postgres", target: "postgres://u:p@db:5432/lc?sslmode=disable"},
		{url: "postgresql://db/lc", kind: "postgres", target: "postgresql://db/lc"},
		{url: "POSTGRES://db/lc", kind: "postgres", target: "POSTGRES://db/lc"},
		{url: "sqlite:///var/lib/liveclass/lc.db", kind: "sqlite", target: "/var/lib/liveclass/lc.db"},
		{url: "sqlite://localhost/var/lc.db", kind: "sqlite", target: "/var/lc.db"},
		{url: "sqlite:data/lc.db", kind: "sqlite", target: "data/lc.db"},
		{url: "sqlite:data/my%20db.db", kind: "sqlite", target: "data/my db.db"},
		{url: "file:data/lc.db", kind: "sqlite", target: "data/lc.db"},
		{url: "file:///tmp/lc.db", kind: "sqlite", target: "/tmp/lc.db"},
		{url: "/abs/lc.db", kind: "sqlite", target: "/abs/lc.db"},
		{url: "data/lc.db", kind: "sqlite", target: "data/lc.db"},
		{url: "./odd:name.db", kind: "sqlite", target: "./odd:name.db"},
		{url: "  lc.db ", kind: "sqlite", target: "lc.db"},
		{url: "mysql://db/lc", err: `unsupported scheme "mysql"`},
		{url: "https://example.org/db", err: `unsupported scheme "https"`},
		{url: "sqlite://host/x.db", err: "names a local file"},
		{url: "sqlite:x.db?_pragma=foo", err: "not supported"},
		{url: "sqlite:", err: "names no file"},
		{url: "", err: "empty"},
	}
	for _, tc := range tests {
		kind, target, err := engine.Parse(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || string(kind) != tc.kind || target != tc.target {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q", tc.url, kind, target, err, tc.kind, tc.target)
		}
	}
}

func TestOpenAndMigrateSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, url := range []string{
		"sqlite://" + filepath.Join(dir, "a.db"),
		"file:" + filepath.Join(dir, "b.db"),
		filepath.Join(dir, "sub", "c.db"),
	} {
		st, err := engine.Open(ctx, url, nil)
		if err != nil {
			t.Fatalf("Open(%s): %v", url, err)
		}
		if err := st.Ping(ctx); err != nil {
			t.Fatalf("Ping(%s): %v", url, err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("Close(%s): %v", url, err)
		}
	}
	for _, name := range []string{"a.db", "b.db", "sub/c.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("database file %s: %v", name, err)
		}
	}
	checkMigrate(t, "sqlite:"+filepath.Join(dir, "m.db"))
	// Open on an already migrated database applies nothing and works.
	st, err := engine.Open(ctx, "sqlite:"+filepath.Join(dir, "m.db"), nil)
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	if _, err := st.CountUsers(ctx); err != nil {
		t.Fatalf("CountUsers: %v", err)
	}
	_ = st.Close()
}

func TestOpenAndMigratePostgres(t *testing.T) {
	url := testpg.NewDatabase(t)
	checkMigrate(t, url)
	st, err := engine.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	if n, err := st.CountUsers(context.Background()); err != nil || n != 0 {
		t.Fatalf("CountUsers = %d, %v", n, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := engine.Open(ctx, "mysql://db/x", nil); err == nil || !strings.Contains(err.Error(), "mysql") {
		t.Fatalf("Open(mysql://) = %v, want an error naming the scheme", err)
	}
	// A server that is not there: an error that does not leak the password.
	_, err := engine.Open(ctx, "postgres://u:secret@127.0.0.1:1/x?connect_timeout=2", nil)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open(unreachable) = %v", err)
	}
	if _, err := engine.Open(ctx, "postgres://u:secret@[bad", nil); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open(malformed) = %v", err)
	}
	// A path in a place that cannot be a directory.
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Open(ctx, filepath.Join(file, "x.db"), nil); err == nil {
		t.Fatal("Open under a regular file succeeded")
	}
}

func checkMigrate(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	applied, err := engine.Migrate(ctx, url, nil)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(applied) == 0 || applied[0] != "0001_init" {
		t.Fatalf("first Migrate applied %v, want 0001_init first", applied)
	}
	again, err := engine.Migrate(ctx, url, nil)
	if err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if !reflect.DeepEqual(again, []string(nil)) {
		t.Fatalf("second Migrate applied %v, want nothing", again)
	}
}
