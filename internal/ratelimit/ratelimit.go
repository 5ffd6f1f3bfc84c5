// Package ratelimit holds the token bucket that bounds what one client may
// send: the classroom's signalling connections and the broadcast
// audience's connections, chat and reactions all count against one. It
// imports no other liveclass package, so that both the media plane and
// the audience can use it without an arrow between them.
package ratelimit

import "time"

// Bucket is a token bucket: it holds at most burst tokens, refills at rate
// tokens a second, and each allowed action takes one. A bucket lets a
// client send a burst at once and then at rate on average.
//
// A Bucket is not safe for concurrent use: each is owned by one reader or
// kept under its owner's lock.
type Bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// New returns a full bucket of burst tokens refilled at rate a second.
func New(rate float64, burst int) Bucket {
	return Bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// Every returns a full bucket that allows n actions at once and n per
// period on average, as a limit stated "n per period" is meant.
func Every(n int, period time.Duration) Bucket {
	return New(float64(n)/period.Seconds(), n)
}

// Allow takes a token at now and reports whether there was one. Time is
// passed in, not read, so that callers with a test clock control the
// refill.
func (b *Bucket) Allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
