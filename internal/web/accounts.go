package web

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
)

// preSessionCookie holds the CSRF token of the sign-in and sign-up forms.
// Before sign-in there is no session to derive a token from, and without
// one another site could post its own credentials through our form and
// sign a browser into an account of its choosing (login CSRF). The form
// carries the cookie's value; a cross-site page can neither read the
// cookie nor set it.
const preSessionCookie = "liveclass_form"

// minFormToken is the length of rand.Text's 128 bits; a shorter cookie
// was not made by us.
const minFormToken = 26

// accountPage is the sign-up and sign-in page.
type accountPage struct {
	base
	Form *form
	Next string
}

func (u *UI) signupForm(w http.ResponseWriter, r *http.Request) {
	if u.cfg.SignupDisabled {
		u.forbid(w, r, "Sign-up is disabled on this server. Ask an administrator for an account.")
		return
	}
	p := accountPage{base: u.accountBase(w, r, "Sign up"), Form: newForm(nil, "name", "email", "password"), Next: localPath(r.URL.Query().Get("next"))}
	u.render(w, r, "signup", http.StatusOK, p)
}

func (u *UI) signup(w http.ResponseWriter, r *http.Request) {
	if u.cfg.SignupDisabled {
		u.forbid(w, r, "Sign-up is disabled on this server. Ask an administrator for an account.")
		return
	}
	if !u.accountForm(w, r) {
		return
	}
	f := newForm(r.PostForm, "name", "email", "password")
	p := accountPage{base: u.accountBase(w, r, "Sign up"), Form: f, Next: localPath(f.Get("next"))}
	email := strings.TrimSpace(f.Get("email"))
	password := f.Get("password")
	err := u.cfg.Auth.LimitAddress(r.RemoteAddr)
	if err == nil {
		_, err = u.cfg.Auth.Signup(r.Context(), email, password, strings.TrimSpace(f.Get("name")))
	}
	if err == nil {
		err = u.startSession(w, r, email, password)
	}
	if err != nil {
		if apperr.Is(err, apperr.Conflict) {
			f.Fail("email", "An account with this email already exists. Sign in instead.")
		} else {
			f.FailErr(err)
		}
		f.Values.Del("password") // never echo a password back into the page
		u.render(w, r, "signup", statusOf(err), p)
		return
	}
	http.Redirect(w, r, orDefault(p.Next, "/"), http.StatusSeeOther)
}

func (u *UI) signinForm(w http.ResponseWriter, r *http.Request) {
	p := accountPage{base: u.accountBase(w, r, "Sign in"), Form: newForm(nil, "email", "password"), Next: localPath(r.URL.Query().Get("next"))}
	u.render(w, r, "signin", http.StatusOK, p)
}

func (u *UI) signin(w http.ResponseWriter, r *http.Request) {
	if !u.accountForm(w, r) {
		return
	}
	f := newForm(r.PostForm, "email", "password")
	p := accountPage{base: u.accountBase(w, r, "Sign in"), Form: f, Next: localPath(f.Get("next"))}
	err := u.startSession(w, r, strings.TrimSpace(f.Get("email")), f.Get("password"))
	if err != nil {
		if apperr.Is(err, apperr.Unauthenticated) {
			f.Alert = "Invalid email or password."
		} else {
			f.FailErr(err)
		}
		f.Values.Del("password")
		u.render(w, r, "signin", statusOf(err), p)
		return
	}
	http.Redirect(w, r, orDefault(p.Next, "/"), http.StatusSeeOther)
}

// accountBase is the page base of the sign-in and sign-up forms: for an
// anonymous visitor, its CSRF token is the pre-session cookie's, made on
// first sight.
func (u *UI) accountBase(w http.ResponseWriter, r *http.Request, title string) base {
	b := u.base(r, title)
	if b.CSRF != "" {
		return b // signed in already: the session's token protects the form
	}
	if c, err := r.Cookie(preSessionCookie); err == nil && len(c.Value) >= minFormToken {
		b.CSRF = c.Value
		return b
	}
	b.CSRF = rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name: preSessionCookie, Value: b.CSRF, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
		// Strict: the cookie only matters to a form posted from our own page.
		SameSite: http.SameSiteStrictMode,
	})
	return b
}

// accountForm parses a sign-in or sign-up form and checks its CSRF token
// against the session's or, before sign-in, the pre-session cookie's.
func (u *UI) accountForm(w http.ResponseWriter, r *http.Request) bool {
	if err := parseForm(w, r); err != nil {
		u.fail(w, r, err)
		return false
	}
	if auth.CSRFTokenFromContext(r.Context()) != "" {
		if checkCSRF(r) {
			return true
		}
	} else if c, err := r.Cookie(preSessionCookie); err == nil && len(c.Value) >= minFormToken &&
		subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf_token"))) == 1 {
		return true
	}
	u.forbid(w, r, "This form has expired or did not come from this site. Go back, reload the page and try again.")
	return false
}

// startSession signs in and sets auth's session cookie, so that the pages
// and the API share one session.
func (u *UI) startSession(w http.ResponseWriter, r *http.Request, email, password string) error {
	s, err := u.cfg.Auth.Login(r.Context(), email, password, r.RemoteAddr)
	if err != nil {
		return err
	}
	u.cfg.Auth.SetSessionCookie(w, r, s)
	return nil
}

func (u *UI) signout(w http.ResponseWriter, r *http.Request) {
	if !u.postForm(w, r) {
		return
	}
	if c, err := r.Cookie(auth.CookieName); err == nil && c.Value != "" {
		if err := u.cfg.Auth.Logout(r.Context(), c.Value); err != nil && apperr.KindOf(err) == apperr.Internal {
			u.fail(w, r, err)
			return
		}
	}
	u.cfg.Auth.ClearSessionCookie(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// requireSignIn sends an anonymous visitor to the sign-in page, coming
// back here afterwards, and reports whether the request may go on.
func requireSignIn(w http.ResponseWriter, r *http.Request) (auth.Actor, bool) {
	a := auth.ActorFrom(r.Context())
	if !a.Anonymous() {
		return a, true
	}
	back := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		// A form posted after the session ended: come back to the page
		// the form was on, not to the POST-only address.
		back = ""
		if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host {
			back = ref.RequestURI()
		}
	}
	target := "/signin"
	if back = localPath(back); back != "" {
		target += "?next=" + url.QueryEscape(back)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return a, false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// statusOf is the HTTP status a failed form is re-rendered with.
func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return apperr.KindOf(err).HTTPStatus()
}
