// Package classes holds liveclass's domain rules for classes, enrollments
// and recordings: validation, the lifecycle, who may do what (the guide's
// @auth rules made real) and when a join token is granted. It knows nothing
// of HTTP, GraphQL or media; callers pass the Actor who is asking.
package classes

import (
	"time"

	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// EventKind says what happened to a record.
type EventKind string

// Event kinds, matching Amplify's onCreate / onUpdate / onDelete.
const (
	Created EventKind = "create"
	Updated EventKind = "update"
	Deleted EventKind = "delete"
)

// Event is a change to one record; exactly one of the pointers is set.
// Subscribers decide for themselves who may see it.
type Event struct {
	Kind       EventKind
	Class      *store.LiveClass
	Enrollment *store.Enrollment
	Recording  *store.Recording
	User       *store.User
}

// Publisher receives every change after it is stored. It must not block.
type Publisher interface {
	Publish(Event)
}

// TokenSigner signs join tokens (jointoken.Signer in production).
type TokenSigner interface {
	Sign(jointoken.Claims) (string, error)
}

// Options configures a Service.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// PublicURL is the server's base URL, used in join URLs.
	PublicURL string
	// JoinGrace is how long after a class's end a join token stays valid.
	JoinGrace time.Duration
	// JoinEarly is how long before the start a join token is granted.
	JoinEarly time.Duration
	// NewID makes record IDs; random UUIDs when nil.
	NewID func() string
}

// ClassInput is what a client sets when creating a class. Fields the
// system manages (status, participants, room ids, reminders, timestamps)
// are not in it.
type ClassInput struct {
	Title              string
	Description        *string
	InstructorID       store.UserID // only an admin may name someone else
	StartTime          time.Time
	EndTime            time.Time
	Duration           *int // computed from start and end when nil
	Service            store.Service
	RequiresEnrollment bool
	AccessLevel        store.Role
	MaxParticipants    int
	Category           string
	Level              store.Level
	Price              float64
	IsFree             bool
	Tags               []string
	// Managed holds the system-managed fields an Amplify client sends
	// because its generated input type requires them.
	Managed Managed
}

// Managed are the fields of Amplify's Create/UpdateLiveClassInput that the
// server sets. A client may send them, so that a client generated from the
// guide's schema runs unchanged, but only with the value the server would
// set (absent, or equal to the stored or computed value); anything else is
// a BAD_USER_INPUT error naming the field. Status is the exception: an
// update may set it to CANCELLED.
type Managed struct {
	ID                  *string
	ChimeRoomID         *string
	IVSChannelARN       *string
	RecordingS3Key      *string
	CurrentParticipants *int
	IsLive              *bool
	IsUpcoming          *bool
	ReminderSent        *bool
	NextReminder        *time.Time
	CreatedAt           *time.Time
	UpdatedAt           *time.Time
	Status              *store.Status
}

// ClassPatch changes some fields of a class; nil leaves a field alone.
type ClassPatch struct {
	Title              *string
	Description        *string
	InstructorID       *store.UserID
	StartTime          *time.Time
	EndTime            *time.Time
	Duration           *int
	Service            *store.Service
	RequiresEnrollment *bool
	AccessLevel        *store.Role
	MaxParticipants    *int
	Category           *string
	Level              *store.Level
	Price              *float64
	IsFree             *bool
	Tags               []string // nil leaves tags alone; empty clears them
	TagsSet            bool     // true when Tags was given, even empty
	// Managed.Status may be CANCELLED to cancel the class.
	Managed Managed
}

// EnrollmentPatch is what an enrolled student changes after the class.
// The other fields of Amplify's UpdateLiveClassEnrollmentInput are managed
// by the server and must be absent or equal to the stored values.
type EnrollmentPatch struct {
	Feedback *string
	Rating   *int

	UserID             *store.UserID
	ClassID            *store.ClassID
	EnrolledAt         *time.Time
	Attended           *bool
	AttendanceDuration *int
}

// RecordingInput creates or changes a recording; nil fields are left
// alone on update (S3Key, S3Bucket and Duration are required on create).
type RecordingInput struct {
	ClassID       store.ClassID
	S3Key         *string
	S3Bucket      *string
	Duration      *int
	ThumbnailURL  *string
	TranscriptURL *string
}

// JoinGrant is what generateLiveClassToken returns.
type JoinGrant struct {
	Token     string
	ExpiresAt time.Time
	Service   store.Service
	JoinURL   string
	Role      jointoken.Role
}
