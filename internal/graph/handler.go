package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/events"
	"github.com/liveclass/liveclass/internal/graph/generated"
	"github.com/liveclass/liveclass/internal/graph/model"
)

// Defaults of Config's limits.
const (
	DefaultMaxDepth      = 12
	DefaultMaxComplexity = 2000
	DefaultMaxBodyBytes  = 1 << 20
)

// Config configures the API handler.
type Config struct {
	// Classes holds the class, enrollment and recording rules.
	Classes *classes.Service
	// Auth is the account system (*auth.Service).
	Auth Accounts
	// Users reads users in batches for nested fields; Auth when nil and
	// Auth implements UserBatch (as *auth.Service does).
	Users UserBatch
	// Broker feeds subscriptions; the same broker classes.Service publishes to.
	Broker *events.Broker
	// Logger receives internal errors; discarded when nil.
	Logger *slog.Logger
	// Introspection allows __schema and __type queries.
	Introspection bool
	// MaxDepth bounds how deeply selections nest (DefaultMaxDepth when 0).
	MaxDepth int
	// MaxComplexity bounds a query's cost: one per field, list fields
	// multiplied by their limit (DefaultMaxComplexity when 0).
	MaxComplexity int
	// MaxBodyBytes bounds a request body; larger ones get 413
	// (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
}

// NewHandler returns the /graphql endpoint. Mount it behind
// auth.Middleware, which puts the caller's Actor in the request context.
func NewHandler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	if cfg.MaxComplexity <= 0 {
		cfg.MaxComplexity = DefaultMaxComplexity
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Users == nil {
		if ub, ok := cfg.Auth.(UserBatch); ok {
			cfg.Users = ub
		}
	}
	r := &Resolver{cfg: cfg}
	gc := generated.Config{Resolvers: r}
	setComplexity(&gc.Complexity)
	srv := handler.New(generated.NewExecutableSchema(gc))

	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 15 * time.Second,
		InitTimeout:           10 * time.Second,
		// Origin is checked for cookie-authenticated upgrades in
		// ServeHTTP below; a token in connection_init is good from
		// anywhere, as a bearer header is.
		Implementation: transport.CoderWebsocketImplementation{
			AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: true},
		},
		InitFunc: r.wsInit,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](100)})
	srv.Use(depthLimit{max: cfg.MaxDepth})
	srv.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		op := graphql.GetOperationContext(ctx)
		if op.Operation != nil && op.Operation.Operation != ast.Subscription {
			ctx = context.WithValue(ctx, loadersKey{}, r.newLoaders(auth.ActorFrom(ctx)))
		}
		return next(ctx)
	})
	srv.SetErrorPresenter(r.presentError)
	srv.SetRecoverFunc(func(ctx context.Context, p any) error {
		cfg.Logger.ErrorContext(ctx, "graphql: panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errors.New("panic in resolver")
	})
	return &endpoint{srv: srv, maxBody: cfg.MaxBodyBytes}
}

// endpoint applies the HTTP-level rules before gqlgen sees the request.
type endpoint struct {
	srv     http.Handler
	maxBody int64
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Method != http.MethodGet {
		// The body is read here, whole, so that an oversize one gets a 413
		// instead of gqlgen's generic "could not be decoded".
		if r.ContentLength > e.maxBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, e.maxBody))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if isUpgrade(r) && r.Header.Get("Authorization") == "" && !sameOrigin(r) {
		// A browser sends the session cookie with a cross-site WebSocket
		// upgrade too, and no CSRF token can ride along; so a foreign page
		// gets an anonymous socket (it may still sign in with a token in
		// connection_init, which it can only have if the user gave it one).
		r = r.WithContext(auth.WithActor(r.Context(), auth.Actor{}))
	}
	e.srv.ServeHTTP(w, r)
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// wsInit authenticates a WebSocket from its connection_init payload
// ({"Authorization": "Bearer <token>"}, or an authToken / token key);
// without one the upgrade request's actor (from the cookie) stands.
func (r *Resolver) wsInit(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	token := ""
	for _, k := range []string{"Authorization", "authorization", "authToken", "token"} {
		if s := p.GetString(k); s != "" {
			token = s
			break
		}
	}
	if token == "" {
		return ctx, nil, nil
	}
	if scheme, rest, ok := strings.Cut(token, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(rest)
	}
	a, err := r.cfg.Auth.Authenticate(ctx, token)
	if err != nil {
		return ctx, nil, errors.New("unauthenticated: invalid token")
	}
	return auth.WithActor(ctx, a), nil, nil
}

// presentError is the one place where errors become GraphQL errors with
// extensions.code.
func (r *Resolver) presentError(ctx context.Context, err error) *gqlerror.Error {
	gerr := graphql.DefaultErrorPresenter(ctx, err)
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Kind != apperr.Internal {
		if gerr.Extensions == nil {
			gerr.Extensions = map[string]any{}
		}
		gerr.Extensions["code"] = ae.Kind.Code()
		gerr.Message = ae.Message
		if ae.Field == "" && ae.Kind == apperr.Invalid {
			ae = &apperr.Error{Kind: ae.Kind, Message: ae.Message, Field: argumentField(gerr.Path)}
		}
		if ae.Field != "" {
			gerr.Extensions["field"] = ae.Field
			gerr.Message = ae.Field + ": " + ae.Message
		}
		return gerr
	}
	if _, ok := gerr.Extensions["code"]; ok && ae == nil {
		return gerr // gqlgen's own: parse, validation, complexity
	}
	if gerr.Err == nil && ae == nil {
		// An error gqlgen made itself without a code (e.g. a GET mutation).
		if gerr.Extensions == nil {
			gerr.Extensions = map[string]any{}
		}
		gerr.Extensions["code"] = "BAD_REQUEST"
		return gerr
	}
	path := ""
	if gerr.Path != nil {
		path = gerr.Path.String()
	}
	r.cfg.Logger.ErrorContext(ctx, "graphql: internal error", "path", path, "err", err)
	return &gqlerror.Error{
		Message:    "internal error",
		Path:       gerr.Path,
		Locations:  gerr.Locations,
		Extensions: map[string]any{"code": "INTERNAL_SERVER_ERROR"},
	}
}

// argumentField names the input field of an argument that failed to
// decode (a bad AWSDateTime, say): gqlgen reports those at a path such as
// [createLiveClass input startTime], whose last element is the field.
func argumentField(p ast.Path) string {
	if len(p) < 3 {
		return ""
	}
	if _, ok := p[1].(ast.PathName); !ok || p[1] == ast.PathName("items") {
		return ""
	}
	if name, ok := p[len(p)-1].(ast.PathName); ok {
		return string(name)
	}
	return ""
}

// depthLimit refuses operations whose selections nest deeper than max.
// Introspection fields are not counted: their depth is fixed by the
// schema, and the introspection switch governs them.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if n := selectionDepth(oc.Operation.SelectionSet, map[string]bool{}); n > d.max {
		err := gqlerror.Errorf("the query nests %d levels deep; the limit is %d", n, d.max)
		err.Extensions = map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, visiting map[string]bool) int {
	deepest := 0
	for _, s := range set {
		n := 0
		switch s := s.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			n = 1 + selectionDepth(s.SelectionSet, visiting)
		case *ast.InlineFragment:
			n = selectionDepth(s.SelectionSet, visiting)
		case *ast.FragmentSpread:
			if s.Definition == nil || visiting[s.Name] {
				continue
			}
			visiting[s.Name] = true
			n = selectionDepth(s.Definition.SelectionSet, visiting)
			delete(visiting, s.Name)
		}
		deepest = max(deepest, n)
	}
	return deepest
}

// noIntrospection refuses __schema and __type up front, as Apollo does,
// rather than letting them fail as resolver errors.
type noIntrospection struct{}

func (noIntrospection) ExtensionName() string                   { return "NoIntrospection" }
func (noIntrospection) Validate(graphql.ExecutableSchema) error { return nil }

func (noIntrospection) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if introspects(oc.Operation.SelectionSet, map[string]bool{}) {
		err := gqlerror.Errorf("introspection is disabled on this server")
		err.Extensions = map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}
		return err
	}
	return nil
}

func introspects(set ast.SelectionSet, visiting map[string]bool) bool {
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if introspects(s.SelectionSet, visiting) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && !visiting[s.Name] {
				visiting[s.Name] = true
				if introspects(s.Definition.SelectionSet, visiting) {
					return true
				}
			}
		}
	}
	return false
}

// listCost is the complexity of a list field: its children once per item
// the limit allows.
func listCost(child int, limit *int) int {
	n := maxLimit
	if limit != nil && *limit > 0 && *limit < maxLimit {
		n = *limit
	}
	return 1 + child*n
}

// nestedCost is listCost for a class's enrollments and recordings: without
// a limit they are one batched read for the whole page, and a class has
// few recordings and at most its seats in enrollments, so they count as
// ten items rather than a full page.
func nestedCost(child int, limit *int) int {
	if limit == nil {
		return 1 + child*10
	}
	return listCost(child, limit)
}

func setComplexity(c *generated.ComplexityRoot) {
	c.LiveClass.Enrollments = func(ch int, _ *model.ModelLiveClassEnrollmentFilterInput, _ *model.ModelSortDirection, limit *int, _ *string) int {
		return nestedCost(ch, limit)
	}
	c.LiveClass.Recordings = func(ch int, _ *model.ModelLiveClassRecordingFilterInput, _ *model.ModelSortDirection, limit *int, _ *string) int {
		return nestedCost(ch, limit)
	}
	c.Query.ListLiveClasses = func(ch int, _ *model.ModelLiveClassFilterInput, limit *int, _ *string) int {
		return listCost(ch, limit)
	}
	c.Query.LiveClassesByInstructorID = func(ch int, _ string, _ *model.ModelSortDirection, _ *model.ModelLiveClassFilterInput, limit *int, _ *string) int {
		return listCost(ch, limit)
	}
	c.Query.ListLiveClassEnrollments = func(ch int, _ *model.ModelLiveClassEnrollmentFilterInput, limit *int, _ *string) int {
		return listCost(ch, limit)
	}
	c.Query.LiveClassEnrollmentsByUserID = func(ch int, _ string, _ *model.ModelSortDirection, _ *model.ModelLiveClassEnrollmentFilterInput, limit *int, _ *string) int {
		return listCost(ch, limit)
	}
	c.Query.LiveClassEnrollmentsByLiveClassID = func(ch int, _ string, _ *model.ModelSortDirection, _ *model.ModelLiveClassEnrollmentFilterInput, limit *int, _ *string) int {
		return listCost(ch, limit)
	}
	c.Query.ListLiveClassRecordings = func(ch int, _ *model.ModelLiveClassRecordingFilterInput, limit *int, _ *string) int {
		return listCost(ch, limit)
	}
	c.Query.LiveClassRecordingsByLiveClassID = func(ch int, _ string, _ *model.ModelSortDirection, _ *model.ModelLiveClassRecordingFilterInput, limit *int, _ *string) int {
		return listCost(ch, limit)
	}
	c.Query.ListUsers = func(ch int, _ *model.ModelUserFilterInput, limit *int, _ *string) int {
		return listCost(ch, limit)
	}
}
