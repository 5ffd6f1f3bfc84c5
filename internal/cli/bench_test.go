package cli

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/liveclass/liveclass/client"
)

// BenchmarkJoinPath measures generateLiveClassToken through the whole
// stack (HTTP, sign-in middleware, GraphQL, rules, SQLite, signing) from
// parallel clients over kept-alive connections. BenchmarkHealthzFloor is
// the same loop over /healthz: the HTTP cost every request pays.
func BenchmarkJoinPath(b *testing.B) {
	ctx := context.Background()
	cfg := testConfig(b, b.TempDir(), "", map[string]string{"signin_rate_limit": "0"})
	srv := start(b, cfg)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()

	admin := client.New(srv.url, client.WithHTTPClient(hc))
	if _, err := admin.Login(ctx, "admin@localhost", adminPassword); err != nil {
		b.Fatal(err)
	}
	begin := time.Now().Truncate(time.Minute)
	class, err := admin.CreateLiveClass(ctx, client.CreateLiveClassInput{
		Title: "Benchmark", StartTime: begin, EndTime: begin.Add(2 * time.Hour), AWSService: "CHIME",
		RequiresEnrollment: true, AccessLevel: "STUDENT", MaxParticipants: 50,
		Category: "Benchmark", Level: "BEGINNER", IsFree: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	student := client.New(srv.url, client.WithHTTPClient(hc))
	if _, err := student.Signup(ctx, "bench@example.org", "bench-password", "Bench"); err != nil {
		b.Fatal(err)
	}
	if _, err := student.Enroll(ctx, class.ID); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8) // requests in flight, as many browsers would have
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := student.GenerateLiveClassToken(ctx, class.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkHealthzFloor(b *testing.B) {
	cfg := testConfig(b, b.TempDir(), "", nil)
	srv := start(b, cfg)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	url := srv.url + "/healthz"
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := getOK(context.Background(), hc, url); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
