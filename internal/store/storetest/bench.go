package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

// Benchmark measures the reads on the join path (a token grant looks up
// the session with its user, then the class with the caller's enrollment;
// the separate reads are kept for comparison) and a catalogue
// page, serially and in parallel, on st, which it fills first.
func Benchmark(b *testing.B, st store.Store) {
	ctx := context.Background()
	m := store.User{Email: "bench-mentor@example.org", Name: "Mentor", Role: store.RoleMentor}
	if err := st.CreateUser(ctx, &m); err != nil {
		b.Fatal(err)
	}
	const classes, students = 200, 50
	var ids []store.ClassID
	for i := range classes {
		c := newClass(m.ID, fmt.Sprintf("Class %d", i), time.Now().Add(time.Duration(i)*time.Hour))
		c.MaxParticipants = students
		c.Tags = []string{"bench", fmt.Sprint(i % 7)}
		if err := st.CreateClass(ctx, &c); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	var users []store.UserID
	for i := range students {
		u := store.User{Email: fmt.Sprintf("bench-%d@example.org", i), Name: "S", Role: store.RoleStudent}
		if err := st.CreateUser(ctx, &u); err != nil {
			b.Fatal(err)
		}
		users = append(users, u.ID)
		if err := st.CreateSession(ctx, store.Session{TokenHash: fmt.Sprintf("hash-%d", i), UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
		for _, c := range ids[:20] {
			if err := st.Enroll(ctx, &store.Enrollment{UserID: u.ID, ClassID: c}); err != nil {
				b.Fatal(err)
			}
		}
	}

	run := func(name string, op func(i int) error) {
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if err := op(i); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"Parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if err := op(i); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
	run("ClassByID", func(i int) error {
		_, err := st.ClassByID(ctx, ids[i%len(ids)])
		return err
	})
	run("EnrollmentByUserClass", func(i int) error {
		_, err := st.EnrollmentByUserClass(ctx, users[i%students], ids[i%20])
		return err
	})
	run("ClassForUser", func(i int) error {
		_, _, err := st.ClassForUser(ctx, ids[i%20], users[i%students])
		return err
	})
	run("SessionUserByHash", func(i int) error {
		_, _, err := st.SessionUserByHash(ctx, fmt.Sprintf("hash-%d", i%students))
		return err
	})
	run("SessionByHash", func(i int) error {
		_, err := st.SessionByHash(ctx, fmt.Sprintf("hash-%d", i%students))
		return err
	})
	run("ListClassesFiltered", func(i int) error {
		_, err := st.ListClasses(ctx, store.ClassQuery{
			Filter: &store.Filter{Conds: []store.Cond{{Field: "tags", Op: store.OpContains, Values: []any{fmt.Sprint(i % 7)}}}},
			Page:   store.Page{Limit: 20},
		})
		return err
	})
}
