package auth

import (
	"context"

	"github.com/liveclass/liveclass/internal/store"
)

// Actor is who is asking: a signed-in user, or the zero Actor for an
// anonymous caller. Every domain operation takes one and checks it.
type Actor struct {
	UserID store.UserID
	Role   store.Role
	Name   string
}

// Anonymous reports whether nobody is signed in.
func (a Actor) Anonymous() bool { return a.UserID == "" }

// Is reports whether the actor is signed in with role r.
func (a Actor) Is(r store.Role) bool { return !a.Anonymous() && a.Role == r }

type actorKey struct{}

// WithActor returns a context that carries a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor that ctx carries, or the anonymous Actor.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}
