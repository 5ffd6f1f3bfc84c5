package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/webrtc/v4"
)

// disconnectGrace is how long a broadcast connection may stay
// ICE-disconnected before it counts as gone: long enough for a Wi-Fi
// hiccup, short enough that an encoder reconnecting (OBS retries after a
// few seconds) finds its old publish ended.
const disconnectGrace = 3 * time.Second

// gatherTimeout bounds the wait for the server's candidates, which go in
// the answer (WHIP and WHEP clients need not trickle). With the shared
// UDP mux gathering takes microseconds; the bound is for a stuck TURN or
// mDNS lookup.
const gatherTimeout = 5 * time.Second

// connWatch follows the state of a broadcast connection, an Ingest's or a
// Viewer's: whether it is up, and the end of its owner when it fails or
// closes, or stays disconnected for disconnectGrace. Both ended the same
// way; one watch keeps their timers from drifting apart.
type connWatch struct {
	end       func() // the owner's Close
	connected atomic.Bool

	mu    sync.Mutex
	timer *time.Timer // runs end after disconnectGrace
	ended bool        // the owner's Close has begun: no more timers
}

// change follows the connection into state s; it reports whether the
// connection has just come up.
func (w *connWatch) change(s webrtc.PeerConnectionState) (up bool) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		w.connected.Store(true)
		w.mu.Lock()
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
		w.mu.Unlock()
		return true
	case webrtc.PeerConnectionStateDisconnected:
		w.connected.Store(false)
		w.mu.Lock()
		if w.timer == nil && !w.ended {
			w.timer = time.AfterFunc(disconnectGrace, w.end)
		}
		w.mu.Unlock()
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		w.connected.Store(false)
		// Not on Pion's goroutine: the owner's Close closes the connection
		// and waits for what reads from it.
		go w.end()
	}
	return false
}

// stop ends the grace for good: the owner's Close has begun.
func (w *connWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

// Ingest is a broadcast publisher (WHIP): one PeerConnection offered by
// the client (a browser's camera or screen in VP8 simulcast, or an
// encoder's H.264 and Opus), whose tracks are published in the class's
// Session as a participant's are: TrackPublished fires, participants see
// them, and broadcast viewers and taps receive them.
type Ingest struct {
	ss   *Session
	id   ParticipantID
	pc   *webrtc.PeerConnection
	up   *upConn // the connection's receive side
	log  *slog.Logger
	wg   sync.WaitGroup // read loops of the published layers
	done chan struct{}

	closing sync.Once
	conn    connWatch
	started time.Time

	mu      sync.Mutex
	sources map[string]Source // mid → what its track is published as
	remotes []*webrtc.TrackRemote
	ended   bool // Close has begun: no more remotes
	win     rateWindow

	packets atomic.Uint64
	bytes   atomic.Uint64
	frames  [maxLayers]atomic.Uint64 // video frames received, by layer
}

// IngestStats describes what a broadcast publisher sends, for the stream
// health the presenter sees.
type IngestStats struct {
	// Codec is the video codec ("video/VP8", "video/H264"), or the audio
	// codec when only audio is published; "" before media arrives.
	Codec string
	// Layers is the number of simulcast layers of the video (1 without
	// simulcast; 0 without video).
	Layers int
	// BitrateBps is the bitrate received over all tracks and layers since
	// the previous call of Stats (or since the start), bits per second.
	BitrateBps int
	// FrameRate is the frame rate of the highest video layer that
	// arrived over the same window, frames per second (a browser pauses
	// its top layers when its uplink is short).
	FrameRate float64
	// PacketsLost counts packets never received (from gaps in sequence
	// numbers, net of late arrivals), over all tracks and layers.
	PacketsLost uint64
	// Packets counts the RTP packets received.
	Packets uint64
}

// rateWindow turns running totals into rates between two Stats calls.
type rateWindow struct {
	at     time.Time
	bytes  uint64
	frames [maxLayers]uint64
	bps    int
	fps    float64
}

// minWindow is the shortest window a rate is measured over; a Stats call
// sooner than that after the previous one returns the previous rates.
const minWindow = 250 * time.Millisecond

// Ingest accepts a broadcast publisher's WHIP offer for a class as
// participant p and returns the Ingest and the answer, which carries all
// the server's candidates. An earlier Ingest of the same participant is
// closed first (the caller decides whether a second publisher may replace
// a connected one). A malformed offer, or one with nothing the server can
// receive, is an apperr.Invalid error.
func (s *Server) Ingest(class store.ClassID, p ParticipantID, offerSDP string) (*Ingest, string, error) {
	ss, done, err := s.enterOffer(class, "participant", p, offerSDP)
	if err != nil {
		return nil, "", err
	}
	defer done()
	up := newUpConn(s, string(p))
	pc, direct, err := s.ingAPI.newPeerConnection(up.buffer, &up.keys, offerSDP)
	if err != nil {
		return nil, "", fmt.Errorf("sfu: ingest connection: %w", err)
	}
	up.pc, up.directOK = pc, direct
	ing := &Ingest{
		ss: ss, id: p, pc: pc, up: up, done: make(chan struct{}), started: time.Now(),
		log: s.log.With("class", string(class), "participant", string(p), "role", "ingest"),
	}
	ing.win.at = ing.started
	ing.conn.end = ing.Close
	pc.OnTrack(ing.onTrack)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if ing.conn.change(s) {
			up.up()
		}
	})

	ss.mu.Lock()
	replaceLocked(ss, ss.ingests, p, ing)
	ss.mu.Unlock()

	answer, err := answerOffer(pc, offerSDP, webrtc.RTPTransceiverDirectionRecvonly)
	if err != nil {
		ing.Close()
		return nil, "", err
	}
	ing.mu.Lock()
	ing.sources = ingestSources(pc.GetTransceivers())
	ing.mu.Unlock()
	return ing, answer, nil
}

// enterOffer checks the request of a broadcast publisher or viewer (the
// one whose ID is field) and enters the class's session as enter does.
func (s *Server) enterOffer(class store.ClassID, field string, id ParticipantID, offerSDP string) (ss *Session, done func(), err error) {
	if id == "" {
		return nil, nil, apperr.Field(field, "%s is required", field)
	}
	if offerSDP == "" {
		return nil, nil, apperr.Field("sdp", "offer is empty")
	}
	return s.enter(class)
}

// ingestSources names what each m-line of a publisher's offer publishes,
// in the offer's order: the first video is the camera, a second the
// screen, the first audio the microphone. Further m-lines are not
// forwarded: two tracks under one name would race on one forwarder.
func ingestSources(trs []*webrtc.RTPTransceiver) map[string]Source {
	out := map[string]Source{}
	video := []Source{SourceCamera, SourceScreen}
	audio := []Source{SourceMic}
	for _, tr := range trs {
		if tr.Mid() == "" {
			continue
		}
		switch {
		case tr.Kind() == webrtc.RTPCodecTypeVideo && len(video) > 0:
			out[tr.Mid()], video = video[0], video[1:]
		case tr.Kind() == webrtc.RTPCodecTypeAudio && len(audio) > 0:
			out[tr.Mid()], audio = audio[0], audio[1:]
		}
	}
	return out
}

// answerOffer applies a client's offer, checks that some m-line was
// accepted in the direction the server takes (recvonly for a publisher,
// sendonly for a viewer), and returns the answer with every local
// candidate in it.
func answerOffer(pc *webrtc.PeerConnection, offer string, dir webrtc.RTPTransceiverDirection) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", apperr.Wrap(apperr.Invalid, err, "offer")
	}
	accepted := false
	for _, tr := range pc.GetTransceivers() {
		if tr.Mid() == "" {
			continue
		}
		switch dir {
		case webrtc.RTPTransceiverDirectionRecvonly:
			accepted = accepted || len(tr.Receiver().GetParameters().Codecs) > 0
		default:
			accepted = accepted || (tr.Sender() != nil && len(tr.Sender().GetParameters().Codecs) > 0)
		}
	}
	if !accepted {
		what := "no audio or video the server can receive (VP8, H.264 or Opus)"
		if dir != webrtc.RTPTransceiverDirectionRecvonly {
			what = "no audio or video m-line the server can send (VP8, H.264 or Opus)"
		}
		return "", apperr.New(apperr.Invalid, "offer has %s", what)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", apperr.Wrap(apperr.Invalid, err, "answer")
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", apperr.Wrap(apperr.Invalid, err, "answer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), gatherTimeout)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		// Send what was gathered: the host candidates of the mux come
		// first and are usually all a client needs.
	}
	return pc.LocalDescription().SDP, nil
}

// onTrack starts forwarding a published track (one call per simulcast
// layer), under the source its m-line was given (ingestSources).
func (ing *Ingest) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	mid := receiverMid(ing.pc, receiver)
	ing.mu.Lock()
	src, ok := ing.sources[mid]
	ing.mu.Unlock()
	if !ok {
		ing.log.Warn("track of an extra m-line not forwarded", "mid", mid, "kind", remote.Kind().String())
		return
	}
	spec := PublishedTrack{Mid: mid, Source: src, Simulcast: remote.RID() != ""}
	layer, ok := ridLayer(remote.RID())
	if !ok {
		ing.log.Warn("unknown simulcast layer ignored", "rid", remote.RID())
		return
	}
	levelExt, twccExt := trackExts(remote, receiver)
	ing.mu.Lock()
	if ing.ended {
		ing.mu.Unlock()
		return
	}
	ing.remotes = append(ing.remotes, remote)
	ing.mu.Unlock()
	ing.ss.publish(publisher{ing: ing, id: ing.id, pc: ing.pc, wg: &ing.wg, log: ing.log, up: ing.up}, spec, remote, layer, levelExt, twccExt)
}

// observe counts a packet of one of the ingest's tracks. It runs in
// upTrack.receive, under the layer's lock.
func (ing *Ingest) observe(t *upTrack, layer int, pkt []byte, _ time.Time) {
	ing.packets.Add(1)
	ing.bytes.Add(uint64(len(pkt)))
	if t.kind == webrtc.RTPCodecTypeVideo && len(pkt) > 1 && pkt[1]&0x80 != 0 {
		ing.frames[layer].Add(1) // the marker bit ends a frame
	}
	t.rx[layer].count(pkt)
}

// Participant returns the participant the ingest publishes as.
func (ing *Ingest) Participant() ParticipantID { return ing.id }

// Done is closed when the ingest has ended: Close, or its connection
// failed, closed, or stayed disconnected for a few seconds.
func (ing *Ingest) Done() <-chan struct{} { return ing.done }

// Connected reports whether the connection is up now.
func (ing *Ingest) Connected() bool { return ing.conn.connected.Load() }

// Stats returns what the publisher sends; the rates are over the time
// since the previous call.
func (ing *Ingest) Stats() IngestStats {
	st := IngestStats{Packets: ing.packets.Load()}
	ss := ing.ss
	ss.mu.Lock()
	var video, audio *upTrack
	for _, t := range ss.tracks {
		if t.ing != ing {
			continue
		}
		for i := range t.layers() {
			st.PacketsLost += t.rx[i].lost.Load()
		}
		if t.kind == webrtc.RTPCodecTypeVideo {
			video = t
		} else {
			audio = t
		}
	}
	ss.mu.Unlock()
	switch {
	case video != nil:
		st.Codec, st.Layers = video.info.Codec, video.layers()
	case audio != nil:
		st.Codec = audio.info.Codec
	}
	now := time.Now()
	bytes := ing.bytes.Load()
	var frames [maxLayers]uint64
	for i := range frames {
		frames[i] = ing.frames[i].Load()
	}
	ing.mu.Lock()
	defer ing.mu.Unlock()
	w := &ing.win
	if d := now.Sub(w.at); d >= minWindow {
		w.bps = int(float64(bytes-w.bytes) * 8 / d.Seconds())
		w.fps = 0
		for i := maxLayers - 1; i >= 0; i-- {
			if n := frames[i] - w.frames[i]; n > 0 {
				w.fps = float64(n) / d.Seconds()
				break
			}
		}
		w.at, w.bytes, w.frames = now, bytes, frames
	}
	st.BitrateBps, st.FrameRate = w.bps, w.fps
	return st
}

// Close ends the publish: its tracks are unpublished (viewers keep their
// connections and wait for the next publisher), the connection is closed.
// It is safe to call more than once.
func (ing *Ingest) Close() {
	ing.closing.Do(func() {
		ss := ing.ss
		ss.mu.Lock()
		if ss.ingests[ing.id] == ing {
			delete(ss.ingests, ing.id)
		}
		gone := ss.dropTracksLocked(publisher{ing: ing, id: ing.id})
		if len(gone) > 0 {
			for _, o := range ss.peers {
				ss.reconcileLocked(o)
			}
			ss.tracksChangedLocked()
		}
		ss.mu.Unlock()

		ing.conn.stop()
		ing.up.close()
		ing.mu.Lock()
		ing.ended = true
		remotes := ing.remotes
		ing.mu.Unlock()
		if err := ing.pc.Close(); err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
			ing.log.Debug("closing ingest connection", "err", err)
		}
		// As for a Peer: a read that began while the connection was
		// closing may not end by itself.
		now := time.Now()
		for _, r := range remotes {
			_ = r.SetReadDeadline(now)
		}
		ing.wg.Wait()
		ing.conn.connected.Store(false)
		close(ing.done)
		ss.dropIfIdle()
		for _, t := range gone {
			ss.srv.events.TrackUnpublished(ss.class, t)
		}
	})
}
