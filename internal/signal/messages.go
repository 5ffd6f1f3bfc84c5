package signal

import (
	"errors"

	"github.com/coder/websocket"
	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/pion/webrtc/v4"
)

// Joined answers a successful join: who the participant is, the room as
// it is now, the key to resume with after a drop, and the ICE servers for
// both peer connections.
type Joined struct {
	Type         string             `json:"type"`
	You          room.Participant   `json:"you"`
	Room         room.State         `json:"room"`
	Resume       string             `json:"resume"`
	ResumeWithin int                `json:"resumeWithin"` // seconds
	Resumed      bool               `json:"resumed"`
	ICEServers   []webrtc.ICEServer `json:"iceServers"`
}

// OK answers a request that succeeded. Poll is the new poll's ID in the
// answer to poll.create.
type OK struct {
	Type string `json:"type"`
	ID   int64  `json:"id,omitempty"`
	Poll string `json:"poll,omitempty"`
}

// Error answers a request that failed, or tells why the connection is
// about to close. Code is the apperr code (BAD_USER_INPUT, FORBIDDEN, …);
// Field names the input at fault; Reason refines a refused join ("full",
// "locked", "removed", "ended").
type Error struct {
	Type    string `json:"type"`
	ID      int64  `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// SessionDescription carries an offer or answer of one connection.
type SessionDescription struct {
	Type string `json:"type"`
	PC   string `json:"pc"`
	SDP  string `json:"sdp"`
}

// ServerCandidate carries one of the server's ICE candidates.
type ServerCandidate struct {
	Type      string                  `json:"type"`
	PC        string                  `json:"pc"`
	Candidate webrtc.ICECandidateInit `json:"candidate"`
}

// Tracks lists the tracks the participant can receive now.
type Tracks struct {
	Type   string          `json:"type"`
	Tracks []sfu.TrackInfo `json:"tracks"`
}

// Mapping says which subscriber-connection mid carries which track.
type Mapping struct {
	Type string                 `json:"type"`
	Mids map[string]sfu.TrackID `json:"mids"`
}

// WebSocket close codes of the protocol (docs/protocol.md).
const (
	CloseNormal      websocket.StatusCode = 1000 // the client left
	CloseGoingAway   websocket.StatusCode = 1001 // the server shuts down
	CloseTooBig      websocket.StatusCode = 1009 // a message over MaxMessageSize
	CloseInternal    websocket.StatusCode = 1011 // the server failed
	CloseBadMessage  websocket.StatusCode = 4000 // undecodable message, binary frame, unknown type
	CloseNotJoined   websocket.StatusCode = 4001 // no valid join first, within the join timeout
	CloseForbidden   websocket.StatusCode = 4003 // the token may not join this room
	CloseNotFound    websocket.StatusCode = 4004 // the class does not exist
	CloseTooSlow     websocket.StatusCode = 4008 // the client did not keep up (or stopped answering pings)
	CloseRefused     websocket.StatusCode = 4009 // full, locked, or removed
	CloseEnded       websocket.StatusCode = 4010 // the class ended
	CloseReplaced    websocket.StatusCode = 4011 // the participant joined from another connection
	CloseRateLimited websocket.StatusCode = 4029 // far too many messages
)

// errorFor builds the error message for err, hiding internal details.
func errorFor(id int64, err error) Error {
	k := apperr.KindOf(err)
	e := Error{Type: TypeError, ID: id, Code: k.Code(), Message: err.Error(), Field: apperr.FieldOf(err)}
	if k == apperr.Internal {
		e.Message = "internal error"
	}
	switch {
	case errors.Is(err, room.ErrFull):
		e.Reason = "full"
	case errors.Is(err, room.ErrLocked):
		e.Reason = "locked"
	case errors.Is(err, room.ErrRemoved):
		e.Reason = "removed"
	case errors.Is(err, room.ErrEnded):
		e.Reason = "ended"
	}
	return e
}

// joinCloseCode is the close code of a refused join.
func joinCloseCode(err error) websocket.StatusCode {
	switch {
	case errors.Is(err, room.ErrEnded):
		return CloseEnded
	case errors.Is(err, room.ErrFull), errors.Is(err, room.ErrLocked), errors.Is(err, room.ErrRemoved):
		return CloseRefused
	}
	switch apperr.KindOf(err) {
	case apperr.Unauthenticated:
		return CloseNotJoined
	case apperr.Invalid:
		return CloseBadMessage
	case apperr.Forbidden:
		return CloseForbidden
	case apperr.NotFound:
		return CloseNotFound
	case apperr.Conflict:
		return CloseRefused
	}
	return CloseInternal
}
