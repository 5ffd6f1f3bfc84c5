package web

import (
	"testing"
	"time"
)

func TestLocalPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"/dashboard", "/dashboard"},
		{"/classes/x?tab=1", "/classes/x?tab=1"},
		{"", ""},
		{"dashboard", ""},
		{"//evil.example/", ""},
		{"/\\evil.example", ""},
		{"https://evil.example/", ""},
		{"/ok\r\nSet-Cookie: x", ""},
	} {
		if got := localPath(tc.in); got != tc.want {
			t.Errorf("localPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCountdown(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Minute, "now"},
		{0, "now"},
		{42 * time.Second, "42s"},
		{15*time.Minute + 5*time.Second, "15m 5s"},
		{2*time.Hour + 3*time.Minute + 4*time.Second, "2h 3m 4s"},
		{50*time.Hour + 30*time.Minute, "2d 2h 30m"},
	} {
		if got := countdown(now, now.Add(tc.d)); got != tc.want {
			t.Errorf("countdown(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
