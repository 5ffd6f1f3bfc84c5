package graph

import (
	"context"
	"sync"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// loader batches look-ups by key within one request. Resolvers that return
// a list Hint the keys their children will ask for; the first Load of a
// hinted key fetches every hinted key not yet loaded in one call, and
// concurrent Loads of those keys wait for that call. This is deterministic
// (no time window), so a page of N parents costs one fetch per loader
// whatever the scheduling. Keys never hinted are fetched one call each.
type loader[K comparable, V any] struct {
	fetch func(ctx context.Context, keys []K) (map[K]V, error)

	mu      sync.Mutex
	done    map[K]*batch[K, V] // loaded or in flight
	pending []K                // hinted, not yet requested
}

type batch[K comparable, V any] struct {
	ready chan struct{}
	vals  map[K]V
	err   error
}

func newLoader[K comparable, V any](fetch func(context.Context, []K) (map[K]V, error)) *loader[K, V] {
	return &loader[K, V]{fetch: fetch, done: make(map[K]*batch[K, V])}
}

// Hint announces keys that are likely to be loaded soon.
func (l *loader[K, V]) Hint(keys ...K) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if _, ok := l.done[k]; !ok {
			l.pending = append(l.pending, k)
		}
	}
}

// Load returns the value of key; ok is false when it does not exist.
func (l *loader[K, V]) Load(ctx context.Context, key K) (V, bool, error) {
	l.mu.Lock()
	b, ok := l.done[key]
	if !ok {
		b = &batch[K, V]{ready: make(chan struct{})}
		keys := []K{key}
		l.done[key] = b
		for _, k := range l.pending {
			if _, taken := l.done[k]; !taken {
				l.done[k] = b
				keys = append(keys, k)
			}
		}
		l.pending = l.pending[:0]
		l.mu.Unlock()
		b.vals, b.err = l.fetch(ctx, keys)
		close(b.ready)
	} else {
		l.mu.Unlock()
	}
	select {
	case <-b.ready:
	case <-ctx.Done():
		var zero V
		return zero, false, ctx.Err()
	}
	v, found := b.vals[key]
	return v, found, b.err
}

// loaders are one request's batching loaders.
type loaders struct {
	users       *loader[store.UserID, store.User]
	classes     *loader[store.ClassID, store.LiveClass]
	enrollments *loader[store.ClassID, []store.Enrollment]
	recordings  *loader[store.ClassID, []store.Recording]
}

type loadersKey struct{}

func (r *Resolver) newLoaders(a auth.Actor) *loaders {
	l := &loaders{}
	*l = loaders{
		users: newLoader(func(ctx context.Context, ids []store.UserID) (map[store.UserID]store.User, error) {
			us, err := r.cfg.Users.UsersByIDs(ctx, ids)
			if err != nil {
				return nil, err
			}
			m := make(map[store.UserID]store.User, len(us))
			for _, u := range us {
				m[u.ID] = u
			}
			return m, nil
		}),
		classes: newLoader(func(ctx context.Context, ids []store.ClassID) (map[store.ClassID]store.LiveClass, error) {
			cs, err := r.cfg.Classes.ClassesByIDs(ctx, a, ids)
			if err != nil {
				return nil, err
			}
			m := make(map[store.ClassID]store.LiveClass, len(cs))
			for _, c := range cs {
				m[c.ID] = c
			}
			return m, nil
		}),
		enrollments: newLoader(func(ctx context.Context, ids []store.ClassID) (map[store.ClassID][]store.Enrollment, error) {
			m, err := r.cfg.Classes.EnrollmentsOfClasses(ctx, a, ids)
			for _, es := range m {
				hintEnrollments(l, es)
			}
			return m, err
		}),
		recordings: newLoader(func(ctx context.Context, ids []store.ClassID) (map[store.ClassID][]store.Recording, error) {
			return r.cfg.Classes.RecordingsOfClasses(ctx, a, ids)
		}),
	}
	return l
}

// loadersFrom returns the request's loaders. Subscriptions get fresh ones
// per call: an event must not be resolved from a cache as old as the
// subscription.
func (r *Resolver) loadersFrom(ctx context.Context) *loaders {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l
	}
	return r.newLoaders(auth.ActorFrom(ctx))
}
