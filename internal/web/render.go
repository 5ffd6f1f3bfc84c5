package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// base is what the layout needs on every page; page data embeds it.
type base struct {
	Title   string
	Actor   auth.Actor
	CSRF    string
	Now     time.Time
	Signup  bool
	Path    string
	Alert   string // an error about the whole page or form, shown on top
	Notice  string // a neutral message, e.g. after a change was saved
	Status  int    // HTTP status; 200 when zero
	NoIndex bool
}

func (u *UI) base(r *http.Request, title string) base {
	return base{
		Title:  title,
		Actor:  auth.ActorFrom(r.Context()),
		CSRF:   auth.CSRFTokenFromContext(r.Context()),
		Now:    u.cfg.Classes.Now(),
		Signup: !u.cfg.SignupDisabled,
		Path:   r.URL.RequestURI(),
	}
}

func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"static": func(name string) string {
			return "/static/" + name + "?v=" + u.version[name]
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"isoms": func(t time.Time) string {
			return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		},
		"when":      when,
		"countdown": countdown,
		"roleName":  roleName,
		"lower":     strings.ToLower,
		"join":      strings.Join,
		"price":     func(p float64) string { return fmt.Sprintf("%.2f", p) },
		"seatsLeft": seatsLeft,
		"is":        func(a auth.Actor, r string) bool { return a.Is(store.Role(r)) },
		"teaches": func(a auth.Actor) bool {
			return a.Is(store.RoleMentor) || a.Is(store.RoleAdmin)
		},
		"query": func(kv ...string) template.URL {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] != "" {
					v.Set(kv[i], kv[i+1])
				}
			}
			return template.URL("?" + v.Encode())
		},
		"deref": func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		},
	}
}

// parseTemplates builds one template set per page: the layout plus the
// page, so that every page defines its own "content" block.
func (u *UI) parseTemplates() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(u.funcs()).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := make(map[string]*template.Template)
	for _, n := range names {
		name := path.Base(n)
		if name == "layout.html" {
			continue
		}
		t, err := layout.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.ParseFS(templateFS, n); err != nil {
			return nil, fmt.Errorf("web: %s: %w", name, err)
		}
		pages[strings.TrimSuffix(name, ".html")] = t
	}
	return pages, nil
}

// render writes page with data. It renders into a buffer first, so that a
// template error becomes a clean 500 instead of half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, page string, status int, data any) {
	t, ok := u.pages[page]
	if !ok {
		u.log.Error("no such page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		u.log.Error("render page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	// media-src blob: lets the viewer page's HLS player (Media Source
	// Extensions) attach its buffer to the video element.
	h.Set("Content-Security-Policy",
		"default-src 'self'; img-src 'self' data:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage is the data of the 403 / 404 / generic error page.
type errorPage struct {
	base
	Heading string
	Message string
}

// fail renders err as a page: sign-in for Unauthenticated on a GET, the
// kind's status and message otherwise; internal errors are logged and
// shown without detail.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	kind := apperr.KindOf(err)
	if kind == apperr.Unauthenticated && r.Method == http.MethodGet {
		http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	p := errorPage{base: u.base(r, "")}
	switch kind {
	case apperr.NotFound:
		p.Title, p.Heading = "Not found", "Not found"
		p.Message = "There is nothing here. The class may have been deleted, or the address is mistyped."
	case apperr.Forbidden:
		p.Title, p.Heading = "Not allowed", "Not allowed"
		p.Message = message(err)
	case apperr.Unauthenticated:
		p.Title, p.Heading = "Sign in first", "Sign in first"
		p.Message = "Your session has ended. Sign in and try again."
	case apperr.Internal:
		u.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p.Title, p.Heading = "Something went wrong", "Something went wrong"
		p.Message = "The server could not do that. Try again in a moment."
	default:
		p.Title, p.Heading = "Cannot do that", "Cannot do that"
		p.Message = message(err)
	}
	u.render(w, r, "error", kind.HTTPStatus(), p)
}

func (u *UI) notFound(w http.ResponseWriter, r *http.Request) {
	u.fail(w, r, apperr.New(apperr.NotFound, "no such page"))
}

// forbid renders the 403 page with msg.
func (u *UI) forbid(w http.ResponseWriter, r *http.Request, msg string) {
	u.fail(w, r, apperr.New(apperr.Forbidden, "%s", msg))
}

// message turns an error into a sentence for people: the domain's message
// (never an internal cause), starting with a capital letter.
func message(err error) string {
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Kind != apperr.Internal {
		return sentence(ae.Message)
	}
	return "Something went wrong. Try again in a moment."
}

// sentence capitalises the first letter of s.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// when formats t for people who read the page without JavaScript; the
// module rewrites it in the reader's own time zone.
func when(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006, 15:04 UTC") }

// countdown is the server's first rendering of the time until t.
func countdown(now, t time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "now"
	}
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	d -= m * time.Minute
	s := d / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %dm %ds", h, m, s)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

func roleName(r store.Role) string {
	switch r {
	case store.RoleAdmin:
		return "Admin"
	case store.RoleMentor:
		return "Mentor"
	case store.RoleStudent:
		return "Student"
	}
	return string(r)
}

func seatsLeft(c store.LiveClass) int {
	if n := c.MaxParticipants - c.EnrolledCount; n > 0 {
		return n
	}
	return 0
}
