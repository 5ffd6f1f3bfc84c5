// Package store defines liveclass's persistent records and the interface
// that every database engine implements. The engines live in sub-packages
// (sqlite, postgres) and share one conformance suite (storetest).
package store

import (
	"context"
	"time"
)

// IDs get their own types so that a signature says what it takes.
type (
	UserID       string
	ClassID      string
	EnrollmentID string
	RecordingID  string
)

// Role is a user's role; the same names order a class's AccessLevel.
type Role string

// Roles, from least to most privileged.
const (
	RoleStudent Role = "STUDENT"
	RoleMentor  Role = "MENTOR"
	RoleAdmin   Role = "ADMIN"
)

// Rank orders roles: STUDENT < MENTOR < ADMIN. Unknown roles rank lowest.
func (r Role) Rank() int {
	switch r {
	case RoleStudent:
		return 1
	case RoleMentor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.Rank() > 0 }

// Service says which media plane serves a class: CHIME is an interactive
// room, IVS a broadcast channel (the guide's names, kept for its clients).
type Service string

// Services.
const (
	ServiceChime Service = "CHIME"
	ServiceIVS   Service = "IVS"
)

// Level is a class's difficulty.
type Level string

// Levels.
const (
	LevelBeginner     Level = "BEGINNER"
	LevelIntermediate Level = "INTERMEDIATE"
	LevelAdvanced     Level = "ADVANCED"
)

// Status is where a class is in its lifecycle:
// SCHEDULED → LIVE → ENDED, SCHEDULED → CANCELLED.
type Status string

// Statuses.
const (
	StatusScheduled Status = "SCHEDULED"
	StatusLive      Status = "LIVE"
	StatusEnded     Status = "ENDED"
	StatusCancelled Status = "CANCELLED"
)

// User is an account.
type User struct {
	ID           UserID
	Email        string // stored lower-cased; unique
	Name         string
	Role         Role
	PasswordHash string // empty: the account cannot sign in with a password
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// LiveClass is a scheduled class.
type LiveClass struct {
	ID                  ClassID
	Title               string
	Description         *string
	InstructorID        UserID
	StartTime           time.Time
	EndTime             time.Time
	Duration            int // minutes
	Service             Service
	ChimeRoomID         *string
	IVSChannelARN       *string
	RecordingS3Key      *string
	RequiresEnrollment  bool
	AccessLevel         Role
	MaxParticipants     int
	CurrentParticipants int // people in the live class now, kept by the media plane
	EnrolledCount       int // seats taken by enrollments, kept by the store
	Category            string
	Level               Level
	Price               float64
	IsFree              bool
	Tags                []string
	Status              Status
	ReminderSent        bool
	NextReminder        *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

// IsLive reports whether the class is live; it follows status alone.
func (c *LiveClass) IsLive() bool { return c.Status == StatusLive }

// IsUpcoming reports whether the class is scheduled and has not started.
func (c *LiveClass) IsUpcoming(now time.Time) bool {
	return c.Status == StatusScheduled && c.StartTime.After(now)
}

// Enrollment is a user's seat in a class.
type Enrollment struct {
	ID                 EnrollmentID
	UserID             UserID
	ClassID            ClassID
	EnrolledAt         time.Time
	Attended           *bool
	AttendanceDuration *int // minutes
	Feedback           *string
	Rating             *int // 1–5
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Recording is a stored recording of a class.
type Recording struct {
	ID            RecordingID
	ClassID       ClassID
	S3Key         string
	S3Bucket      string
	Duration      int // seconds
	ThumbnailURL  *string
	TranscriptURL *string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Session is a signed-in browser or API client. Only a hash of the bearer
// token is stored, so a leaked database does not leak live sessions.
type Session struct {
	TokenHash string
	UserID    UserID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Page asks for one page of a list. After is the opaque cursor a previous
// page returned as Next; empty for the first page.
type Page struct {
	Limit int
	After string
	Desc  bool
}

// ClassQuery selects classes. InstructorID, when set, uses the byInstructor
// index and sorts by start time. Now is the clock used by isUpcoming filters.
type ClassQuery struct {
	Filter       *Filter
	InstructorID UserID
	Now          time.Time
	Page         Page
}

// EnrollmentQuery selects enrollments by user, by class, or both.
type EnrollmentQuery struct {
	Filter  *Filter
	UserID  UserID
	ClassID ClassID
	Page    Page
}

// RecordingQuery selects recordings, optionally of one class.
type RecordingQuery struct {
	Filter  *Filter
	ClassID ClassID
	Page    Page
}

// UserQuery selects users.
type UserQuery struct {
	Filter *Filter
	Page   Page
}

// List is one page of results; Next is empty on the last page.
type List[T any] struct {
	Items []T
	Next  string
}

// Users stores accounts.
type Users interface {
	// CreateUser stores u; a taken email (case-insensitive) is a Conflict.
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id UserID) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	// UsersByIDs returns the users that exist, in no particular order.
	UsersByIDs(ctx context.Context, ids []UserID) ([]User, error)
	ListUsers(ctx context.Context, q UserQuery) (List[User], error)
	UpdateUser(ctx context.Context, u User) error
	DeleteUser(ctx context.Context, id UserID) error
	CountUsers(ctx context.Context) (int, error)
}

// Sessions stores sign-ins.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash string) (Session, error)
	DeleteSession(ctx context.Context, hash string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) error
	// SessionUserByHash returns a session with its user in one read: it
	// runs on every authenticated request.
	SessionUserByHash(ctx context.Context, hash string) (Session, User, error)
	// DeleteUserSessions signs a user out everywhere (password reset,
	// role change).
	DeleteUserSessions(ctx context.Context, id UserID) error
}

// Classes stores live classes.
type Classes interface {
	CreateClass(ctx context.Context, c *LiveClass) error
	ClassByID(ctx context.Context, id ClassID) (LiveClass, error)
	// ClassForUser returns the class and whether user u is enrolled in it,
	// in one read (NotFound when the class does not exist): every join
	// token grant needs both, and a second read is a second round trip to
	// PostgreSQL.
	ClassForUser(ctx context.Context, id ClassID, u UserID) (LiveClass, bool, error)
	ClassesByIDs(ctx context.Context, ids []ClassID) ([]LiveClass, error)
	ListClasses(ctx context.Context, q ClassQuery) (List[LiveClass], error)
	// UpdateClass writes every client-editable and lifecycle field of c;
	// it never touches EnrolledCount or CurrentParticipants.
	UpdateClass(ctx context.Context, c LiveClass) error
	// SetCurrentParticipants records how many people are in the live class.
	SetCurrentParticipants(ctx context.Context, id ClassID, n int) error
	// DeleteClass removes the class with its enrollments and recordings.
	DeleteClass(ctx context.Context, id ClassID) error
}

// Enrollments stores seats.
type Enrollments interface {
	// Enroll takes a seat atomically: it fails with a Conflict when the
	// class is full (EnrolledCount reached MaxParticipants) or the user is
	// already enrolled, and with NotFound when the class does not exist.
	// N concurrent calls for M free seats admit exactly M.
	Enroll(ctx context.Context, e *Enrollment) error
	EnrollmentByID(ctx context.Context, id EnrollmentID) (Enrollment, error)
	EnrollmentByUserClass(ctx context.Context, u UserID, c ClassID) (Enrollment, error)
	ListEnrollments(ctx context.Context, q EnrollmentQuery) (List[Enrollment], error)
	// EnrollmentsByClassIDs returns all enrollments of the given classes in
	// one query, so that a list page resolves nested enrollments without N+1.
	EnrollmentsByClassIDs(ctx context.Context, ids []ClassID) ([]Enrollment, error)
	UpdateEnrollment(ctx context.Context, e Enrollment) error
	// Unenroll deletes the enrollment and frees its seat.
	Unenroll(ctx context.Context, id EnrollmentID) error
}

// Recordings stores recordings.
type Recordings interface {
	CreateRecording(ctx context.Context, r *Recording) error
	RecordingByID(ctx context.Context, id RecordingID) (Recording, error)
	ListRecordings(ctx context.Context, q RecordingQuery) (List[Recording], error)
	RecordingsByClassIDs(ctx context.Context, ids []ClassID) ([]Recording, error)
	UpdateRecording(ctx context.Context, r Recording) error
	DeleteRecording(ctx context.Context, id RecordingID) error
}

// Store is the whole database.
type Store interface {
	Users
	Sessions
	Classes
	Enrollments
	Recordings
	Live
	StreamKeys
	AudienceBans
	// Ping reports whether the database answers (readiness).
	Ping(ctx context.Context) error
	Close() error
}
