package audience

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Version is the audience protocol's version, sent in hello and welcome.
const Version = 1

// MaxMessageSize is the largest message a client may send.
const MaxMessageSize = 16 << 10

// Roles in an audience: hosts moderate; viewers watch, chat, react and vote.
const (
	RoleHost   = "HOST"
	RoleViewer = "VIEWER"
)

// Close codes (the same numbers as the /rtc signalling's where they mean
// the same).
const (
	CloseNormal      websocket.StatusCode = 1000
	CloseGoingAway   websocket.StatusCode = 1001
	CloseInternal    websocket.StatusCode = 1011
	CloseBadMessage  websocket.StatusCode = 4000
	CloseNotJoined   websocket.StatusCode = 4001
	CloseWrongClass  websocket.StatusCode = 4003
	CloseNoClass     websocket.StatusCode = 4004
	CloseTooSlow     websocket.StatusCode = 4008
	CloseBanned      websocket.StatusCode = 4009
	CloseEnded       websocket.StatusCode = 4010
	CloseReplaced    websocket.StatusCode = 4011
	CloseRateLimited websocket.StatusCode = 4029
)

// Message types, both ways.
const (
	TypeHello       = "hello"
	TypeWelcome     = "welcome"
	TypeOK          = "ok"
	TypeError       = "error"
	TypeChat        = "chat"
	TypeChatDelete  = "chat.delete"
	TypeChatDeleted = "chat.deleted"
	TypeMute        = "mute"
	TypeMuted       = "muted"
	TypeBan         = "ban"
	TypeBanned      = "banned"
	TypeUnban       = "unban"
	TypeUnbanned    = "unbanned"
	TypeSlowMode    = "slowmode"
	TypeReact       = "react"
	TypeReactions   = "reactions"
	TypeViewers     = "viewers"
	TypePollCreate  = "poll.create"
	TypePollVote    = "poll.vote"
	TypePollClose   = "poll.close"
	TypePoll        = "poll"
	TypePollResults = "poll.results"
	TypeStream      = "stream"
	TypeHealth      = "health"
	TypeEnd         = "end"
	TypeEnded       = "ended"
	TypeReplaced    = "replaced"
	TypePing        = "ping"
)

// Reasons refine an error's code so that a page can say exactly why.
const (
	ReasonMuted     = "muted"
	ReasonBanned    = "banned"
	ReasonSlowMode  = "slow_mode"
	ReasonRateLimit = "rate_limit"
	ReasonEnded     = "ended"
)

// Client messages. Each carries Type and an optional request ID.

type hello struct {
	Type  string `json:"type"`
	ID    int64  `json:"id,omitempty"`
	V     int    `json:"v"`
	Token string `json:"token"`
	Class string `json:"class,omitempty"`
}

type chatIn struct {
	Type string `json:"type"`
	ID   int64  `json:"id,omitempty"`
	Text string `json:"text"`
}

type chatDeleteIn struct {
	Type    string `json:"type"`
	ID      int64  `json:"id,omitempty"`
	Message string `json:"message"`
}

type muteIn struct {
	Type  string `json:"type"`
	ID    int64  `json:"id,omitempty"`
	User  string `json:"user"`
	Muted *bool  `json:"muted"`
}

type userIn struct {
	Type string `json:"type"`
	ID   int64  `json:"id,omitempty"`
	User string `json:"user"`
}

type slowModeIn struct {
	Type    string `json:"type"`
	ID      int64  `json:"id,omitempty"`
	Seconds *int   `json:"seconds"`
}

type reactIn struct {
	Type  string `json:"type"`
	ID    int64  `json:"id,omitempty"`
	Emoji string `json:"emoji"`
}

type pollCreateIn struct {
	Type     string   `json:"type"`
	ID       int64    `json:"id,omitempty"`
	Question string   `json:"question"`
	Options  []string `json:"options"`
	Multiple bool     `json:"multiple"`
}

type pollVoteIn struct {
	Type    string `json:"type"`
	ID      int64  `json:"id,omitempty"`
	Poll    string `json:"poll"`
	Choices []int  `json:"choices"`
}

type pollIn struct {
	Type string `json:"type"`
	ID   int64  `json:"id,omitempty"`
	Poll string `json:"poll"`
}

type bareIn struct {
	Type string `json:"type"`
	ID   int64  `json:"id,omitempty"`
}

// decode reads one client message strictly: an unknown type or field, a
// wrong JSON type or trailing data is an error. It returns the message
// (one of the *…In types or *hello) and its request ID.
func decode(data []byte) (any, int64, error) {
	var head struct {
		Type string `json:"type"`
		ID   int64  `json:"id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, 0, apperr.New(apperr.Invalid, "not a JSON object with a type")
	}
	if head.ID < 0 {
		return nil, 0, apperr.Field("id", "must be positive")
	}
	var m any
	switch head.Type {
	case TypeHello:
		m = &hello{}
	case TypeChat:
		m = &chatIn{}
	case TypeChatDelete:
		m = &chatDeleteIn{}
	case TypeMute:
		m = &muteIn{}
	case TypeBan, TypeUnban:
		m = &userIn{}
	case TypeSlowMode:
		m = &slowModeIn{}
	case TypeReact:
		m = &reactIn{}
	case TypePollCreate:
		m = &pollCreateIn{}
	case TypePollVote:
		m = &pollVoteIn{}
	case TypePollClose:
		m = &pollIn{}
	case TypeEnd, TypePing:
		m = &bareIn{}
	case "":
		return nil, head.ID, apperr.Field("type", "is missing")
	default:
		return nil, head.ID, apperr.Field("type", "unknown message type %q", head.Type)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		// A field of the wrong JSON type is a bad field of a known
		// message; anything else (an unknown field) is not this protocol.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, head.ID, apperr.Field(te.Field, "must be a JSON %s", jsonKind(te.Type.Kind().String()))
		}
		return nil, head.ID, apperr.New(apperr.Invalid, "%s: %v", head.Type, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, head.ID, apperr.New(apperr.Invalid, "trailing data after the message")
	}
	return m, head.ID, nil
}

// jsonKind names a Go kind as the JSON type that decodes into it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	}
	return "number"
}

// Server messages.

// you is the connected person as the welcome tells them.
type you struct {
	ID   store.UserID `json:"id"`
	Name string       `json:"name"`
	Role string       `json:"role"`
}

type welcome struct {
	Type      string        `json:"type"`
	V         int           `json:"v"`
	Class     store.ClassID `json:"class"`
	You       you           `json:"you"`
	Stream    StreamState   `json:"stream"`
	Health    *Health       `json:"health,omitempty"`
	Viewers   int           `json:"viewers"`
	Chat      []chatOut     `json:"chat"`
	Polls     []pollView    `json:"polls"`
	Results   []pollResults `json:"results"`
	Reactions []string      `json:"reactions"`
	SlowMode  int           `json:"slowMode"`
	Muted     bool          `json:"muted"`
	Limits    welcomeLimits `json:"limits"`
	// Banned lists the class's bans, oldest first, for hosts only: the
	// presenter page shows them with a way to lift each.
	Banned []bannedOut `json:"banned,omitempty"`
}

type welcomeLimits struct {
	ChatMax         int `json:"chatMax"`
	ReactionEveryMs int `json:"reactionIntervalMs"`
}

type chatOut struct {
	Type     string              `json:"type,omitempty"`
	ID       store.ChatMessageID `json:"id"`
	From     store.UserID        `json:"from"`
	FromName string              `json:"fromName"`
	Role     string              `json:"role"`
	Text     string              `json:"text"`
	SentAt   time.Time           `json:"sentAt"`
}

type chatDeleted struct {
	Type string              `json:"type"`
	ID   store.ChatMessageID `json:"id"`
}

type mutedOut struct {
	Type  string       `json:"type"`
	User  store.UserID `json:"user"`
	Muted bool         `json:"muted"`
}

// bannedOut is a ban: pushed as "banned" when a host makes it, and listed
// (without a type) in a host's welcome. Name is the banned user's name
// when known, so that the presenter page can list them.
type bannedOut struct {
	Type  string       `json:"type,omitempty"`
	User  store.UserID `json:"user"`
	Name  string       `json:"name,omitempty"`
	Since time.Time    `json:"since,omitzero"`
}

type unbannedOut struct {
	Type string       `json:"type"`
	User store.UserID `json:"user"`
}

type slowModeOut struct {
	Type    string `json:"type"`
	Seconds int    `json:"seconds"`
}

type reactionsOut struct {
	Type       string         `json:"type"`
	Counts     map[string]int `json:"counts"`
	IntervalMs int            `json:"intervalMs"`
}

type viewersOut struct {
	Type  string `json:"type"`
	Count int    `json:"count"`
}

type pollView struct {
	ID       store.PollID `json:"id"`
	Question string       `json:"question"`
	Options  []string     `json:"options"`
	Multiple bool         `json:"multiple"`
	Closed   bool         `json:"closed"`
	YourVote []int        `json:"yourVote,omitempty"`
}

type pollOut struct {
	Type string   `json:"type"`
	Poll pollView `json:"poll"`
}

type pollResults struct {
	Type   string       `json:"type,omitempty"`
	Poll   store.PollID `json:"poll"`
	Counts []int        `json:"counts"`
	Voters int          `json:"voters"`
}

type streamOut struct {
	Type string `json:"type"`
	StreamState
}

type healthOut struct {
	Type string `json:"type"`
	Health
}

type bareOut struct {
	Type string `json:"type"`
}

type okOut struct {
	Type string       `json:"type"`
	ID   int64        `json:"id"`
	Poll store.PollID `json:"poll,omitempty"`
	Chat string       `json:"chat,omitempty"`
}

type errorOut struct {
	Type    string `json:"type"`
	ID      int64  `json:"id,omitempty"`
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// reasonError is an apperr error with a reason for the protocol.
type reasonError struct {
	error
	reason string
}

func withReason(err error, reason string) error { return &reasonError{err, reason} }

func (e *reasonError) Unwrap() error { return e.error }

func errorFor(id int64, err error) errorOut {
	e := errorOut{Type: TypeError, ID: id, Code: apperr.KindOf(err).Code(), Field: apperr.FieldOf(err), Message: err.Error()}
	var r *reasonError
	if errors.As(err, &r) {
		e.Reason = r.reason
	}
	if apperr.KindOf(err) == apperr.Internal {
		e.Message = "the server failed"
	}
	return e
}

func (c *conn) role() string {
	if c.host {
		return RoleHost
	}
	return RoleViewer
}
