package auth

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
)

// RateLimits bound sign-in attempts. Zero fields take the defaults; a
// negative count switches that limit off (the load tester signs in many
// users from one address).
type RateLimits struct {
	// AccountFailures failed sign-ins per account within AccountWindow
	// lock the account's password sign-in until the oldest falls out of
	// the window. Default 5 per 15 minutes.
	AccountFailures int
	AccountWindow   time.Duration
	// AddressAttempts sign-in and sign-up attempts per client address
	// (IPv6 by /64) within AddressWindow. Default 120 per minute: a
	// whole class signing in at once through one school's NAT address
	// must fit. It counts successes too, since each costs a password
	// hash (about 20 ms of CPU).
	AddressAttempts int
	AddressWindow   time.Duration
	// MaxKeys bounds how many accounts and addresses each limiter tracks,
	// so that a spray of made-up emails cannot grow memory without end.
	// Default 10000.
	MaxKeys int
}

func (l RateLimits) withDefaults() RateLimits {
	if l.AccountFailures == 0 {
		l.AccountFailures = 5
	}
	if l.AccountWindow <= 0 {
		l.AccountWindow = 15 * time.Minute
	}
	if l.AddressAttempts == 0 {
		l.AddressAttempts = 120
	}
	if l.AddressWindow <= 0 {
		l.AddressWindow = time.Minute
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = 10000
	}
	return l
}

// limiter is a sliding-window log: for each key the times of its recent
// events, at most limit of them. It is exact (no burst at window edges)
// and small, since a key never holds more than limit times.
type limiter struct {
	limit   int // < 0: unlimited
	window  time.Duration
	maxKeys int

	mu     sync.Mutex
	events map[string][]time.Time
}

func newLimiter(limit int, window time.Duration, maxKeys int) *limiter {
	return &limiter{limit: limit, window: window, maxKeys: maxKeys, events: make(map[string][]time.Time)}
}

// wait reports how long key must wait before its next event is allowed;
// zero when it is allowed now.
func (l *limiter) wait(key string, now time.Time) time.Duration {
	if l.limit < 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.live(key, now)
	if len(ev) < l.limit {
		return 0
	}
	return ev[len(ev)-l.limit].Add(l.window).Sub(now)
}

// take records an event for key if allowed, else reports the wait.
func (l *limiter) take(key string, now time.Time) time.Duration {
	if l.limit < 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := l.live(key, now)
	if len(ev) >= l.limit {
		return ev[len(ev)-l.limit].Add(l.window).Sub(now)
	}
	l.add(key, ev, now)
	return 0
}

// record adds an event for key without checking the limit (a failure that
// has already happened).
func (l *limiter) record(key string, now time.Time) {
	if l.limit < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(key, l.live(key, now), now)
}

// reset forgets key (a successful sign-in clears its failures).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.events, key)
}

// size is the number of keys tracked.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// live returns key's events inside the window, dropping older ones.
func (l *limiter) live(key string, now time.Time) []time.Time {
	ev := l.events[key]
	i := 0
	for i < len(ev) && !ev[i].After(now.Add(-l.window)) {
		i++
	}
	if i == len(ev) {
		if ev != nil {
			delete(l.events, key)
		}
		return nil
	}
	ev = ev[i:]
	l.events[key] = ev
	return ev
}

func (l *limiter) add(key string, ev []time.Time, now time.Time) {
	if ev == nil && len(l.events) >= l.maxKeys {
		l.prune(now)
	}
	ev = append(ev, now)
	if len(ev) > max(l.limit, 1) {
		ev = ev[len(ev)-max(l.limit, 1):]
	}
	l.events[key] = ev
}

// prune drops keys whose events have all expired and, if the map is still
// full, the key with the oldest last event: under a flood the limiter
// forgets the quietest key rather than refusing everyone.
func (l *limiter) prune(now time.Time) {
	cutoff := now.Add(-l.window)
	for k, ev := range l.events {
		if len(ev) == 0 || !ev[len(ev)-1].After(cutoff) {
			delete(l.events, k)
		}
	}
	if len(l.events) < l.maxKeys {
		return
	}
	var oldestKey string
	var oldest time.Time
	for k, ev := range l.events {
		if last := ev[len(ev)-1]; oldestKey == "" || last.Before(oldest) {
			oldestKey, oldest = k, last
		}
	}
	delete(l.events, oldestKey)
}

// limitedError is a TooMany error that also says how long to wait, so that
// the HTTP layer can send Retry-After.
type limitedError struct {
	err   *apperr.Error
	retry time.Duration
}

func (e *limitedError) Error() string { return e.err.Error() }
func (e *limitedError) Unwrap() error { return e.err }

func tooMany(what string, retry time.Duration) error {
	return &limitedError{
		err:   &apperr.Error{Kind: apperr.TooMany, Message: fmt.Sprintf("too many %s; try again in %s", what, humanWait(retry))},
		retry: retry,
	}
}

// RetryAfter reports how long a rate-limited caller should wait, when err
// is a rate-limit error from this package.
func RetryAfter(err error) (time.Duration, bool) {
	var le *limitedError
	if errors.As(err, &le) {
		return le.retry, true
	}
	return 0, false
}

// humanWait rounds a wait up to whole seconds or minutes for a message.
func humanWait(d time.Duration) string {
	if d <= time.Minute {
		s := int(math.Ceil(d.Seconds()))
		if s <= 1 {
			return "1 second"
		}
		return fmt.Sprintf("%d seconds", s)
	}
	m := int(math.Ceil(d.Minutes()))
	return fmt.Sprintf("%d minutes", m)
}

// addressKey reduces a remote address ("host:port" or "host") to the unit
// the per-address limit counts: the IP for IPv4, its /64 for IPv6, since
// one IPv6 client usually owns a whole /64.
func addressKey(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
