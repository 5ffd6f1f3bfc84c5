package classes_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/liveclass/liveclass/internal/store/sqlite"
)

// clock is a settable time source shared by the service and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// recorder keeps published events.
type recorder struct {
	mu     sync.Mutex
	events []classes.Event
}

func (r *recorder) Publish(e classes.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		what := "?"
		switch {
		case e.Class != nil:
			what = "class"
		case e.Enrollment != nil:
			what = "enrollment"
		case e.Recording != nil:
			what = "recording"
		}
		out = append(out, string(e.Kind)+" "+what)
	}
	return out
}

type env struct {
	st     store.Store
	svc    *classes.Service
	clock  *clock
	events *recorder
	signer *jointoken.Signer

	admin, mentor, mentor2, student, student2 auth.Actor
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "test.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer, err := jointoken.NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, clock: &clock{t: t0}, events: &recorder{}, signer: signer}
	e.svc = classes.New(st, e.events, signer, classes.Options{Now: e.clock.Now, PublicURL: "https://school.example"})
	mk := func(name string, role store.Role) auth.Actor {
		u := store.User{ID: store.UserID(name + "-id"), Email: name + "@example.com", Name: name, Role: role, CreatedAt: t0, UpdatedAt: t0}
		if err := st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		return auth.Actor{UserID: u.ID, Role: role, Name: name}
	}
	e.admin = mk("admin", store.RoleAdmin)
	e.mentor = mk("mentor", store.RoleMentor)
	e.mentor2 = mk("mentor2", store.RoleMentor)
	e.student = mk("student", store.RoleStudent)
	e.student2 = mk("student2", store.RoleStudent)
	return e
}

func validInput() classes.ClassInput {
	return classes.ClassInput{
		Title:              "Intro to Go",
		StartTime:          t0.Add(2 * time.Hour),
		EndTime:            t0.Add(3 * time.Hour),
		Service:            store.ServiceChime,
		RequiresEnrollment: true,
		AccessLevel:        store.RoleStudent,
		MaxParticipants:    10,
		Category:           "Programming",
		Level:              store.LevelBeginner,
		Price:              0,
		IsFree:             true,
		Tags:               []string{"go"},
	}
}

func (e *env) create(t *testing.T, a auth.Actor, mod func(*classes.ClassInput)) store.LiveClass {
	t.Helper()
	in := validInput()
	if mod != nil {
		mod(&in)
	}
	c, err := e.svc.CreateClass(context.Background(), a, in)
	if err != nil {
		t.Fatalf("CreateClass: %v", err)
	}
	return c
}

func wantKind(t *testing.T, err error, k apperr.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", k.Code())
	}
	if got := apperr.KindOf(err); got != k {
		t.Fatalf("got %s (%v), want %s", got.Code(), err, k.Code())
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateClassValidation(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("x", 201)
	cases := []struct {
		name  string
		mod   func(*classes.ClassInput)
		field string
	}{
		{"empty title", func(in *classes.ClassInput) { in.Title = "  " }, "title"},
		{"long title", func(in *classes.ClassInput) { in.Title = long }, "title"},
		{"end before start", func(in *classes.ClassInput) { in.EndTime = in.StartTime.Add(-time.Minute) }, "endTime"},
		{"end equals start", func(in *classes.ClassInput) { in.EndTime = in.StartTime }, "endTime"},
		{"wrong duration", func(in *classes.ClassInput) { in.Duration = ptr(30) }, "duration"},
		{"chime over 50", func(in *classes.ClassInput) { in.MaxParticipants = 51 }, "maxParticipants"},
		{"zero seats", func(in *classes.ClassInput) { in.MaxParticipants = 0 }, "maxParticipants"},
		{"ivs over 100000", func(in *classes.ClassInput) { in.Service = store.ServiceIVS; in.MaxParticipants = 100001 }, "maxParticipants"},
		{"negative price", func(in *classes.ClassInput) { in.Price = -1; in.IsFree = false }, "price"},
		{"free with price", func(in *classes.ClassInput) { in.Price = 10; in.IsFree = true }, "isFree"},
		{"not free without price", func(in *classes.ClassInput) { in.IsFree = false }, "isFree"},
		{"21 tags", func(in *classes.ClassInput) { in.Tags = make([]string, 21); fill(in.Tags) }, "tags"},
		{"long tag", func(in *classes.ClassInput) { in.Tags = []string{strings.Repeat("t", 41)} }, "tags"},
		{"bad service", func(in *classes.ClassInput) { in.Service = "ZOOM" }, "awsService"},
		{"bad level", func(in *classes.ClassInput) { in.Level = "EXPERT" }, "level"},
		{"bad access level", func(in *classes.ClassInput) { in.AccessLevel = "GUEST" }, "accessLevel"},
		{"empty category", func(in *classes.ClassInput) { in.Category = "" }, "category"},
		{"client id", func(in *classes.ClassInput) { in.Managed.ID = ptr("x") }, "id"},
		{"live on create", func(in *classes.ClassInput) { in.Managed.Status = ptr(store.StatusLive) }, "status"},
		{"participants", func(in *classes.ClassInput) { in.Managed.CurrentParticipants = ptr(3) }, "currentParticipants"},
		{"isLive", func(in *classes.ClassInput) { in.Managed.IsLive = ptr(true) }, "isLive"},
		{"isUpcoming", func(in *classes.ClassInput) { in.Managed.IsUpcoming = ptr(false) }, "isUpcoming"},
		{"room id", func(in *classes.ClassInput) { in.Managed.ChimeRoomID = ptr("mine") }, "chimeRoomId"},
		{"reminderSent", func(in *classes.ClassInput) { in.Managed.ReminderSent = ptr(true) }, "reminderSent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := validInput()
			tc.mod(&in)
			_, err := e.svc.CreateClass(context.Background(), e.mentor, in)
			wantKind(t, err, apperr.Invalid)
			if got := apperr.FieldOf(err); got != tc.field {
				t.Fatalf("field = %q, want %q (%v)", got, tc.field, err)
			}
		})
	}
	l, err := e.st.ListClasses(context.Background(), store.ClassQuery{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 0 {
		t.Fatalf("%d classes stored after invalid input, want 0", len(l.Items))
	}
}

func fill(tags []string) {
	for i := range tags {
		tags[i] = "t" + string(rune('a'+i))
	}
}

func TestCreateClassSetsManagedFields(t *testing.T) {
	e := newEnv(t)
	in := validInput()
	// What an unchanged Amplify client sends for the required managed fields.
	in.Managed = classes.Managed{Status: ptr(store.StatusScheduled), CurrentParticipants: ptr(0),
		IsLive: ptr(false), IsUpcoming: ptr(true), ReminderSent: ptr(false)}
	c, err := e.svc.CreateClass(context.Background(), e.mentor, in)
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration != 60 || c.Status != store.StatusScheduled || c.InstructorID != e.mentor.UserID {
		t.Fatalf("got duration %d status %s instructor %s", c.Duration, c.Status, c.InstructorID)
	}
	if c.ChimeRoomID == nil || *c.ChimeRoomID == "" || c.IVSChannelARN != nil {
		t.Fatalf("CHIME class room ids: chime %v ivs %v", c.ChimeRoomID, c.IVSChannelARN)
	}
	ivs := e.create(t, e.mentor, func(in *classes.ClassInput) { in.Service = store.ServiceIVS; in.MaxParticipants = 5000 })
	if ivs.IVSChannelARN == nil || !strings.Contains(*ivs.IVSChannelARN, string(ivs.ID)) || ivs.ChimeRoomID != nil {
		t.Fatalf("IVS class room ids: chime %v ivs %v", ivs.ChimeRoomID, ivs.IVSChannelARN)
	}
	got, err := e.svc.GetClass(context.Background(), auth.Actor{}, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != c.Title || !got.StartTime.Equal(c.StartTime) {
		t.Fatalf("stored class differs: %+v", got)
	}
	if k := e.events.kinds(); len(k) != 2 || k[0] != "create class" {
		t.Fatalf("events = %v", k)
	}
}

func TestClassPermissions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.svc.CreateClass(ctx, auth.Actor{}, validInput())
	wantKind(t, err, apperr.Unauthenticated)
	_, err = e.svc.CreateClass(ctx, e.student, validInput())
	wantKind(t, err, apperr.Forbidden)
	in := validInput()
	in.InstructorID = e.mentor2.UserID
	_, err = e.svc.CreateClass(ctx, e.mentor, in)
	wantKind(t, err, apperr.Forbidden)
	c, err := e.svc.CreateClass(ctx, e.admin, in)
	if err != nil || c.InstructorID != e.mentor2.UserID {
		t.Fatalf("admin naming instructor: %v, %s", err, c.InstructorID)
	}
	in.InstructorID = e.student.UserID
	_, err = e.svc.CreateClass(ctx, e.admin, in)
	wantKind(t, err, apperr.Invalid)

	mine := e.create(t, e.mentor, nil)
	_, err = e.svc.UpdateClass(ctx, e.mentor2, mine.ID, classes.ClassPatch{Title: ptr("stolen")})
	wantKind(t, err, apperr.Forbidden)
	_, err = e.svc.UpdateClass(ctx, e.student, mine.ID, classes.ClassPatch{Title: ptr("x")})
	wantKind(t, err, apperr.Forbidden)
	_, err = e.svc.UpdateClass(ctx, e.mentor, mine.ID, classes.ClassPatch{InstructorID: &e.mentor2.UserID})
	wantKind(t, err, apperr.Forbidden)
	up, err := e.svc.UpdateClass(ctx, e.mentor, mine.ID, classes.ClassPatch{Title: ptr("Intro to Go, part 1")})
	if err != nil || up.Title != "Intro to Go, part 1" {
		t.Fatalf("own update: %v %q", err, up.Title)
	}
	up, err = e.svc.UpdateClass(ctx, e.admin, mine.ID, classes.ClassPatch{InstructorID: &e.mentor2.UserID})
	if err != nil || up.InstructorID != e.mentor2.UserID {
		t.Fatalf("admin reassign: %v", err)
	}
	_, err = e.svc.DeleteClass(ctx, e.mentor, mine.ID) // no longer theirs
	wantKind(t, err, apperr.Forbidden)
	_, err = e.svc.DeleteClass(ctx, e.mentor2, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetClass(ctx, auth.Actor{}, mine.ID)
	wantKind(t, err, apperr.NotFound)
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, nil)
	if _, err := e.svc.Enroll(ctx, e.student, c.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.UpdateClass(ctx, e.mentor, c.ID, classes.ClassPatch{Managed: classes.Managed{Status: ptr(store.StatusLive)}})
	wantKind(t, err, apperr.Invalid)

	// Rescheduling recomputes the duration.
	up, err := e.svc.UpdateClass(ctx, e.mentor, c.ID, classes.ClassPatch{EndTime: ptr(c.StartTime.Add(90 * time.Minute))})
	if err != nil || up.Duration != 90 {
		t.Fatalf("reschedule: %v duration %d", err, up.Duration)
	}
	_, err = e.svc.UpdateClass(ctx, e.mentor, c.ID, classes.ClassPatch{MaxParticipants: ptr(0)})
	wantKind(t, err, apperr.Invalid)

	cancelled, err := e.svc.UpdateClass(ctx, e.mentor, c.ID, classes.ClassPatch{Managed: classes.Managed{Status: ptr(store.StatusCancelled)}})
	if err != nil || cancelled.Status != store.StatusCancelled || cancelled.IsUpcoming(t0) {
		t.Fatalf("cancel: %v %s", err, cancelled.Status)
	}
	_, err = e.svc.UpdateClass(ctx, e.mentor, c.ID, classes.ClassPatch{StartTime: ptr(c.StartTime.Add(time.Hour)), EndTime: ptr(c.EndTime.Add(time.Hour))})
	wantKind(t, err, apperr.Conflict)
	// Cancelling keeps the enrollments.
	l, err := e.svc.ListEnrollments(ctx, e.mentor, store.EnrollmentQuery{ClassID: c.ID})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("enrollments after cancel: %v %d", err, len(l.Items))
	}
	_, err = e.svc.Enroll(ctx, e.student2, c.ID, "")
	wantKind(t, err, apperr.Conflict)

	// A class that went live cannot be cancelled, and one that ended
	// cannot be rescheduled; the media plane moves them there.
	c2 := e.create(t, e.mentor, nil)
	c2.Status = store.StatusLive
	if err := e.st.UpdateClass(ctx, c2); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.UpdateClass(ctx, e.mentor, c2.ID, classes.ClassPatch{Managed: classes.Managed{Status: ptr(store.StatusCancelled)}})
	wantKind(t, err, apperr.Conflict)
	c2.Status = store.StatusEnded
	if err := e.st.UpdateClass(ctx, c2); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.UpdateClass(ctx, e.mentor, c2.ID, classes.ClassPatch{StartTime: ptr(c2.StartTime.Add(-time.Hour))})
	wantKind(t, err, apperr.Conflict)
	_, err = e.svc.Enroll(ctx, e.student, c2.ID, "")
	wantKind(t, err, apperr.Conflict)
}

func TestEnrollmentRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, func(in *classes.ClassInput) { in.MaxParticipants = 1 })
	en, err := e.svc.Enroll(ctx, e.student, c.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Enroll(ctx, e.student, c.ID, "")
	wantKind(t, err, apperr.Conflict)
	_, err = e.svc.Enroll(ctx, e.student2, c.ID, "")
	wantKind(t, err, apperr.Conflict) // full
	_, err = e.svc.Enroll(ctx, e.student, c.ID, e.student2.UserID)
	wantKind(t, err, apperr.Forbidden)
	_, err = e.svc.Enroll(ctx, auth.Actor{}, c.ID, "")
	wantKind(t, err, apperr.Unauthenticated)
	_, err = e.svc.Enroll(ctx, e.student, "no-such-class", "")
	wantKind(t, err, apperr.NotFound)

	// Reading: owner, instructor, admin; not another student or mentor.
	for _, a := range []auth.Actor{e.student, e.mentor, e.admin} {
		if _, err := e.svc.GetEnrollment(ctx, a, en.ID); err != nil {
			t.Fatalf("%s reading: %v", a.Name, err)
		}
	}
	for _, a := range []auth.Actor{e.student2, e.mentor2} {
		_, err := e.svc.GetEnrollment(ctx, a, en.ID)
		wantKind(t, err, apperr.Forbidden)
		_, err = e.svc.GetEnrollmentFor(ctx, a, e.student.UserID, c.ID)
		wantKind(t, err, apperr.Forbidden)
	}
	got, err := e.svc.GetEnrollmentFor(ctx, e.student, e.student.UserID, c.ID)
	if err != nil || got.ID != en.ID {
		t.Fatalf("guide's lookup: %v", err)
	}
	l, err := e.svc.ListEnrollments(ctx, e.student2, store.EnrollmentQuery{ClassID: c.ID})
	if err != nil || len(l.Items) != 0 {
		t.Fatalf("another student listing a class: %v, %d items", err, len(l.Items))
	}
	_, err = e.svc.ListEnrollments(ctx, e.student2, store.EnrollmentQuery{UserID: e.student.UserID})
	wantKind(t, err, apperr.Forbidden)
	_, err = e.svc.ListEnrollments(ctx, e.student, store.EnrollmentQuery{Page: store.Page{Limit: 101}})
	wantKind(t, err, apperr.Invalid)
	byClass, err := e.svc.EnrollmentsOfClasses(ctx, e.student2, []store.ClassID{c.ID})
	if err != nil || len(byClass[c.ID]) != 0 {
		t.Fatalf("nested enrollments for another student: %v %v", err, byClass)
	}
	byClass, err = e.svc.EnrollmentsOfClasses(ctx, e.mentor, []store.ClassID{c.ID})
	if err != nil || len(byClass[c.ID]) != 1 {
		t.Fatalf("nested enrollments for the instructor: %v %v", err, byClass)
	}

	// Feedback only by the owner and only after the class.
	_, err = e.svc.UpdateEnrollment(ctx, e.student, en.ID, classes.EnrollmentPatch{Rating: ptr(5)})
	wantKind(t, err, apperr.Conflict)
	e.clock.Set(c.EndTime.Add(time.Minute))
	_, err = e.svc.UpdateEnrollment(ctx, e.student, en.ID, classes.EnrollmentPatch{Rating: ptr(6)})
	wantKind(t, err, apperr.Invalid)
	_, err = e.svc.UpdateEnrollment(ctx, e.student, en.ID, classes.EnrollmentPatch{Attended: ptr(true)})
	wantKind(t, err, apperr.Invalid)
	_, err = e.svc.UpdateEnrollment(ctx, e.mentor, en.ID, classes.EnrollmentPatch{Rating: ptr(1)})
	wantKind(t, err, apperr.Forbidden)
	up, err := e.svc.UpdateEnrollment(ctx, e.student, en.ID, classes.EnrollmentPatch{Rating: ptr(4), Feedback: ptr("Clear and well paced")})
	if err != nil || *up.Rating != 4 || *up.Feedback != "Clear and well paced" {
		t.Fatalf("feedback: %v", err)
	}
	e.clock.Set(t0)

	// Unenrolling frees the seat.
	_, err = e.svc.Unenroll(ctx, e.student2, en.ID)
	wantKind(t, err, apperr.Forbidden)
	if _, err := e.svc.Unenroll(ctx, e.student, en.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Enroll(ctx, e.student2, c.ID, ""); err != nil {
		t.Fatalf("seat not freed: %v", err)
	}
}

func TestPaidClassEnrolledByInstructor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, func(in *classes.ClassInput) { in.Price = 49; in.IsFree = false })
	_, err := e.svc.Enroll(ctx, e.student, c.ID, "")
	wantKind(t, err, apperr.Forbidden)
	if !strings.Contains(err.Error(), "paid class") {
		t.Fatalf("error does not tell the student why: %v", err)
	}
	if _, err := e.svc.Enroll(ctx, e.mentor, c.ID, e.student.UserID); err != nil {
		t.Fatalf("instructor enrolling a student: %v", err)
	}
	if _, err := e.svc.Enroll(ctx, e.admin, c.ID, e.student2.UserID); err != nil {
		t.Fatalf("admin enrolling a student: %v", err)
	}
	_, err = e.svc.Enroll(ctx, e.mentor2, c.ID, e.student.UserID)
	wantKind(t, err, apperr.Forbidden)
	mentorOnly := e.create(t, e.mentor, func(in *classes.ClassInput) { in.AccessLevel = store.RoleMentor })
	_, err = e.svc.Enroll(ctx, e.student, mentorOnly.ID, "")
	wantKind(t, err, apperr.Forbidden)
}

func TestJoinToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, func(in *classes.ClassInput) { in.MaxParticipants = 2 })
	other := e.create(t, e.mentor, nil)
	if _, err := e.svc.Enroll(ctx, e.student, c.ID, ""); err != nil {
		t.Fatal(err)
	}

	// Before the window: 2 h before the start, the window opens 15 min before.
	_, err := e.svc.GenerateJoinToken(ctx, e.student, c.ID)
	wantKind(t, err, apperr.Forbidden)
	if err := e.svc.CanJoinAt(ctx, e.student, c, c.StartTime.Add(-15*time.Minute)); err != nil {
		t.Fatalf("window opening: %v", err)
	}
	e.clock.Set(c.StartTime.Add(-16 * time.Minute))
	_, err = e.svc.GenerateJoinToken(ctx, e.student, c.ID)
	wantKind(t, err, apperr.Forbidden)
	e.clock.Set(c.StartTime.Add(-15 * time.Minute))

	g, err := e.svc.GenerateJoinToken(ctx, e.student, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Role != jointoken.RoleAttendee || g.Service != store.ServiceChime || g.JoinURL != "https://school.example/classes/"+string(c.ID)+"/live" {
		t.Fatalf("grant = %+v", g)
	}
	claims, err := e.signer.Verify(g.Token, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.ClassID != string(c.ID) || claims.UserID != string(e.student.UserID) || claims.Name != "student" || claims.Role != jointoken.RoleAttendee {
		t.Fatalf("claims = %+v", claims)
	}
	if !claims.ExpiresAt.Equal(g.ExpiresAt.Truncate(time.Second)) || g.ExpiresAt.After(c.EndTime.Add(15*time.Minute)) {
		t.Fatalf("expiry %v, class ends %v", g.ExpiresAt, c.EndTime)
	}
	// Expired, tampered, signed by another key.
	_, err = e.signer.Verify(g.Token, g.ExpiresAt.Add(time.Second))
	if !errors.Is(err, jointoken.ErrInvalid) {
		t.Fatalf("expired token verified: %v", err)
	}
	parts := strings.Split(g.Token, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	if _, err := e.signer.Verify(tampered, e.clock.Now()); !errors.Is(err, jointoken.ErrInvalid) {
		t.Fatalf("tampered token verified: %v", err)
	}
	otherKey, _ := jointoken.NewSigner([]byte(strings.Repeat("z", 32)))
	if _, err := otherKey.Verify(g.Token, e.clock.Now()); !errors.Is(err, jointoken.ErrInvalid) {
		t.Fatalf("token verified with another key: %v", err)
	}

	// The instructor and admins host; a student of another class is refused.
	for _, a := range []auth.Actor{e.mentor, e.admin} {
		g, err := e.svc.GenerateJoinToken(ctx, a, c.ID)
		if err != nil || g.Role != jointoken.RoleHost {
			t.Fatalf("%s: %v %s", a.Name, err, g.Role)
		}
	}
	_, err = e.svc.GenerateJoinToken(ctx, e.student, other.ID)
	wantKind(t, err, apperr.Forbidden)
	_, err = e.svc.GenerateJoinToken(ctx, e.mentor2, c.ID)
	wantKind(t, err, apperr.Forbidden)
	_, err = e.svc.GenerateJoinToken(ctx, auth.Actor{}, c.ID)
	wantKind(t, err, apperr.Unauthenticated)

	// A full room is a conflict for attendees, not for the host.
	if err := e.st.SetCurrentParticipants(ctx, c.ID, 2); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GenerateJoinToken(ctx, e.student, c.ID)
	wantKind(t, err, apperr.Conflict)
	if _, err := e.svc.GenerateJoinToken(ctx, e.mentor, c.ID); err != nil {
		t.Fatalf("host refused from a full room: %v", err)
	}

	// After the end, and for a cancelled class, nobody joins.
	e.clock.Set(c.EndTime)
	_, err = e.svc.GenerateJoinToken(ctx, e.mentor, c.ID)
	wantKind(t, err, apperr.Forbidden)
	e.clock.Set(other.StartTime)
	if _, err := e.svc.UpdateClass(ctx, e.mentor, other.ID, classes.ClassPatch{Managed: classes.Managed{Status: ptr(store.StatusCancelled)}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GenerateJoinToken(ctx, e.mentor, other.ID)
	wantKind(t, err, apperr.Conflict)

	// An open class (no enrollment required) admits any signed-in student.
	open := e.create(t, e.mentor, func(in *classes.ClassInput) {
		in.RequiresEnrollment = false
		in.StartTime = other.StartTime
		in.EndTime = other.EndTime
	})
	if _, err := e.svc.GenerateJoinToken(ctx, e.student2, open.ID); err != nil {
		t.Fatalf("open class: %v", err)
	}
}

func TestRecordingRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, nil)
	if _, err := e.svc.Enroll(ctx, e.student, c.ID, ""); err != nil {
		t.Fatal(err)
	}
	in := classes.RecordingInput{ClassID: c.ID, S3Key: ptr("rec/1.mp4"), S3Bucket: ptr("local"), Duration: ptr(3600)}
	_, err := e.svc.CreateRecording(ctx, e.student, in)
	wantKind(t, err, apperr.Forbidden)
	_, err = e.svc.CreateRecording(ctx, e.mentor2, in)
	wantKind(t, err, apperr.Forbidden)
	bad := in
	bad.S3Key = ptr("")
	_, err = e.svc.CreateRecording(ctx, e.mentor, bad)
	wantKind(t, err, apperr.Invalid)
	r, err := e.svc.CreateRecording(ctx, e.mentor, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []auth.Actor{e.student, e.mentor, e.admin} {
		if _, err := e.svc.GetRecording(ctx, a, r.ID); err != nil {
			t.Fatalf("%s reading: %v", a.Name, err)
		}
	}
	for _, a := range []auth.Actor{e.student2, e.mentor2} {
		_, err := e.svc.GetRecording(ctx, a, r.ID)
		wantKind(t, err, apperr.Forbidden)
		l, err := e.svc.ListRecordings(ctx, a, store.RecordingQuery{})
		if err != nil || len(l.Items) != 0 {
			t.Fatalf("%s listing: %v %d", a.Name, err, len(l.Items))
		}
	}
	l, err := e.svc.ListRecordings(ctx, e.student, store.RecordingQuery{})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("enrolled student listing: %v %d", err, len(l.Items))
	}
	up, err := e.svc.UpdateRecording(ctx, e.admin, r.ID, classes.RecordingInput{Duration: ptr(3500)})
	if err != nil || up.Duration != 3500 || up.S3Key != "rec/1.mp4" {
		t.Fatalf("update: %v %+v", err, up)
	}
	if _, err := e.svc.DeleteRecording(ctx, e.mentor, r.ID); err != nil {
		t.Fatal(err)
	}
}

func TestClassChangedPublishes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.create(t, e.mentor, nil)
	if err := e.st.SetCurrentParticipants(ctx, c.ID, 3); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ClassChanged(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	e.events.mu.Lock()
	last := e.events.events[len(e.events.events)-1]
	e.events.mu.Unlock()
	if last.Kind != classes.Updated || last.Class == nil || last.Class.CurrentParticipants != 3 {
		t.Fatalf("last event = %+v", last)
	}
	wantKind(t, e.svc.ClassChanged(ctx, "missing"), apperr.NotFound)
}
