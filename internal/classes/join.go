package classes

import (
	"context"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// CanJoin reports whether a join token would be granted to a for class c
// now (nil) or why not. The UI shows Join exactly when it is nil.
func (s *Service) CanJoin(ctx context.Context, a auth.Actor, c store.LiveClass) error {
	return s.CanJoinAt(ctx, a, c, s.opt.Now())
}

// CanJoinAt reports whether a join token would be granted to a for class c
// at time t, assuming nothing else changes; the UI uses it with the window's
// opening time to reveal Join when the window opens.
func (s *Service) CanJoinAt(ctx context.Context, a auth.Actor, c store.LiveClass, t time.Time) error {
	return s.canJoinAt(ctx, a, c, t, seatUnknown)
}

// seat is what the caller already knows of a's enrollment in the class.
type seat int

const (
	seatUnknown seat = iota // look it up when the class requires enrollment
	seatHeld
	seatNone
)

// canJoinAt is CanJoinAt for a caller that may have read the enrollment
// together with the class (GenerateJoinToken does, to save a read on
// every grant); the checks and their order are the same either way.
func (s *Service) canJoinAt(ctx context.Context, a auth.Actor, c store.LiveClass, t time.Time, known seat) error {
	if err := signedIn(a); err != nil {
		return err
	}
	switch c.Status {
	case store.StatusCancelled:
		return apperr.New(apperr.Conflict, "the class was cancelled")
	case store.StatusEnded:
		return apperr.New(apperr.Conflict, "the class has ended")
	}
	opens, closes := s.JoinWindow(c)
	if t.Before(opens) {
		return apperr.New(apperr.Forbidden, "the class opens at %s", opens.UTC().Format(time.RFC3339))
	}
	if !t.Before(closes) {
		return apperr.New(apperr.Forbidden, "the class was due to end at %s", closes.UTC().Format(time.RFC3339))
	}
	if hosts(a, c) {
		return nil // the instructor and admins always get in
	}
	if a.Role.Rank() < c.AccessLevel.Rank() {
		return apperr.New(apperr.Forbidden, "this class is open to %s and above", c.AccessLevel)
	}
	if c.RequiresEnrollment {
		if known == seatUnknown {
			_, err := s.st.EnrollmentByUserClass(ctx, a.UserID, c.ID)
			switch {
			case err == nil:
				known = seatHeld
			case apperr.Is(err, apperr.NotFound):
				known = seatNone
			default:
				return err
			}
		}
		if known == seatNone {
			return apperr.New(apperr.Forbidden, "enroll in the class first")
		}
	}
	if c.CurrentParticipants >= c.MaxParticipants {
		return apperr.New(apperr.Conflict, "the class is full")
	}
	return nil
}

// JoinWindow returns when join tokens for c are first and last granted.
func (s *Service) JoinWindow(c store.LiveClass) (opens, closes time.Time) {
	return c.StartTime.Add(-s.opt.JoinEarly), c.EndTime
}

// GenerateJoinToken grants a's join token for a class. The token expires
// an hour after it is granted or at the class's end plus the grace,
// whichever comes first.
func (s *Service) GenerateJoinToken(ctx context.Context, a auth.Actor, class store.ClassID) (JoinGrant, error) {
	if err := signedIn(a); err != nil {
		return JoinGrant{}, err
	}
	// The class and the caller's seat in one read: nothing is cached, so
	// a cancelled class or a removed enrollment is refused at once.
	c, enrolled, err := s.st.ClassForUser(ctx, class, a.UserID)
	if err != nil {
		return JoinGrant{}, err
	}
	known := seatNone
	if enrolled {
		known = seatHeld
	}
	now := s.opt.Now()
	if err := s.canJoinAt(ctx, a, c, now, known); err != nil {
		return JoinGrant{}, err
	}
	role := jointoken.RoleAttendee
	if hosts(a, c) {
		role = jointoken.RoleHost
	}
	exp := now.Add(tokenLifetime)
	if end := c.EndTime.Add(s.opt.JoinGrace); end.Before(exp) {
		exp = end
	}
	tok, err := s.sign.Sign(jointoken.Claims{
		ClassID:   string(c.ID),
		UserID:    string(a.UserID),
		Name:      a.Name,
		Role:      role,
		Service:   string(c.Service),
		ID:        s.opt.NewID(),
		IssuedAt:  now,
		ExpiresAt: exp,
	})
	if err != nil {
		return JoinGrant{}, err
	}
	return JoinGrant{
		Token:     tok,
		ExpiresAt: exp,
		Service:   c.Service,
		JoinURL:   s.opt.PublicURL + "/classes/" + string(c.ID) + "/live",
		Role:      role,
	}, nil
}
