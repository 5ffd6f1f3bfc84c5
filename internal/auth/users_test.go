package auth

import (
	"context"
	"testing"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// TestUserRulesMatrix runs every user operation as every kind of caller
// and checks both the answer and that a refused change stored nothing.
func TestUserRulesMatrix(t *testing.T) {
	ctx := context.Background()
	const ok = apperr.Kind(-1) // "no error" in the table
	type callers struct{ anon, student, mentor, admin apperr.Kind }
	type env struct {
		f                             *fixture
		student, mentor, admin, other store.User
		actors                        map[string]Actor
	}
	setup := func(t *testing.T) *env {
		f := newFixture(t, nil)
		e := &env{f: f, actors: map[string]Actor{"anon": {}}}
		var a Actor
		e.student, a = f.user(t, "student@example.com", store.RoleStudent)
		e.actors["student"] = a
		e.mentor, a = f.user(t, "mentor@example.com", store.RoleMentor)
		e.actors["mentor"] = a
		e.admin, a = f.user(t, "admin@example.com", store.RoleAdmin)
		e.actors["admin"] = a
		e.other, _ = f.user(t, "other@example.com", store.RoleStudent)
		return e
	}
	name := func(s string) *string { return &s }
	role := func(r store.Role) *store.Role { return &r }

	tests := []struct {
		op   string
		want callers
		call func(t *testing.T, e *env, a Actor) error
	}{
		{"GetUser other", callers{apperr.Unauthenticated, ok, ok, ok}, func(t *testing.T, e *env, a Actor) error {
			u, err := e.f.svc.GetUser(ctx, a, e.other.ID)
			if err == nil && (u.ID != e.other.ID || u.PasswordHash != "") {
				t.Errorf("GetUser = %+v", u)
			}
			return err
		}},
		{"GetUser missing", callers{apperr.Unauthenticated, apperr.NotFound, apperr.NotFound, apperr.NotFound}, func(t *testing.T, e *env, a Actor) error {
			_, err := e.f.svc.GetUser(ctx, a, "no-such-user")
			return err
		}},
		{"ListUsers", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, ok}, func(t *testing.T, e *env, a Actor) error {
			l, err := e.f.svc.ListUsers(ctx, a, store.UserQuery{})
			if err == nil {
				if len(l.Items) != 4 {
					t.Errorf("ListUsers returned %d users, want 4", len(l.Items))
				}
				for _, u := range l.Items {
					if u.PasswordHash != "" {
						t.Error("ListUsers returned a password hash")
					}
				}
			}
			return err
		}},
		{"CreateUser", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, ok}, func(t *testing.T, e *env, a Actor) error {
			u, err := e.f.svc.CreateUser(ctx, a, UserInput{Email: "new@example.com", Name: "New", Role: store.RoleMentor})
			if err == nil && u.Role != store.RoleMentor {
				t.Errorf("created role %s", u.Role)
			}
			return err
		}},
		{"UpdateUser own name", callers{apperr.Unauthenticated, ok, ok, ok}, func(t *testing.T, e *env, a Actor) error {
			_, err := e.f.svc.UpdateUser(ctx, a, a.UserID, UserPatch{Name: name("Renamed")})
			return err
		}},
		{"UpdateUser own email", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, ok}, func(t *testing.T, e *env, a Actor) error {
			_, err := e.f.svc.UpdateUser(ctx, a, a.UserID, UserPatch{Email: name("me2@example.com")})
			return err
		}},
		{"UpdateUser own role", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, apperr.Forbidden}, func(t *testing.T, e *env, a Actor) error {
			_, err := e.f.svc.UpdateUser(ctx, a, a.UserID, UserPatch{Role: role(store.RoleStudent)})
			if a.Role == store.RoleAdmin {
				// Restating one's own role, as a form that sends every
				// field does, is harmless.
				if _, err := e.f.svc.UpdateUser(ctx, a, a.UserID, UserPatch{Role: role(store.RoleAdmin)}); err != nil {
					t.Errorf("admin restating their role: %v", err)
				}
			}
			return err
		}},
		{"UpdateUser other's name", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, ok}, func(t *testing.T, e *env, a Actor) error {
			_, err := e.f.svc.UpdateUser(ctx, a, e.other.ID, UserPatch{Name: name("Hacked")})
			return err
		}},
		{"UpdateUser other's role and email", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, ok}, func(t *testing.T, e *env, a Actor) error {
			u, err := e.f.svc.UpdateUser(ctx, a, e.other.ID, UserPatch{Role: role(store.RoleMentor), Email: name("Other2@Example.com")})
			if err == nil && (u.Role != store.RoleMentor || u.Email != "other2@example.com") {
				t.Errorf("updated to %+v", u)
			}
			return err
		}},
		{"UpdateUser missing", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, apperr.NotFound}, func(t *testing.T, e *env, a Actor) error {
			_, err := e.f.svc.UpdateUser(ctx, a, "no-such-user", UserPatch{Name: name("x")})
			return err
		}},
		{"DeleteUser other", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, ok}, func(t *testing.T, e *env, a Actor) error {
			u, err := e.f.svc.DeleteUser(ctx, a, e.other.ID)
			if err == nil && u.ID != e.other.ID {
				t.Errorf("deleted %+v", u)
			}
			return err
		}},
		{"DeleteUser self", callers{apperr.Unauthenticated, apperr.Forbidden, apperr.Forbidden, apperr.Forbidden}, func(t *testing.T, e *env, a Actor) error {
			_, err := e.f.svc.DeleteUser(ctx, a, a.UserID)
			return err
		}},
	}
	for _, tc := range tests {
		for _, who := range []string{"anon", "student", "mentor", "admin"} {
			want := map[string]apperr.Kind{"anon": tc.want.anon, "student": tc.want.student, "mentor": tc.want.mentor, "admin": tc.want.admin}[who]
			t.Run(tc.op+"/"+who, func(t *testing.T) {
				t.Parallel()
				e := setup(t)
				before := snapshot(t, e.f)
				err := tc.call(t, e, e.actors[who])
				if want == ok {
					if err != nil {
						t.Fatalf("got %v, want success", err)
					}
					return
				}
				wantKind(t, err, want)
				if after := snapshot(t, e.f); after != before {
					t.Fatalf("a refused call changed the users:\n%s\n→\n%s", before, after)
				}
			})
		}
	}
}

// snapshot renders every stored user, for comparing before and after.
func snapshot(t *testing.T, f *fixture) string {
	t.Helper()
	l, err := f.st.ListUsers(context.Background(), store.UserQuery{Page: store.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	var s string
	for _, u := range l.Items {
		s += string(u.ID) + " " + u.Email + " " + u.Name + " " + string(u.Role) + " " + u.UpdatedAt.String() + "\n"
	}
	return s
}

func TestUserInputValidation(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	u, admin := f.user(t, "admin@example.com", store.RoleAdmin)
	f.user(t, "taken@example.com", store.RoleStudent)
	str := func(s string) *string { return &s }
	role := func(r store.Role) *store.Role { return &r }

	for _, tc := range []struct {
		name  string
		in    UserInput
		field string
		kind  apperr.Kind
	}{
		{"bad email", UserInput{Email: "nope", Name: "N"}, "email", apperr.Invalid},
		{"missing email", UserInput{Name: "N"}, "email", apperr.Invalid},
		{"bad role", UserInput{Email: "a@example.com", Name: "N", Role: "OWNER"}, "role", apperr.Invalid},
		{"short password", UserInput{Email: "a@example.com", Name: "N", Password: "short"}, "password", apperr.Invalid},
		{"empty name", UserInput{Email: "a@example.com"}, "name", apperr.Invalid},
		{"bad id", UserInput{ID: "a/b", Email: "a@example.com", Name: "N"}, "id", apperr.Invalid},
		{"taken email", UserInput{Email: "TAKEN@example.com", Name: "N"}, "email", apperr.Conflict},
		{"taken id", UserInput{ID: u.ID, Email: "b@example.com", Name: "N"}, "id", apperr.Conflict},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			_, err := f.svc.CreateUser(ctx, admin, tc.in)
			wantKind(t, err, tc.kind)
			if got := apperr.FieldOf(err); got != tc.field {
				t.Fatalf("field %q, want %q (%v)", got, tc.field, err)
			}
		})
	}
	created, err := f.svc.CreateUser(ctx, admin, UserInput{ID: "chosen-id_1", Email: "c@example.com", Name: "C", Password: "long enough"})
	if err != nil || created.ID != "chosen-id_1" || created.Role != store.RoleStudent {
		t.Fatalf("CreateUser with an id = %+v, %v", created, err)
	}
	for _, tc := range []struct {
		name  string
		p     UserPatch
		field string
		kind  apperr.Kind
	}{
		{"bad name", UserPatch{Name: str("")}, "name", apperr.Invalid},
		{"bad email", UserPatch{Email: str("x@")}, "email", apperr.Invalid},
		{"bad role", UserPatch{Role: role("GOD")}, "role", apperr.Invalid},
		{"taken email", UserPatch{Email: str("taken@example.com")}, "email", apperr.Conflict},
	} {
		t.Run("update "+tc.name, func(t *testing.T) {
			_, err := f.svc.UpdateUser(ctx, admin, created.ID, tc.p)
			wantKind(t, err, tc.kind)
			if got := apperr.FieldOf(err); got != tc.field {
				t.Fatalf("field %q, want %q (%v)", got, tc.field, err)
			}
		})
	}
	// An update keeps the password.
	if _, err := f.svc.UpdateUser(ctx, admin, created.ID, UserPatch{Name: str("Cee")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(ctx, "c@example.com", "long enough", "192.0.2.1:1"); err != nil {
		t.Fatalf("password lost by an update: %v", err)
	}
	_, err = f.svc.ListUsers(ctx, admin, store.UserQuery{Page: store.Page{Limit: 101}})
	wantField(t, err, "limit")
}

func TestEmailVisible(t *testing.T) {
	u := store.User{ID: "u1", Email: "u1@example.com"}
	for _, tc := range []struct {
		a    Actor
		want bool
	}{
		{Actor{}, false},
		{Actor{UserID: "u2", Role: store.RoleStudent}, false},
		{Actor{UserID: "u2", Role: store.RoleMentor}, false},
		{Actor{UserID: "u2", Role: store.RoleAdmin}, true},
		{Actor{UserID: "u1", Role: store.RoleStudent}, true},
	} {
		if got := EmailVisible(tc.a, u); got != tc.want {
			t.Errorf("EmailVisible(%+v) = %v, want %v", tc.a, got, tc.want)
		}
	}
}

func TestUsersByIDs(t *testing.T) {
	f := newFixture(t, nil)
	a, _ := f.user(t, "a@example.com", store.RoleMentor)
	b, _ := f.user(t, "b@example.com", store.RoleStudent)
	m, err := f.svc.UsersByIDs(context.Background(), []store.UserID{a.ID, b.ID, a.ID, "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[a.ID].Name != a.Name || m[b.ID].Role != store.RoleStudent || m[a.ID].PasswordHash != "" {
		t.Fatalf("UsersByIDs = %+v", m)
	}
}
