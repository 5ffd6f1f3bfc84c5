package keyframe

import (
	"sync"
	"testing"
	"time"
)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newThrottle(t testing.TB) (*Throttle, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	th, err := New(Options{Interval: 500 * time.Millisecond, Timeout: time.Second, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return th, c
}

func TestThrottle(t *testing.T) {
	const ms = time.Millisecond
	type ev int
	const (
		request ev = iota
		poll
		keyframe
	)
	type step struct {
		after time.Duration
		ev    ev
		pli   bool // a PLI must be sent now
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a burst of joins asks once", []step{
			{0, request, true}, {1 * ms, request, false}, {10 * ms, request, false},
			{100 * ms, request, false}, {10 * ms, poll, false},
			{10 * ms, keyframe, false}, {10 * ms, poll, false},
		}},
		{"no keyframe within the timeout asks again", []step{
			{0, request, true}, {600 * ms, poll, false}, {300 * ms, poll, false},
			{100 * ms, poll, true}, {10 * ms, poll, false}, {10 * ms, request, false},
			{1000 * ms, poll, true},
		}},
		{"a request after a keyframe waits out the interval", []step{
			{0, request, true}, {40 * ms, keyframe, false},
			{100 * ms, request, false}, {100 * ms, poll, false},
			{260 * ms, poll, true}, {1 * ms, poll, false},
		}},
		{"a request after the interval asks at once", []step{
			{0, request, true}, {40 * ms, keyframe, false},
			{500 * ms, request, true},
		}},
		{"an unasked keyframe satisfies a held request", []step{
			{0, request, true}, {40 * ms, keyframe, false},
			{10 * ms, request, false}, {10 * ms, keyframe, false},
			{1000 * ms, poll, false},
		}},
		{"nothing pending, nothing to do", []step{
			{0, poll, false}, {5000 * ms, poll, false}, {0, keyframe, false}, {0, poll, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th, c := newThrottle(t)
			for i, s := range tc.steps {
				c.advance(s.after)
				var got bool
				switch s.ev {
				case request:
					got = th.Request()
				case poll:
					got = th.Poll()
				case keyframe:
					th.Keyframe()
				}
				if got != s.pli {
					t.Fatalf("step %d: PLI = %v, want %v", i, got, s.pli)
				}
			}
		})
	}
}

func TestDue(t *testing.T) {
	th, c := newThrottle(t)
	if _, ok := th.Due(); ok {
		t.Fatal("Due with nothing pending")
	}
	start := c.Now()
	th.Request()
	if due, ok := th.Due(); !ok || !due.Equal(start.Add(time.Second)) {
		t.Fatalf("Due after a PLI = %v, %v; want the timeout", due, ok)
	}
	th.Keyframe()
	th.Request()
	if due, ok := th.Due(); !ok || !due.Equal(start.Add(500*time.Millisecond)) {
		t.Fatalf("Due for a held request = %v, %v; want the interval", due, ok)
	}
	c.advance(499 * time.Millisecond)
	if th.Poll() {
		t.Fatal("Poll before Due sent a PLI")
	}
	c.advance(time.Millisecond)
	if !th.Poll() {
		t.Fatal("Poll at Due sent no PLI")
	}
	if r, p := th.Stats(); r != 2 || p != 2 {
		t.Fatalf("Stats = %d requests, %d PLIs; want 2, 2", r, p)
	}
}

func TestManyRequestsAtMostOnePerInterval(t *testing.T) {
	th, c := newThrottle(t)
	plis := 0
	// 10 s of requests every 5 ms from concurrent subscribers, with no
	// keyframe ever arriving: one PLI at once, then one per timeout.
	for range 2000 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 4 {
			wg.Go(func() {
				if th.Request() {
					mu.Lock()
					plis++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if th.Poll() {
			plis++
		}
		c.advance(5 * time.Millisecond)
	}
	if plis != 10 {
		t.Fatalf("%d PLIs in 10 s without a keyframe, want 10 (one per timeout)", plis)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []Options{
		{Interval: -time.Second},
		{Interval: time.Second, Timeout: time.Millisecond},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted invalid options", o)
		}
	}
	th, err := New(Options{})
	if err != nil || th.interval != DefaultInterval || th.timeout != DefaultTimeout {
		t.Fatalf("New with defaults = %+v, %v", th, err)
	}
}

func BenchmarkRequest(b *testing.B) {
	th, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		th.Request()
	}
}
