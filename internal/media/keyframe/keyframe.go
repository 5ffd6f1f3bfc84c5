// Package keyframe throttles keyframe requests to a publisher.
//
// Every subscriber that joins or switches layer needs a keyframe, and
// Chromium sends none unasked. Forty students joining within a second must
// not become forty PLIs, each making the publisher's encoder spend a large
// frame: a Throttle turns any number of requests for one publisher stream
// into at most one PLI per interval, and asks again if no keyframe arrived
// within a timeout (the PLI or the keyframe itself may be lost).
package keyframe

import (
	"fmt"
	"sync"
	"time"
)

// Defaults for Options.
const (
	// DefaultInterval is the least time between two PLIs for one stream.
	DefaultInterval = 500 * time.Millisecond
	// DefaultTimeout is how long to wait for a keyframe before asking
	// again: a few round trips plus an encoder's reaction time.
	DefaultTimeout = time.Second
)

// Options configure a Throttle.
type Options struct {
	// Interval is the least time between two PLIs; DefaultInterval if zero.
	Interval time.Duration
	// Timeout is how long after a PLI to ask again if no keyframe came;
	// DefaultTimeout if zero. It is at least Interval.
	Timeout time.Duration
	// Now is the clock; time.Now if nil. Tests pass a fake one.
	Now func() time.Time
}

// Throttle decides when to send a PLI for one publisher stream. It is safe
// for concurrent use.
type Throttle struct {
	mu       sync.Mutex
	interval time.Duration
	timeout  time.Duration
	now      func() time.Time

	pending     bool      // a subscriber waits for a keyframe
	outstanding bool      // a PLI was sent and no keyframe came since
	askedAt     time.Time // when the last PLI was sent
	everAsked   bool
	sent        uint64
	requests    uint64
}

// New returns a Throttle with nothing pending.
func New(opts Options) (*Throttle, error) {
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Interval < 0 || opts.Timeout < opts.Interval {
		return nil, fmt.Errorf("keyframe: interval %v and timeout %v: want 0 < interval <= timeout", opts.Interval, opts.Timeout)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Throttle{interval: opts.Interval, timeout: opts.Timeout, now: opts.Now}, nil
}

// Request records that a subscriber needs a keyframe and reports whether
// the caller must send a PLI now. When it returns false the request is not
// lost: a PLI already on its way covers it, or Poll will send one when the
// interval has passed.
func (t *Throttle) Request() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	t.pending = true
	if t.outstanding {
		// The keyframe asked for will serve this subscriber too; if it
		// never comes, Poll asks again after the timeout.
		return false
	}
	return t.askIfDue(t.interval)
}

// Keyframe records that a keyframe arrived from the publisher: every
// subscriber waiting could start at it.
func (t *Throttle) Keyframe() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = false
	t.outstanding = false
}

// Poll reports whether the caller must send a PLI now: a request was held
// back by the interval and the interval has passed, or a PLI got no
// keyframe within the timeout. Call it periodically, or at Due.
func (t *Throttle) Poll() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.pending {
		return false
	}
	if t.outstanding {
		return t.askIfDue(t.timeout)
	}
	return t.askIfDue(t.interval)
}

// Due returns when Poll will next return true if nothing else happens, and
// false when nothing is pending.
func (t *Throttle) Due() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.pending:
		return time.Time{}, false
	case !t.everAsked:
		return t.now(), true
	case t.outstanding:
		return t.askedAt.Add(t.timeout), true
	default:
		return t.askedAt.Add(t.interval), true
	}
}

// Stats returns how many requests were made and how many PLIs they cost.
func (t *Throttle) Stats() (requests, plis uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.requests, t.sent
}

// askIfDue records a PLI and returns true when wait has passed since the
// last one.
func (t *Throttle) askIfDue(wait time.Duration) bool {
	now := t.now()
	if t.everAsked && now.Sub(t.askedAt) < wait {
		return false
	}
	t.everAsked = true
	t.askedAt = now
	t.outstanding = true
	t.sent++
	return true
}
