package sfu

import (
	"slices"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/media/fanout"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/webrtc/v4"
)

// Session is the media of one live class: its peers, their published
// tracks, and the groups and blocks that decide who receives what.
type Session struct {
	srv   *Server
	class store.ClassID

	mu       sync.Mutex
	peers    map[ParticipantID]*Peer
	tracks   map[TrackID]*upTrack
	groups   map[ParticipantID]GroupID
	blocked  map[TrackID]bool
	speakers map[GroupID]ParticipantID
	// The broadcast: its publishers (WHIP), viewers (WHEP) and taps.
	ingests map[ParticipantID]*Ingest
	viewers map[*Viewer]struct{}
	taps    map[*tap]struct{}
	stop    chan struct{} // closes the ticker; nil while it is not running
	ticker  sync.WaitGroup
	// joining counts joins under way, during which the session must not
	// be forgotten even if it is empty; guarded by srv.mu.
	joining int
}

func newSession(srv *Server, class store.ClassID) *Session {
	return &Session{
		srv: srv, class: class,
		peers:    map[ParticipantID]*Peer{},
		tracks:   map[TrackID]*upTrack{},
		groups:   map[ParticipantID]GroupID{},
		blocked:  map[TrackID]bool{},
		speakers: map[GroupID]ParticipantID{},
		ingests:  map[ParticipantID]*Ingest{},
		viewers:  map[*Viewer]struct{}{},
		taps:     map[*tap]struct{}{},
	}
}

// Class returns the class the session belongs to.
func (ss *Session) Class() store.ClassID { return ss.class }

// peer returns participant p's Peer, or nil.
func (ss *Session) peer(p ParticipantID) *Peer {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.peers[p]
}

// join creates participant p's Peer, replacing an earlier one.
func (ss *Session) join(p ParticipantID, sig Signaller) (*Peer, error) {
	if old := ss.peer(p); old != nil {
		old.Close()
	}
	peer, err := newPeer(ss, p, sig)
	if err != nil {
		return nil, err
	}
	ss.mu.Lock()
	replaceLocked(ss, ss.peers, p, peer)
	ss.startTickerLocked()
	ss.reconcileLocked(peer)
	ss.mu.Unlock()
	peer.start()
	return peer, nil
}

// replaceLocked makes v participant p's entry in m (ss.peers or
// ss.ingests), closing the one there now: an earlier connection of the
// same participant, or a concurrent join or publish of it that won the
// race, is replaced. ss.mu is held, and released while the old one
// closes (its Close takes ss.mu).
func replaceLocked[V interface{ Close() }](ss *Session, m map[ParticipantID]V, p ParticipantID, v V) {
	if old, ok := m[p]; ok {
		ss.mu.Unlock()
		old.Close()
		ss.mu.Lock()
	}
	m[p] = v
}

// leave removes peer from the session and unpublishes its tracks. It
// returns the events to report.
func (ss *Session) leave(peer *Peer) {
	ss.mu.Lock()
	if ss.peers[peer.id] == peer {
		delete(ss.peers, peer.id)
	}
	gone := ss.dropTracksLocked(publisher{peer: peer, id: peer.id})
	peer.mu.Lock()
	peer.closed = true
	peer.releaseAllLocked()
	peer.mu.Unlock()
	for _, o := range ss.peers {
		ss.reconcileLocked(o)
	}
	if len(gone) > 0 {
		ss.tracksChangedLocked()
	}
	stop := ss.idleTickerLocked()
	ss.mu.Unlock()
	ss.stopTicker(stop)
	ss.dropIfIdle()
	for _, t := range gone {
		ss.srv.events.TrackUnpublished(ss.class, t)
	}
}

// dropTracksLocked forgets the tracks pub published, for a Peer that
// leaves or an Ingest that closes, and returns them: the caller brings
// the consumers in line and reports them unpublished.
func (ss *Session) dropTracksLocked(pub publisher) []TrackInfo {
	var gone []TrackInfo
	for id, t := range ss.tracks {
		if pub.owns(t) {
			delete(ss.tracks, id)
			gone = append(gone, t.info)
		}
	}
	return gone
}

// dropIfIdle forgets the session when nobody is in it and it holds no
// group or block worth keeping for a participant who comes back.
func (ss *Session) dropIfIdle() {
	srv := ss.srv
	srv.mu.Lock()
	defer srv.mu.Unlock()
	ss.mu.Lock()
	idle := len(ss.peers) == 0 && len(ss.groups) == 0 && len(ss.blocked) == 0 && ss.joining == 0 &&
		len(ss.ingests) == 0 && len(ss.viewers) == 0 && len(ss.taps) == 0
	ss.mu.Unlock()
	if idle && srv.sessions[ss.class] == ss {
		delete(srv.sessions, ss.class)
	}
}

// close closes every peer, ingest and viewer, and ends the taps.
func (ss *Session) close() {
	ss.mu.Lock()
	peers := make([]*Peer, 0, len(ss.peers))
	for _, p := range ss.peers {
		peers = append(peers, p)
	}
	ingests := make([]*Ingest, 0, len(ss.ingests))
	for _, ing := range ss.ingests {
		ingests = append(ingests, ing)
	}
	viewers := make([]*Viewer, 0, len(ss.viewers))
	for v := range ss.viewers {
		viewers = append(viewers, v)
	}
	for tp := range ss.taps {
		tp.detachLocked()
	}
	clear(ss.taps)
	// With taps alone the clock ran for them; with anyone else, their
	// leaving stops it.
	stop := ss.idleTickerLocked()
	ss.mu.Unlock()
	ss.stopTicker(stop)
	for _, p := range peers {
		p.Close()
	}
	for _, ing := range ingests {
		ing.Close()
	}
	for _, v := range viewers {
		v.Close()
	}
}

// startTickerLocked starts the session's clock if it is not running.
func (ss *Session) startTickerLocked() {
	if ss.stop == nil {
		ss.stop = make(chan struct{})
		stop := ss.stop
		ss.ticker.Go(func() { ss.run(stop) })
	}
}

// idleTickerLocked takes the clock's stop channel when nobody is left for
// it to serve: no participant, no viewer, no tap. The caller passes it to
// stopTicker once ss.mu is released.
func (ss *Session) idleTickerLocked() chan struct{} {
	if len(ss.peers) > 0 || len(ss.viewers) > 0 || len(ss.taps) > 0 {
		return nil
	}
	stop := ss.stop
	ss.stop = nil
	return stop
}

// stopTicker stops the clock taken by idleTickerLocked, if any.
func (ss *Session) stopTicker(stop chan struct{}) {
	if stop != nil {
		close(stop)
		ss.ticker.Wait()
	}
}

// currentLocked reports whether pub still publishes in the session: a
// Peer that has not left, an Ingest that has not closed.
func (ss *Session) currentLocked(pub publisher) bool {
	if pub.peer != nil {
		return !pub.peer.isClosed() && ss.peers[pub.id] == pub.peer
	}
	return pub.ing != nil && ss.ingests[pub.id] == pub.ing
}

// tracksChangedLocked brings the broadcast's consumers in line with the
// published tracks: every viewer gets the broadcast's video and audio,
// every tap its track.
func (ss *Session) tracksChangedLocked() {
	video, audio := ss.broadcastLocked()
	for v := range ss.viewers {
		v.reconcile(video, audio)
	}
	for tp := range ss.taps {
		tp.reconcileLocked()
	}
}

// broadcastLocked returns the tracks a broadcast viewer receives: the
// video and the audio of the class's broadcast publishers (their camera
// before a screen), by track ID when several publish.
func (ss *Session) broadcastLocked() (video, audio *upTrack) {
	better := func(a, b *upTrack) bool {
		if b == nil {
			return true
		}
		if (a.info.Source == SourceCamera) != (b.info.Source == SourceCamera) {
			return a.info.Source == SourceCamera
		}
		return a.info.ID < b.info.ID
	}
	for _, t := range ss.tracks {
		if t.ing == nil {
			continue
		}
		if t.kind == webrtc.RTPCodecTypeVideo {
			if better(t, video) {
				video = t
			}
		} else if better(t, audio) {
			audio = t
		}
	}
	return video, audio
}

// publish registers one layer of a track that started arriving and starts
// forwarding it.
func (ss *Session) publish(pub publisher, spec PublishedTrack, remote *webrtc.TrackRemote, layer int, levelExt, twccExt uint8) {
	id := MakeTrackID(pub.id, spec.Source)
	ss.mu.Lock()
	if !ss.currentLocked(pub) {
		ss.mu.Unlock()
		return
	}
	t, ok := ss.tracks[id]
	isNew := !ok || !pub.owns(t)
	if isNew {
		var err error
		t, err = newUpTrack(ss, pub, spec, remote.Kind(), remote.Codec().MimeType)
		if err != nil {
			ss.mu.Unlock()
			pub.log.Warn("cannot forward a published track", "track", string(id), "err", err)
			return
		}
		ss.tracks[id] = t
	}
	if layer >= t.layers() {
		ss.mu.Unlock()
		pub.log.Warn("published layer not declared", "track", string(id), "rid", remote.RID())
		return
	}
	// Known before the subscribers below ask for a keyframe of it.
	t.ssrc[layer].Store(uint32(remote.SSRC()))
	t.readers.Add(1)
	st := &upStream{
		t: t, layer: layer, ssrc: uint32(remote.SSRC()), clock: t.clockRate(),
		nack: t.kind == webrtc.RTPCodecTypeVideo, twccExt: twccExt, levelExt: levelExt,
	}
	if t.kind == webrtc.RTPCodecTypeVideo {
		st.q = make(chan *queued, videoQueue)
		st.shed = &pub.up.shed
		pub.wg.Go(func() {
			st.forward(&ss.srv.queued, func(pkts []fanout.Arrived) { st.t.receiveBatch(st, pkts) })
		})
	}
	pub.up.addStream(st)
	pub.wg.Go(func() { t.read(remote, st) })
	if isNew {
		for _, o := range ss.peers {
			ss.reconcileLocked(o)
		}
		ss.tracksChangedLocked()
	}
	ss.mu.Unlock()
	if isNew {
		ss.srv.events.TrackPublished(ss.class, t.info)
	}
}

// readerDone is called when one layer of t stops arriving; the track is
// unpublished with its last layer.
func (ss *Session) readerDone(t *upTrack) {
	if t.readers.Add(-1) > 0 {
		return
	}
	ss.mu.Lock()
	if ss.tracks[t.info.ID] != t {
		ss.mu.Unlock()
		return
	}
	delete(ss.tracks, t.info.ID)
	for _, o := range ss.peers {
		ss.reconcileLocked(o)
	}
	ss.tracksChangedLocked()
	ss.mu.Unlock()
	ss.srv.events.TrackUnpublished(ss.class, t.info)
}

// setGroup moves p to group g.
func (ss *Session) setGroup(p ParticipantID, g GroupID) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.groups[p] == g {
		return
	}
	if g == "" {
		delete(ss.groups, p)
	} else {
		ss.groups[p] = g
	}
	for _, o := range ss.peers {
		ss.reconcileLocked(o)
	}
}

// block stops or resumes forwarding p's source.
func (ss *Session) block(p ParticipantID, src Source, blocked bool) {
	id := MakeTrackID(p, src)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.blocked[id] == blocked {
		return
	}
	if blocked {
		ss.blocked[id] = true
	} else {
		delete(ss.blocked, id)
	}
	for _, o := range ss.peers {
		ss.reconcileLocked(o)
	}
}

// visibleLocked returns the tracks peer may receive, sorted by ID: those
// of the other participants of its group that are not blocked.
func (ss *Session) visibleLocked(peer *Peer) []*upTrack {
	g := ss.groups[peer.id]
	var out []*upTrack
	for id, t := range ss.tracks {
		if t.owner == peer || ss.groups[t.info.Participant] != g || ss.blocked[id] {
			continue
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *upTrack) int {
		switch {
		case a.info.ID < b.info.ID:
			return -1
		case a.info.ID > b.info.ID:
			return 1
		}
		return 0
	})
	return out
}

// reconcileLocked brings what peer receives in line with what it may see
// and wants: announce the visible tracks, give every visible microphone
// and every wanted visible video a transceiver, release the others.
func (ss *Session) reconcileLocked(peer *Peer) {
	visible := ss.visibleLocked(peer)
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if peer.closed {
		return
	}
	peer.announceLocked(visible)
	var audio, video []*upTrack
	byID := make(map[TrackID]*upTrack, len(visible))
	for _, t := range visible {
		byID[t.info.ID] = t
		if t.kind == webrtc.RTPCodecTypeAudio {
			audio = append(audio, t)
		}
	}
	for _, r := range peer.want {
		if t, ok := byID[r.Track]; ok && t.kind == webrtc.RTPCodecTypeVideo {
			video = append(video, t)
		}
	}
	peer.assignLocked(audio, video)
}

// run is the session's clock: layer choice, quality and active speaker.
func (ss *Session) run(stop chan struct{}) {
	tick := time.NewTicker(ss.srv.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			ss.tick(now)
		}
	}
}

// tick runs one round of the session's periodic work.
func (ss *Session) tick(now time.Time) {
	type speaker struct {
		g GroupID
		p ParticipantID
	}
	var changed []speaker
	ss.mu.Lock()
	peers := make([]*Peer, 0, len(ss.peers))
	for _, p := range ss.peers {
		peers = append(peers, p)
	}
	loudest := map[GroupID]*upTrack{}
	for _, t := range ss.tracks {
		if t.kind != webrtc.RTPCodecTypeAudio || ss.blocked[t.info.ID] {
			continue
		}
		// Louder than about -50 dBov: speech, not room noise.
		const threshold = (127 - 50) << 8
		lv := t.level(now)
		if lv < threshold {
			continue
		}
		g := ss.groups[t.info.Participant]
		if best := loudest[g]; best == nil || lv > best.level(now) {
			loudest[g] = t
		}
	}
	for tp := range ss.taps {
		tp.followLocked(now)
	}
	for g, t := range loudest {
		if ss.speakers[g] != t.info.Participant {
			ss.speakers[g] = t.info.Participant
			changed = append(changed, speaker{g, t.info.Participant})
		}
	}
	ss.mu.Unlock()
	for _, c := range changed {
		ss.srv.events.ActiveSpeaker(ss.class, c.g, c.p)
	}
	for _, p := range peers {
		p.tick(now)
	}
	ss.mu.Lock()
	viewers := make([]*Viewer, 0, len(ss.viewers))
	for v := range ss.viewers {
		viewers = append(viewers, v)
	}
	ss.mu.Unlock()
	for _, v := range viewers {
		v.tick(now)
	}
}
