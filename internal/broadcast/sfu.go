package broadcast

import (
	"io"

	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/webrtc/v4"
)

// SFU is the media server as the service uses it.
func SFU(s *sfu.Server) Media { return sfuMedia{s} }

type sfuMedia struct{ s *sfu.Server }

func (m sfuMedia) Ingest(class store.ClassID, p sfu.ParticipantID, offer string) (Ingest, string, error) {
	ing, answer, err := m.s.Ingest(class, p, offer)
	if err != nil {
		return nil, "", err
	}
	return ing, answer, nil
}

func (m sfuMedia) View(class store.ClassID, v sfu.ParticipantID, offer string) (Viewer, string, error) {
	vw, answer, err := m.s.View(class, v, offer)
	if err != nil {
		return nil, "", err
	}
	return vw, answer, nil
}

func (m sfuMedia) Tap(class store.ClassID, t sfu.TrackID, w io.Writer) (func(), error) {
	return m.s.Tap(class, t, w)
}

// RequestKeyframe makes the media server a Keyframer, so that the HLS
// packager can ask a browser publisher for the keyframe ffmpeg starts on.
func (m sfuMedia) RequestKeyframe(class store.ClassID, t sfu.TrackID) {
	m.s.RequestKeyframe(class, t)
}

// ICEServers makes the media server an ICEServerLister.
func (m sfuMedia) ICEServers() []webrtc.ICEServer { return m.s.ICEServers() }
