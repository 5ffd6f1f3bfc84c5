package graph

import (
	"context"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/classes"
	"github.com/liveclass/liveclass/internal/graph/model"
	"github.com/liveclass/liveclass/internal/store"
)

// orNil turns a get's NotFound into a null result without an error, as
// Amplify's get… queries answer for a missing record; other errors
// (FORBIDDEN included) stay.
func orNil[T any](v T, err error) (*T, error) {
	if apperr.Is(err, apperr.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func ref[T any](v T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func ptrs[T any](xs []T) []*T {
	out := make([]*T, len(xs))
	for i := range xs {
		out[i] = &xs[i]
	}
	return out
}

func nextTokenOf(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func classConn(l store.List[store.LiveClass]) *model.ModelLiveClassConnection {
	return &model.ModelLiveClassConnection{Items: ptrs(l.Items), NextToken: nextTokenOf(l.Next)}
}

func enrollmentConn(l store.List[store.Enrollment]) *model.ModelLiveClassEnrollmentConnection {
	return &model.ModelLiveClassEnrollmentConnection{Items: ptrs(l.Items), NextToken: nextTokenOf(l.Next)}
}

func recordingConn(l store.List[store.Recording]) *model.ModelLiveClassRecordingConnection {
	return &model.ModelLiveClassRecordingConnection{Items: ptrs(l.Items), NextToken: nextTokenOf(l.Next)}
}

// hintClasses tells the loaders which keys a page of classes will ask for.
func (r *Resolver) hintClasses(ctx context.Context, cs []store.LiveClass) {
	l := r.loadersFrom(ctx)
	ids := make([]store.ClassID, len(cs))
	users := make([]store.UserID, len(cs))
	for i, c := range cs {
		ids[i], users[i] = c.ID, c.InstructorID
	}
	l.users.Hint(users...)
	l.enrollments.Hint(ids...)
	l.recordings.Hint(ids...)
}

func (r *Resolver) hintEnrollments(ctx context.Context, es []store.Enrollment) {
	hintEnrollments(r.loadersFrom(ctx), es)
}

func hintEnrollments(l *loaders, es []store.Enrollment) {
	for _, e := range es {
		l.users.Hint(e.UserID)
		l.classes.Hint(e.ClassID)
	}
}

func (r *Resolver) hintRecordings(ctx context.Context, rs []store.Recording) {
	l := r.loadersFrom(ctx)
	for _, x := range rs {
		l.classes.Hint(x.ClassID)
	}
}

func userID(p *string) store.UserID {
	if p == nil {
		return ""
	}
	return store.UserID(*p)
}

func classInput(in model.CreateLiveClassInput) classes.ClassInput {
	return classes.ClassInput{
		Title:              in.Title,
		Description:        in.Description,
		InstructorID:       userID(in.InstructorID),
		StartTime:          in.StartTime,
		EndTime:            in.EndTime,
		Duration:           in.Duration,
		Service:            in.AWSService,
		RequiresEnrollment: in.RequiresEnrollment,
		AccessLevel:        in.AccessLevel,
		MaxParticipants:    in.MaxParticipants,
		Category:           in.Category,
		Level:              in.Level,
		Price:              in.Price,
		IsFree:             in.IsFree,
		Tags:               in.Tags,
		Managed: classes.Managed{
			ID:                  in.ID,
			ChimeRoomID:         in.ChimeRoomID,
			IVSChannelARN:       in.IvsChannelArn,
			RecordingS3Key:      in.RecordingS3Key,
			CurrentParticipants: in.CurrentParticipants,
			IsLive:              in.IsLive,
			IsUpcoming:          in.IsUpcoming,
			ReminderSent:        in.ReminderSent,
			NextReminder:        in.NextReminder,
			CreatedAt:           in.CreatedAt,
			UpdatedAt:           in.UpdatedAt,
			Status:              in.Status,
		},
	}
}

func classPatch(in model.UpdateLiveClassInput) classes.ClassPatch {
	var instructor *store.UserID
	if in.InstructorID != nil {
		id := store.UserID(*in.InstructorID)
		instructor = &id
	}
	return classes.ClassPatch{
		Title:              in.Title,
		Description:        in.Description,
		InstructorID:       instructor,
		StartTime:          in.StartTime,
		EndTime:            in.EndTime,
		Duration:           in.Duration,
		Service:            in.AWSService,
		RequiresEnrollment: in.RequiresEnrollment,
		AccessLevel:        in.AccessLevel,
		MaxParticipants:    in.MaxParticipants,
		Category:           in.Category,
		Level:              in.Level,
		Price:              in.Price,
		IsFree:             in.IsFree,
		Tags:               in.Tags,
		TagsSet:            in.Tags != nil,
		Managed: classes.Managed{
			ChimeRoomID:         in.ChimeRoomID,
			IVSChannelARN:       in.IvsChannelArn,
			RecordingS3Key:      in.RecordingS3Key,
			CurrentParticipants: in.CurrentParticipants,
			IsLive:              in.IsLive,
			IsUpcoming:          in.IsUpcoming,
			ReminderSent:        in.ReminderSent,
			NextReminder:        in.NextReminder,
			CreatedAt:           in.CreatedAt,
			UpdatedAt:           in.UpdatedAt,
			Status:              in.Status,
		},
	}
}

func enrollmentPatch(in model.UpdateLiveClassEnrollmentInput) classes.EnrollmentPatch {
	p := classes.EnrollmentPatch{
		Feedback:           in.Feedback,
		Rating:             in.Rating,
		EnrolledAt:         in.EnrolledAt,
		Attended:           in.Attended,
		AttendanceDuration: in.AttendanceDuration,
	}
	if in.UserID != nil {
		u := store.UserID(*in.UserID)
		p.UserID = &u
	}
	if in.LiveClassID != nil {
		c := store.ClassID(*in.LiveClassID)
		p.ClassID = &c
	}
	return p
}

// serverSet rejects a value the client may not choose.
func serverSet(field string, set bool) error {
	if set {
		return apperr.Field(field, "is set by the server; leave it out")
	}
	return nil
}

func userInput(in model.CreateUserInput) auth.UserInput {
	u := auth.UserInput{Name: in.Name}
	if in.ID != nil {
		u.ID = store.UserID(*in.ID)
	}
	if in.Email != nil {
		u.Email = *in.Email
	}
	return u
}

// streamKeyOut is a stored key as the API shows it: without its hash, and
// without the secret, which only createStreamKey's answer carries.
func streamKeyOut(k store.StreamKey) *model.StreamKey {
	out := &model.StreamKey{
		ID:          string(k.ID),
		LiveClassID: string(k.ClassID),
		Prefix:      k.Prefix,
		CreatedAt:   k.CreatedAt,
		RevokedAt:   k.RevokedAt,
	}
	if k.CreatedBy != "" {
		by := string(k.CreatedBy)
		out.CreatedBy = &by
	}
	return out
}
