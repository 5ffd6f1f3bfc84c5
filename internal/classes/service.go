package classes

import (
	"context"
	"errors"
	"time"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// Service applies the rules over a store.
type Service struct {
	st   store.Store
	pub  Publisher
	sign TokenSigner
	opt  Options
}

// New returns a Service over st that publishes changes to pub and signs
// join tokens with sign.
func New(st store.Store, pub Publisher, sign TokenSigner, opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.JoinGrace == 0 {
		opt.JoinGrace = 15 * time.Minute
	}
	if opt.JoinEarly == 0 {
		opt.JoinEarly = 15 * time.Minute
	}
	return &Service{st: st, pub: pub, sign: sign, opt: opt}
}

var errTODO = errors.New("classes: not yet implemented")

// Now is the service's clock, for callers that compute isUpcoming.
func (s *Service) Now() time.Time { return s.opt.Now() }

// GetClass returns a class; anyone may read classes.
func (s *Service) GetClass(ctx context.Context, a auth.Actor, id store.ClassID) (store.LiveClass, error) {
	return store.LiveClass{}, errTODO
}

// ListClasses lists classes; anyone may. q.Now is set by the service.
func (s *Service) ListClasses(ctx context.Context, a auth.Actor, q store.ClassQuery) (store.List[store.LiveClass], error) {
	return store.List[store.LiveClass]{}, errTODO
}

// ClassesByIDs returns the classes that exist among ids (for loaders).
func (s *Service) ClassesByIDs(ctx context.Context, a auth.Actor, ids []store.ClassID) ([]store.LiveClass, error) {
	return nil, errTODO
}

// CreateClass creates a class; MENTOR (as instructor) and ADMIN may.
func (s *Service) CreateClass(ctx context.Context, a auth.Actor, in ClassInput) (store.LiveClass, error) {
	return store.LiveClass{}, errTODO
}

// UpdateClass changes a class; its instructor and ADMIN may.
func (s *Service) UpdateClass(ctx context.Context, a auth.Actor, id store.ClassID, p ClassPatch) (store.LiveClass, error) {
	return store.LiveClass{}, errTODO
}

// DeleteClass deletes a class; its instructor and ADMIN may.
func (s *Service) DeleteClass(ctx context.Context, a auth.Actor, id store.ClassID) (store.LiveClass, error) {
	return store.LiveClass{}, errTODO
}

// Enroll enrolls user (the actor when empty) in a class. Only the class's
// instructor and admins may enroll someone else, and only they may enroll
// anyone in a paid class.
func (s *Service) Enroll(ctx context.Context, a auth.Actor, class store.ClassID, user store.UserID) (store.Enrollment, error) {
	return store.Enrollment{}, errTODO
}

// GetEnrollment returns an enrollment its owner, the class's instructor or
// an admin may read.
func (s *Service) GetEnrollment(ctx context.Context, a auth.Actor, id store.EnrollmentID) (store.Enrollment, error) {
	return store.Enrollment{}, errTODO
}

// GetEnrollmentFor returns user's enrollment in class (the guide's lookup).
func (s *Service) GetEnrollmentFor(ctx context.Context, a auth.Actor, user store.UserID, class store.ClassID) (store.Enrollment, error) {
	return store.Enrollment{}, errTODO
}

// ListEnrollments lists enrollments: a user's own, a class's for its
// instructor and admins, or all for admins.
func (s *Service) ListEnrollments(ctx context.Context, a auth.Actor, q store.EnrollmentQuery) (store.List[store.Enrollment], error) {
	return store.List[store.Enrollment]{}, errTODO
}

// EnrollmentsOfClasses returns, per class, the enrollments the actor may
// see (all for the instructor and admins, the actor's own otherwise), in
// one store query.
func (s *Service) EnrollmentsOfClasses(ctx context.Context, a auth.Actor, ids []store.ClassID) (map[store.ClassID][]store.Enrollment, error) {
	return nil, errTODO
}

// UpdateEnrollment records the owner's feedback and rating after the class.
func (s *Service) UpdateEnrollment(ctx context.Context, a auth.Actor, id store.EnrollmentID, p EnrollmentPatch) (store.Enrollment, error) {
	return store.Enrollment{}, errTODO
}

// Unenroll deletes an enrollment: its owner, the class's instructor or an admin may.
func (s *Service) Unenroll(ctx context.Context, a auth.Actor, id store.EnrollmentID) (store.Enrollment, error) {
	return store.Enrollment{}, errTODO
}

// CreateRecording adds a recording; admins and the class's instructor may.
func (s *Service) CreateRecording(ctx context.Context, a auth.Actor, in RecordingInput) (store.Recording, error) {
	return store.Recording{}, errTODO
}

// GetRecording returns a recording to those who may see its class's recordings.
func (s *Service) GetRecording(ctx context.Context, a auth.Actor, id store.RecordingID) (store.Recording, error) {
	return store.Recording{}, errTODO
}

// ListRecordings lists the recordings the actor may see.
func (s *Service) ListRecordings(ctx context.Context, a auth.Actor, q store.RecordingQuery) (store.List[store.Recording], error) {
	return store.List[store.Recording]{}, errTODO
}

// RecordingsOfClasses returns, per class, the recordings the actor may see.
func (s *Service) RecordingsOfClasses(ctx context.Context, a auth.Actor, ids []store.ClassID) (map[store.ClassID][]store.Recording, error) {
	return nil, errTODO
}

// UpdateRecording changes a recording; admins and the class's instructor may.
func (s *Service) UpdateRecording(ctx context.Context, a auth.Actor, id store.RecordingID, in RecordingInput) (store.Recording, error) {
	return store.Recording{}, errTODO
}

// DeleteRecording deletes a recording; admins and the class's instructor may.
func (s *Service) DeleteRecording(ctx context.Context, a auth.Actor, id store.RecordingID) (store.Recording, error) {
	return store.Recording{}, errTODO
}

// CanJoin reports whether a join token would be granted to a for class c
// now (nil) or why not. The UI shows Join exactly when it is nil.
func (s *Service) CanJoin(ctx context.Context, a auth.Actor, c store.LiveClass) error {
	return errTODO
}

// CanJoinAt reports whether a join token would be granted to a for class c
// at time t, assuming nothing else changes; the UI uses it with the window's
// opening time to reveal Join when the window opens.
func (s *Service) CanJoinAt(ctx context.Context, a auth.Actor, c store.LiveClass, t time.Time) error {
	return errTODO
}

// JoinWindow returns when join tokens for c are first and last granted.
func (s *Service) JoinWindow(c store.LiveClass) (opens, closes time.Time) {
	return c.StartTime.Add(-s.opt.JoinEarly), c.EndTime
}

// GenerateJoinToken grants a's join token for a class.
func (s *Service) GenerateJoinToken(ctx context.Context, a auth.Actor, class store.ClassID) (JoinGrant, error) {
	return JoinGrant{}, errTODO
}

// MayReadRecordings reports whether a may read c's recordings: admins,
// its instructor and its enrolled students.
func (s *Service) MayReadRecordings(ctx context.Context, a auth.Actor, c store.LiveClass) (bool, error) {
	return false, errTODO
}
