package rtc

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
)

// Message types of docs/protocol.md that this package acts on.
const (
	TypeJoined    = "joined"
	TypeOK        = "ok"
	TypeError     = "error"
	TypeOffer     = "offer"
	TypeAnswer    = "answer"
	TypeCandidate = "candidate"
	TypeTracks    = "tracks"
	TypeMapping   = "mapping"
)

// Peer connection names of the protocol's "pc" field.
const (
	PCPub = "pub" // the publisher: the client offers
	PCSub = "sub" // the subscriber: the server offers
)

// Source is what a published track carries.
type Source string

// Sources a participant may publish, each at most once.
const (
	SourceCamera Source = "camera"
	SourceMic    Source = "mic"
	SourceScreen Source = "screen"
)

// Message is one message the server sent, kept as it came so that a
// caller may decode the fields it cares about.
type Message struct {
	Type string
	Raw  []byte
}

// Decode unmarshals the whole message into v.
func (m Message) Decode(v any) error {
	if err := json.Unmarshal(m.Raw, v); err != nil {
		return fmt.Errorf("rtc: decode %s message: %w", m.Type, err)
	}
	return nil
}

// Media is what a participant publishes.
type Media struct {
	Mic    bool `json:"mic"`
	Camera bool `json:"camera"`
	Screen bool `json:"screen"`
}

// RoomParticipant is a participant as the room shows it to others.
type RoomParticipant struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Role  string `json:"role"` // HOST or ATTENDEE
	Media Media  `json:"media"`
	Hand  bool   `json:"hand"`
	Group string `json:"group"`
}

// Joined is the server's answer to a good join.
type Joined struct {
	You          RoomParticipant    `json:"you"`
	Room         json.RawMessage    `json:"room"` // the room's state; see docs/protocol.md
	Resume       string             `json:"resume"`
	ResumeWithin int                `json:"resumeWithin"` // seconds
	Resumed      bool               `json:"resumed"`
	ICEServers   []webrtc.ICEServer `json:"iceServers"`
}

// TrackInfo is a track the participant can receive.
type TrackInfo struct {
	ID          string   `json:"id"` // <participant id>/<source>
	Participant string   `json:"participant"`
	Source      Source   `json:"source"`
	Layers      []string `json:"layers,omitempty"` // simulcast layers, lowest first
}

// Tracks is the "tracks" message: what the participant can receive now.
type Tracks struct {
	Tracks []TrackInfo `json:"tracks"`
}

// Has reports whether the list holds the track id.
func (t Tracks) Has(id string) bool {
	for _, x := range t.Tracks {
		if x.ID == id {
			return true
		}
	}
	return false
}

// Mapping is the "mapping" message: which subscriber mid carries which
// track.
type Mapping struct {
	Mids map[string]string `json:"mids"`
}

// OK answers a request that succeeded; Poll is the new poll's id in the
// answer to poll.create.
type OK struct {
	ID   int64  `json:"id"`
	Poll string `json:"poll,omitempty"`
}

// Error is the server's "error" message: a refused join or request. It
// is the error the request methods and Dial return, so that callers
// branch on Code (BAD_USER_INPUT, FORBIDDEN, CONFLICT, …) with errors.As
// or CodeOf.
type Error struct {
	ID      int64  `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`  // the input at fault
	Reason  string `json:"reason,omitempty"` // full, locked, removed, ended (a refused join)
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// CodeOf returns the protocol code of err, or "" when err is not an
// answer of the server.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// CloseCode returns the WebSocket close code in err (1000, 1001, 4010 …,
// see docs/protocol.md section 8), or -1 when the connection did not end
// with a close frame.
func CloseCode(err error) int {
	return int(websocket.CloseStatus(err))
}

// Video is one tile of a subscribe request: a track and the size it is
// shown at, in device pixels.
type Video struct {
	Track  string `json:"track"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// candidateMsg is a "candidate" message both ways.
type candidateMsg struct {
	Type      string                  `json:"type"`
	PC        string                  `json:"pc"`
	Candidate webrtc.ICECandidateInit `json:"candidate"`
}

// sdpMsg is an "offer" or "answer" message of the server.
type sdpMsg struct {
	PC  string `json:"pc"`
	SDP string `json:"sdp"`
}

// header holds what every message is routed on. ID is raw because only
// ok and error carry a numeric request id; other messages may use "id"
// for something else (a chat message's string id).
type header struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id"`
}
