package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

func seats(t *testing.T, st store.Store, id store.ClassID) int {
	t.Helper()
	c, err := st.ClassByID(context.Background(), id)
	must(t, err, "ClassByID")
	return c.EnrolledCount
}

func testEnroll(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	var students []store.User
	for i := range 4 {
		students = append(students, mkUser(t, st, fmt.Sprintf("s%d@example.org", i)))
	}
	cl := newClass(m.ID, "Small", base)
	cl.MaxParticipants = 2
	c := mkClass(t, st, cl)

	e := store.Enrollment{UserID: students[0].ID, ClassID: c.ID, EnrolledAt: base, Attended: ptr(false),
		AttendanceDuration: ptr(0), Feedback: ptr(""), Rating: ptr(3)}
	must(t, st.Enroll(ctx, &e), "Enroll")
	if e.ID == "" {
		t.Fatal("Enroll left the ID empty")
	}
	want := e
	want.EnrolledAt, want.CreatedAt, want.UpdatedAt = ms(base), ms(base), ms(base)
	got, err := st.EnrollmentByID(ctx, e.ID)
	must(t, err, "EnrollmentByID")
	same(t, got, want, "EnrollmentByID")
	got, err = st.EnrollmentByUserClass(ctx, students[0].ID, c.ID)
	must(t, err, "EnrollmentByUserClass")
	same(t, got, want, "EnrollmentByUserClass")
	if n := seats(t, st, c.ID); n != 1 {
		t.Fatalf("EnrolledCount = %d after one enrollment", n)
	}

	again := store.Enrollment{UserID: students[0].ID, ClassID: c.ID}
	err = st.Enroll(ctx, &again)
	wantKind(t, err, apperr.Conflict, "Enroll(already enrolled)")
	if !strings.Contains(err.Error(), "already enrolled") {
		t.Fatalf("already-enrolled error says %q", err)
	}
	if n := seats(t, st, c.ID); n != 1 {
		t.Fatalf("a refused second enrollment changed EnrolledCount to %d", n)
	}

	e1 := store.Enrollment{UserID: students[1].ID, ClassID: c.ID}
	must(t, st.Enroll(ctx, &e1), "Enroll(second seat)")
	full := store.Enrollment{UserID: students[2].ID, ClassID: c.ID}
	err = st.Enroll(ctx, &full)
	wantKind(t, err, apperr.Conflict, "Enroll(full)")
	if !strings.Contains(err.Error(), "full") {
		t.Fatalf("full-class error says %q", err)
	}
	// Already enrolled wins over full.
	err = st.Enroll(ctx, &store.Enrollment{UserID: students[1].ID, ClassID: c.ID})
	if err == nil || !strings.Contains(err.Error(), "already enrolled") {
		t.Fatalf("enrolling twice in a full class: %v", err)
	}

	err = st.Enroll(ctx, &store.Enrollment{UserID: students[2].ID, ClassID: "missing"})
	wantKind(t, err, apperr.NotFound, "Enroll(missing class)")
	roomy := mkClass(t, st, newClass(m.ID, "Roomy", base))
	err = st.Enroll(ctx, &store.Enrollment{UserID: "nobody", ClassID: roomy.ID})
	wantKind(t, err, apperr.NotFound, "Enroll(unknown user)")
	if n := seats(t, st, roomy.ID); n != 0 {
		t.Fatalf("an enrollment of an unknown user kept a seat: %d", n)
	}
	dupID := store.Enrollment{ID: e.ID, UserID: students[3].ID, ClassID: roomy.ID}
	wantKind(t, st.Enroll(ctx, &dupID), apperr.Conflict, "Enroll(taken id)")
	if n := seats(t, st, roomy.ID); n != 0 {
		t.Fatalf("an enrollment with a taken id kept a seat: %d", n)
	}

	// Unenroll frees the seat for someone else.
	must(t, st.Unenroll(ctx, e.ID), "Unenroll")
	if n := seats(t, st, c.ID); n != 1 {
		t.Fatalf("EnrolledCount = %d after unenroll, want 1", n)
	}
	_, err = st.EnrollmentByID(ctx, e.ID)
	wantKind(t, err, apperr.NotFound, "EnrollmentByID(unenrolled)")
	_, err = st.EnrollmentByUserClass(ctx, students[0].ID, c.ID)
	wantKind(t, err, apperr.NotFound, "EnrollmentByUserClass(unenrolled)")
	must(t, st.Enroll(ctx, &full), "Enroll(into the freed seat)")
	wantKind(t, st.Unenroll(ctx, e.ID), apperr.NotFound, "Unenroll(again)")

	// UpdateEnrollment writes attendance and feedback only.
	upd := full
	upd.Attended, upd.AttendanceDuration, upd.Feedback, upd.Rating = ptr(true), ptr(55), ptr("Good"), ptr(5)
	upd.UpdatedAt = base.Add(2 * time.Hour)
	upd.UserID, upd.ClassID, upd.EnrolledAt = students[3].ID, roomy.ID, base // must be ignored
	must(t, st.UpdateEnrollment(ctx, upd), "UpdateEnrollment")
	got, err = st.EnrollmentByID(ctx, full.ID)
	must(t, err, "EnrollmentByID")
	want = full
	want.Attended, want.AttendanceDuration, want.Feedback, want.Rating = ptr(true), ptr(55), ptr("Good"), ptr(5)
	want.UpdatedAt = ms(base.Add(2 * time.Hour))
	same(t, got, want, "after UpdateEnrollment")
	wantKind(t, st.UpdateEnrollment(ctx, store.Enrollment{ID: "missing"}), apperr.NotFound, "UpdateEnrollment(missing)")
}

// testEnrollConcurrent races 200 students for 10 seats: exactly 10 win,
// everyone else is told the class is full, and the count agrees with the
// rows.
func testEnrollConcurrent(t *testing.T, st store.Store) {
	const students, seatsN = 200, 10
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	cl := newClass(m.ID, "Popular", base)
	cl.MaxParticipants = seatsN
	c := mkClass(t, st, cl)
	users := make([]store.User, students)
	for i := range users {
		users[i] = mkUser(t, st, fmt.Sprintf("s%03d@example.org", i))
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, students)
	for i := range students {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = st.Enroll(ctx, &store.Enrollment{UserID: users[i].ID, ClassID: c.ID})
		}()
	}
	close(start)
	wg.Wait()

	ok, full := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case apperr.Is(err, apperr.Conflict) && strings.Contains(err.Error(), "full"):
			full++
		default:
			t.Errorf("student %d: unexpected error %v", i, err)
		}
	}
	if ok != seatsN || full != students-seatsN {
		t.Fatalf("%d admitted and %d refused as full; want %d and %d", ok, full, seatsN, students-seatsN)
	}
	if n := seats(t, st, c.ID); n != seatsN {
		t.Fatalf("EnrolledCount = %d, want %d", n, seatsN)
	}
	l, err := st.ListEnrollments(ctx, store.EnrollmentQuery{ClassID: c.ID})
	must(t, err, "ListEnrollments")
	if len(l.Items) != seatsN {
		t.Fatalf("%d enrollment rows, want %d", len(l.Items), seatsN)
	}
}

// testEnrollSameUserConcurrent: one user enrolling from many tabs at once
// gets one seat.
func testEnrollSameUserConcurrent(t *testing.T, st store.Store) {
	const tries = 40 // more than a connection pool holds
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	s := mkUser(t, st, "s@example.org")
	c := mkClass(t, st, newClass(m.ID, "C", base))
	var wg sync.WaitGroup
	errs := make([]error, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Enroll(ctx, &store.Enrollment{UserID: s.ID, ClassID: c.ID})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !apperr.Is(err, apperr.Conflict) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d enrollments of one user succeeded, want 1", ok)
	}
	if n := seats(t, st, c.ID); n != 1 {
		t.Fatalf("EnrolledCount = %d, want 1", n)
	}
}

func testEnrollmentLists(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	a := mkClass(t, st, newClass(m.ID, "A", base))
	b := mkClass(t, st, newClass(m.ID, "B", base))
	var byClassA, byUser0 []store.EnrollmentID
	for i := range 9 {
		u := mkUser(t, st, fmt.Sprintf("s%d@example.org", i))
		// Pairs share an enrollment time, so the id breaks ties.
		at := base.Add(time.Duration(i/2) * time.Minute)
		e := store.Enrollment{UserID: u.ID, ClassID: a.ID, EnrolledAt: at}
		must(t, st.Enroll(ctx, &e), "Enroll")
		byClassA = append(byClassA, e.ID)
		if i == 0 {
			eb := store.Enrollment{UserID: u.ID, ClassID: b.ID, EnrolledAt: base.Add(time.Hour)}
			must(t, st.Enroll(ctx, &eb), "Enroll")
			byUser0 = []store.EnrollmentID{e.ID, eb.ID}
		}
	}
	page := func(q store.EnrollmentQuery) []store.EnrollmentID {
		t.Helper()
		var out []store.EnrollmentID
		for {
			l, err := st.ListEnrollments(ctx, q)
			must(t, err, "ListEnrollments")
			for _, e := range l.Items {
				out = append(out, e.ID)
			}
			if l.Next == "" {
				return out
			}
			q.Page.After = l.Next
		}
	}
	got := page(store.EnrollmentQuery{ClassID: a.ID, Page: store.Page{Limit: 2}})
	if len(got) != 9 {
		t.Fatalf("class A has %d enrollments over pages, want 9", len(got))
	}
	all, err := st.ListEnrollments(ctx, store.EnrollmentQuery{ClassID: a.ID})
	must(t, err, "ListEnrollments")
	for i := 1; i < len(all.Items); i++ {
		p, e := all.Items[i-1], all.Items[i]
		if p.EnrolledAt.After(e.EnrolledAt) || (p.EnrolledAt.Equal(e.EnrolledAt) && p.ID >= e.ID) {
			t.Fatalf("enrollments not ordered by (enrolledAt, id) at %d", i)
		}
	}
	desc := page(store.EnrollmentQuery{ClassID: a.ID, Page: store.Page{Limit: 4, Desc: true}})
	for i := range desc {
		if desc[i] != got[len(got)-1-i] {
			t.Fatalf("descending enrollments are not the reverse at %d", i)
		}
	}
	same(t, page(store.EnrollmentQuery{UserID: byUser0Owner(t, st, byUser0[0])}), byUser0, "enrollments of one user")
	both := page(store.EnrollmentQuery{UserID: byUser0Owner(t, st, byUser0[0]), ClassID: b.ID})
	same(t, both, byUser0[1:], "enrollments of one user in one class")
	if n := len(page(store.EnrollmentQuery{Page: store.Page{Limit: 3}})); n != 10 {
		t.Fatalf("all enrollments: %d, want 10", n)
	}
	_, err = st.ListEnrollments(ctx, store.EnrollmentQuery{Page: store.Page{After: "%%%"}})
	wantField(t, err, "nextToken", "ListEnrollments(bad cursor)")
	slices.Sort(byClassA)
	slices.Sort(got)
	same(t, got, byClassA, "every enrollment of class A")
}

func byUser0Owner(t *testing.T, st store.Store, id store.EnrollmentID) store.UserID {
	t.Helper()
	e, err := st.EnrollmentByID(context.Background(), id)
	must(t, err, "EnrollmentByID")
	return e.UserID
}

func testRecordings(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	c := mkClass(t, st, newClass(m.ID, "C", base))
	other := mkClass(t, st, newClass(m.ID, "Other", base))
	r := store.Recording{ClassID: c.ID, S3Key: "k/1.mp4", S3Bucket: "bucket", Duration: 3600,
		ThumbnailURL: ptr("https://cdn/t.jpg"), TranscriptURL: ptr("https://cdn/t.vtt"), CreatedAt: base}
	must(t, st.CreateRecording(ctx, &r), "CreateRecording")
	want := r
	want.CreatedAt, want.UpdatedAt = ms(base), ms(base)
	got, err := st.RecordingByID(ctx, r.ID)
	must(t, err, "RecordingByID")
	same(t, got, want, "RecordingByID")
	_, err = st.RecordingByID(ctx, "missing")
	wantKind(t, err, apperr.NotFound, "RecordingByID(missing)")
	bad := store.Recording{ClassID: "missing", S3Key: "k", S3Bucket: "b"}
	wantField(t, st.CreateRecording(ctx, &bad), "liveClassId", "CreateRecording(missing class)")
	dup := store.Recording{ID: r.ID, ClassID: c.ID, S3Key: "k", S3Bucket: "b"}
	wantKind(t, st.CreateRecording(ctx, &dup), apperr.Conflict, "CreateRecording(taken id)")

	upd := r
	upd.S3Key, upd.S3Bucket, upd.Duration, upd.ThumbnailURL, upd.TranscriptURL = "k/2.mp4", "b2", 42, nil, ptr("x")
	upd.ClassID = other.ID // must be ignored
	upd.UpdatedAt = base.Add(time.Hour)
	must(t, st.UpdateRecording(ctx, upd), "UpdateRecording")
	got, err = st.RecordingByID(ctx, r.ID)
	must(t, err, "RecordingByID")
	want = upd
	want.ClassID = c.ID
	want.CreatedAt, want.UpdatedAt = ms(base), ms(base.Add(time.Hour))
	same(t, got, want, "after UpdateRecording")
	wantKind(t, st.UpdateRecording(ctx, store.Recording{ID: "missing"}), apperr.NotFound, "UpdateRecording(missing)")

	var ofC []store.RecordingID
	ofC = append(ofC, r.ID)
	for i := range 5 {
		x := store.Recording{ClassID: c.ID, S3Key: fmt.Sprint(i), S3Bucket: "b", CreatedAt: base.Add(time.Duration(i+1) * time.Second)}
		must(t, st.CreateRecording(ctx, &x), "CreateRecording")
		ofC = append(ofC, x.ID)
	}
	o := store.Recording{ClassID: other.ID, S3Key: "o", S3Bucket: "b"}
	must(t, st.CreateRecording(ctx, &o), "CreateRecording")
	var gotC []store.RecordingID
	q := store.RecordingQuery{ClassID: c.ID, Page: store.Page{Limit: 4}}
	for {
		l, err := st.ListRecordings(ctx, q)
		must(t, err, "ListRecordings")
		for _, x := range l.Items {
			gotC = append(gotC, x.ID)
		}
		if l.Next == "" {
			break
		}
		q.Page.After = l.Next
	}
	same(t, gotC, ofC, "recordings of the class by createdAt")
	l, err := st.ListRecordings(ctx, store.RecordingQuery{})
	must(t, err, "ListRecordings(all)")
	if len(l.Items) != 7 {
		t.Fatalf("all recordings: %d, want 7", len(l.Items))
	}

	must(t, st.DeleteRecording(ctx, r.ID), "DeleteRecording")
	_, err = st.RecordingByID(ctx, r.ID)
	wantKind(t, err, apperr.NotFound, "RecordingByID(deleted)")
	wantKind(t, st.DeleteRecording(ctx, r.ID), apperr.NotFound, "DeleteRecording(again)")
}

func testBatches(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	s := mkUser(t, st, "s@example.org")
	c1 := mkClass(t, st, newClass(m.ID, "1", base))
	c2 := mkClass(t, st, newClass(m.ID, "2", base))
	c3 := mkClass(t, st, newClass(m.ID, "3", base))
	e1 := store.Enrollment{UserID: s.ID, ClassID: c1.ID}
	must(t, st.Enroll(ctx, &e1), "Enroll")
	e2 := store.Enrollment{UserID: m.ID, ClassID: c1.ID}
	must(t, st.Enroll(ctx, &e2), "Enroll")
	e3 := store.Enrollment{UserID: s.ID, ClassID: c2.ID}
	must(t, st.Enroll(ctx, &e3), "Enroll")
	r1 := store.Recording{ClassID: c2.ID, S3Key: "a", S3Bucket: "b"}
	must(t, st.CreateRecording(ctx, &r1), "CreateRecording")
	r2 := store.Recording{ClassID: c3.ID, S3Key: "a", S3Bucket: "b"}
	must(t, st.CreateRecording(ctx, &r2), "CreateRecording")

	users, err := st.UsersByIDs(ctx, []store.UserID{s.ID, "missing", m.ID, s.ID})
	must(t, err, "UsersByIDs")
	uids := []store.UserID{}
	for _, u := range users {
		uids = append(uids, u.ID)
	}
	slices.Sort(uids)
	want := []store.UserID{m.ID, s.ID}
	slices.Sort(want)
	same(t, uids, want, "UsersByIDs (missing and duplicate ids)")
	if got, _ := st.UsersByIDs(ctx, nil); len(got) != 0 {
		t.Fatalf("UsersByIDs(nil) = %v", got)
	}

	classes, err := st.ClassesByIDs(ctx, []store.ClassID{c3.ID, c1.ID, "missing"})
	must(t, err, "ClassesByIDs")
	cids := classIDs(classes)
	slices.Sort(cids)
	wantC := []store.ClassID{c1.ID, c3.ID}
	slices.Sort(wantC)
	same(t, cids, wantC, "ClassesByIDs")
	if got, _ := st.ClassesByIDs(ctx, []store.ClassID{}); len(got) != 0 {
		t.Fatalf("ClassesByIDs(empty) = %v", got)
	}

	enr, err := st.EnrollmentsByClassIDs(ctx, []store.ClassID{c1.ID, c2.ID, c3.ID})
	must(t, err, "EnrollmentsByClassIDs")
	byClass := map[store.ClassID]int{}
	for _, e := range enr {
		byClass[e.ClassID]++
	}
	same(t, byClass, map[store.ClassID]int{c1.ID: 2, c2.ID: 1}, "EnrollmentsByClassIDs per class")
	if got, _ := st.EnrollmentsByClassIDs(ctx, nil); len(got) != 0 {
		t.Fatalf("EnrollmentsByClassIDs(nil) = %v", got)
	}

	recs, err := st.RecordingsByClassIDs(ctx, []store.ClassID{c1.ID, c3.ID})
	must(t, err, "RecordingsByClassIDs")
	if len(recs) != 1 || recs[0].ID != r2.ID {
		t.Fatalf("RecordingsByClassIDs = %+v, want only %s", recs, r2.ID)
	}
}

func testCancellation(t *testing.T, st store.Store) {
	must(t, st.Ping(context.Background()), "Ping")
	m := mkUser(t, st, "m@example.org")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Ping": func() error { return st.Ping(ctx) },
		"UserByID": func() error {
			_, err := st.UserByID(ctx, m.ID)
			return err
		},
		"ListClasses": func() error {
			_, err := st.ListClasses(ctx, store.ClassQuery{})
			return err
		},
		"CreateUser": func() error {
			return st.CreateUser(ctx, &store.User{Email: "x@example.org", Name: "x", Role: store.RoleStudent})
		},
		"Enroll": func() error {
			return st.Enroll(ctx, &store.Enrollment{UserID: m.ID, ClassID: "x"})
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	if _, err := st.UserByEmail(context.Background(), "x@example.org"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("a cancelled CreateUser stored the user: %v", err)
	}
}
