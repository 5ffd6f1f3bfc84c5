package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/store"
)

// The demo accounts live under a reserved domain so that nobody mistakes
// them for real people and they are easy to find and delete.
const (
	demoMentorEmail = "mentor@demo.liveclass.local"
	demoStudent1    = "student1@demo.liveclass.local"
	demoStudent2    = "student2@demo.liveclass.local"
)

// seedDemo creates the demo users and classes once. It goes through the
// same services as the API, so demo data obeys every rule real data does.
// A second run finds the demo mentor's classes and does nothing.
func seedDemo(ctx context.Context, out io.Writer, accounts *auth.Service, rules *classes.Service, st store.Store) error {
	password := rand.Text()[:16]
	type account struct {
		email, name string
		role        store.Role
	}
	var created []string
	users := map[string]store.User{}
	for _, a := range []account{
		{demoMentorEmail, "[Demo] Maya Mentor", store.RoleMentor},
		{demoStudent1, "[Demo] Sam Student", store.RoleStudent},
		{demoStudent2, "[Demo] Alex Student", store.RoleStudent},
	} {
		u, err := st.UserByEmail(ctx, a.email)
		if apperr.Is(err, apperr.NotFound) {
			u, err = accounts.AddUser(ctx, a.email, a.name, password, a.role)
			if err == nil {
				created = append(created, a.email)
			}
		}
		if err != nil {
			return fmt.Errorf("demo user %s: %w", a.email, err)
		}
		users[a.email] = u
	}
	if len(created) > 0 {
		fmt.Fprintf(out, "Demo accounts %v have the password %s (shown only now).\n", created, password)
	}

	mentor := users[demoMentorEmail]
	as := auth.Actor{UserID: mentor.ID, Role: mentor.Role, Name: mentor.Name}
	existing, err := rules.ListClasses(ctx, as, store.ClassQuery{InstructorID: mentor.ID, Page: store.Page{Limit: 1}})
	if err != nil {
		return err
	}
	if len(existing.Items) > 0 {
		fmt.Fprintf(out, "Demo data is in place (mentor %s, students %s and %s).\n", demoMentorEmail, demoStudent1, demoStudent2)
		return nil
	}

	now := time.Now().Truncate(time.Minute)
	tomorrow := now.Add(24 * time.Hour).Truncate(time.Hour)
	desc := func(s string) *string { s = "Demo data created by `liveclass serve --demo`. " + s; return &s }
	demo := []classes.ClassInput{
		{Title: "[Demo] Go for beginners — starts in 10 minutes", Description: desc("An interactive class that opens its room shortly."),
			StartTime: now.Add(10 * time.Minute), EndTime: now.Add(70 * time.Minute), Service: store.ServiceChime,
			RequiresEnrollment: true, AccessLevel: store.RoleStudent, MaxParticipants: 30,
			Category: "Programming", Level: store.LevelBeginner, IsFree: true, Tags: []string{"demo", "go"}},
		{Title: "[Demo] System design workshop (paid)", Description: desc("A paid interactive workshop: the instructor enrolls students."),
			StartTime: tomorrow.Add(9 * time.Hour), EndTime: tomorrow.Add(11 * time.Hour), Service: store.ServiceChime,
			RequiresEnrollment: true, AccessLevel: store.RoleStudent, MaxParticipants: 12,
			Category: "Architecture", Level: store.LevelAdvanced, Price: 49, Tags: []string{"demo", "design"}},
		{Title: "[Demo] Open town hall broadcast", Description: desc("A free broadcast anyone may watch."),
			StartTime: tomorrow.Add(17 * time.Hour), EndTime: tomorrow.Add(18 * time.Hour), Service: store.ServiceIVS,
			AccessLevel: store.RoleStudent, MaxParticipants: 5000,
			Category: "Community", Level: store.LevelBeginner, IsFree: true, Tags: []string{"demo", "broadcast"}},
		{Title: "[Demo] Data science masterclass stream (paid)", Description: desc("A paid broadcast."),
			StartTime: tomorrow.Add(48 * time.Hour), EndTime: tomorrow.Add(50 * time.Hour), Service: store.ServiceIVS,
			RequiresEnrollment: true, AccessLevel: store.RoleStudent, MaxParticipants: 500,
			Category: "Data", Level: store.LevelIntermediate, Price: 19.5, Tags: []string{"demo", "data"}},
		{Title: "[Demo] Yesterday's recap (past)", Description: desc("A class that took place yesterday."),
			StartTime: now.Add(-24 * time.Hour), EndTime: now.Add(-23 * time.Hour), Service: store.ServiceChime,
			RequiresEnrollment: true, AccessLevel: store.RoleStudent, MaxParticipants: 20,
			Category: "Programming", Level: store.LevelIntermediate, IsFree: true, Tags: []string{"demo"}},
	}
	var first store.LiveClass
	for i, in := range demo {
		c, err := rules.CreateClass(ctx, as, in)
		if err != nil {
			return fmt.Errorf("demo class %q: %w", in.Title, err)
		}
		if i == 0 {
			first = c
		}
	}
	// One student is already enrolled in the class about to start, so the
	// dashboard and the Join button have something to show.
	s1 := users[demoStudent1]
	if _, err := rules.Enroll(ctx, auth.Actor{UserID: s1.ID, Role: s1.Role, Name: s1.Name}, first.ID, ""); err != nil {
		return fmt.Errorf("demo enrollment: %w", err)
	}
	fmt.Fprintf(out, "Demo data created: %d classes by %s; %s is enrolled in %q.\n", len(demo), demoMentorEmail, demoStudent1, first.Title)
	return nil
}
