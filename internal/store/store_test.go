package store_test

import (
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

func TestRolesOrderAccessLevels(t *testing.T) {
	if !(store.RoleStudent.Rank() < store.RoleMentor.Rank() && store.RoleMentor.Rank() < store.RoleAdmin.Rank()) {
		t.Fatal("want STUDENT < MENTOR < ADMIN")
	}
	if store.Role("GUEST").Valid() || !store.RoleAdmin.Valid() {
		t.Fatal("only the three roles are valid")
	}
}

func TestLiveAndUpcomingFollowStatusAndClock(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		status   store.Status
		start    time.Time
		live, up bool
	}{
		{store.StatusScheduled, now.Add(time.Minute), false, true},
		{store.StatusScheduled, now, false, false}, // starting now is no longer upcoming
		{store.StatusLive, now.Add(time.Hour), true, false},
		{store.StatusCancelled, now.Add(time.Hour), false, false},
		{store.StatusEnded, now.Add(-time.Hour), false, false},
	}
	for _, tc := range cases {
		c := store.LiveClass{Status: tc.status, StartTime: tc.start}
		if c.IsLive() != tc.live || c.IsUpcoming(now) != tc.up {
			t.Errorf("%s starting %v: live %v upcoming %v, want %v %v", tc.status, tc.start.Sub(now), c.IsLive(), c.IsUpcoming(now), tc.live, tc.up)
		}
	}
}
