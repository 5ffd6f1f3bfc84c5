package classes

import (
	"context"
	"unicode/utf8"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// Enroll enrolls user (the actor when empty) in a class. Only the class's
// instructor and admins may enroll someone else, and only they may enroll
// anyone in a paid class: payments are not part of liveclass yet, so a
// paid seat is given by a person who knows it was paid for.
func (s *Service) Enroll(ctx context.Context, a auth.Actor, class store.ClassID, user store.UserID) (store.Enrollment, error) {
	if err := signedIn(a); err != nil {
		return store.Enrollment{}, err
	}
	c, err := s.namedClass(ctx, class)
	if err != nil {
		return store.Enrollment{}, err
	}
	if user == "" {
		user = a.UserID
	}
	if user != a.UserID && !hosts(a, c) {
		return store.Enrollment{}, apperr.New(apperr.Forbidden, "only the class's instructor or an admin may enroll someone else")
	}
	switch c.Status {
	case store.StatusCancelled, store.StatusEnded:
		return store.Enrollment{}, apperr.New(apperr.Conflict, "the class is %s: enrollment is closed", c.Status)
	}
	if c.Price > 0 && !hosts(a, c) {
		return store.Enrollment{}, apperr.New(apperr.Forbidden,
			"this is a paid class: ask the instructor or an admin to enroll you")
	}
	u, err := s.st.UserByID(ctx, user)
	if apperr.Is(err, apperr.NotFound) {
		return store.Enrollment{}, apperr.Field("userId", "no such user")
	}
	if err != nil {
		return store.Enrollment{}, err
	}
	if u.Role.Rank() < c.AccessLevel.Rank() {
		return store.Enrollment{}, apperr.New(apperr.Forbidden, "this class is open to %s and above", c.AccessLevel)
	}
	now := s.opt.Now()
	e := store.Enrollment{
		ID:         store.EnrollmentID(s.opt.NewID()),
		UserID:     user,
		ClassID:    class,
		EnrolledAt: now,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if err := s.st.Enroll(ctx, &e); err != nil {
		return store.Enrollment{}, err
	}
	s.publish(Event{Kind: Created, Enrollment: &e})
	return e, nil
}

// mayReadEnrollment: the owner, the class's instructor, admins.
func (s *Service) mayReadEnrollment(ctx context.Context, a auth.Actor, e store.Enrollment) error {
	if err := signedIn(a); err != nil {
		return err
	}
	if e.UserID == a.UserID || a.Is(store.RoleAdmin) {
		return nil
	}
	c, err := s.st.ClassByID(ctx, e.ClassID)
	if err != nil {
		return err
	}
	if hosts(a, c) {
		return nil
	}
	return apperr.New(apperr.Forbidden, "only its owner, the class's instructor and admins see an enrollment")
}

// GetEnrollment returns an enrollment its owner, the class's instructor or
// an admin may read.
func (s *Service) GetEnrollment(ctx context.Context, a auth.Actor, id store.EnrollmentID) (store.Enrollment, error) {
	if err := signedIn(a); err != nil {
		return store.Enrollment{}, err
	}
	e, err := s.st.EnrollmentByID(ctx, id)
	if err != nil {
		return store.Enrollment{}, err
	}
	if err := s.mayReadEnrollment(ctx, a, e); err != nil {
		return store.Enrollment{}, err
	}
	return e, nil
}

// GetEnrollmentFor returns user's enrollment in class (the guide's lookup).
func (s *Service) GetEnrollmentFor(ctx context.Context, a auth.Actor, user store.UserID, class store.ClassID) (store.Enrollment, error) {
	if err := signedIn(a); err != nil {
		return store.Enrollment{}, err
	}
	if user != a.UserID && !a.Is(store.RoleAdmin) {
		// Check before the lookup, so that whether someone else is
		// enrolled does not leak through NOT_FOUND versus FORBIDDEN.
		c, err := s.st.ClassByID(ctx, class)
		if err != nil {
			return store.Enrollment{}, err
		}
		if !hosts(a, c) {
			return store.Enrollment{}, apperr.New(apperr.Forbidden, "only its owner, the class's instructor and admins see an enrollment")
		}
	}
	return s.st.EnrollmentByUserClass(ctx, user, class)
}

// ListEnrollments lists enrollments. Admins see all; the instructor of
// q.ClassID sees that class's; everyone else sees only their own, and
// asking for another user's is forbidden.
func (s *Service) ListEnrollments(ctx context.Context, a auth.Actor, q store.EnrollmentQuery) (store.List[store.Enrollment], error) {
	var none store.List[store.Enrollment]
	if err := signedIn(a); err != nil {
		return none, err
	}
	if err := checkPage(&q.Page); err != nil {
		return none, err
	}
	if !a.Is(store.RoleAdmin) {
		instructor := false
		if q.ClassID != "" {
			c, err := s.st.ClassByID(ctx, q.ClassID)
			if err != nil {
				return none, err
			}
			instructor = hosts(a, c)
		}
		switch {
		case instructor:
		case q.UserID == "" || q.UserID == a.UserID:
			q.UserID = a.UserID
		default:
			return none, apperr.New(apperr.Forbidden, "only admins list another user's enrollments")
		}
	}
	return s.st.ListEnrollments(ctx, q)
}

// EnrollmentsOfClasses returns, per class, the enrollments the actor may
// see (all for the instructor and admins, the actor's own otherwise), in
// one store query.
func (s *Service) EnrollmentsOfClasses(ctx context.Context, a auth.Actor, ids []store.ClassID) (map[store.ClassID][]store.Enrollment, error) {
	out := make(map[store.ClassID][]store.Enrollment, len(ids))
	if a.Anonymous() || len(ids) == 0 {
		return out, nil
	}
	classes, err := s.st.ClassesByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	hosted := make(map[store.ClassID]bool, len(classes))
	for _, c := range classes {
		hosted[c.ID] = hosts(a, c)
	}
	all, err := s.st.EnrollmentsByClassIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, e := range all {
		if hosted[e.ClassID] || e.UserID == a.UserID {
			out[e.ClassID] = append(out[e.ClassID], e)
		}
	}
	return out, nil
}

// UpdateEnrollment records the owner's feedback and rating after the class.
func (s *Service) UpdateEnrollment(ctx context.Context, a auth.Actor, id store.EnrollmentID, p EnrollmentPatch) (store.Enrollment, error) {
	if err := signedIn(a); err != nil {
		return store.Enrollment{}, err
	}
	e, err := s.st.EnrollmentByID(ctx, id)
	if err != nil {
		return store.Enrollment{}, err
	}
	if e.UserID != a.UserID {
		if err := s.mayReadEnrollment(ctx, a, e); err != nil {
			return store.Enrollment{}, err
		}
		return store.Enrollment{}, apperr.New(apperr.Forbidden, "only the enrolled student gives feedback")
	}
	switch {
	case p.UserID != nil && *p.UserID != e.UserID:
		return store.Enrollment{}, managed("userId")
	case p.ClassID != nil && *p.ClassID != e.ClassID:
		return store.Enrollment{}, managed("liveClassId")
	case p.EnrolledAt != nil && !p.EnrolledAt.Equal(e.EnrolledAt):
		return store.Enrollment{}, managed("enrolledAt")
	case p.Attended != nil && !eqPtr(p.Attended, e.Attended):
		return store.Enrollment{}, managed("attended")
	case p.AttendanceDuration != nil && !eqPtr(p.AttendanceDuration, e.AttendanceDuration):
		return store.Enrollment{}, managed("attendanceDuration")
	}
	if p.Rating != nil && (*p.Rating < MinRating || *p.Rating > MaxRating) {
		return store.Enrollment{}, apperr.Field("rating", "must be %d to %d", MinRating, MaxRating)
	}
	if p.Feedback != nil && utf8.RuneCountInString(*p.Feedback) > MaxFeedback {
		return store.Enrollment{}, apperr.Field("feedback", "must be at most %d characters", MaxFeedback)
	}
	if p.Rating == nil && p.Feedback == nil {
		return e, nil
	}
	c, err := s.st.ClassByID(ctx, e.ClassID)
	if err != nil {
		return store.Enrollment{}, err
	}
	now := s.opt.Now()
	if c.Status != store.StatusEnded && now.Before(c.EndTime) {
		return store.Enrollment{}, apperr.New(apperr.Conflict, "feedback and rating open when the class is over")
	}
	if p.Rating != nil {
		e.Rating = p.Rating
	}
	if p.Feedback != nil {
		e.Feedback = p.Feedback
	}
	e.UpdatedAt = now
	if err := s.st.UpdateEnrollment(ctx, e); err != nil {
		return store.Enrollment{}, err
	}
	s.publish(Event{Kind: Updated, Enrollment: &e})
	return e, nil
}

// Unenroll deletes an enrollment: its owner, the class's instructor or an
// admin may. An ended class keeps its enrollments: they hold attendance.
func (s *Service) Unenroll(ctx context.Context, a auth.Actor, id store.EnrollmentID) (store.Enrollment, error) {
	if err := signedIn(a); err != nil {
		return store.Enrollment{}, err
	}
	e, err := s.st.EnrollmentByID(ctx, id)
	if err != nil {
		return store.Enrollment{}, err
	}
	if err := s.mayReadEnrollment(ctx, a, e); err != nil {
		return store.Enrollment{}, err
	}
	c, err := s.st.ClassByID(ctx, e.ClassID)
	if err != nil {
		return store.Enrollment{}, err
	}
	if c.Status == store.StatusEnded {
		return store.Enrollment{}, apperr.New(apperr.Conflict, "the class has ended; its enrollments are its attendance record")
	}
	if err := s.st.Unenroll(ctx, id); err != nil {
		return store.Enrollment{}, err
	}
	s.publish(Event{Kind: Deleted, Enrollment: &e})
	return e, nil
}
