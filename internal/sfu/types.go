// Package sfu forwards the media of a live class between its participants:
// a selective forwarding unit on pion/webrtc.
//
// One Server serves the whole process: one ICE UDP port shared by every
// participant, an ICE-TCP fallback, an optional embedded TURN server. A
// Session is one live class; a Peer is one participant in it, with two
// PeerConnections: on the publisher connection the client offers and sends
// its camera (simulcast), microphone and screen; on the subscriber
// connection the server offers and sends what the participant receives,
// over a pool of transceivers that are reused as tiles change so that a new
// tile does not cost a renegotiation. Forwarding is built from the leaves in
// internal/media: one fanout.Forwarder per published track (shared packet
// cache, keyframe throttle, per-subscriber rewriter) and a bwe.Selector per
// subscribed video.
//
// A broadcast class uses the same forwarding path: Server.Ingest takes a
// WHIP publisher's offer (a browser's VP8 simulcast, or OBS's H.264 and
// Opus) and publishes its tracks in the class's Session; Server.View
// answers a WHEP viewer's offer with one connection whose video and audio
// slots carry the broadcast, at the layer the viewer's estimate allows,
// across the publisher's departures and returns; Server.Tap hands a
// track's top layer to a server-side consumer (HLS packaging, recording).
//
// The package knows no SQL, GraphQL or classroom rules. The classroom
// (package room) steers it through SetGroup, Block and Disconnect; the
// signalling layer moves SDP and candidates through the Signaller a Peer is
// given; what the SFU observes (tracks, active speaker, quality, failures)
// goes out through Events.
package sfu

import (
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/webrtc/v4"
)

// ParticipantID identifies one participant of a class; the room gives it.
type ParticipantID string

// GroupID is a breakout group; "" is the main room. Media flows only
// between participants of the same group.
type GroupID string

// TrackID names a published track: "<participant>/<source>".
type TrackID string

// Source says what a published track carries.
type Source string

// The sources a participant publishes.
const (
	SourceCamera Source = "camera"
	SourceMic    Source = "mic"
	SourceScreen Source = "screen"
)

// MakeTrackID returns the ID of participant p's track of source s.
func MakeTrackID(p ParticipantID, s Source) TrackID { return TrackID(string(p) + "/" + string(s)) }

// PC names one of a Peer's two connections in signalling messages.
type PC string

// The two connections of a Peer.
const (
	// PCPub is the publisher connection: the client offers.
	PCPub PC = "pub"
	// PCSub is the subscriber connection: the server offers.
	PCSub PC = "sub"
)

// TrackInfo describes a published track to the participants who can see it.
type TrackInfo struct {
	ID          TrackID       `json:"id"`
	Participant ParticipantID `json:"participant"`
	Source      Source        `json:"source"`
	// Layers lists the simulcast layers by RID, lowest first; empty for a
	// track without simulcast.
	Layers []string `json:"layers,omitempty"`
	// Codec is the track's codec as its MIME type: "video/VP8",
	// "video/H264" or "audio/opus".
	Codec string `json:"codec,omitempty"`
}

// PublishedTrack is what a client declares for one m-line of its publisher
// offer.
type PublishedTrack struct {
	Mid       string `json:"mid"`
	Source    Source `json:"source"`
	Simulcast bool   `json:"simulcast,omitempty"`
}

// VideoRequest is one video (camera or screen) a subscriber wants, with the
// size of the tile that shows it in pixels.
type VideoRequest struct {
	Track  TrackID `json:"track"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
}

// MaxVideo is the most video tracks one participant receives at once.
const MaxVideo = 25

// Signaller carries the SFU's messages to one participant. Its methods are
// called with the Peer's lock held, so they must not block and must not
// call back into the Peer; the signalling connection queues the message
// and sends it from its own goroutine.
type Signaller interface {
	// Answer sends the answer to the client's publisher offer.
	Answer(sdp string)
	// Offer sends an offer for the subscriber connection.
	Offer(sdp string)
	// Candidate sends one local ICE candidate of a connection.
	Candidate(pc PC, c webrtc.ICECandidateInit)
	// Tracks sends the set of tracks the participant can see, whenever it
	// changes.
	Tracks(tracks []TrackInfo)
	// Mapping says which subscriber-connection mid carries which track;
	// a mid absent from the map carries nothing.
	Mapping(mids map[string]TrackID)
}

// Quality grades a participant's connection from the loss and delay the
// SFU observes.
type Quality int

// Connection quality levels.
const (
	QualityExcellent Quality = iota
	QualityGood
	QualityPoor
	QualityLost
)

func (q Quality) String() string {
	switch q {
	case QualityExcellent:
		return "excellent"
	case QualityGood:
		return "good"
	case QualityPoor:
		return "poor"
	}
	return "lost"
}

// Events receives what the SFU observes. Its methods are called without
// any SFU lock held, from the SFU's goroutines: they may call back into the
// Server, and should return quickly.
type Events interface {
	// TrackPublished reports a track that started arriving.
	TrackPublished(class store.ClassID, t TrackInfo)
	// TrackUnpublished reports a track that ended.
	TrackUnpublished(class store.ClassID, t TrackInfo)
	// ActiveSpeaker reports the loudest participant of a group, smoothed;
	// at most once per speaker-detection interval and only on a change.
	ActiveSpeaker(class store.ClassID, g GroupID, p ParticipantID)
	// Quality reports a change of a participant's connection quality.
	Quality(class store.ClassID, p ParticipantID, q Quality)
	// PeerFailed reports that a participant's connection failed; the
	// client may still restart ICE.
	PeerFailed(class store.ClassID, p ParticipantID, err error)
}
