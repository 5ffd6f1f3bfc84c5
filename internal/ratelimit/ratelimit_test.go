package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		at   time.Duration // after t0
		want bool
	}
	tests := []struct {
		name  string
		b     Bucket
		steps []step
	}{
		{"burst then refused", New(1, 3), []step{{0, true}, {0, true}, {0, true}, {0, false}}},
		{"refills at rate", New(2, 1), []step{{0, true}, {0, false}, {400 * time.Millisecond, false}, {500 * time.Millisecond, true}}},
		{"refill capped at burst", New(10, 2), []step{{0, true}, {time.Hour, true}, {time.Hour, true}, {time.Hour, false}}},
		{"refused actions take nothing", New(1, 1), []step{{0, true}, {500 * time.Millisecond, false}, {time.Second, true}}},
		{"n per period", Every(5, 5*time.Second), []step{
			{0, true}, {0, true}, {0, true}, {0, true}, {0, true}, {0, false},
			{999 * time.Millisecond, false}, {time.Second, true}, {time.Second, false},
		}},
		{"zero bucket refuses", Bucket{}, []step{{0, false}, {time.Hour, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			for i, s := range tt.steps {
				if got := b.Allow(t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d at +%s: Allow = %v, want %v", i, s.at, got, s.want)
				}
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	bk := New(1e9, 1e9)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		bk.Allow(now.Add(time.Duration(i)))
	}
}
