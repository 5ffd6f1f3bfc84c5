package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// ivs makes a class a broadcast.
func ivs(in *classes.ClassInput) { in.Service = store.ServiceIVS }

var (
	newKeyRE    = regexp.MustCompile(`id="new-key" type="text" readonly value="([^"]+)"`)
	revokeRE    = regexp.MustCompile(`action="(/classes/[^"]+/broadcast/keys/[^"]+/revoke)"`)
	dataWHIPRE  = regexp.MustCompile(`data-whip="([^"]*)"`)
	dataHLSRE   = regexp.MustCompile(`data-hls="([^"]*)"`)
	presenterUI = []string{
		`id="preview"`, `id="source-select"`, `id="camera-select"`, `id="mic-select"`, `id="btn-go-live"`,
		`id="btn-stop"`, `id="btn-end"`, `id="viewer-count"`, `id="health-bitrate"`, `id="health-fps"`,
		`id="health-dropped"`, `id="chat-log"`, `id="slow-mode"`, `id="poll-form"`, `id="reaction-counts"`,
		`id="stream-keys"`, `id="obs-server"`, "broadcast/presenter.js", `data-audience="/audience"`,
	}
	viewerUI = []string{
		`id="video"`, `id="latency"`, `id="viewer-count"`, `id="reactions"`, `aria-label="React with 👏"`,
		`id="chat-form"`, `id="poll-list"`, `id="ended"`, "broadcast/watch.js", `data-audience="/audience"`,
		"broadcast/vendor/hls.light.min.js",
	}
)

// claimsOf checks the join token rendered into a page as checkToken does
// and returns what it grants, verified with the key newEnv signs with.
func claimsOf(t *testing.T, e *env, r response) jointoken.Claims {
	t.Helper()
	checkToken(t, r)
	signer, err := jointoken.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := signer.Verify(html.UnescapeString(tokenRE.FindStringSubmatch(r.body)[1]), e.clock.Now())
	if err != nil {
		t.Fatalf("the page's token does not verify: %v", err)
	}
	return c
}

func TestBroadcastPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true, hlsURL: func(c store.ClassID, now time.Time) string {
		return fmt.Sprintf("/hls/%s/index.m3u8?exp=%d&sig=test", c, now.Add(time.Hour).Unix())
	}})
	ctx := context.Background()
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	other := e.user("o@example.com", "Oto Other", store.RoleMentor)
	admin := e.user("a@example.com", "Ada Admin", store.RoleAdmin)
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	outsider := e.user("x@example.com", "Xia Outsider", store.RoleStudent)
	now := e.clock.Now()
	c := e.class(mentor, "Broadcast Go", now.Add(10*time.Minute), ivs)
	if _, err := e.classes.Enroll(ctx, actor(student), c.ID, ""); err != nil {
		t.Fatal(err)
	}
	interactive := e.class(mentor, "Interactive Go", now.Add(10*time.Minute), nil)
	later := e.class(mentor, "Later broadcast", now.Add(3*time.Hour), ivs)
	if _, err := e.classes.Enroll(ctx, actor(student), later.ID, ""); err != nil {
		t.Fatal(err)
	}
	watch := "/classes/" + string(c.ID) + "/watch"
	present := "/classes/" + string(c.ID) + "/broadcast"

	t.Run("sign-in required", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{watch, present} {
			r := e.browser().get(p)
			wantStatus(t, r, http.StatusSeeOther)
			if !strings.HasPrefix(r.location, "/signin?next=") {
				t.Fatalf("%s: redirect to %q, want the sign-in page", p, r.location)
			}
		}
	})

	t.Run("viewer", func(t *testing.T) {
		t.Parallel()
		r := e.signedIn(student).get(watch)
		wantStatus(t, r, http.StatusOK)
		mustContain(t, r, viewerUI...)
		mustContain(t, r, `data-whep="/whep/`+string(c.ID)+`"`)
		mustLack(t, r, presenterUI[4], "Open presenter", `id="poll-form"`)
		if claims := claimsOf(t, e, r); claims.Role != jointoken.RoleAttendee || claims.ClassID != string(c.ID) || claims.UserID != string(student.ID) {
			t.Fatalf("token claims %+v, want an attendee's for the class", claimsOf(t, e, r))
		}
		// The server signs the HLS URL; the page carries it, not the URL bar.
		m := dataHLSRE.FindStringSubmatch(r.body)
		if m == nil || !strings.HasPrefix(html.UnescapeString(m[1]), "/hls/"+string(c.ID)+"/index.m3u8?exp=") {
			t.Fatalf("data-hls = %v, want the signed playlist URL", m)
		}
	})

	t.Run("who may watch", func(t *testing.T) {
		t.Parallel()
		// Not enrolled: the class page says why, with no token.
		r := e.signedIn(outsider).get(watch)
		wantStatus(t, r, http.StatusForbidden)
		mustContain(t, r, "You cannot join yet", "Enroll in the class first")
		mustLack(t, r, "data-token")
		// Enrolled, but the window has not opened.
		r = e.signedIn(student).get("/classes/" + string(later.ID) + "/watch")
		mustContain(t, r, "You cannot join yet")
		mustLack(t, r, "data-token")
		wantStatus(t, e.signedIn(student).get("/classes/nope/watch"), http.StatusNotFound)
		// The instructor and admins watch too (as hosts), with a way to present.
		for _, u := range []store.User{mentor, admin} {
			r := e.signedIn(u).get(watch)
			wantStatus(t, r, http.StatusOK)
			mustContain(t, r, "Open presenter")
		}
	})

	t.Run("an interactive class has its classroom", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/watch", "/broadcast"} {
			r := e.signedIn(mentor).get("/classes/" + string(interactive.ID) + p)
			wantStatus(t, r, http.StatusSeeOther)
			if r.location != "/classes/"+string(interactive.ID)+"/live" {
				t.Fatalf("%s: redirect to %q, want the classroom", p, r.location)
			}
		}
		r := e.signedIn(mentor).submit("/classes/"+string(c.ID)+"/broadcast", "/classes/"+string(interactive.ID)+"/broadcast/keys", nil)
		wantStatus(t, r, http.StatusConflict)
	})

	t.Run("presenter", func(t *testing.T) {
		t.Parallel()
		for _, u := range []store.User{mentor, admin} {
			r := e.signedIn(u).get(present)
			wantStatus(t, r, http.StatusOK)
			mustContain(t, r, presenterUI...)
			if claims := claimsOf(t, e, r); claims.Role != jointoken.RoleHost || claims.ClassID != string(c.ID) {
				t.Fatalf("presenter token: %+v; want a host's for the class", claims)
			}
			m := dataWHIPRE.FindStringSubmatch(r.body)
			if m == nil || m[1] != e.srv.URL+"/whip/"+string(c.ID) {
				t.Fatalf("data-whip = %v, want %s/whip/%s (the absolute ingest URL)", m, e.srv.URL, c.ID)
			}
		}
	})

	t.Run("only hosts present", func(t *testing.T) {
		t.Parallel()
		r := e.signedIn(student).get(present)
		wantStatus(t, r, http.StatusForbidden)
		mustLack(t, r, "data-token", `id="btn-go-live"`)
		// Another mentor is not this class's instructor: no token at all.
		r = e.signedIn(other).get(present)
		wantStatus(t, r, http.StatusForbidden)
		mustLack(t, r, "data-token", `id="btn-go-live"`)
		r = e.signedIn(student).submit(watch, "/classes/"+string(c.ID)+"/broadcast/keys", nil)
		wantStatus(t, r, http.StatusForbidden)
		mustLack(t, r, `id="new-key"`)
	})

	t.Run("class page leads to the broadcast pages", func(t *testing.T) {
		t.Parallel()
		r := e.signedIn(student).get("/classes/" + string(c.ID))
		mustContain(t, r, `href="/classes/`+string(c.ID)+`/watch">Join class`)
		mustLack(t, r, "Open presenter", string(c.ID)+"/live")
		r = e.signedIn(mentor).get("/classes/" + string(c.ID))
		mustContain(t, r, `href="/classes/`+string(c.ID)+`/watch">Join class`, `href="/classes/`+string(c.ID)+`/broadcast">Open presenter`)
		r = e.signedIn(mentor).get("/classes/" + string(interactive.ID))
		mustContain(t, r, `href="/classes/`+string(interactive.ID)+`/live">Join class`)
		mustLack(t, r, "Open presenter")
	})
}

func TestStreamKeyForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	now := e.clock.Now()
	c := e.class(mentor, "Broadcast Go", now.Add(10*time.Minute), ivs)
	d := e.class(mentor, "Another broadcast", now.Add(10*time.Minute), ivs)
	present := "/classes/" + string(c.ID) + "/broadcast"
	b := e.signedIn(mentor)

	r := b.get(present)
	mustContain(t, r, "No stream keys yet.")

	// Created: the secret is on the page that answers the POST, once.
	r = b.submit(present, present+"/keys", nil)
	wantStatus(t, r, http.StatusOK)
	m := newKeyRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no new key on the page:\n%s", r.body)
	}
	secret := html.UnescapeString(m[1])
	mustContain(t, r, "shown only once", `aria-label="Copy stream key"`, `id="new-key-url" type="text" readonly value="`+e.srv.URL+"/whip/"+string(c.ID)+`"`)
	if err := e.classes.CheckStreamKey(context.Background(), c.ID, secret); err != nil {
		t.Fatalf("the key shown does not publish: %v", err)
	}
	r = b.get(present)
	mustLack(t, r, secret, `id="new-key"`)
	mustContain(t, r, "<code>"+secret[:8]+"…</code>", "Active", `aria-label="Revoke key `+secret[:8]+`"`)

	// No CSRF token: refused, nothing created.
	r = b.post(present+"/keys", url.Values{})
	wantStatus(t, r, http.StatusForbidden)
	if n := strings.Count(b.get(present).body, "Active</td>"); n != 1 {
		t.Fatalf("%d active keys after a forged post, want 1", n)
	}

	// A key of this class is not revoked through another class's address.
	rv := revokeRE.FindStringSubmatch(b.get(present).body)
	if rv == nil {
		t.Fatal("no revoke form")
	}
	keyPath := strings.TrimPrefix(rv[1], "/classes/"+string(c.ID))
	r = b.submit(present, "/classes/"+string(d.ID)+keyPath, nil)
	wantStatus(t, r, http.StatusNotFound)
	if err := e.classes.CheckStreamKey(context.Background(), c.ID, secret); err != nil {
		t.Fatalf("the key stopped working after a refused revoke: %v", err)
	}

	// Revoked: back to the page, the key shown as revoked, refused on publish.
	r = b.submit(present, rv[1], nil)
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.location, present) {
		t.Fatalf("after revoking, redirect to %q", r.location)
	}
	r = b.get(present)
	mustContain(t, r, "Revoked")
	mustLack(t, r, `aria-label="Revoke key `+secret[:8]+`"`)
	if err := e.classes.CheckStreamKey(context.Background(), c.ID, secret); err == nil {
		t.Fatal("a revoked key still publishes")
	}
}

func TestBroadcastModulesServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.browser()
	for _, name := range []string{"presenter.js", "watch.js", "rtc.js", "audience.js", "panels.js"} {
		r := b.get("/static/broadcast/" + name)
		wantStatus(t, r, http.StatusOK)
		if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
			t.Errorf("%s served as %q, want JavaScript (modules need it)", name, ct)
		}
		if !strings.HasPrefix(r.body, "// @ts-check") {
			t.Errorf("%s does not start with // @ts-check", name)
		}
		// Chat, names and poll options are text, never markup.
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
	}
	r := b.get("/static/broadcast/vendor/hls.light.min.js")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, "Hls") {
		t.Fatal("the vendored HLS player is not hls.js")
	}
	for _, f := range []string{"LICENSE", "README.md"} {
		wantStatus(t, b.get("/static/broadcast/vendor/"+f), http.StatusOK)
	}
}

func TestPageSecurityPolicyAllowsHLSPlayer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	// hls.js plays through Media Source Extensions: a blob: URL on the
	// video element, which the policy must allow and nothing else needs.
	csp := e.browser().get("/").header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "media-src 'self' blob:") || !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "script-src") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}
}
