// Package signal is the signalling connection between a participant's
// browser and a live class: one WebSocket per participant (GET /rtc)
// carrying the JSON messages of docs/protocol.md. It verifies the join
// token, joins the classroom (package room), creates the participant's
// media peer (package sfu), and pumps messages both ways: classroom
// requests to the room, SDP and ICE candidates to the sfu, and the events
// of both back to the browser. It is the only package besides the wiring
// that knows both room and sfu, so the glue between them lives here too
// (RoomMedia, MediaEvents).
package signal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/pion/webrtc/v4"
)

// Version is the protocol version a join message must name.
const Version = 1

// MaxMessageSize is the largest message either side sends, in bytes. An
// SDP offer with three simulcast layers, a microphone and a screen share
// is about 12 KiB; the limit leaves room and keeps a hostile client from
// making the server buffer much.
const MaxMessageSize = 64 << 10

// Limits on single fields, checked by Decode.
const (
	maxToken   = 4096
	maxResume  = 128
	maxID      = 128 // participant, track, poll and group IDs
	maxSDP     = MaxMessageSize
	maxText    = 8 << 10 // chat and broadcast text in bytes; the room counts characters
	maxOptions = 10
	maxTracks  = 8
	maxTimer   = 24 * 60 * 60
	maxTile    = 16384
	maxVideo   = 25
)

// Client message types.
const (
	TypeJoin               = "join"
	TypeOffer              = "offer"
	TypeAnswer             = "answer"
	TypeCandidate          = "candidate"
	TypeRestart            = "restart"
	TypeSubscribe          = "subscribe"
	TypeChat               = "chat"
	TypeHand               = "hand"
	TypeLowerHand          = "lowerHand"
	TypeLowerAllHands      = "lowerAllHands"
	TypeMedia              = "media"
	TypeMute               = "mute"
	TypeMuteAll            = "muteAll"
	TypeLockMics           = "lockMics"
	TypeStopVideo          = "stopVideo"
	TypeRemove             = "remove"
	TypeLock               = "lock"
	TypeEnd                = "end"
	TypeBreakoutsCreate    = "breakouts.create"
	TypeBreakoutsAssign    = "breakouts.assign"
	TypeBreakoutsAuto      = "breakouts.auto"
	TypeBreakoutsTimer     = "breakouts.timer"
	TypeBreakoutsBroadcast = "breakouts.broadcast"
	TypeBreakoutsVisit     = "breakouts.visit"
	TypeBreakoutsClose     = "breakouts.close"
	TypeReact              = "react"
	TypePollCreate         = "poll.create"
	TypePollVote           = "poll.vote"
	TypePollClose          = "poll.close"
	TypeLeave              = "leave"
	TypePing               = "ping"
)

// Server message types (the room's events have their own, see room.Type*).
const (
	TypeJoined   = "joined"
	TypeOK       = "ok"
	TypeError    = "error"
	TypeTracks   = "tracks"
	TypeMapping  = "mapping"
	TypeReplaced = "replaced"
)

// The two peer connections of a participant, as named in "pc".
const (
	PCPub = "pub"
	PCSub = "sub"
)

// Message is one decoded client message.
type Message interface {
	// MessageType is the message's "type".
	MessageType() string
	// RequestID is the message's "id", 0 when it has none; the reply to
	// the message carries it.
	RequestID() int64
}

// Envelope holds the fields every message has.
type Envelope struct {
	Type string `json:"type"`
	ID   int64  `json:"id,omitempty"`
}

// MessageType implements Message.
func (e Envelope) MessageType() string { return e.Type }

// RequestID implements Message.
func (e Envelope) RequestID() int64 { return e.ID }

// Join is the first message of a connection. Token is the join token from
// generateLiveClassToken; Resume is the key of an earlier connection that
// dropped (then Token may be empty or expired); Class, when set, must be
// the token's class (the page sends the class it shows).
type Join struct {
	Envelope
	V      int    `json:"v"`
	Token  string `json:"token,omitempty"`
	Resume string `json:"resume,omitempty"`
	Class  string `json:"class,omitempty"`
	Muted  bool   `json:"muted,omitempty"`
}

// PublishedTrack says what one m-line of a publisher offer carries.
type PublishedTrack struct {
	Mid       string `json:"mid"`
	Source    string `json:"source"`
	Simulcast bool   `json:"simulcast,omitempty"`
}

// Offer is the client's offer on its publisher connection.
type Offer struct {
	Envelope
	PC         string           `json:"pc"`
	SDP        string           `json:"sdp"`
	Tracks     []PublishedTrack `json:"tracks"`
	ICERestart bool             `json:"iceRestart,omitempty"`
}

// Answer is the client's answer to a subscriber offer.
type Answer struct {
	Envelope
	PC  string `json:"pc"`
	SDP string `json:"sdp"`
}

// Candidate is one trickled ICE candidate of a connection; an empty
// candidate string ends the client's gathering.
type Candidate struct {
	Envelope
	PC        string                  `json:"pc"`
	Candidate webrtc.ICECandidateInit `json:"candidate"`
}

// Restart asks the server to restart ICE on the subscriber connection.
type Restart struct{ Envelope }

// VideoRequest is one video the client wants to see, in a tile of
// Width × Height pixels.
type VideoRequest struct {
	Track  string `json:"track"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// Subscribe sets the videos the client shows (at most 25).
type Subscribe struct {
	Envelope
	Video []VideoRequest `json:"video"`
}

// Chat sends a chat message to "everyone", "hosts" or one participant.
type Chat struct {
	Envelope
	To   string `json:"to"`
	Text string `json:"text"`
}

// Hand raises or lowers the sender's own hand.
type Hand struct {
	Envelope
	Raised bool `json:"raised"`
}

// ParticipantRequest is a host's action on one participant (lowerHand,
// mute, stopVideo, remove).
type ParticipantRequest struct {
	Envelope
	Participant string `json:"participant"`
}

// Bare is a message with no fields besides type and id (restart aside):
// lowerAllHands, muteAll, end, breakouts.close, leave, ping.
type Bare struct{ Envelope }

// Media is what the client publishes now.
type Media struct {
	Envelope
	Mic    bool `json:"mic"`
	Camera bool `json:"camera"`
	Screen bool `json:"screen"`
}

// LockRequest locks or unlocks the room (lock) or the microphones
// (lockMics).
type LockRequest struct {
	Envelope
	Locked bool `json:"locked"`
}

// BreakoutsCreate makes Count breakout rooms.
type BreakoutsCreate struct {
	Envelope
	Count int `json:"count"`
}

// BreakoutsAssign moves participants to groups ("" is the main room).
type BreakoutsAssign struct {
	Envelope
	Assignments map[string]string `json:"assignments"`
}

// BreakoutsAuto assigns every attendee by Mode: "round-robin" or "random".
type BreakoutsAuto struct {
	Envelope
	Mode string `json:"mode"`
}

// BreakoutsTimer closes the breakout rooms after Seconds (0 clears it).
type BreakoutsTimer struct {
	Envelope
	Seconds int `json:"seconds"`
}

// BreakoutsBroadcast sends Text into every breakout room.
type BreakoutsBroadcast struct {
	Envelope
	Text string `json:"text"`
}

// BreakoutsVisit moves the sending host into Group ("" back to main).
type BreakoutsVisit struct {
	Envelope
	Group string `json:"group"`
}

// React sends an emoji from the room's fixed set.
type React struct {
	Envelope
	Emoji string `json:"emoji"`
}

// PollCreate asks a question with 2–10 options.
type PollCreate struct {
	Envelope
	Question string   `json:"question"`
	Options  []string `json:"options"`
	Multiple bool     `json:"multiple,omitempty"`
}

// PollVote answers a poll with the indexes of the chosen options.
type PollVote struct {
	Envelope
	Poll    string `json:"poll"`
	Choices []int  `json:"choices"`
}

// PollClose closes a poll.
type PollClose struct {
	Envelope
	Poll string `json:"poll"`
}

// newMessage returns an empty message of type t and the fields it must
// carry, or nil for an unknown type. Booleans that decide what happens
// are required, so that a client bug cannot silently unlock a room.
func newMessage(t string) (Message, []string) {
	switch t {
	case TypeJoin:
		return &Join{}, []string{"v"}
	case TypeOffer:
		return &Offer{}, []string{"pc", "sdp"}
	case TypeAnswer:
		return &Answer{}, []string{"pc", "sdp"}
	case TypeCandidate:
		return &Candidate{}, []string{"pc", "candidate"}
	case TypeRestart:
		return &Restart{}, nil
	case TypeSubscribe:
		return &Subscribe{}, []string{"video"}
	case TypeChat:
		return &Chat{}, []string{"text"}
	case TypeHand:
		return &Hand{}, []string{"raised"}
	case TypeLowerHand, TypeMute, TypeStopVideo, TypeRemove:
		return &ParticipantRequest{}, []string{"participant"}
	case TypeLowerAllHands, TypeMuteAll, TypeEnd, TypeBreakoutsClose, TypeLeave, TypePing:
		return &Bare{}, nil
	case TypeMedia:
		return &Media{}, []string{"mic", "camera", "screen"}
	case TypeLock, TypeLockMics:
		return &LockRequest{}, []string{"locked"}
	case TypeBreakoutsCreate:
		return &BreakoutsCreate{}, []string{"count"}
	case TypeBreakoutsAssign:
		return &BreakoutsAssign{}, []string{"assignments"}
	case TypeBreakoutsAuto:
		return &BreakoutsAuto{}, []string{"mode"}
	case TypeBreakoutsTimer:
		return &BreakoutsTimer{}, []string{"seconds"}
	case TypeBreakoutsBroadcast:
		return &BreakoutsBroadcast{}, []string{"text"}
	case TypeBreakoutsVisit:
		return &BreakoutsVisit{}, []string{"group"}
	case TypeReact:
		return &React{}, []string{"emoji"}
	case TypePollCreate:
		return &PollCreate{}, []string{"question", "options"}
	case TypePollVote:
		return &PollVote{}, []string{"poll", "choices"}
	case TypePollClose:
		return &PollClose{}, []string{"poll"}
	}
	return nil, nil
}

// Decode reads one client message. It is strict: the message must be one
// JSON object of at most MaxMessageSize bytes, of a known type, with no
// unknown fields, every required field present, and every field within
// its limits. Errors are apperr Invalid errors naming the field at fault.
// Rules that need the room's state (who may do what, chat length in
// characters, the emoji set, poll options) are the room's to check.
func Decode(data []byte) (Message, error) {
	if len(data) > MaxMessageSize {
		return nil, apperr.New(apperr.Invalid, "message is %d bytes, at most %d", len(data), MaxMessageSize)
	}
	if !utf8.Valid(data) {
		return nil, apperr.New(apperr.Invalid, "message is not valid UTF-8")
	}
	var raw map[string]json.RawMessage
	if err := strictUnmarshal(data, &raw, false); err != nil {
		return nil, apperr.Wrap(apperr.Invalid, err, "message is not a JSON object")
	}
	if raw == nil {
		return nil, apperr.New(apperr.Invalid, "message is not a JSON object")
	}
	var typ string
	if err := json.Unmarshal(raw["type"], &typ); err != nil || typ == "" {
		return nil, apperr.Field("type", "is required and must be a string")
	}
	m, required := newMessage(typ)
	if m == nil {
		return nil, apperr.Field("type", "unknown message type %q", truncate(typ, 64))
	}
	for _, f := range required {
		if v, ok := raw[f]; !ok || string(v) == "null" {
			return nil, apperr.Field(f, "is required")
		}
	}
	if err := strictUnmarshal(data, m, true); err != nil {
		return nil, fieldError(err)
	}
	if m.RequestID() < 0 {
		return nil, apperr.Field("id", "must not be negative")
	}
	if err := validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

// strictUnmarshal decodes exactly one JSON value from data into v.
func strictUnmarshal(data []byte, v any, disallowUnknown bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if disallowUnknown {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// fieldError names the field of a JSON type error or an unknown field.
func fieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return apperr.Field(te.Field, "must be a JSON %s", te.Type.Kind())
	}
	return apperr.Wrap(apperr.Invalid, err, "malformed message")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// id checks an identifier field.
func id(field, v string) error {
	switch {
	case v == "":
		return apperr.Field(field, "is required")
	case len(v) > maxID:
		return apperr.Field(field, "is longer than %d bytes", maxID)
	}
	return nil
}

func text(field, v string, limit int) error {
	if len(v) > limit {
		return apperr.Field(field, "is longer than %d bytes", limit)
	}
	return nil
}

// validate checks the fields of a decoded message.
func validate(m Message) error {
	switch m := m.(type) {
	case *Join:
		switch {
		case m.V != Version:
			return apperr.Field("v", "protocol version %d is not supported; this server speaks %d", m.V, Version)
		case m.Token == "" && m.Resume == "":
			return apperr.Field("token", "is required")
		}
		if err := text("token", m.Token, maxToken); err != nil {
			return err
		}
		if err := text("resume", m.Resume, maxResume); err != nil {
			return err
		}
		return text("class", m.Class, maxID)
	case *Offer:
		if m.PC != PCPub {
			return apperr.Field("pc", "the client offers on %q only", PCPub)
		}
		if m.SDP == "" {
			return apperr.Field("sdp", "is required")
		}
		if len(m.Tracks) > maxTracks {
			return apperr.Field("tracks", "at most %d tracks", maxTracks)
		}
		for i, t := range m.Tracks {
			if err := id(fmt.Sprintf("tracks[%d].mid", i), t.Mid); err != nil {
				return err
			}
			switch t.Source {
			case "camera", "mic", "screen":
			default:
				return apperr.Field(fmt.Sprintf("tracks[%d].source", i), "must be camera, mic or screen")
			}
		}
	case *Answer:
		if m.PC != PCSub {
			return apperr.Field("pc", "the client answers on %q only", PCSub)
		}
		if m.SDP == "" {
			return apperr.Field("sdp", "is required")
		}
	case *Candidate:
		if m.PC != PCPub && m.PC != PCSub {
			return apperr.Field("pc", "must be %q or %q", PCPub, PCSub)
		}
		return text("candidate.candidate", m.Candidate.Candidate, 1024)
	case *Subscribe:
		if len(m.Video) > maxVideo {
			return apperr.Field("video", "at most %d videos, got %d", maxVideo, len(m.Video))
		}
		for i, v := range m.Video {
			if err := id(fmt.Sprintf("video[%d].track", i), v.Track); err != nil {
				return err
			}
			if v.Width < 0 || v.Height < 0 || v.Width > maxTile || v.Height > maxTile {
				return apperr.Field(fmt.Sprintf("video[%d].width", i), "tile %d×%d is out of range", v.Width, v.Height)
			}
		}
	case *Chat:
		if m.Text == "" {
			return apperr.Field("text", "is empty")
		}
		if err := text("to", m.To, maxID); err != nil {
			return err
		}
		return text("text", m.Text, maxText)
	case *ParticipantRequest:
		return id("participant", m.Participant)
	case *BreakoutsCreate:
		if m.Count < 1 {
			return apperr.Field("count", "must be at least 1")
		}
	case *BreakoutsAssign:
		if len(m.Assignments) == 0 {
			return apperr.Field("assignments", "is empty")
		}
		for p, g := range m.Assignments {
			if err := id("assignments", p); err != nil {
				return err
			}
			if err := text("assignments."+truncate(p, 32), g, maxID); err != nil {
				return err
			}
		}
	case *BreakoutsAuto:
		if m.Mode != "round-robin" && m.Mode != "random" {
			return apperr.Field("mode", "must be round-robin or random")
		}
	case *BreakoutsTimer:
		if m.Seconds < 0 || m.Seconds > maxTimer {
			return apperr.Field("seconds", "must be between 0 and %d", maxTimer)
		}
	case *BreakoutsBroadcast:
		if m.Text == "" {
			return apperr.Field("text", "is empty")
		}
		return text("text", m.Text, maxText)
	case *BreakoutsVisit:
		return text("group", m.Group, maxID)
	case *React:
		if m.Emoji == "" {
			return apperr.Field("emoji", "is required")
		}
		return text("emoji", m.Emoji, 32)
	case *PollCreate:
		if m.Question == "" {
			return apperr.Field("question", "is empty")
		}
		if err := text("question", m.Question, maxText); err != nil {
			return err
		}
		if len(m.Options) > maxOptions {
			return apperr.Field("options", "at most %d options", maxOptions)
		}
		for i, o := range m.Options {
			if err := text(fmt.Sprintf("options[%d]", i), o, maxText); err != nil {
				return err
			}
		}
	case *PollVote:
		if err := id("poll", m.Poll); err != nil {
			return err
		}
		if len(m.Choices) == 0 || len(m.Choices) > maxOptions {
			return apperr.Field("choices", "must name 1 to %d options", maxOptions)
		}
	case *PollClose:
		return id("poll", m.Poll)
	}
	return nil
}
