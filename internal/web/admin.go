package web

import (
	"net/http"
	"net/url"

	"github.com/liveclass/liveclass/internal/apperr"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// usersPageSize is how many accounts the admin page lists at once.
const usersPageSize = 50

type usersPage struct {
	base
	Users   []store.User
	Next    string
	Roles   []store.Role
	Changed string // name of the user whose role was just changed
}

func (u *UI) adminUsers(w http.ResponseWriter, r *http.Request) {
	a, ok := requireSignIn(w, r)
	if !ok {
		return
	}
	if !a.Is(store.RoleAdmin) {
		u.forbid(w, r, "Only admins manage users.")
		return
	}
	p, err := u.loadUsers(r, r.URL.Query().Get("next"))
	if err != nil {
		u.fail(w, r, err)
		return
	}
	if id := r.URL.Query().Get("changed"); id != "" {
		for _, us := range p.Users {
			if string(us.ID) == id {
				p.Notice = "Role of " + us.Name + " is now " + roleName(us.Role) + "."
			}
		}
	}
	u.render(w, r, "users", http.StatusOK, p)
}

func (u *UI) loadUsers(r *http.Request, after string) (usersPage, error) {
	a := auth.ActorFrom(r.Context())
	res, err := u.cfg.Auth.ListUsers(r.Context(), a, store.UserQuery{Page: store.Page{Limit: usersPageSize, After: after}})
	if err != nil {
		return usersPage{}, err
	}
	return usersPage{
		base:  u.base(r, "Users"),
		Users: res.Items,
		Next:  res.Next,
		Roles: []store.Role{store.RoleStudent, store.RoleMentor, store.RoleAdmin},
	}, nil
}

func (u *UI) setRole(w http.ResponseWriter, r *http.Request) {
	a, ok := requireSignIn(w, r)
	if !ok {
		return
	}
	if !a.Is(store.RoleAdmin) {
		u.forbid(w, r, "Only admins manage users.")
		return
	}
	if !u.postForm(w, r) {
		return
	}
	id := store.UserID(r.PathValue("id"))
	role := store.Role(r.PostForm.Get("role"))
	var err error
	if role.Valid() {
		_, err = u.cfg.Auth.UpdateUser(r.Context(), a, id, auth.UserPatch{Role: &role})
	} else {
		err = apperr.Field("role", "choose Student, Mentor or Admin")
	}
	if err != nil {
		p, lerr := u.loadUsers(r, "")
		if lerr != nil || statusOf(err) >= 500 {
			u.fail(w, r, err)
			return
		}
		p.Alert = message(err)
		u.render(w, r, "users", statusOf(err), p)
		return
	}
	u.log.Info("role changed", "user", id, "role", role, "by", a.UserID)
	http.Redirect(w, r, "/admin/users?changed="+url.QueryEscape(string(id)), http.StatusSeeOther)
}
