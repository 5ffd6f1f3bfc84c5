package postgres_test

import (
	"context"
	"testing"

	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/postgres"
	"github.com/liveclass/liveclass/internal/store/storetest"
	"github.com/liveclass/liveclass/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func open(t *testing.T) store.Store {
	t.Helper()
	db, err := postgres.Open(context.Background(), testpg.NewDatabase(t), nil)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func BenchmarkReads(b *testing.B) {
	db, err := postgres.Open(context.Background(), testpg.NewDatabase(b), nil)
	if err != nil {
		b.Fatalf("postgres.Open: %v", err)
	}
	b.Cleanup(func() { _ = db.Close() })
	storetest.Benchmark(b, db)
}
