package classes

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// MaxPageSize is the largest page a list may ask for.
const MaxPageSize = 100

// tokenLifetime caps how long a join token lives even for a long class:
// a client that reconnects later asks for a fresh one.
const tokenLifetime = time.Hour

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
	if opt.NewID == nil {
		opt.NewID = func() string { return uuid.NewString() }
	}
	return &Service{st: st, pub: pub, sign: sign, opt: opt}
}

// Now is the service's clock, for callers that compute isUpcoming.
func (s *Service) Now() time.Time { return s.opt.Now() }

func (s *Service) publish(e Event) {
	if s.pub != nil {
		s.pub.Publish(e)
	}
}

// signedIn fails with Unauthenticated for the anonymous actor.
func signedIn(a auth.Actor) error {
	if a.Anonymous() {
		return apperr.New(apperr.Unauthenticated, "sign in first")
	}
	return nil
}

// hosts reports whether a runs class c: its instructor or an admin.
func hosts(a auth.Actor, c store.LiveClass) bool {
	return a.Is(store.RoleAdmin) || (!a.Anonymous() && a.UserID == c.InstructorID)
}

// namedClass reads the class an input names by its liveClassId: one that
// does not exist is the input's fault, and the error says which field.
func (s *Service) namedClass(ctx context.Context, id store.ClassID) (store.LiveClass, error) {
	c, err := s.st.ClassByID(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		return store.LiveClass{}, apperr.Wrap(apperr.NotFound, err, "liveClassId: no such class")
	}
	return c, err
}

// hostedClass reads the class an input names, for a change that only the
// people who run it may make; what names what they manage, in the refusal.
func (s *Service) hostedClass(ctx context.Context, a auth.Actor, id store.ClassID, what string) (store.LiveClass, error) {
	c, err := s.namedClass(ctx, id)
	if err != nil {
		return store.LiveClass{}, err
	}
	if !hosts(a, c) {
		return store.LiveClass{}, apperr.New(apperr.Forbidden, "only the class's instructor or an admin manages its %s", what)
	}
	return c, nil
}

// checkPage validates a page request and fills in the default size.
func checkPage(p *store.Page) error {
	if p.Limit < 0 || p.Limit > MaxPageSize {
		return apperr.Field("limit", "must be between 1 and %d", MaxPageSize)
	}
	if p.Limit == 0 {
		p.Limit = MaxPageSize
	}
	return nil
}

// GetClass returns a class; anyone may read classes.
func (s *Service) GetClass(ctx context.Context, a auth.Actor, id store.ClassID) (store.LiveClass, error) {
	return s.st.ClassByID(ctx, id)
}

// ListClasses lists classes; anyone may. q.Now is set by the service.
func (s *Service) ListClasses(ctx context.Context, a auth.Actor, q store.ClassQuery) (store.List[store.LiveClass], error) {
	if err := checkPage(&q.Page); err != nil {
		return store.List[store.LiveClass]{}, err
	}
	q.Now = s.opt.Now()
	return s.st.ListClasses(ctx, q)
}

// ClassesByIDs returns the classes that exist among ids (for loaders).
func (s *Service) ClassesByIDs(ctx context.Context, a auth.Actor, ids []store.ClassID) ([]store.LiveClass, error) {
	return s.st.ClassesByIDs(ctx, ids)
}

// CreateClass creates a class; MENTOR (as instructor) and ADMIN may.
func (s *Service) CreateClass(ctx context.Context, a auth.Actor, in ClassInput) (store.LiveClass, error) {
	if err := signedIn(a); err != nil {
		return store.LiveClass{}, err
	}
	if !a.Is(store.RoleMentor) && !a.Is(store.RoleAdmin) {
		return store.LiveClass{}, apperr.New(apperr.Forbidden, "only mentors and admins create classes")
	}
	now := s.opt.Now()
	c := store.LiveClass{
		ID:                 store.ClassID(s.opt.NewID()),
		Title:              in.Title,
		Description:        in.Description,
		InstructorID:       a.UserID,
		StartTime:          in.StartTime,
		EndTime:            in.EndTime,
		Service:            in.Service,
		RequiresEnrollment: in.RequiresEnrollment,
		AccessLevel:        in.AccessLevel,
		MaxParticipants:    in.MaxParticipants,
		Category:           in.Category,
		Level:              in.Level,
		Price:              in.Price,
		IsFree:             in.IsFree,
		Tags:               in.Tags,
		Status:             store.StatusScheduled,
		CreatedAt:          now,
		UpdatedAt:          now,
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	if in.InstructorID != "" && in.InstructorID != a.UserID {
		if !a.Is(store.RoleAdmin) {
			return store.LiveClass{}, apperr.New(apperr.Forbidden, "only an admin may make someone else the instructor")
		}
		if err := s.checkInstructor(ctx, in.InstructorID); err != nil {
			return store.LiveClass{}, err
		}
		c.InstructorID = in.InstructorID
	}
	c.Duration = minutesBetween(c.StartTime, c.EndTime)
	if in.Duration != nil && *in.Duration != c.Duration {
		return store.LiveClass{}, apperr.Field("duration", "must equal the %d minutes between startTime and endTime", c.Duration)
	}
	if err := validateClass(c); err != nil {
		return store.LiveClass{}, err
	}
	setRoomIDs(&c)
	m := in.Managed
	if m.ID != nil {
		return store.LiveClass{}, apperr.Field("id", "is assigned by the server")
	}
	if err := checkManaged(m, c, now); err != nil {
		return store.LiveClass{}, err
	}
	if m.Status != nil && *m.Status != c.Status {
		return store.LiveClass{}, apperr.Field("status", "a new class is SCHEDULED")
	}
	if err := s.st.CreateClass(ctx, &c); err != nil {
		return store.LiveClass{}, err
	}
	s.publish(Event{Kind: Created, Class: &c})
	return c, nil
}

// checkInstructor makes sure id names a user who may teach.
func (s *Service) checkInstructor(ctx context.Context, id store.UserID) error {
	u, err := s.st.UserByID(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		return apperr.Field("instructorId", "no such user")
	}
	if err != nil {
		return err
	}
	if u.Role != store.RoleMentor && u.Role != store.RoleAdmin {
		return apperr.Field("instructorId", "the instructor must be a mentor or an admin")
	}
	return nil
}

// setRoomIDs names the class's media room or channel. The formats are
// documented in docs/api.md; the media plane looks rooms up by class id.
func setRoomIDs(c *store.LiveClass) {
	c.ChimeRoomID, c.IVSChannelARN = nil, nil
	switch c.Service {
	case store.ServiceChime:
		id := "room-" + string(c.ID)
		c.ChimeRoomID = &id
	case store.ServiceIVS:
		arn := "arn:liveclass:ivs:local:channel/" + string(c.ID)
		c.IVSChannelARN = &arn
	}
}

// checkManaged rejects system-managed fields sent with a value other than
// the one the server holds for c.
func checkManaged(m Managed, c store.LiveClass, now time.Time) error {
	switch {
	case m.ChimeRoomID != nil && !eqPtr(m.ChimeRoomID, c.ChimeRoomID):
		return managed("chimeRoomId")
	case m.IVSChannelARN != nil && !eqPtr(m.IVSChannelARN, c.IVSChannelARN):
		return managed("ivsChannelArn")
	case m.RecordingS3Key != nil && !eqPtr(m.RecordingS3Key, c.RecordingS3Key):
		return managed("recordingS3Key")
	case m.CurrentParticipants != nil && *m.CurrentParticipants != c.CurrentParticipants:
		return managed("currentParticipants")
	case m.IsLive != nil && *m.IsLive != c.IsLive():
		return managed("isLive")
	case m.IsUpcoming != nil && *m.IsUpcoming != c.IsUpcoming(now):
		return managed("isUpcoming")
	case m.ReminderSent != nil && *m.ReminderSent != c.ReminderSent:
		return managed("reminderSent")
	case m.NextReminder != nil && (c.NextReminder == nil || !m.NextReminder.Equal(*c.NextReminder)):
		return managed("nextReminder")
	case m.CreatedAt != nil && !m.CreatedAt.Equal(c.CreatedAt):
		return managed("createdAt")
	case m.UpdatedAt != nil && !m.UpdatedAt.Equal(c.UpdatedAt):
		return managed("updatedAt")
	}
	return nil
}

func managed(field string) error {
	return apperr.Field(field, "is managed by the server: leave it out or send the current value")
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// UpdateClass changes a class; its instructor and ADMIN may.
func (s *Service) UpdateClass(ctx context.Context, a auth.Actor, id store.ClassID, p ClassPatch) (store.LiveClass, error) {
	if err := signedIn(a); err != nil {
		return store.LiveClass{}, err
	}
	if !a.Is(store.RoleMentor) && !a.Is(store.RoleAdmin) {
		return store.LiveClass{}, apperr.New(apperr.Forbidden, "only mentors and admins change classes")
	}
	old, err := s.st.ClassByID(ctx, id)
	if err != nil {
		return store.LiveClass{}, err
	}
	if !hosts(a, old) {
		return store.LiveClass{}, apperr.New(apperr.Forbidden, "only the class's instructor or an admin may change it")
	}
	now := s.opt.Now()
	if p.Managed.ID != nil && *p.Managed.ID != string(id) {
		return store.LiveClass{}, managed("id")
	}
	if err := checkManaged(p.Managed, old, now); err != nil {
		return store.LiveClass{}, err
	}
	c := old
	set(&c.Title, p.Title)
	if p.Description != nil {
		c.Description = p.Description
	}
	if p.InstructorID != nil && *p.InstructorID != c.InstructorID {
		if !a.Is(store.RoleAdmin) {
			return store.LiveClass{}, apperr.New(apperr.Forbidden, "only an admin may change the instructor")
		}
		if err := s.checkInstructor(ctx, *p.InstructorID); err != nil {
			return store.LiveClass{}, err
		}
		c.InstructorID = *p.InstructorID
	}
	set(&c.StartTime, p.StartTime)
	set(&c.EndTime, p.EndTime)
	set(&c.Service, p.Service)
	set(&c.RequiresEnrollment, p.RequiresEnrollment)
	set(&c.AccessLevel, p.AccessLevel)
	set(&c.MaxParticipants, p.MaxParticipants)
	set(&c.Category, p.Category)
	set(&c.Level, p.Level)
	set(&c.Price, p.Price)
	set(&c.IsFree, p.IsFree)
	if p.TagsSet || p.Tags != nil {
		c.Tags = p.Tags
		if c.Tags == nil {
			c.Tags = []string{}
		}
	}

	rescheduled := !c.StartTime.Equal(old.StartTime) || !c.EndTime.Equal(old.EndTime)
	if rescheduled && (old.Status == store.StatusEnded || old.Status == store.StatusCancelled) {
		return store.LiveClass{}, apperr.New(apperr.Conflict, "a %s class cannot be rescheduled", old.Status)
	}
	c.Duration = minutesBetween(c.StartTime, c.EndTime)
	if p.Duration != nil && *p.Duration != c.Duration {
		return store.LiveClass{}, apperr.Field("duration", "must equal the %d minutes between startTime and endTime", c.Duration)
	}
	if st := p.Managed.Status; st != nil && *st != old.Status {
		if *st != store.StatusCancelled {
			return store.LiveClass{}, apperr.Field("status", "may only be set to CANCELLED; the class goes LIVE and ENDED by itself")
		}
		if old.Status != store.StatusScheduled {
			return store.LiveClass{}, apperr.New(apperr.Conflict, "only a SCHEDULED class can be cancelled; this one is %s", old.Status)
		}
		c.Status = store.StatusCancelled
	}
	if c.Service != old.Service {
		if old.Status != store.StatusScheduled {
			return store.LiveClass{}, apperr.New(apperr.Conflict, "awsService can only change while the class is SCHEDULED")
		}
		setRoomIDs(&c)
	}
	if err := validateClass(c); err != nil {
		return store.LiveClass{}, err
	}
	if c.MaxParticipants < old.EnrolledCount {
		return store.LiveClass{}, &apperr.Error{Kind: apperr.Conflict, Field: "maxParticipants",
			Message: "is below the number of students already enrolled"}
	}
	c.UpdatedAt = now
	if err := s.st.UpdateClass(ctx, c); err != nil {
		return store.LiveClass{}, err
	}
	s.publish(Event{Kind: Updated, Class: &c})
	return c, nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// DeleteClass deletes a class; its instructor and ADMIN may.
func (s *Service) DeleteClass(ctx context.Context, a auth.Actor, id store.ClassID) (store.LiveClass, error) {
	if err := signedIn(a); err != nil {
		return store.LiveClass{}, err
	}
	if !a.Is(store.RoleMentor) && !a.Is(store.RoleAdmin) {
		return store.LiveClass{}, apperr.New(apperr.Forbidden, "only mentors and admins delete classes")
	}
	c, err := s.st.ClassByID(ctx, id)
	if err != nil {
		return store.LiveClass{}, err
	}
	if !hosts(a, c) {
		return store.LiveClass{}, apperr.New(apperr.Forbidden, "only the class's instructor or an admin may delete it")
	}
	if err := s.st.DeleteClass(ctx, id); err != nil {
		return store.LiveClass{}, err
	}
	s.publish(Event{Kind: Deleted, Class: &c})
	return c, nil
}

// ClassChanged re-reads a class that something other than this service
// changed (the media plane: status, participants) and publishes it, so that
// onUpdateLiveClass subscribers see it.
func (s *Service) ClassChanged(ctx context.Context, id store.ClassID) error {
	c, err := s.st.ClassByID(ctx, id)
	if err != nil {
		return err
	}
	s.publish(Event{Kind: Updated, Class: &c})
	return nil
}
