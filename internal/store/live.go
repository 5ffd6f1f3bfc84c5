package store

import (
	"context"
	"time"
)

// IDs of the live classroom's records.
type (
	AttendanceID  string
	ChatMessageID string
	PollID        string
)

// Attendance is one stay of a user in a live class: from joining the room
// to leaving it. LeftAt is nil while the user is still inside (or when the
// server stopped before the user left).
type Attendance struct {
	ID       AttendanceID
	ClassID  ClassID
	UserID   UserID
	JoinedAt time.Time
	LeftAt   *time.Time
}

// ChatMessage is one message sent in a live class. GroupID is the room the
// sender was in ("" the main room, "b1"… a breakout room). A message is for
// everyone in that group unless ToUser names one recipient or ToHosts sends
// it to the hosts only.
type ChatMessage struct {
	ID       ChatMessageID
	ClassID  ClassID
	GroupID  string
	FromUser UserID
	ToUser   UserID // empty: not a direct message
	ToHosts  bool
	Text     string
	SentAt   time.Time
}

// Poll is a question asked in a live class. ClosedAt is nil while it is open.
type Poll struct {
	ID        PollID
	ClassID   ClassID
	Question  string
	Options   []string
	Multiple  bool
	CreatedBy UserID
	CreatedAt time.Time
	ClosedAt  *time.Time
}

// PollVote is one user's answer to a poll: the indexes of the chosen options.
type PollVote struct {
	PollID  PollID
	UserID  UserID
	Choices []int
	VotedAt time.Time
}

// ChatQuery selects a class's chat messages in the order they were sent.
type ChatQuery struct {
	ClassID ClassID
	Page    Page
}

// Live stores what happens inside a live class: attendance, chat, polls
// and the class's status as the room moves it.
type Live interface {
	// RecordJoin stores the start of a stay, filling a missing ID.
	RecordJoin(ctx context.Context, a *Attendance) error
	// RecordLeave closes the stay; closing it again is NotFound.
	RecordLeave(ctx context.Context, id AttendanceID, at time.Time) error
	// AttendanceOf returns a user's stays in a class, oldest first.
	AttendanceOf(ctx context.Context, class ClassID, user UserID) ([]Attendance, error)
	// UpdateAttendance sets the enrollment's attended flag and minutes;
	// NotFound when the user holds no enrollment in the class.
	UpdateAttendance(ctx context.Context, class ClassID, user UserID, attended bool, minutes int) error
	// SaveChat stores a message, filling a missing ID.
	SaveChat(ctx context.Context, m *ChatMessage) error
	// DeleteChat marks a message of the class deleted (moderation): it stays
	// stored, but ListChat no longer returns it. NotFound when the class
	// holds no such message, or it is already deleted.
	DeleteChat(ctx context.Context, class ClassID, id ChatMessageID, at time.Time) error
	// ListChat returns a class's messages that are not deleted, oldest first.
	ListChat(ctx context.Context, q ChatQuery) (List[ChatMessage], error)
	// SavePoll stores a new poll, filling a missing ID.
	SavePoll(ctx context.Context, p *Poll) error
	// ClosePoll closes an open poll; NotFound when there is no such open poll.
	ClosePoll(ctx context.Context, id PollID, at time.Time) error
	// SaveVote stores a vote; a second vote of the same user is a Conflict.
	SaveVote(ctx context.Context, v PollVote) error
	// PollsOf returns a class's polls, oldest first.
	PollsOf(ctx context.Context, class ClassID) ([]Poll, error)
	// VotesOf returns a poll's votes, oldest first.
	VotesOf(ctx context.Context, id PollID) ([]PollVote, error)
	// SetClassStatus moves the class's status and updatedAt, touching no
	// other field, so that it never races an edit of the class.
	SetClassStatus(ctx context.Context, id ClassID, s Status) error
}
