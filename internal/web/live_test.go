package web_test

import (
	"context"
	"html"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/store"
)

var tokenRE = regexp.MustCompile(`data-token="([^"]*)"`)

// hostOnly are the parts of the live page that only hosts get: the
// attendee's page must not carry controls the room would refuse anyway.
var hostOnly = []string{
	`id="btn-mute-all"`, `id="lock-mics"`, `id="lock-room"`, `id="btn-end"`,
	`id="hands-list"`, `id="breakouts-panel"`, `id="poll-form"`, "data-host",
}

// everyone's are the controls every participant has.
var everyone = []string{
	`id="camera-select"`, `id="mic-select"`, `id="quality-select"`, `id="preview"`, `id="mic-level"`, `id="join-muted"`, `id="join-button"`,
	`id="btn-mic"`, `id="btn-camera"`, `id="btn-screen"`, `id="btn-hand"`, `id="btn-reactions"`,
	`id="btn-chat"`, `id="btn-people"`, `id="btn-leave"`, `id="chat-panel"`, `id="people-panel"`,
	`id="polls-panel"`, `id="help"`, `live/main.js`, `data-signal="/rtc"`,
}

func TestLivePage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	ctx := context.Background()
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	outsider := e.user("o@example.com", "Olga Outsider", store.RoleStudent)
	now := e.clock.Now()
	// Starts in 10 minutes: the join window (15 minutes before) is open.
	c := e.class(mentor, "Live Go", now.Add(10*time.Minute), nil)
	if _, err := e.classes.Enroll(ctx, actor(student), c.ID, ""); err != nil {
		t.Fatal(err)
	}
	later := e.class(mentor, "Later Go", now.Add(3*time.Hour), nil)
	if _, err := e.classes.Enroll(ctx, actor(student), later.ID, ""); err != nil {
		t.Fatal(err)
	}
	live := "/classes/" + string(c.ID) + "/live"

	t.Run("sign-in required", func(t *testing.T) {
		t.Parallel()
		r := e.browser().get(live)
		wantStatus(t, r, http.StatusSeeOther)
		if !strings.HasPrefix(r.location, "/signin?next=") || !strings.Contains(r.location, "live") {
			t.Fatalf("redirect to %q, want the sign-in page coming back here", r.location)
		}
	})

	t.Run("no grant, no room", func(t *testing.T) {
		t.Parallel()
		// Not enrolled: no token, the class page says why.
		r := e.signedIn(outsider).get(live)
		wantStatus(t, r, http.StatusForbidden)
		mustContain(t, r, "You cannot join yet")
		mustLack(t, r, "data-token", `id="join-button"`)
		// Enrolled, but the window has not opened.
		r = e.signedIn(student).get("/classes/" + string(later.ID) + "/live")
		mustContain(t, r, "You cannot join yet")
		mustLack(t, r, "data-token", `id="join-button"`)
		// No such class.
		wantStatus(t, e.signedIn(student).get("/classes/nope/live"), http.StatusNotFound)
	})

	t.Run("attendee", func(t *testing.T) {
		t.Parallel()
		r := e.signedIn(student).get(live)
		wantStatus(t, r, http.StatusOK)
		mustContain(t, r, everyone...)
		mustContain(t, r, "Attendee (ATTENDEE)", `value="hosts"`)
		mustLack(t, r, hostOnly...)
		mustLack(t, r, "HOST")
		checkToken(t, r)
	})

	t.Run("host", func(t *testing.T) {
		t.Parallel()
		r := e.signedIn(mentor).get(live)
		wantStatus(t, r, http.StatusOK)
		mustContain(t, r, everyone...)
		mustContain(t, r, hostOnly...)
		mustContain(t, r, "Host (HOST)", "Mute all", "Lock microphones", "Lock room", "End class",
			"Raised hands", "Create breakout rooms", "Assign automatically", "Start timer", "Broadcast",
			"Close breakout rooms", "Start poll", "Allow several choices")
		checkToken(t, r)
	})

	t.Run("admin co-hosts", func(t *testing.T) {
		t.Parallel()
		admin := e.user("a@example.com", "Ada Admin", store.RoleAdmin)
		r := e.signedIn(admin).get(live)
		wantStatus(t, r, http.StatusOK)
		mustContain(t, r, hostOnly...)
	})

	t.Run("reactions are the room's set", func(t *testing.T) {
		t.Parallel()
		r := e.signedIn(student).get(live)
		for _, emoji := range []string{"👍", "👏", "😂", "😮", "❤️", "🎉", "✋"} {
			mustContain(t, r, `aria-label="React with `+emoji+`"`)
		}
	})
}

// checkToken checks that the page carries a join token for the module and
// keeps it out of every URL on the page, and that the page is not cached.
func checkToken(t *testing.T, r response) {
	t.Helper()
	m := tokenRE.FindStringSubmatch(r.body)
	if m == nil || strings.Count(html.UnescapeString(m[1]), ".") != 2 {
		t.Fatalf("no join token (a JWT) in data-token; body:\n%s", r.body)
	}
	tok := html.UnescapeString(m[1])
	for _, attr := range regexp.MustCompile(`(?:href|src|action)="([^"]*)"`).FindAllStringSubmatch(r.body, -1) {
		if strings.Contains(html.UnescapeString(attr[1]), tok[:20]) {
			t.Fatalf("the join token is in a URL: %s", attr[0])
		}
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q: a page with a join token must not be stored", cc)
	}
}

func TestLivePageBroadcastClass(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	c := e.class(mentor, "Big lecture", e.clock.Now().Add(10*time.Minute), func(in *classes.ClassInput) {
		in.Service = store.ServiceIVS
	})
	// A broadcast class has no interactive room: /live leads to the
	// viewer page.
	r := e.signedIn(mentor).get("/classes/" + string(c.ID) + "/live")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.location; loc != "/classes/"+string(c.ID)+"/watch" {
		t.Errorf("Location = %q, want the watch page", loc)
	}
}

// importRE finds a module's relative imports (import … from "./x.js").
var importRE = regexp.MustCompile(`(?m)^import\s[^;]*?from\s+"\./([a-z]+\.js)";`)

func TestLiveModulesServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.browser()
	// Every module main.js reaches through its imports, each served as
	// JavaScript; none on disk left unreached.
	served := map[string]bool{}
	queue := []string{"main.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if served[name] {
			continue
		}
		served[name] = true
		r := b.get("/static/live/" + name)
		wantStatus(t, r, http.StatusOK)
		if ct := r.header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
			t.Errorf("%s served as %q, want JavaScript (modules need it)", name, ct)
		}
		if !strings.HasPrefix(r.body, "// @ts-check") {
			t.Errorf("%s does not start with // @ts-check", name)
		}
		// Chat and names are text, never markup.
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
		for _, m := range importRE.FindAllStringSubmatch(r.body, -1) {
			queue = append(queue, m[1])
		}
	}
	files, err := filepath.Glob(filepath.Join("static", "live", "*.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("the live modules on disk: %v %v", files, err)
	}
	for _, f := range files {
		if !served[filepath.Base(f)] {
			t.Errorf("%s is imported by no module of the page", f)
		}
	}
	if len(served) != len(files) {
		t.Errorf("main.js reaches %d modules, %d are on disk", len(served), len(files))
	}
}
