package storetest

import (
	"context"
	"testing"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// testClassForUser checks the join check's one read: the same class as
// ClassByID, and enrolled exactly while the user holds a seat in that
// class (not in another class, not after unenrolling; cancelling a class
// keeps its seats, and the rules, not the store, refuse the join).
func testClassForUser(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "m@example.org")
	s := mkUser(t, st, "s@example.org")
	other := mkUser(t, st, "o@example.org")
	c := mkClass(t, st, fullClass(m.ID))
	c2 := mkClass(t, st, newClass(m.ID, "Second", base))

	check := func(class store.ClassID, u store.UserID, wantEnrolled bool, what string) {
		t.Helper()
		got, enrolled, err := st.ClassForUser(ctx, class, u)
		must(t, err, what)
		want, err := st.ClassByID(ctx, class)
		must(t, err, what+": ClassByID")
		same(t, got, want, what+": class")
		if enrolled != wantEnrolled {
			t.Fatalf("%s: enrolled = %v, want %v", what, enrolled, wantEnrolled)
		}
	}

	check(c.ID, s.ID, false, "before enrolling")
	check(c.ID, "", false, "no user")
	e := store.Enrollment{UserID: s.ID, ClassID: c.ID}
	must(t, st.Enroll(ctx, &e), "Enroll")
	check(c.ID, s.ID, true, "enrolled")
	check(c.ID, other.ID, false, "another user")
	check(c2.ID, s.ID, false, "another class")
	check(c.ID, m.ID, false, "the instructor holds no seat")

	// A cancelled class keeps its enrollments; the caller decides.
	c.Status = store.StatusCancelled
	c.UpdatedAt = c.UpdatedAt.Add(1)
	must(t, st.UpdateClass(ctx, c), "UpdateClass")
	check(c.ID, s.ID, true, "cancelled, still enrolled")
	got, _, err := st.ClassForUser(ctx, c.ID, s.ID)
	must(t, err, "ClassForUser")
	if got.Status != store.StatusCancelled {
		t.Fatalf("status = %s, want CANCELLED", got.Status)
	}

	must(t, st.Unenroll(ctx, e.ID), "Unenroll")
	check(c.ID, s.ID, false, "after unenrolling")

	_, enrolled, err := st.ClassForUser(ctx, "missing", s.ID)
	wantKind(t, err, apperr.NotFound, "ClassForUser(missing class)")
	if enrolled {
		t.Fatal("ClassForUser(missing class) says enrolled")
	}
}
