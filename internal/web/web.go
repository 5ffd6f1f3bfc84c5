// Package web serves liveclass's browser UI: the guide's Next.js pages
// (catalogue, class page, dashboards, admin) as server-rendered
// html/template pages with plain ES modules, all embedded in the binary,
// and the live pages: the classroom of an interactive class, and the
// presenter's and viewers' pages of a broadcast.
// Every form works without JavaScript (POST, then redirect); the modules
// only enhance: local times, the countdown, and revealing Join when the
// join window opens by the server's clock.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the UI needs.
type Config struct {
	// Classes applies the domain rules; required.
	Classes *classes.Service
	// Auth signs people up, in and out and manages roles; required.
	Auth *auth.Service
	// Logger receives errors the user cannot act on; slog.Default when nil.
	Logger *slog.Logger
	// SignupDisabled hides the sign-up page (the auth service refuses
	// sign-ups too; this keeps the UI from offering what it cannot do).
	SignupDisabled bool
	// HLSURL returns the signed HLS playlist URL of a broadcast class
	// (hls.Signer.URL), which the viewer page plays when WebRTC fails;
	// nil when the server packages no HLS.
	HLSURL func(class store.ClassID, now time.Time) string
}

// UI is the mounted web interface.
type UI struct {
	cfg     Config
	log     *slog.Logger
	pages   map[string]*template.Template
	static  fs.FS
	version map[string]string // static file → content hash, for cache busting
}

// New checks cfg and parses the embedded templates.
func New(cfg Config) (*UI, error) {
	if cfg.Classes == nil || cfg.Auth == nil {
		return nil, errors.New("web: Config.Classes and Config.Auth are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	u := &UI{cfg: cfg, log: cfg.Logger.With("component", "web")}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	u.static = sub
	u.version = make(map[string]string)
	err = fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		u.version[path] = hex.EncodeToString(h[:6])
		return nil
	})
	if err != nil {
		return nil, err
	}
	if u.pages, err = u.parseTemplates(); err != nil {
		return nil, err
	}
	return u, nil
}

// Mount registers the UI's routes on mux. The caller puts auth.Middleware
// in front of mux, so that handlers see the signed-in actor and unsafe
// cookie-authenticated requests have passed the CSRF check. "/" is taken
// as the fallback that renders the 404 page for unknown paths; more
// specific routes registered by the server (/graphql, /auth/, /healthz)
// still win.
func (u *UI) Mount(mux *http.ServeMux) {
	mux.Handle("GET /static/", u.staticHandler())

	mux.HandleFunc("GET /{$}", u.catalogue)
	mux.HandleFunc("GET /signup", u.signupForm)
	mux.HandleFunc("POST /signup", u.signup)
	mux.HandleFunc("GET /signin", u.signinForm)
	mux.HandleFunc("POST /signin", u.signin)
	mux.HandleFunc("POST /signout", u.signout)

	mux.HandleFunc("GET /classes/{id}", u.classPage)
	mux.HandleFunc("POST /classes/{id}/enroll", u.enroll)
	mux.HandleFunc("POST /classes/{id}/unenroll", u.unenroll)
	mux.HandleFunc("GET /classes/{id}/live", u.live)
	mux.HandleFunc("GET /classes/{id}/watch", u.watch)
	mux.HandleFunc("GET /classes/{id}/broadcast", u.broadcast)
	mux.HandleFunc("POST /classes/{id}/broadcast/keys", u.createStreamKey)
	mux.HandleFunc("POST /classes/{id}/broadcast/keys/{key}/revoke", u.revokeStreamKey)

	mux.HandleFunc("GET /dashboard", u.dashboard)

	mux.HandleFunc("GET /mentor", u.mentor)
	mux.HandleFunc("GET /mentor/classes/new", u.newClassForm)
	mux.HandleFunc("POST /mentor/classes/new", u.createClass)
	mux.HandleFunc("GET /mentor/classes/{id}/edit", u.editClassForm)
	mux.HandleFunc("POST /mentor/classes/{id}/edit", u.updateClass)
	mux.HandleFunc("POST /mentor/classes/{id}/cancel", u.cancelClass)
	mux.HandleFunc("GET /mentor/classes/{id}/enrollments", u.enrollments)

	mux.HandleFunc("GET /admin/users", u.adminUsers)
	mux.HandleFunc("POST /admin/users/{id}/role", u.setRole)

	mux.HandleFunc("/", u.notFound)
}

// Handler returns a fresh mux with only the UI's routes, for tests and
// for servers that mount the UI under a prefix.
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	u.Mount(mux)
	return mux
}

func (u *UI) staticHandler() http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(u.static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Links carry the content hash (?v=), so a versioned URL never
		// changes and may be cached for long; an unversioned one must not.
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
