package room

import (
	"slices"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

// Attended is how long the stays cover, counting overlapping stays once
// (a user in two tabs, or on two nodes, attends once). A stay still open
// counts until now.
func Attended(stays []store.Attendance, now time.Time) time.Duration {
	type span struct{ from, to time.Time }
	spans := make([]span, 0, len(stays))
	for _, s := range stays {
		to := now
		if s.LeftAt != nil {
			to = *s.LeftAt
		}
		if to.After(s.JoinedAt) {
			spans = append(spans, span{s.JoinedAt, to})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	var total time.Duration
	var cur span
	for i, s := range spans {
		switch {
		case i == 0:
			cur = s
		case s.from.After(cur.to):
			total += cur.to.Sub(cur.from)
			cur = s
		case s.to.After(cur.to):
			cur.to = s.to
		}
	}
	if len(spans) > 0 {
		total += cur.to.Sub(cur.from)
	}
	return total
}

// Minutes rounds a duration to whole minutes, half a minute up, as the
// enrollment's attendanceDuration keeps it.
func Minutes(d time.Duration) int {
	return int((d + 30*time.Second) / time.Minute)
}

// window is a sliding-window rate limiter: the times of the last actions.
type window struct{ times []time.Time }

// allow records an action at now if fewer than r.N happened in the last
// r.Per, and reports whether it did.
func (w *window) allow(now time.Time, r Rate) bool {
	cut := now.Add(-r.Per)
	i := 0
	for i < len(w.times) && !w.times[i].After(cut) {
		i++
	}
	w.times = append(w.times[:0], w.times[i:]...)
	if len(w.times) >= r.N {
		return false
	}
	w.times = append(w.times, now)
	return true
}
