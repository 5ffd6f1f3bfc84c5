// Package room is the live classroom: who is in a class, with which role
// and media state, and everything they do together there — chat, raised
// hands, host controls, breakout rooms, reactions, polls — together with
// the class's lifecycle (LIVE, ENDED) and attendance. It knows neither
// Pion nor HTTP: media goes out through Media (the sfu), records through
// Store (the database), and events through one Sink per participant (the
// signalling connection).
//
// Concurrency: a Room is used from one goroutine per connection. Its state
// sits behind one mutex. Events are handed to sinks while that mutex is
// held, so that every participant sees changes in the order they happened;
// that is why Sink.Deliver must never block nor call back into the room.
// Media and Store calls are made after the state mutex is released (the
// sfu calls back into the room from its own goroutines, and a database
// may be slow), in the order the changes happened.
package room

import (
	"context"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

// ParticipantID names a participant within a class. There is one per user
// per class: it is the user's ID, so that a second tab replaces the first
// connection instead of adding a person.
type ParticipantID string

// GroupID names where a participant is: Main ("") or a breakout room
// "b1".."bN".
type GroupID string

// Main is the main room.
const Main GroupID = ""

// PollID names a poll.
type PollID = store.PollID

// MediaState is what a participant publishes.
type MediaState struct {
	Mic    bool `json:"mic"`
	Camera bool `json:"camera"`
	Screen bool `json:"screen"`
}

// Media sources, as in track IDs "<participant>/<source>".
const (
	SourceMic    = "mic"
	SourceCamera = "camera"
	SourceScreen = "screen"
)

// Media is what the room asks of the media plane (implemented by sfu).
// The room calls it without holding its state lock but in the order of its
// changes, so an implementation must return promptly and must not call
// the room's changing methods from inside a call (ActiveSpeaker and Quality
// are safe).
type Media interface {
	// SetGroup makes the sfu forward only between participants of the same
	// group (breakout isolation; a visiting host is in the visited group).
	SetGroup(class store.ClassID, p ParticipantID, g GroupID)
	// Block stops (or resumes) forwarding one source of a participant:
	// the server-side half of a host's mute and stop-video.
	Block(class store.ClassID, p ParticipantID, source string, blocked bool)
	// Disconnect closes the participant's media connections.
	Disconnect(class store.ClassID, p ParticipantID)
}

// Sink receives the events for one connected participant.
type Sink interface {
	// Deliver queues e for the participant. It is called with the room's
	// lock held, so it must not block (a connection that cannot keep up
	// drops or closes itself) and must not call the Room or Manager.
	Deliver(e Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Deliver calls f(e).
func (f SinkFunc) Deliver(e Event) { f(e) }

// Store is the part of store.Store the room writes to; every store engine
// satisfies it.
type Store interface {
	RecordJoin(ctx context.Context, a *store.Attendance) error
	RecordLeave(ctx context.Context, id store.AttendanceID, at time.Time) error
	AttendanceOf(ctx context.Context, class store.ClassID, user store.UserID) ([]store.Attendance, error)
	UpdateAttendance(ctx context.Context, class store.ClassID, user store.UserID, attended bool, minutes int) error
	SaveChat(ctx context.Context, m *store.ChatMessage) error
	SavePoll(ctx context.Context, p *store.Poll) error
	ClosePoll(ctx context.Context, id store.PollID, at time.Time) error
	SaveVote(ctx context.Context, v store.PollVote) error
	SetClassStatus(ctx context.Context, id store.ClassID, s store.Status) error
	SetCurrentParticipants(ctx context.Context, id store.ClassID, n int) error
}

// Every store engine is a room Store as it is.
var _ Store = store.Store(nil)
