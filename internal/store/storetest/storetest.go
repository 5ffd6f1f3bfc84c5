// Package storetest is the one conformance suite that every store engine
// passes. An engine's test calls Run with a function that opens a fresh,
// empty store; the suite exercises every method of store.Store and the
// rules its doc comments promise (kinds of errors, atomic enrollment,
// keyset pagination, filters, cascades, time round-trips).
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Opener returns a fresh, empty, migrated store for one test; it registers
// its own cleanup with t.
type Opener func(t *testing.T) store.Store

// Run runs the whole suite against the engine that open opens.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Users", testUsers},
		{"UserEmailCaseInsensitive", testUserEmailCase},
		{"DeleteUser", testDeleteUser},
		{"Sessions", testSessions},
		{"ClassRoundTrip", testClassRoundTrip},
		{"ClassUpdate", testClassUpdate},
		{"ClassDeleteCascades", testClassDeleteCascades},
		{"ClassPagination", testClassPagination},
		{"ClassDefaultLimit", testClassDefaultLimit},
		{"ClassByInstructor", testClassByInstructor},
		{"ClassForUser", testClassForUser},
		{"ClassFilters", testClassFilters},
		{"FilterErrors", testFilterErrors},
		{"OtherFilters", testOtherFilters},
		{"Enroll", testEnroll},
		{"EnrollConcurrent", testEnrollConcurrent},
		{"EnrollSameUserConcurrent", testEnrollSameUserConcurrent},
		{"EnrollmentLists", testEnrollmentLists},
		{"Recordings", testRecordings},
		{"Batches", testBatches},
		{"Cancellation", testCancellation},
		{"Attendance", testAttendance},
		{"Chat", testChat},
		{"DeleteChat", testDeleteChat},
		{"StreamKeys", testStreamKeys},
		{"AudienceBans", testAudienceBans},
		{"Polls", testPolls},
		{"ClassStatus", testClassStatus},
		{"LiveCascade", testLiveCascade},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// Fixtures.

// base is a fixed instant with sub-millisecond digits and a non-UTC zone,
// so that the suite checks both the truncation and the UTC conversion.
var base = time.Date(2030, 3, 14, 9, 26, 53, 589_793_238, time.FixedZone("CET", 3600))

// ms is what the store promises to give back for t.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func ptr[T any](v T) *T { return &v }

func mkUser(t *testing.T, st store.Store, email string) store.User {
	t.Helper()
	u := store.User{Email: email, Name: "User " + email, Role: store.RoleStudent, PasswordHash: "hash"}
	if err := st.CreateUser(context.Background(), &u); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

func newClass(instructor store.UserID, title string, start time.Time) store.LiveClass {
	return store.LiveClass{
		Title:           title,
		InstructorID:    instructor,
		StartTime:       start,
		EndTime:         start.Add(time.Hour),
		Duration:        60,
		Service:         store.ServiceChime,
		AccessLevel:     store.RoleStudent,
		MaxParticipants: 10,
		Category:        "general",
		Level:           store.LevelBeginner,
		IsFree:          true,
		Status:          store.StatusScheduled,
	}
}

func mkClass(t *testing.T, st store.Store, c store.LiveClass) store.LiveClass {
	t.Helper()
	if err := st.CreateClass(context.Background(), &c); err != nil {
		t.Fatalf("CreateClass(%s): %v", c.Title, err)
	}
	return c
}

// Assertions.

func wantKind(t *testing.T, err error, k apperr.Kind, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %s", what, k.Code())
	}
	if got := apperr.KindOf(err); got != k {
		t.Fatalf("%s: got %s (%v), want %s", what, got.Code(), err, k.Code())
	}
}

func wantField(t *testing.T, err error, field, what string) {
	t.Helper()
	wantKind(t, err, apperr.Invalid, what)
	if got := apperr.FieldOf(err); got != field {
		t.Fatalf("%s: error names field %q (%v), want %q", what, got, err, field)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func same(t *testing.T, got, want any, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func classIDs(cs []store.LiveClass) []store.ClassID {
	out := make([]store.ClassID, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// Users.

func testUsers(t *testing.T, st store.Store) {
	ctx := context.Background()
	n, err := st.CountUsers(ctx)
	must(t, err, "CountUsers")
	if n != 0 {
		t.Fatalf("fresh store has %d users", n)
	}
	u := store.User{Email: "Ada@Example.org", Name: "Ada", Role: store.RoleMentor, PasswordHash: "h1",
		CreatedAt: base, UpdatedAt: base.Add(time.Second)}
	must(t, st.CreateUser(ctx, &u), "CreateUser")
	if u.ID == "" {
		t.Fatal("CreateUser left the ID empty")
	}
	if u.Email != "ada@example.org" {
		t.Fatalf("email stored as %q, want lower-cased", u.Email)
	}
	want := u
	want.CreatedAt, want.UpdatedAt = ms(base), ms(base.Add(time.Second))
	got, err := st.UserByID(ctx, u.ID)
	must(t, err, "UserByID")
	same(t, got, want, "UserByID")
	same(t, u, want, "CreateUser wrote back the stored record")

	_, err = st.UserByID(ctx, "nobody")
	wantKind(t, err, apperr.NotFound, "UserByID(missing)")
	_, err = st.UserByEmail(ctx, "nobody@example.org")
	wantKind(t, err, apperr.NotFound, "UserByEmail(missing)")

	// Zero timestamps are filled in.
	v := store.User{Email: "bob@example.org", Name: "Bob", Role: store.RoleStudent}
	before := time.Now().Add(-time.Second)
	must(t, st.CreateUser(ctx, &v), "CreateUser(no times)")
	if v.CreatedAt.Before(before) || v.UpdatedAt.IsZero() || v.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreateUser filled times %v / %v", v.CreatedAt, v.UpdatedAt)
	}

	// Update.
	u.Name, u.Role, u.Email, u.PasswordHash = "Ada L.", store.RoleAdmin, "ADA.L@example.org", "h2"
	u.UpdatedAt = base.Add(time.Hour)
	must(t, st.UpdateUser(ctx, u), "UpdateUser")
	got, err = st.UserByEmail(ctx, "ada.l@EXAMPLE.org")
	must(t, err, "UserByEmail after update")
	if got.Name != "Ada L." || got.Role != store.RoleAdmin || got.Email != "ada.l@example.org" ||
		got.PasswordHash != "h2" || !got.UpdatedAt.Equal(ms(base.Add(time.Hour))) || !got.CreatedAt.Equal(ms(base)) {
		t.Fatalf("after UpdateUser: %+v", got)
	}
	u.Email = "BOB@example.org"
	wantKind(t, st.UpdateUser(ctx, u), apperr.Conflict, "UpdateUser to a taken email")
	if got, _ := st.UserByID(ctx, u.ID); got.Email != "ada.l@example.org" {
		t.Fatalf("failed update changed the email to %q", got.Email)
	}
	wantKind(t, st.UpdateUser(ctx, store.User{ID: "nobody", Email: "x@y.z"}), apperr.NotFound, "UpdateUser(missing)")

	// A taken id is a Conflict too.
	dup := store.User{ID: u.ID, Email: "other@example.org", Name: "Other", Role: store.RoleStudent}
	wantKind(t, st.CreateUser(ctx, &dup), apperr.Conflict, "CreateUser(taken id)")

	n, err = st.CountUsers(ctx)
	must(t, err, "CountUsers")
	if n != 2 {
		t.Fatalf("CountUsers = %d, want 2", n)
	}

	// ListUsers pages by (createdAt, id).
	for i := range 5 {
		w := store.User{Email: fmt.Sprintf("l%d@example.org", i), Name: "L", Role: store.RoleStudent,
			CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		must(t, st.CreateUser(ctx, &w), "CreateUser")
	}
	var all []store.User
	page := store.Page{Limit: 3}
	for {
		l, err := st.ListUsers(ctx, store.UserQuery{Page: page})
		must(t, err, "ListUsers")
		all = append(all, l.Items...)
		if l.Next == "" {
			break
		}
		page.After = l.Next
	}
	if len(all) != 7 {
		t.Fatalf("ListUsers returned %d users over its pages, want 7", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.CreatedAt.After(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID >= b.ID) {
			t.Fatalf("ListUsers out of order at %d: %v %s then %v %s", i, a.CreatedAt, a.ID, b.CreatedAt, b.ID)
		}
	}
}

func testUserEmailCase(t *testing.T, st store.Store) {
	ctx := context.Background()
	u := mkUser(t, st, "grace@example.org")
	for _, email := range []string{"grace@example.org", "Grace@Example.ORG", "GRACE@EXAMPLE.ORG"} {
		dup := store.User{Email: email, Name: "Imposter", Role: store.RoleStudent}
		err := st.CreateUser(ctx, &dup)
		wantKind(t, err, apperr.Conflict, "CreateUser("+email+")")
		if f := apperr.FieldOf(err); f != "email" {
			t.Fatalf("conflict names field %q, want email", f)
		}
		got, err := st.UserByEmail(ctx, email)
		must(t, err, "UserByEmail("+email+")")
		if got.ID != u.ID {
			t.Fatalf("UserByEmail(%s) = %s, want %s", email, got.ID, u.ID)
		}
	}
	got, err := st.UserByID(ctx, u.ID)
	must(t, err, "UserByID")
	if got.Name != u.Name {
		t.Fatalf("a refused duplicate changed the user: %+v", got)
	}
}

func testDeleteUser(t *testing.T, st store.Store) {
	ctx := context.Background()
	mentor := mkUser(t, st, "mentor@example.org")
	student := mkUser(t, st, "student@example.org")
	c := mkClass(t, st, newClass(mentor.ID, "C", base))
	e := store.Enrollment{UserID: student.ID, ClassID: c.ID}
	must(t, st.Enroll(ctx, &e), "Enroll")
	must(t, st.CreateSession(ctx, store.Session{TokenHash: "s1", UserID: student.ID, ExpiresAt: base.Add(time.Hour)}), "CreateSession")

	wantKind(t, st.DeleteUser(ctx, mentor.ID), apperr.Conflict, "DeleteUser(instructor)")
	if _, err := st.UserByID(ctx, mentor.ID); err != nil {
		t.Fatalf("refused delete removed the instructor: %v", err)
	}

	must(t, st.DeleteUser(ctx, student.ID), "DeleteUser(student)")
	_, err := st.UserByID(ctx, student.ID)
	wantKind(t, err, apperr.NotFound, "UserByID(deleted)")
	_, err = st.EnrollmentByID(ctx, e.ID)
	wantKind(t, err, apperr.NotFound, "their enrollment")
	_, err = st.SessionByHash(ctx, "s1")
	wantKind(t, err, apperr.NotFound, "their session")
	got, err := st.ClassByID(ctx, c.ID)
	must(t, err, "ClassByID")
	if got.EnrolledCount != 0 {
		t.Fatalf("deleting an enrolled user left EnrolledCount = %d", got.EnrolledCount)
	}
	wantKind(t, st.DeleteUser(ctx, student.ID), apperr.NotFound, "DeleteUser(again)")
}

// Sessions.

func testSessions(t *testing.T, st store.Store) {
	ctx := context.Background()
	u := mkUser(t, st, "s@example.org")
	s := store.Session{TokenHash: "abc", UserID: u.ID, CreatedAt: base, ExpiresAt: base.Add(24 * time.Hour)}
	must(t, st.CreateSession(ctx, s), "CreateSession")
	got, err := st.SessionByHash(ctx, "abc")
	must(t, err, "SessionByHash")
	same(t, got, store.Session{TokenHash: "abc", UserID: u.ID, CreatedAt: ms(base), ExpiresAt: ms(base.Add(24 * time.Hour))}, "SessionByHash")

	gs, gu, err := st.SessionUserByHash(ctx, "abc")
	must(t, err, "SessionUserByHash")
	same(t, gs, got, "SessionUserByHash session")
	if gu.ID != u.ID || gu.Email != u.Email || gu.Role != u.Role {
		t.Fatalf("SessionUserByHash user = %+v, want %+v", gu, u)
	}
	_, _, err = st.SessionUserByHash(ctx, "nope")
	wantKind(t, err, apperr.NotFound, "SessionUserByHash(missing)")

	_, err = st.SessionByHash(ctx, "nope")
	wantKind(t, err, apperr.NotFound, "SessionByHash(missing)")
	wantKind(t, st.CreateSession(ctx, s), apperr.Conflict, "CreateSession(same hash)")
	wantKind(t, st.CreateSession(ctx, store.Session{TokenHash: "x", UserID: "nobody", ExpiresAt: base}), apperr.NotFound, "CreateSession(unknown user)")

	// Expiry: sessions expiring at or before now go; later ones stay.
	must(t, st.CreateSession(ctx, store.Session{TokenHash: "old", UserID: u.ID, CreatedAt: base, ExpiresAt: base.Add(time.Minute)}), "CreateSession")
	must(t, st.CreateSession(ctx, store.Session{TokenHash: "edge", UserID: u.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}), "CreateSession")
	must(t, st.DeleteExpiredSessions(ctx, base.Add(time.Hour)), "DeleteExpiredSessions")
	for hash, alive := range map[string]bool{"old": false, "edge": false, "abc": true} {
		_, err := st.SessionByHash(ctx, hash)
		if alive && err != nil {
			t.Fatalf("session %s was removed: %v", hash, err)
		}
		if !alive {
			wantKind(t, err, apperr.NotFound, "expired session "+hash)
		}
	}

	must(t, st.DeleteSession(ctx, "abc"), "DeleteSession")
	_, err = st.SessionByHash(ctx, "abc")
	wantKind(t, err, apperr.NotFound, "SessionByHash after delete")
	must(t, st.DeleteSession(ctx, "abc"), "DeleteSession twice")

	// Signing a user out everywhere leaves other users signed in.
	other := mkUser(t, st, "other@example.org")
	for _, h := range []string{"u1", "u2"} {
		must(t, st.CreateSession(ctx, store.Session{TokenHash: h, UserID: u.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}), "CreateSession")
	}
	must(t, st.CreateSession(ctx, store.Session{TokenHash: "o1", UserID: other.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}), "CreateSession")
	must(t, st.DeleteUserSessions(ctx, u.ID), "DeleteUserSessions")
	for _, h := range []string{"u1", "u2"} {
		_, err := st.SessionByHash(ctx, h)
		wantKind(t, err, apperr.NotFound, "session of a signed-out user")
	}
	if _, err := st.SessionByHash(ctx, "o1"); err != nil {
		t.Fatalf("another user's session was removed: %v", err)
	}
}

// Classes.

func fullClass(instructor store.UserID) store.LiveClass {
	c := newClass(instructor, "Full class", base)
	c.Description = ptr("All the fields, with ünïcödé and 'quotes'")
	c.Service = store.ServiceIVS
	c.ChimeRoomID = ptr("room-1")
	c.IVSChannelARN = ptr("arn:aws:ivs:eu-west-1:123:channel/abc")
	c.RecordingS3Key = ptr("recordings/x.mp4")
	c.RequiresEnrollment = true
	c.AccessLevel = store.RoleMentor
	c.MaxParticipants = 5000
	c.Category = "math"
	c.Level = store.LevelAdvanced
	c.Price = 19.99
	c.IsFree = false
	c.Tags = []string{"algebra", "b", "with space"}
	c.ReminderSent = true
	c.NextReminder = ptr(base.Add(-15 * time.Minute))
	c.CreatedAt = base.Add(-48 * time.Hour)
	c.UpdatedAt = base.Add(-47 * time.Hour)
	return c
}

func testClassRoundTrip(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	in := fullClass(m.ID)
	in.CurrentParticipants, in.EnrolledCount = 7, 3 // ignored on create
	c := in
	must(t, st.CreateClass(ctx, &c), "CreateClass")
	if c.ID == "" {
		t.Fatal("CreateClass left the ID empty")
	}
	want := in
	want.ID = c.ID
	want.StartTime, want.EndTime = ms(in.StartTime), ms(in.EndTime)
	want.CreatedAt, want.UpdatedAt = ms(in.CreatedAt), ms(in.UpdatedAt)
	want.NextReminder = ptr(ms(*in.NextReminder))
	want.CurrentParticipants, want.EnrolledCount = 0, 0
	got, err := st.ClassByID(ctx, c.ID)
	must(t, err, "ClassByID")
	same(t, got, want, "ClassByID after CreateClass")
	same(t, c, want, "CreateClass wrote back the stored record")
	if got.StartTime.Location() != time.UTC {
		t.Fatalf("times come back in %v, want UTC", got.StartTime.Location())
	}

	// Nil pointers and no tags round-trip too.
	bare := mkClass(t, st, newClass(m.ID, "Bare", base))
	got, err = st.ClassByID(ctx, bare.ID)
	must(t, err, "ClassByID")
	if got.Description != nil || got.ChimeRoomID != nil || got.NextReminder != nil || len(got.Tags) != 0 {
		t.Fatalf("bare class came back with %+v", got)
	}

	_, err = st.ClassByID(ctx, "missing")
	wantKind(t, err, apperr.NotFound, "ClassByID(missing)")
	bad := newClass("nobody", "Orphan", base)
	wantField(t, st.CreateClass(ctx, &bad), "instructorId", "CreateClass(unknown instructor)")
	dup := newClass(m.ID, "Dup", base)
	dup.ID = c.ID
	wantKind(t, st.CreateClass(ctx, &dup), apperr.Conflict, "CreateClass(taken id)")
}

func testClassUpdate(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	m2 := mkUser(t, st, "m2@example.org")
	s := mkUser(t, st, "s@example.org")
	c := mkClass(t, st, fullClass(m.ID))
	must(t, st.Enroll(ctx, &store.Enrollment{UserID: s.ID, ClassID: c.ID}), "Enroll")
	must(t, st.SetCurrentParticipants(ctx, c.ID, 4), "SetCurrentParticipants")

	upd := c
	upd.Title = "Renamed"
	upd.Description = nil
	upd.InstructorID = m2.ID
	upd.StartTime = base.Add(24 * time.Hour)
	upd.EndTime = base.Add(26 * time.Hour)
	upd.Duration = 120
	upd.Service = store.ServiceChime
	upd.ChimeRoomID, upd.IVSChannelARN, upd.RecordingS3Key = nil, nil, ptr("k2")
	upd.RequiresEnrollment = false
	upd.AccessLevel = store.RoleAdmin
	upd.MaxParticipants = 40
	upd.Category, upd.Level, upd.Price, upd.IsFree = "art", store.LevelIntermediate, 0, true
	upd.Tags = []string{"z"}
	upd.Status = store.StatusLive
	upd.ReminderSent = false
	upd.NextReminder = nil
	upd.UpdatedAt = base.Add(time.Hour)
	upd.EnrolledCount, upd.CurrentParticipants = 99, 99 // must be ignored
	upd.CreatedAt = base.Add(time.Hour)                 // must be ignored
	must(t, st.UpdateClass(ctx, upd), "UpdateClass")

	got, err := st.ClassByID(ctx, c.ID)
	must(t, err, "ClassByID")
	want := upd
	want.StartTime, want.EndTime, want.UpdatedAt = ms(upd.StartTime), ms(upd.EndTime), ms(upd.UpdatedAt)
	want.CreatedAt = c.CreatedAt
	want.EnrolledCount, want.CurrentParticipants = 1, 4
	same(t, got, want, "ClassByID after UpdateClass")

	must(t, st.SetCurrentParticipants(ctx, c.ID, 0), "SetCurrentParticipants(0)")
	got, err = st.ClassByID(ctx, c.ID)
	must(t, err, "ClassByID")
	want.CurrentParticipants = 0
	same(t, got, want, "SetCurrentParticipants changed only that")

	wantField(t, st.SetCurrentParticipants(ctx, c.ID, -1), "currentParticipants", "SetCurrentParticipants(-1)")
	wantKind(t, st.SetCurrentParticipants(ctx, "missing", 1), apperr.NotFound, "SetCurrentParticipants(missing)")
	missing := upd
	missing.ID = "missing"
	wantKind(t, st.UpdateClass(ctx, missing), apperr.NotFound, "UpdateClass(missing)")
	orphan := upd
	orphan.InstructorID = "nobody"
	wantField(t, st.UpdateClass(ctx, orphan), "instructorId", "UpdateClass(unknown instructor)")
	wantKind(t, st.DeleteClass(ctx, "missing"), apperr.NotFound, "DeleteClass(missing)")
}

func testClassDeleteCascades(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	s := mkUser(t, st, "s@example.org")
	c := mkClass(t, st, newClass(m.ID, "Doomed", base))
	keep := mkClass(t, st, newClass(m.ID, "Kept", base))
	e := store.Enrollment{UserID: s.ID, ClassID: c.ID}
	must(t, st.Enroll(ctx, &e), "Enroll")
	ek := store.Enrollment{UserID: s.ID, ClassID: keep.ID}
	must(t, st.Enroll(ctx, &ek), "Enroll")
	r := store.Recording{ClassID: c.ID, S3Key: "k", S3Bucket: "b", Duration: 60}
	must(t, st.CreateRecording(ctx, &r), "CreateRecording")

	must(t, st.DeleteClass(ctx, c.ID), "DeleteClass")
	_, err := st.ClassByID(ctx, c.ID)
	wantKind(t, err, apperr.NotFound, "deleted class")
	_, err = st.EnrollmentByID(ctx, e.ID)
	wantKind(t, err, apperr.NotFound, "enrollment of deleted class")
	_, err = st.RecordingByID(ctx, r.ID)
	wantKind(t, err, apperr.NotFound, "recording of deleted class")
	if _, err := st.EnrollmentByID(ctx, ek.ID); err != nil {
		t.Fatalf("enrollment in another class went too: %v", err)
	}
	// The instructor may go once their classes are gone.
	must(t, st.DeleteClass(ctx, keep.ID), "DeleteClass")
	must(t, st.DeleteUser(ctx, m.ID), "DeleteUser(former instructor)")
}

// collect pages through ListClasses and checks the cursor contract.
func collect(t *testing.T, st store.Store, q store.ClassQuery) ([]store.LiveClass, int) {
	t.Helper()
	var all []store.LiveClass
	pages := 0
	for {
		l, err := st.ListClasses(context.Background(), q)
		must(t, err, "ListClasses")
		pages++
		if l.Next != "" && len(l.Items) != q.Page.Limit {
			t.Fatalf("page %d has %d items and a next token; want a full page of %d", pages, len(l.Items), q.Page.Limit)
		}
		all = append(all, l.Items...)
		if l.Next == "" {
			return all, pages
		}
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		q.Page.After = l.Next
	}
}

func testClassPagination(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	var made []store.LiveClass
	for i := range 23 {
		// Groups of three share a start time, so the id breaks ties.
		made = append(made, mkClass(t, st, newClass(m.ID, fmt.Sprintf("c%02d", i), base.Add(time.Duration(i/3)*time.Hour))))
	}
	asc, pages := collect(t, st, store.ClassQuery{Page: store.Page{Limit: 5}})
	if len(asc) != 23 || pages != 5 {
		t.Fatalf("got %d classes in %d pages, want 23 in 5", len(asc), pages)
	}
	seen := map[store.ClassID]bool{}
	for i, c := range asc {
		if seen[c.ID] {
			t.Fatalf("class %s returned twice", c.ID)
		}
		seen[c.ID] = true
		if i > 0 {
			p := asc[i-1]
			if p.StartTime.After(c.StartTime) || (p.StartTime.Equal(c.StartTime) && p.ID >= c.ID) {
				t.Fatalf("not ordered by (startTime, id) at %d", i)
			}
		}
	}
	desc, _ := collect(t, st, store.ClassQuery{Page: store.Page{Limit: 4, Desc: true}})
	if len(desc) != 23 {
		t.Fatalf("descending: %d classes", len(desc))
	}
	for i := range desc {
		if desc[i].ID != asc[len(asc)-1-i].ID {
			t.Fatalf("descending order is not the reverse of ascending at %d", i)
		}
	}
	// A page that ends exactly at the last row has no next token.
	exact, pages := collect(t, st, store.ClassQuery{Page: store.Page{Limit: 23}})
	if len(exact) != 23 || pages != 1 {
		t.Fatalf("limit = total: %d classes in %d pages", len(exact), pages)
	}
	// A cursor stays valid when rows before it are deleted.
	l, err := st.ListClasses(ctx, store.ClassQuery{Page: store.Page{Limit: 5}})
	must(t, err, "ListClasses")
	must(t, st.DeleteClass(ctx, l.Items[4].ID), "DeleteClass")
	l2, err := st.ListClasses(ctx, store.ClassQuery{Page: store.Page{Limit: 5, After: l.Next}})
	must(t, err, "ListClasses after delete")
	if l2.Items[0].ID != asc[5].ID {
		t.Fatalf("after deleting the cursor's row, next page starts at %s, want %s", l2.Items[0].ID, asc[5].ID)
	}

	for _, bad := range []string{"garbage!", "djE6eHl6", "bm90IGEgY3Vyc29y", "djE6MTI6"} {
		_, err := st.ListClasses(ctx, store.ClassQuery{Page: store.Page{After: bad}})
		wantField(t, err, "nextToken", "ListClasses(After="+bad+")")
	}
	_, err = st.ListClasses(ctx, store.ClassQuery{Page: store.Page{Limit: -1}})
	wantField(t, err, "limit", "ListClasses(Limit=-1)")
	_ = made
}

func testClassDefaultLimit(t *testing.T, st store.Store) {
	m := mkUser(t, st, "m@example.org")
	for i := range 101 {
		mkClass(t, st, newClass(m.ID, fmt.Sprint(i), base.Add(time.Duration(i)*time.Minute)))
	}
	l, err := st.ListClasses(context.Background(), store.ClassQuery{})
	must(t, err, "ListClasses")
	if len(l.Items) != 100 || l.Next == "" {
		t.Fatalf("limit 0 gave %d items, next %q; want 100 and a token", len(l.Items), l.Next)
	}
	l, err = st.ListClasses(context.Background(), store.ClassQuery{Page: store.Page{After: l.Next}})
	must(t, err, "ListClasses")
	if len(l.Items) != 1 || l.Next != "" {
		t.Fatalf("second page: %d items, next %q", len(l.Items), l.Next)
	}
}

func testClassByInstructor(t *testing.T, st store.Store) {
	a := mkUser(t, st, "a@example.org")
	b := mkUser(t, st, "b@example.org")
	var want []store.ClassID
	for i := range 7 {
		c := mkClass(t, st, newClass(a.ID, "a", base.Add(time.Duration(7-i)*time.Hour)))
		want = append([]store.ClassID{c.ID}, want...)
		mkClass(t, st, newClass(b.ID, "b", base.Add(time.Duration(i)*time.Hour)))
	}
	got, _ := collect(t, st, store.ClassQuery{InstructorID: a.ID, Page: store.Page{Limit: 3}})
	same(t, classIDs(got), want, "classes of instructor a by start time")
	none, _ := collect(t, st, store.ClassQuery{InstructorID: "nobody", Page: store.Page{Limit: 3}})
	if len(none) != 0 {
		t.Fatalf("unknown instructor has %d classes", len(none))
	}
}
