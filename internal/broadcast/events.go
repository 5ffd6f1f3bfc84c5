package broadcast

import (
	"strings"

	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
)

// Participant IDs the service gives the media server: a publisher's and a
// viewer's, followed by the resource ID of their WHIP or WHEP session.
const (
	publisherPrefix = "whip-"
	viewerPrefix    = "whep-"
)

// Events returns the media server's event sink: the tracks of broadcast
// publishers drive the lifecycle here, and every event also goes to next
// (the classrooms'), which ignores participants it does not know.
func (s *Service) Events(next sfu.Events) sfu.Events {
	return events{s: s, next: next}
}

type events struct {
	s    *Service
	next sfu.Events
}

// channelOf returns the channel of a broadcast publisher's event.
func (e events) channelOf(class store.ClassID, p sfu.ParticipantID) *channel {
	if !strings.HasPrefix(string(p), publisherPrefix) {
		return nil
	}
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	return e.s.channels[class]
}

func (e events) TrackPublished(class store.ClassID, t sfu.TrackInfo) {
	if ch := e.channelOf(class, t.Participant); ch != nil {
		ch.do(func() { ch.trackPublished(t) })
	}
	if e.next != nil {
		e.next.TrackPublished(class, t)
	}
}

func (e events) TrackUnpublished(class store.ClassID, t sfu.TrackInfo) {
	if ch := e.channelOf(class, t.Participant); ch != nil {
		ch.do(func() { ch.trackUnpublished(t) })
	}
	if e.next != nil {
		e.next.TrackUnpublished(class, t)
	}
}

func (e events) ActiveSpeaker(class store.ClassID, g sfu.GroupID, p sfu.ParticipantID) {
	if e.next != nil {
		e.next.ActiveSpeaker(class, g, p)
	}
}

func (e events) Quality(class store.ClassID, p sfu.ParticipantID, q sfu.Quality) {
	if e.next != nil {
		e.next.Quality(class, p, q)
	}
}

func (e events) PeerFailed(class store.ClassID, p sfu.ParticipantID, err error) {
	if ch := e.channelOf(class, p); ch != nil {
		e.s.log.Info("broadcast: publisher's connection failed", "class", class, "participant", p, "err", err)
	}
	if e.next != nil {
		e.next.PeerFailed(class, p, err)
	}
}
