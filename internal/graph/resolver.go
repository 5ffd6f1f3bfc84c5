// Package graph is liveclass's GraphQL API at /graphql: the guide's schema
// as Amplify expands it (schema/amplify.graphqls, the contract) plus
// liveclass's additions (schema/liveclass.graphqls), served by gqlgen over
// POST, GET (queries only) and graphql-transport-ws (subscriptions).
// Resolvers are thin: they take the Actor the auth middleware put in the
// context and call classes.Service and auth.Service, which hold the rules.
package graph

import (
	"context"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// Resolver is the root resolver; gqlgen's generated resolvers embed it.
type Resolver struct {
	cfg Config
}

// Accounts is what the API needs of the account system (*auth.Service).
type Accounts interface {
	Authenticate(ctx context.Context, token string) (auth.Actor, error)
	GetUser(ctx context.Context, a auth.Actor, id store.UserID) (store.User, error)
	ListUsers(ctx context.Context, a auth.Actor, q store.UserQuery) (store.List[store.User], error)
	CreateUser(ctx context.Context, a auth.Actor, in auth.UserInput) (store.User, error)
	UpdateUser(ctx context.Context, a auth.Actor, id store.UserID, p auth.UserPatch) (store.User, error)
	DeleteUser(ctx context.Context, a auth.Actor, id store.UserID) (store.User, error)
}

// UserBatch reads many users in one call, for nested user fields.
// *auth.Service implements it.
type UserBatch interface {
	UsersByIDs(ctx context.Context, ids []store.UserID) (map[store.UserID]store.User, error)
}
