package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
)

// maxFormBytes bounds a form body; the largest form (a class with its
// description) is far below it.
const maxFormBytes = 64 << 10

// form is a submitted or prefilled form and what was wrong with it.
// Errors are keyed by the field names of the GraphQL schema, which are the
// form's input names too, so that apperr.FieldOf places a domain error
// beside its input.
type form struct {
	Values url.Values
	Errors map[string]string
	Alert  string // an error about the whole form
	fields map[string]bool
}

func newForm(values url.Values, fields ...string) *form {
	if values == nil {
		values = url.Values{}
	}
	f := &form{Values: values, Errors: map[string]string{}, fields: map[string]bool{}}
	for _, n := range fields {
		f.fields[n] = true
	}
	return f
}

// Get returns the value of field name.
func (f *form) Get(name string) string { return f.Values.Get(name) }

// Has reports whether a checkbox was ticked.
func (f *form) Has(name string) bool { return f.Values.Get(name) != "" }

// Err returns the message about field name, empty when it is fine.
func (f *form) Err(name string) string { return f.Errors[name] }

// Valid reports whether no error was recorded.
func (f *form) Valid() bool { return len(f.Errors) == 0 && f.Alert == "" }

// Fail records msg beside field, or on the whole form when the form has no
// such input.
func (f *form) Fail(field, msg string) {
	if f.fields[field] {
		if _, seen := f.Errors[field]; !seen {
			f.Errors[field] = msg
		}
		return
	}
	if f.Alert == "" {
		f.Alert = msg
	}
}

// FailErr places a domain error beside the field it names.
func (f *form) FailErr(err error) {
	f.Fail(apperr.FieldOf(err), message(err))
}

// parseForm reads a POST body, bounded in size.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apperr.New(apperr.Invalid, "the form is too large")
		}
		return apperr.New(apperr.Invalid, "the form could not be read")
	}
	return nil
}

// checkCSRF repeats auth.Middleware's CSRF check for a cookie-signed-in
// request, so that the UI stays safe even when mounted without it; it
// costs one comparison.
func checkCSRF(r *http.Request) bool {
	want := auth.CSRFTokenFromContext(r.Context())
	if want == "" {
		return true // anonymous, or a bearer token a browser cannot forge
	}
	got := r.PostForm.Get("csrf_token")
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// postForm parses the form and checks the CSRF token; on failure it has
// written the response and returns false.
func (u *UI) postForm(w http.ResponseWriter, r *http.Request) bool {
	if err := parseForm(w, r); err != nil {
		u.fail(w, r, err)
		return false
	}
	if !checkCSRF(r) {
		u.forbid(w, r, "This form has expired or did not come from this site. Go back, reload the page and try again.")
		return false
	}
	return true
}

// localPath returns next when it is a path on this site, "" otherwise, so
// that ?next= cannot send someone to another site after sign-in.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return ""
	}
	return next
}
