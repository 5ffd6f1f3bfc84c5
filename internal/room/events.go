package room

import (
	"time"

	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// Event is something a participant is told. Every event is a struct with
// exported, json-tagged fields and a Type field that holds its protocol
// name (docs/protocol.md), so json.Marshal of the value is the message.
type Event interface {
	// EventType is the protocol name of the event, as in its Type field.
	EventType() string
}

// Protocol names of the events.
const (
	TypeParticipantJoined  = "participant.joined"
	TypeParticipantLeft    = "participant.left"
	TypeParticipantUpdated = "participant.updated"
	TypeChat               = "chat"
	TypeHands              = "hands"
	TypeReaction           = "reaction"
	TypeSpeaker            = "speaker"
	TypeQuality            = "quality"
	TypeBreakouts          = "breakouts"
	TypeBreakoutBroadcast  = "breakouts.broadcast"
	TypePoll               = "poll"
	TypePollResults        = "poll.results"
	TypeMuted              = "muted"
	TypeVideoStopped       = "videoStopped"
	TypeRemoved            = "removed"
	TypeLocked             = "locked"
	TypeEnded              = "ended"
	TypeReplaced           = "replaced"
)

// Participant is a participant as others see it.
type Participant struct {
	ID       ParticipantID  `json:"id"`
	Name     string         `json:"name"`
	Role     jointoken.Role `json:"role"`
	Media    MediaState     `json:"media"`
	Hand     bool           `json:"hand"`
	Group    GroupID        `json:"group"`
	JoinedAt time.Time      `json:"joinedAt"`
	// Conn tells this connection from a later one of the same participant
	// (see Manager.LeaveConn); it is not sent to clients.
	Conn uint64 `json:"-"`
}

// IsHost reports whether the participant hosts the class.
func (p Participant) IsHost() bool { return p.Role == jointoken.RoleHost }

// ParticipantJoined tells that someone came in.
type ParticipantJoined struct {
	Type        string      `json:"type"`
	Participant Participant `json:"participant"`
}

// Reasons a participant left.
const (
	LeftLeft    = "left"
	LeftRemoved = "removed"
)

// ParticipantLeft tells that someone went out.
type ParticipantLeft struct {
	Type        string        `json:"type"`
	Participant ParticipantID `json:"participant"`
	Reason      string        `json:"reason"`
}

// ParticipantUpdated tells a change of someone's media, hand or group.
type ParticipantUpdated struct {
	Type        string      `json:"type"`
	Participant Participant `json:"participant"`
}

// ChatMessage is a chat message as its recipients see it. To is
// "everyone", "hosts" or a participant ID.
type ChatMessage struct {
	ID       store.ChatMessageID `json:"id"`
	From     ParticipantID       `json:"from"`
	FromName string              `json:"fromName"`
	To       string              `json:"to"`
	Group    GroupID             `json:"group"`
	Text     string              `json:"text"`
	SentAt   time.Time           `json:"sentAt"`
}

// Chat carries one message to those it is for.
type Chat struct {
	Type string `json:"type"`
	ChatMessage
}

// Hands is the raised-hand queue in the order hands went up (hosts only).
type Hands struct {
	Type  string          `json:"type"`
	Queue []ParticipantID `json:"queue"`
}

// Reaction is an emoji shown briefly on the sender's tile.
type Reaction struct {
	Type        string        `json:"type"`
	Participant ParticipantID `json:"participant"`
	Emoji       string        `json:"emoji"`
}

// Speaker names the active speaker.
type Speaker struct {
	Type        string        `json:"type"`
	Participant ParticipantID `json:"participant"`
}

// Quality is a participant's connection quality, 0 (lost) to 3 (good).
type Quality struct {
	Type        string        `json:"type"`
	Participant ParticipantID `json:"participant"`
	Level       int           `json:"level"`
}

// BreakoutGroup is one breakout room and who is in it.
type BreakoutGroup struct {
	ID           GroupID         `json:"id"`
	Participants []ParticipantID `json:"participants"`
}

// Breakouts is the breakout rooms' state: Groups is empty when there are
// none; TimerEndsAt, when set, is when they close; You is the recipient's
// group.
type Breakouts struct {
	Type        string          `json:"type"`
	Groups      []BreakoutGroup `json:"groups"`
	TimerEndsAt *time.Time      `json:"timerEndsAt"`
	You         GroupID         `json:"you"`
}

// BreakoutBroadcast is a host's message into every room.
type BreakoutBroadcast struct {
	Type string        `json:"type"`
	From ParticipantID `json:"from"`
	Text string        `json:"text"`
}

// PollView is a poll as a participant sees it. YourVote is the
// recipient's own vote, if any.
type PollView struct {
	ID       PollID   `json:"id"`
	Question string   `json:"question"`
	Options  []string `json:"options"`
	Multiple bool     `json:"multiple"`
	Closed   bool     `json:"closed"`
	YourVote []int    `json:"yourVote,omitempty"`
}

// Poll tells that a poll opened or closed.
type Poll struct {
	Type string   `json:"type"`
	Poll PollView `json:"poll"`
}

// PollResults counts the votes of each option: live to hosts, and to
// everyone once the poll closes.
type PollResults struct {
	Type   string `json:"type"`
	Poll   PollID `json:"poll"`
	Counts []int  `json:"counts"`
	Voters int    `json:"voters"`
}

// Muted tells a participant that a host muted them.
type Muted struct {
	Type string        `json:"type"`
	By   ParticipantID `json:"by"`
}

// VideoStopped tells a participant that a host stopped their camera.
type VideoStopped struct {
	Type string        `json:"type"`
	By   ParticipantID `json:"by"`
}

// Removed tells a participant that a host removed them; the connection
// should close, and the same token cannot join again.
type Removed struct {
	Type string        `json:"type"`
	By   ParticipantID `json:"by"`
}

// Locked tells the room's locks: Room refuses new attendees, Mics keeps
// attendees from unmuting.
type Locked struct {
	Type string `json:"type"`
	Room bool   `json:"room"`
	Mics bool   `json:"mics"`
}

// Ended tells that the class is over; the connection should close.
type Ended struct {
	Type string `json:"type"`
}

// Replaced tells a connection that the same participant joined from
// elsewhere; the connection should close without leaving.
type Replaced struct {
	Type string `json:"type"`
}

// EventType implements Event.
func (ParticipantJoined) EventType() string { return TypeParticipantJoined }

// EventType implements Event.
func (ParticipantLeft) EventType() string { return TypeParticipantLeft }

// EventType implements Event.
func (ParticipantUpdated) EventType() string { return TypeParticipantUpdated }

// EventType implements Event.
func (Chat) EventType() string { return TypeChat }

// EventType implements Event.
func (Hands) EventType() string { return TypeHands }

// EventType implements Event.
func (Reaction) EventType() string { return TypeReaction }

// EventType implements Event.
func (Speaker) EventType() string { return TypeSpeaker }

// EventType implements Event.
func (Quality) EventType() string { return TypeQuality }

// EventType implements Event.
func (Breakouts) EventType() string { return TypeBreakouts }

// EventType implements Event.
func (BreakoutBroadcast) EventType() string { return TypeBreakoutBroadcast }

// EventType implements Event.
func (Poll) EventType() string { return TypePoll }

// EventType implements Event.
func (PollResults) EventType() string { return TypePollResults }

// EventType implements Event.
func (Muted) EventType() string { return TypeMuted }

// EventType implements Event.
func (VideoStopped) EventType() string { return TypeVideoStopped }

// EventType implements Event.
func (Removed) EventType() string { return TypeRemoved }

// EventType implements Event.
func (Locked) EventType() string { return TypeLocked }

// EventType implements Event.
func (Ended) EventType() string { return TypeEnded }

// EventType implements Event.
func (Replaced) EventType() string { return TypeReplaced }

// State is what a (re)joining participant needs to draw the room.
type State struct {
	Class        store.ClassID   `json:"class"`
	Status       store.Status    `json:"status"`
	You          Participant     `json:"you"`
	Participants []Participant   `json:"participants"`
	Hands        []ParticipantID `json:"hands"` // the queue for hosts; empty for attendees
	Locked       bool            `json:"locked"`
	MicsLocked   bool            `json:"micsLocked"`
	Breakouts    Breakouts       `json:"breakouts"`
	Chat         []ChatMessage   `json:"chat"`    // recent messages the viewer may see
	Polls        []PollView      `json:"polls"`   // open and closed polls
	Results      []PollResults   `json:"results"` // the results the viewer may see
	Reactions    []string        `json:"reactions"`
}
