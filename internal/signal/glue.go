package signal

import (
	"log/slog"

	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
)

// RoomMedia adapts the sfu to the media plane the room steers: the room
// and the sfu each name participants and groups with their own types, so
// that neither imports the other.
func RoomMedia(s *sfu.Server) room.Media { return roomMedia{s} }

type roomMedia struct{ s *sfu.Server }

func (m roomMedia) SetGroup(class store.ClassID, p room.ParticipantID, g room.GroupID) {
	m.s.SetGroup(class, sfu.ParticipantID(p), sfu.GroupID(g))
}

func (m roomMedia) Block(class store.ClassID, p room.ParticipantID, source string, blocked bool) {
	m.s.Block(class, sfu.ParticipantID(p), source, blocked)
}

func (m roomMedia) Disconnect(class store.ClassID, p room.ParticipantID) {
	m.s.Disconnect(class, sfu.ParticipantID(p))
}

// MediaEvents returns the sfu.Events that report what the sfu observes
// into the classroom: the active speaker and connection quality become
// room events; published tracks and failures are logged (every
// participant's track list already reaches it through its Signaller).
// Pass it as sfu.Config.Events.
func MediaEvents(rooms *room.Manager, log *slog.Logger) sfu.Events {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return mediaEvents{rooms: rooms, log: log}
}

type mediaEvents struct {
	rooms *room.Manager
	log   *slog.Logger
}

func (e mediaEvents) TrackPublished(class store.ClassID, t sfu.TrackInfo) {
	e.log.Debug("signal: track published", "class", class, "track", t.ID, "layers", len(t.Layers))
}

func (e mediaEvents) TrackUnpublished(class store.ClassID, t sfu.TrackInfo) {
	e.log.Debug("signal: track unpublished", "class", class, "track", t.ID)
}

func (e mediaEvents) ActiveSpeaker(class store.ClassID, _ sfu.GroupID, p sfu.ParticipantID) {
	if r, ok := e.rooms.Room(class); ok {
		r.ActiveSpeaker(room.ParticipantID(p))
	}
}

// Quality maps the sfu's grades (excellent first) onto the room's levels
// (3 good … 0 lost).
func (e mediaEvents) Quality(class store.ClassID, p sfu.ParticipantID, q sfu.Quality) {
	if r, ok := e.rooms.Room(class); ok {
		r.Quality(room.ParticipantID(p), 3-min(max(int(q), 0), 3))
	}
}

// PeerFailed lowers the participant's quality to lost so that the hosts
// see it; the client restarts ICE on its own when its connection fails.
func (e mediaEvents) PeerFailed(class store.ClassID, p sfu.ParticipantID, err error) {
	e.log.Warn("signal: media connection failed", "class", class, "participant", p, "err", err)
	if r, ok := e.rooms.Room(class); ok {
		r.Quality(room.ParticipantID(p), 0)
	}
}
