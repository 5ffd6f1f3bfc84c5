// Package graph is liveclass's GraphQL API at /graphql: the guide's schema
// as Amplify expands it (schema/amplify.graphqls, the contract) plus
// liveclass's additions (schema/liveclass.graphqls), served by gqlgen over
// POST, GET (queries only) and graphql-transport-ws (subscriptions).
// Resolvers are thin: they take the Actor the auth middleware put in the
// context and call classes.Service and auth.Service, which hold the rules.
//
// Decisions a client can observe:
//
//   - get… of a missing record answers null without an error, as Amplify
//     does; a record the caller may not see is a FORBIDDEN error.
//   - Every error carries extensions.code: UNAUTHENTICATED, FORBIDDEN,
//     BAD_USER_INPUT (with extensions.field), NOT_FOUND, CONFLICT;
//     anything else is "internal error" / INTERNAL_SERVER_ERROR and is
//     logged. gqlgen's own keep theirs (GRAPHQL_PARSE_FAILED,
//     GRAPHQL_VALIDATION_FAILED, COMPLEXITY_LIMIT_EXCEEDED), and a query
//     nested deeper than MaxDepth is DEPTH_LIMIT_EXCEEDED.
//   - A mutation's condition is evaluated on the stored record just before
//     the change (on an empty record for create…); when it does not hold
//     the answer is CONFLICT "ConditionalCheckFailed". The check and the
//     write are not one transaction: a concurrent writer can slip between.
//   - Filters: size and attributeType are refused (BAD_USER_INPUT naming
//     e.g. filter.title.size); time fields compare as instants, whatever
//     the offset the client wrote; an enrollment's owner is its userId.
//   - createLiveClassEnrollment enrolls the caller (userId only for the
//     class's instructor and admins); enrolledAt is accepted and ignored,
//     while attended, attendanceDuration, feedback, rating and id are
//     refused: the server sets them.
//   - Nested fields are loaded per request in batches (loader.go); a
//     subscription resolves each event's nested fields afresh.
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

// *auth.Service is what the server passes as Accounts and UserBatch.
var (
	_ Accounts  = (*auth.Service)(nil)
	_ UserBatch = (*auth.Service)(nil)
)

// UserBatch reads many users in one call, for nested user fields.
// *auth.Service implements it.
type UserBatch interface {
	UsersByIDs(ctx context.Context, ids []store.UserID) (map[store.UserID]store.User, error)
}
