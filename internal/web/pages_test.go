package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/store"
)

func TestNavigationFollowsRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	admin := e.user("a@example.com", "Ada Admin", store.RoleAdmin)

	anon := e.browser().get("/")
	wantStatus(t, anon, http.StatusOK)
	mustContain(t, anon, `href="/signin">Sign in`, `href="/signup">Sign up`)
	mustLack(t, anon, "Sign out", `href="/dashboard"`, `href="/mentor"`, `href="/admin/users"`)

	s := e.signedIn(student).get("/")
	mustContain(t, s, "Sign out", `href="/dashboard">My classes`, "Sam Student")
	mustLack(t, s, `href="/mentor"`, `href="/admin/users"`, `href="/signin"`)

	m := e.signedIn(mentor).get("/")
	mustContain(t, m, `href="/mentor">Teaching`)
	mustLack(t, m, `href="/admin/users"`)

	a := e.signedIn(admin).get("/")
	mustContain(t, a, `href="/mentor">Teaching`, `href="/admin/users">Users`)
}

func TestSignUpWithoutJavaScript(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.browser()

	// A password too short comes back beside the password field, with
	// the name and email kept and the password not echoed.
	r := b.submit("/signup", "/signup", url.Values{"name": {"Lee"}, "email": {"lee@example.com"}, "password": {"short-1"}})
	wantStatus(t, r, http.StatusBadRequest)
	mustContain(t, r, `id="password-error"`, `aria-invalid="true"`, `value="Lee"`, `value="lee@example.com"`)
	mustLack(t, r, "short-1")

	r = b.submit("/signup", "/signup", url.Values{"name": {"Lee"}, "email": {"not-an-email"}, "password": {"password123"}})
	wantStatus(t, r, http.StatusBadRequest)
	mustContain(t, r, `id="email-error"`)

	r = b.submit("/signup", "/signup", url.Values{"name": {"Lee"}, "email": {"lee@example.com"}, "password": {"password123"}, "next": {"/dashboard"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.location != "/dashboard" {
		t.Fatalf("redirect to %q, want /dashboard", r.location)
	}
	mustContain(t, b.get("/dashboard"), "My classes", "Lee")

	// The same email again, from another browser: beside the email field.
	r = e.browser().submit("/signup", "/signup", url.Values{"name": {"Lee 2"}, "email": {"LEE@example.com"}, "password": {"password123"}})
	wantStatus(t, r, http.StatusConflict)
	mustContain(t, r, `id="email-error"`, "already exists")

	u, err := e.st.UserByEmail(context.Background(), "lee@example.com")
	if err != nil || u.Role != store.RoleStudent || u.Name != "Lee" {
		t.Fatalf("stored user %+v, %v; want the first sign-up as a STUDENT", u, err)
	}
}

func TestAccountFormsNeedTheirCSRFToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.user("s@example.com", "Sam", store.RoleStudent)
	b := e.browser()
	b.get("/signin") // has the pre-session cookie, but the post lacks the token
	for _, path := range []string{"/signin", "/signup"} {
		r := b.post(path, url.Values{"name": {"X"}, "email": {"s@example.com"}, "password": {"password123"}})
		wantStatus(t, r, http.StatusForbidden)
		r = b.post(path, url.Values{"csrf_token": {"forged-forged-forged-forged"}, "email": {"s@example.com"}, "password": {"password123"}})
		wantStatus(t, r, http.StatusForbidden)
	}
	if n, _ := e.st.CountUsers(context.Background()); n != 1 {
		t.Fatalf("%d users stored, want 1", n)
	}
	mustContain(t, b.get("/"), `href="/signin">Sign in`)
}

func TestSignInAndOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.user("s@example.com", "Sam", store.RoleStudent)
	b := e.browser()

	r := b.submit("/signin", "/signin", url.Values{"email": {"s@example.com"}, "password": {"wrong-password"}})
	wantStatus(t, r, http.StatusUnauthorized)
	mustContain(t, r, "Invalid email or password.", `value="s@example.com"`)
	mustLack(t, r, "wrong-password")
	r = b.submit("/signin", "/signin", url.Values{"email": {"nobody@example.com"}, "password": {"wrong-password"}})
	mustContain(t, r, "Invalid email or password.")

	// ?next= only ever leads back into this site.
	r = b.submit("/signin", "/signin", url.Values{"email": {"s@example.com"}, "password": {"password123"}, "next": {"//evil.example/"}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.location != "/" {
		t.Fatalf("redirect to %q after sign-in with a foreign next, want /", r.location)
	}
	mustContain(t, b.get("/"), "Sign out")

	// Sign-out without the token is refused and changes nothing.
	wantStatus(t, b.post("/signout", nil), http.StatusForbidden)
	mustContain(t, b.get("/"), "Sign out")

	r = b.submit("/", "/signout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	mustContain(t, b.get("/"), `href="/signin">Sign in`)
}

func TestSignUpDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{signupDisabled: true})
	b := e.browser()
	mustLack(t, b.get("/"), `href="/signup"`)
	wantStatus(t, b.get("/signup"), http.StatusForbidden)
}

func TestCatalogueFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	now := e.clock.Now()
	e.class(mentor, "Go for beginners", now.Add(2*time.Hour), nil)
	e.class(mentor, "Advanced Rust", now.Add(3*time.Hour), func(in *classes.ClassInput) {
		in.Level, in.Tags, in.Category = store.LevelAdvanced, []string{"rust", "systems"}, "Systems"
	})
	e.class(mentor, "Paid design review", now.Add(4*time.Hour), func(in *classes.ClassInput) {
		in.Price, in.IsFree, in.Category = 25, false, "Design"
	})
	e.class(mentor, "Happening now", now.Add(-10*time.Minute), nil)
	b := e.browser()

	titles := func(r response) (live, upcoming []string) {
		t.Helper()
		wantStatus(t, r, http.StatusOK)
		parts := strings.SplitN(r.body, `id="upcoming-heading"`, 2)
		re := regexp.MustCompile(`<h3><a href="/classes/[^"]+">([^<]+)</a></h3>`)
		for _, m := range re.FindAllStringSubmatch(parts[0], -1) {
			live = append(live, m[1])
		}
		for _, m := range re.FindAllStringSubmatch(parts[1], -1) {
			upcoming = append(upcoming, m[1])
		}
		return live, upcoming
	}
	live, up := titles(b.get("/"))
	if strings.Join(live, "|") != "Happening now" || strings.Join(up, "|") != "Go for beginners|Advanced Rust|Paid design review" {
		t.Fatalf("live %q, upcoming %q", live, up)
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"q=Rust", "Advanced Rust"},
		{"level=ADVANCED", "Advanced Rust"},
		{"tag=systems", "Advanced Rust"},
		{"category=Design", "Paid design review"},
		{"price=paid", "Paid design review"},
		{"price=free&level=BEGINNER", "Go for beginners"},
		{"q=nothing-like-this", ""},
	} {
		_, up := titles(b.get("/?" + tc.query))
		if got := strings.Join(up, "|"); got != tc.want {
			t.Errorf("/?%s: upcoming %q, want %q", tc.query, got, tc.want)
		}
	}

	r := b.get("/?level=EXPERT")
	wantStatus(t, r, http.StatusBadRequest)
	mustContain(t, r, `id="level-error"`)
}

func TestCataloguePages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	now := e.clock.Now()
	const n = 30 // more than one page of 24
	for i := range n {
		e.class(mentor, "Class "+strconv.Itoa(i), now.Add(time.Duration(i+1)*time.Hour), nil)
	}
	b := e.browser()
	seen := map[string]bool{}
	next := regexp.MustCompile(`href="(\?[^"]*next=[^"]+)">More classes`)
	title := regexp.MustCompile(`>(Class \d+)</a></h3>`)
	path := "/?q=Class"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		r := b.get(path)
		wantStatus(t, r, http.StatusOK)
		for _, m := range title.FindAllStringSubmatch(r.body, -1) {
			if seen[m[1]] {
				t.Fatalf("%s shown twice", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := next.FindStringSubmatch(r.body); m != nil {
			if !strings.Contains(m[1], "q=Class") {
				t.Fatalf("next link %q drops the search", m[1])
			}
			path = "/" + strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != n {
		t.Fatalf("saw %d classes over all pages, want %d", len(seen), n)
	}
	wantStatus(t, b.get("/?next=garbage"), http.StatusBadRequest)
}

func TestClassPageEnrollAndJoin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	now := e.clock.Now()
	c := e.class(mentor, "Intro to Go", now.Add(time.Hour), func(in *classes.ClassInput) { in.MaxParticipants = 1 })
	page := "/classes/" + string(c.ID)

	anon := e.browser().get(page)
	wantStatus(t, anon, http.StatusOK)
	mustContain(t, anon, "Intro to Go", "Mia Mentor", "1 of 1", "Sign in to enroll", "data-countdown=", "1h 0m 0s")
	mustLack(t, anon, "Join class", ">Enroll<")

	b := e.signedIn(student)
	r := b.get(page)
	mustContain(t, r, ">Enroll</button>")
	mustLack(t, r, "Join class")

	r = b.submit(page, page+"/enroll", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if r.location != page {
		t.Fatalf("redirect to %q, want %q", r.location, page)
	}
	r = b.get(page)
	// Enrolled, an hour before: Join is on the page but hidden until the
	// window opens 15 minutes before the start, by the server's clock.
	mustContain(t, r, "You are enrolled.", ">Unenroll</button>", "0 of 1",
		`hidden data-opens-at="2030-03-04T10:45:00.000Z"`, `data-server-now="2030-03-04T10:00:00.000Z"`)

	e.clock.Set(now.Add(50 * time.Minute))
	r = b.get(page)
	mustContain(t, r, `<a class="button join" href="`+page+`/live">Join class</a>`)
	mustLack(t, r, "data-opens-at")

	live := b.get(page + "/live")
	wantStatus(t, live, http.StatusOK)
	mustContain(t, live, "ATTENDEE", "CHIME", "The classroom opens on this page.")
	mustLack(t, live, "HOST")
	host := e.signedIn(mentor).get(page + "/live")
	mustContain(t, host, "Host (HOST)")

	// The one seat is taken: a second student is told so, and posting
	// anyway gets the same plain answer.
	other := e.signedIn(e.user("o@example.com", "Olga Other", store.RoleStudent))
	r = other.get(page)
	mustContain(t, r, "This class is full.")
	mustLack(t, r, ">Enroll</button>", "Join class")
	r = other.submit(page, page+"/enroll", nil)
	wantStatus(t, r, http.StatusConflict)
	mustContain(t, r, "This class is full.")
	wantStatus(t, other.get(page+"/live"), http.StatusForbidden)

	// Unenroll frees the seat.
	r = b.submit(page, page+"/unenroll", nil)
	wantStatus(t, r, http.StatusSeeOther)
	mustContain(t, other.get(page), ">Enroll</button>", "1 of 1")
}

func TestEnrollRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	now := e.clock.Now()
	paid := e.class(mentor, "Paid", now.Add(time.Hour), func(in *classes.ClassInput) { in.Price, in.IsFree = 10, false })
	free := e.class(mentor, "Free", now.Add(time.Hour), nil)
	b := e.signedIn(student)

	pp := "/classes/" + string(paid.ID)
	mustContain(t, b.get(pp), "This is a paid class: ask the instructor to enroll you.")
	r := b.submit(pp, pp+"/enroll", nil)
	wantStatus(t, r, http.StatusForbidden)
	mustContain(t, r, "This is a paid class: ask the instructor to enroll you.")

	// Without the CSRF token the middleware refuses, and nothing is stored.
	fp := "/classes/" + string(free.ID)
	wantStatus(t, b.post(fp+"/enroll", url.Values{}), http.StatusForbidden)
	wantStatus(t, b.post(fp+"/enroll", url.Values{"csrf_token": {"wrong"}}), http.StatusForbidden)
	if _, err := e.st.EnrollmentByUserClass(context.Background(), student.ID, free.ID); err == nil {
		t.Fatal("an enrollment was stored without a CSRF token")
	}

	// Anonymous posts go to sign-in.
	r = e.browser().post(fp+"/enroll", url.Values{})
	wantStatus(t, r, http.StatusSeeOther)
	if !strings.HasPrefix(r.location, "/signin") {
		t.Fatalf("anonymous enroll redirects to %q", r.location)
	}

	// A cancelled class offers no enrollment.
	cancelled := store.StatusCancelled
	if _, err := e.classes.UpdateClass(context.Background(), actor(mentor), free.ID, classes.ClassPatch{Managed: classes.Managed{Status: &cancelled}}); err != nil {
		t.Fatal(err)
	}
	r = b.get(fp)
	mustContain(t, r, "This class was cancelled.")
	mustLack(t, r, ">Enroll</button>")
	r = b.submit(fp, fp+"/enroll", nil)
	wantStatus(t, r, http.StatusConflict)
	mustContain(t, r, "enrollment is closed")
}

// A class past its end is over even if nothing marked it ENDED: no
// enrolling, no Join, and the page says so.
func TestClassOverByClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	c := e.class(mentor, "Yesterday", e.clock.Now().Add(time.Hour), nil)
	e.clock.Set(e.clock.Now().Add(3 * time.Hour))
	r := e.signedIn(student).get("/classes/" + string(c.ID))
	wantStatus(t, r, http.StatusOK)
	mustContain(t, r, "This class has ended.")
	mustLack(t, r, ">Enroll</button>", "Join class", "Starts in", "live now")
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	now := e.clock.Now()
	soon := e.class(mentor, "Soon class", now.Add(time.Hour), nil)
	later := e.class(mentor, "Later class", now.Add(48*time.Hour), nil)
	e.class(mentor, "Not mine", now.Add(time.Hour), nil)
	for _, c := range []store.LiveClass{soon, later} {
		if _, err := e.classes.Enroll(context.Background(), actor(student), c.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	wantStatus(t, e.browser().get("/dashboard"), http.StatusSeeOther)

	b := e.signedIn(student)
	e.clock.Set(now.Add(24 * time.Hour)) // "Soon class" is over
	r := b.get("/dashboard")
	wantStatus(t, r, http.StatusOK)
	parts := strings.SplitN(r.body, `id="past-heading"`, 2)
	if !strings.Contains(parts[0], "Later class") || strings.Contains(parts[0], "Soon class") {
		t.Fatalf("upcoming section wrong:\n%s", parts[0])
	}
	if !strings.Contains(parts[1], "Soon class") {
		t.Fatalf("past section lacks the finished class:\n%s", parts[1])
	}
	mustLack(t, r, "Not mine")
}

func TestMentorPagesRefuseOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	other := e.user("o@example.com", "Otto Mentor", store.RoleMentor)
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	c := e.class(mentor, "Mine", e.clock.Now().Add(time.Hour), nil)
	edit := "/mentor/classes/" + string(c.ID) + "/edit"

	r := e.browser().get("/mentor")
	wantStatus(t, r, http.StatusSeeOther)
	if r.location != "/signin?next=%2Fmentor" {
		t.Fatalf("anonymous /mentor redirects to %q", r.location)
	}
	s := e.signedIn(student)
	for _, p := range []string{"/mentor", "/mentor/classes/new", edit} {
		r := s.get(p)
		wantStatus(t, r, http.StatusForbidden)
		mustContain(t, r, "Not allowed")
	}
	r = s.submit("/", "/mentor/classes/new", url.Values{"title": {"Sneaky"}})
	wantStatus(t, r, http.StatusForbidden)

	o := e.signedIn(other)
	wantStatus(t, o.get(edit), http.StatusForbidden)
	wantStatus(t, o.get("/mentor/classes/"+string(c.ID)+"/enrollments"), http.StatusForbidden)
	r = o.submit("/mentor", "/mentor/classes/"+string(c.ID)+"/cancel", nil)
	wantStatus(t, r, http.StatusForbidden)
	got, _ := e.st.ClassByID(context.Background(), c.ID)
	if got.Status != store.StatusScheduled {
		t.Fatalf("another mentor changed the class to %s", got.Status)
	}
}

func classForm(title, start, end string) url.Values {
	return url.Values{
		"title": {title}, "description": {"Bring a laptop."},
		"startTime": {start}, "endTime": {end}, "timeZone": {"UTC"},
		"awsService": {"CHIME"}, "maxParticipants": {"12"}, "category": {"Programming"},
		"level": {"BEGINNER"}, "accessLevel": {"STUDENT"}, "requiresEnrollment": {"on"},
		"price": {"0"}, "tags": {"go, web , go"},
	}
}

func TestMentorCreatesEditsAndCancels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fixedClock: true})
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	b := e.signedIn(mentor)
	ctx := context.Background()

	form := b.get("/mentor/classes/new")
	wantStatus(t, form, http.StatusOK)
	mustContain(t, form, `<label for="title">Title</label>`, `name="timeZone" value="UTC"`, `value="2030-03-04T11:00:00"`)

	// Errors come back beside their fields, with what was typed kept.
	for _, tc := range []struct {
		name  string
		mod   func(url.Values)
		field string
	}{
		{"end before start", func(v url.Values) { v.Set("endTime", "2030-03-05T08:00") }, "endTime"},
		{"unreadable start", func(v url.Values) { v.Set("startTime", "tomorrow") }, "startTime"},
		{"too many seats", func(v url.Values) { v.Set("maxParticipants", "51") }, "maxParticipants"},
		{"seats not a number", func(v url.Values) { v.Set("maxParticipants", "ten") }, "maxParticipants"},
		{"empty title", func(v url.Values) { v.Set("title", "  ") }, "title"},
		{"negative price", func(v url.Values) { v.Set("price", "-1") }, "price"},
		{"bad level", func(v url.Values) { v.Set("level", "GURU") }, "level"},
		{"no category", func(v url.Values) { v.Set("category", "") }, "category"},
		{"unknown zone", func(v url.Values) { v.Set("timeZone", "Mars/Olympus") }, "startTime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := classForm("Kept title", "2030-03-05T09:00", "2030-03-05T10:00")
			tc.mod(v)
			if tc.field == "title" {
				v.Set("description", "Kept description")
			}
			r := b.submit("/mentor/classes/new", "/mentor/classes/new", v)
			wantStatus(t, r, http.StatusBadRequest)
			mustContain(t, r, `id="`+tc.field+`-error"`, `aria-describedby="`)
			if tc.field == "title" {
				mustContain(t, r, "Kept description")
			} else {
				mustContain(t, r, `value="Kept title"`)
			}
		})
	}
	if l, err := e.st.ListClasses(ctx, store.ClassQuery{Page: store.Page{Limit: 10}}); err != nil || len(l.Items) != 0 {
		t.Fatalf("invalid forms stored classes: %d, %v", len(l.Items), err)
	}

	// A valid form in Europe/Paris (UTC+1 in March) is stored in UTC.
	v := classForm("Web servers in Go", "2030-03-05T09:00:30", "2030-03-05T10:30:30")
	v.Set("timeZone", "Europe/Paris")
	r := b.submit("/mentor/classes/new", "/mentor/classes/new", v)
	wantStatus(t, r, http.StatusSeeOther)
	if r.location != "/mentor?done=created" {
		t.Fatalf("redirect to %q", r.location)
	}
	l, err := e.st.ListClasses(ctx, store.ClassQuery{InstructorID: mentor.ID, Page: store.Page{Limit: 10}})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("classes %d, %v", len(l.Items), err)
	}
	c := l.Items[0]
	if !c.StartTime.Equal(time.Date(2030, 3, 5, 8, 0, 30, 0, time.UTC)) || c.Duration != 90 ||
		c.MaxParticipants != 12 || !c.IsFree || strings.Join(c.Tags, ",") != "go,web" || c.InstructorID != mentor.ID {
		t.Fatalf("stored class %+v", c)
	}
	m := b.get("/mentor?done=created")
	mustContain(t, m, "The class is scheduled.", "Web servers in Go", `aria-label="Cancel Web servers in Go"`, `aria-label="Edit Web servers in Go"`)

	// Edit: the form shows the stored values (in UTC) and saves changes.
	edit := "/mentor/classes/" + string(c.ID) + "/edit"
	r = b.get(edit)
	mustContain(t, r, `value="Web servers in Go"`, `value="2030-03-05T08:00:30"`, "Bring a laptop.", `value="go, web"`)
	v = classForm("Web servers in Go, part 1", "2030-03-05T08:00:30", "2030-03-05T09:30:30")
	v.Set("price", "15")
	r = b.submit(edit, edit, v)
	wantStatus(t, r, http.StatusSeeOther)
	got, _ := e.st.ClassByID(ctx, c.ID)
	if got.Title != "Web servers in Go, part 1" || got.Price != 15 || got.IsFree || !got.StartTime.Equal(c.StartTime) {
		t.Fatalf("after edit: %+v", got)
	}
	// An edit the rules refuse is shown beside the field; nothing changes.
	v.Set("maxParticipants", "0")
	r = b.submit(edit, edit, v)
	wantStatus(t, r, http.StatusBadRequest)
	mustContain(t, r, `id="maxParticipants-error"`)
	if again, _ := e.st.ClassByID(ctx, c.ID); again.MaxParticipants != 12 {
		t.Fatalf("refused edit changed seats to %d", again.MaxParticipants)
	}

	// The enrollment list names who enrolled.
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)
	if _, err := e.classes.Enroll(ctx, actor(mentor), c.ID, student.ID); err != nil {
		t.Fatal(err)
	}
	r = b.get("/mentor/classes/" + string(c.ID) + "/enrollments")
	wantStatus(t, r, http.StatusOK)
	mustContain(t, r, "Sam Student", "1 of 12 seats taken")

	// Cancel; then rescheduling is a conflict, shown plainly on the form.
	r = b.submit("/mentor", "/mentor/classes/"+string(c.ID)+"/cancel", nil)
	wantStatus(t, r, http.StatusSeeOther)
	got, _ = e.st.ClassByID(ctx, c.ID)
	if got.Status != store.StatusCancelled || got.EnrolledCount != 1 {
		t.Fatalf("after cancel: status %s, enrolled %d", got.Status, got.EnrolledCount)
	}
	mustContain(t, b.get("/mentor?done=cancelled"), "The class is cancelled.")
	mustLack(t, b.get("/mentor"), `aria-label="Cancel Web servers`)
	v = classForm("Web servers in Go, part 1", "2030-03-06T08:00:30", "2030-03-06T09:30:30")
	r = b.submit(edit, edit, v)
	wantStatus(t, r, http.StatusConflict)
	mustContain(t, r, `role="alert" id="form-error"`, "cannot be rescheduled", `value="2030-03-06T08:00:30"`)
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	admin := e.user("a@example.com", "Ada Admin", store.RoleAdmin)
	mentor := e.user("m@example.com", "Mia Mentor", store.RoleMentor)
	student := e.user("s@example.com", "Sam Student", store.RoleStudent)

	wantStatus(t, e.signedIn(mentor).get("/admin/users"), http.StatusForbidden)
	s := e.signedIn(student)
	wantStatus(t, s.get("/admin/users"), http.StatusForbidden)
	r := s.submit("/", "/admin/users/"+string(student.ID)+"/role", url.Values{"role": {"ADMIN"}})
	wantStatus(t, r, http.StatusForbidden)

	b := e.signedIn(admin)
	r = b.get("/admin/users")
	wantStatus(t, r, http.StatusOK)
	mustContain(t, r, "Sam Student", "s@example.com", `<label class="sr-only" for="role-`+string(student.ID)+`">Role of Sam Student</label>`,
		`aria-label="Save role of Sam Student"`)

	r = b.submit("/admin/users", "/admin/users/"+string(student.ID)+"/role", url.Values{"role": {"MENTOR"}})
	wantStatus(t, r, http.StatusSeeOther)
	mustContain(t, b.get(r.location), "Role of Sam Student is now Mentor.")
	u, err := e.auth.GetUser(context.Background(), actor(admin), student.ID)
	if err != nil || u.Role != store.RoleMentor {
		t.Fatalf("role after change: %s, %v", u.Role, err)
	}

	r = b.submit("/admin/users", "/admin/users/"+string(student.ID)+"/role", url.Values{"role": {"OWNER"}})
	wantStatus(t, r, http.StatusBadRequest)
	mustContain(t, r, "Choose Student, Mentor or Admin")
}

func TestNotFoundAndStatic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	b := e.browser()
	for _, p := range []string{"/no-such-page", "/classes/no-such-class"} {
		r := b.get(p)
		wantStatus(t, r, http.StatusNotFound)
		mustContain(t, r, "<h1>Not found</h1>", `href="/">Back to the classes`)
	}
	page := b.get("/")
	m := regexp.MustCompile(`src="(/static/app\.js\?v=[0-9a-f]+)"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("page does not load the versioned module")
	}
	js := b.get(m[1])
	wantStatus(t, js, http.StatusOK)
	if ct := js.header.Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Fatalf("module served as %q", ct)
	}
	if !strings.Contains(js.header.Get("Cache-Control"), "immutable") {
		t.Fatalf("versioned asset not cacheable: %q", js.header.Get("Cache-Control"))
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("page CSP %q", csp)
	}
	wantStatus(t, b.get("/static/missing.js"), http.StatusNotFound)
}

// The session the pages start is the API's session too.
func TestPageSessionIsAPISession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.user("s@example.com", "Sam", store.RoleStudent)
	b := e.signedIn(u)
	srvURL, _ := url.Parse(e.srv.URL)
	var token string
	for _, c := range b.client.Jar.Cookies(srvURL) {
		if c.Name == auth.CookieName {
			token = c.Value
		}
	}
	a, err := e.auth.Authenticate(context.Background(), token)
	if err != nil || a.UserID != u.ID {
		t.Fatalf("cookie set by the sign-in form does not authenticate: %v", err)
	}
}
