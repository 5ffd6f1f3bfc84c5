package auth

import (
	"context"
	"fmt"
	"strings"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// MaxUserPage is the largest page ListUsers returns.
const MaxUserPage = 100

// UserInput creates an account through the API (Amplify's CreateUserInput
// plus role and password).
type UserInput struct {
	ID       store.UserID // optional, as in Amplify; generated when empty
	Email    string
	Name     string
	Role     store.Role // STUDENT when empty
	Password string     // optional: without one the account cannot sign in with a password yet
}

// UserPatch changes some fields of an account; nil leaves a field alone.
type UserPatch struct {
	Name  *string
	Email *string
	Role  *store.Role
}

// EmailVisible reports whether a may see u's email: the user themself and
// admins only, as Cognito shows an email only to its owner and the pool's
// administrators.
func EmailVisible(a Actor, u store.User) bool {
	return !a.Anonymous() && (a.UserID == u.ID || a.Role == store.RoleAdmin)
}

func unauthenticated() error {
	return apperr.New(apperr.Unauthenticated, "sign in first")
}

func adminOnly(a Actor, what string) error {
	if a.Anonymous() {
		return unauthenticated()
	}
	if a.Role != store.RoleAdmin {
		return apperr.New(apperr.Forbidden, "only an admin may %s", what)
	}
	return nil
}

// GetUser returns a user to any signed-in caller. Callers hide the email
// unless EmailVisible.
func (s *Service) GetUser(ctx context.Context, a Actor, id store.UserID) (store.User, error) {
	if a.Anonymous() {
		return store.User{}, unauthenticated()
	}
	return s.userByID(ctx, id)
}

// UsersByIDs returns the users that exist among ids, keyed by ID, in one
// store read. It serves nested fields such as LiveClass.instructor, which
// anyone who may read the parent may read; callers hide emails unless
// EmailVisible.
func (s *Service) UsersByIDs(ctx context.Context, ids []store.UserID) (map[store.UserID]store.User, error) {
	out := make(map[store.UserID]store.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	us, err := s.st.UsersByIDs(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("auth: reading users: %w", err)
	}
	for _, u := range us {
		out[u.ID] = public(u)
	}
	return out, nil
}

// ListUsers lists accounts; only admins may.
func (s *Service) ListUsers(ctx context.Context, a Actor, q store.UserQuery) (store.List[store.User], error) {
	if err := adminOnly(a, "list users"); err != nil {
		return store.List[store.User]{}, err
	}
	if q.Page.Limit < 0 || q.Page.Limit > MaxUserPage {
		return store.List[store.User]{}, apperr.Field("limit", "must be between 1 and %d", MaxUserPage)
	}
	if q.Page.Limit == 0 {
		q.Page.Limit = MaxUserPage
	}
	l, err := s.st.ListUsers(ctx, q)
	if err != nil {
		if apperr.KindOf(err) != apperr.Internal {
			return store.List[store.User]{}, err
		}
		return store.List[store.User]{}, fmt.Errorf("auth: listing users: %w", err)
	}
	for i := range l.Items {
		l.Items[i] = public(l.Items[i])
	}
	return l, nil
}

// CreateUser creates an account with any role; only admins may.
func (s *Service) CreateUser(ctx context.Context, a Actor, in UserInput) (store.User, error) {
	if err := adminOnly(a, "create users"); err != nil {
		return store.User{}, err
	}
	if in.ID != "" {
		if err := validateID(in.ID); err != nil {
			return store.User{}, err
		}
	}
	role := in.Role
	if role == "" {
		role = store.RoleStudent
	}
	return s.createUser(ctx, in.ID, in.Email, in.Name, in.Password, role, true)
}

// UpdateUser changes an account. A user may change their own name; an
// admin may change anyone's name, email and role, except their own role,
// so that the last admin cannot demote themself by mistake (another admin,
// or `liveclass user set-role`, can).
func (s *Service) UpdateUser(ctx context.Context, a Actor, id store.UserID, p UserPatch) (store.User, error) {
	if a.Anonymous() {
		return store.User{}, unauthenticated()
	}
	self := a.UserID == id
	admin := a.Role == store.RoleAdmin
	switch {
	case !self && !admin:
		return store.User{}, apperr.New(apperr.Forbidden, "you may change only your own account")
	case !admin && p.Email != nil:
		return store.User{}, apperr.New(apperr.Forbidden, "only an admin may change an email address")
	case !admin && p.Role != nil:
		return store.User{}, apperr.New(apperr.Forbidden, "only an admin may change a role")
	}
	// The stored record, hash included: UpdateUser writes every field.
	u, err := s.rawUserByID(ctx, id)
	if err != nil {
		return store.User{}, err
	}
	if p.Name != nil {
		if u.Name, err = validateName(*p.Name); err != nil {
			return store.User{}, err
		}
	}
	if p.Email != nil {
		if u.Email, err = NormalizeEmail(*p.Email); err != nil {
			return store.User{}, err
		}
	}
	if p.Role != nil {
		if !p.Role.Valid() {
			return store.User{}, apperr.Field("role", "must be ADMIN, MENTOR or STUDENT")
		}
		if self && *p.Role != u.Role {
			return store.User{}, apperr.New(apperr.Forbidden, "you may not change your own role")
		}
		u.Role = *p.Role
	}
	u.UpdatedAt = s.now().UTC()
	if err := s.st.UpdateUser(ctx, u); err != nil {
		if apperr.Is(err, apperr.Conflict) {
			return store.User{}, &apperr.Error{Kind: apperr.Conflict, Field: "email", Message: "an account with this email already exists"}
		}
		if apperr.Is(err, apperr.NotFound) {
			return store.User{}, apperr.New(apperr.NotFound, "no user with id %s", id)
		}
		return store.User{}, fmt.Errorf("auth: updating user: %w", err)
	}
	s.changed(UserUpdated, u)
	return public(u), nil
}

// DeleteUser removes an account; only admins may, and not their own.
func (s *Service) DeleteUser(ctx context.Context, a Actor, id store.UserID) (store.User, error) {
	if err := adminOnly(a, "delete users"); err != nil {
		return store.User{}, err
	}
	if a.UserID == id {
		return store.User{}, apperr.New(apperr.Forbidden, "you may not delete your own account")
	}
	u, err := s.userByID(ctx, id)
	if err != nil {
		return store.User{}, err
	}
	if err := s.st.DeleteUser(ctx, id); err != nil {
		if apperr.Is(err, apperr.NotFound) {
			return store.User{}, apperr.New(apperr.NotFound, "no user with id %s", id)
		}
		if apperr.Is(err, apperr.Conflict) {
			return store.User{}, err
		}
		return store.User{}, fmt.Errorf("auth: deleting user: %w", err)
	}
	s.changed(UserDeleted, u)
	return u, nil
}

func (s *Service) userByID(ctx context.Context, id store.UserID) (store.User, error) {
	u, err := s.rawUserByID(ctx, id)
	return public(u), err
}

func (s *Service) rawUserByID(ctx context.Context, id store.UserID) (store.User, error) {
	if id == "" {
		return store.User{}, apperr.Field("id", "is required")
	}
	u, err := s.st.UserByID(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		return store.User{}, apperr.New(apperr.NotFound, "no user with id %s", id)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("auth: reading user: %w", err)
	}
	return u, nil
}

// validateID keeps client-chosen IDs short and printable, since they end
// up in URLs, logs and join tokens.
func validateID(id store.UserID) error {
	if len(id) > 64 {
		return apperr.Field("id", "must be at most 64 characters")
	}
	if strings.IndexFunc(string(id), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return apperr.Field("id", "may contain only letters, digits, '-' and '_'")
	}
	return nil
}
