// Package events fans domain changes out to in-process subscribers (the
// GraphQL subscriptions). It is the seam where NATS or PostgreSQL
// LISTEN/NOTIFY will stand when liveclass runs on several nodes.
package events

import (
	"context"
	"sync"

	"github.com/liveclass/liveclass/internal/classes"
)

// Broker delivers each published event to every current subscriber.
// A subscriber that falls behind by more than its buffer loses events
// rather than stalling the publisher: a mutation must never wait on a
// slow dashboard.
type Broker struct {
	mu   sync.Mutex
	subs map[*sub]struct{}
}

type sub struct {
	ch chan classes.Event
}

// New returns an empty broker.
func New() *Broker { return &Broker{subs: make(map[*sub]struct{})} }

// Publish implements classes.Publisher; it never blocks.
func (b *Broker) Publish(e classes.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- e:
		default: // a slow subscriber loses this event
		}
	}
}

// Subscribe returns a channel of events published from now until ctx ends,
// when the channel is closed.
func (b *Broker) Subscribe(ctx context.Context, buffer int) <-chan classes.Event {
	if buffer < 1 {
		buffer = 1
	}
	s := &sub{ch: make(chan classes.Event, buffer)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		b.mu.Lock()
		delete(b.subs, s)
		close(s.ch)
		b.mu.Unlock()
	}()
	return s.ch
}

// Subscribers reports how many subscriptions are open.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
