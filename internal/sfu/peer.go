package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Initial pool sizes of a subscriber connection: enough for a small class
// without a renegotiation; the pool grows in chunks when more is needed.
const (
	initialAudioSlots = 4
	initialVideoSlots = 4
	audioChunk        = 8
	videoChunk        = 4
)

// Peer is one participant's media: its publisher connection, its
// subscriber connection with a pool of reusable transceivers, and what it
// asked to receive.
type Peer struct {
	ss  *Session
	id  ParticipantID
	sig Signaller
	log *slog.Logger

	pub, sub *webrtc.PeerConnection
	est      cc.BandwidthEstimator // nil without TWCC
	wg       sync.WaitGroup        // read loops of published tracks
	closing  sync.Once

	mu          sync.Mutex
	closed      bool
	declared    map[string]PublishedTrack // publisher mid → what the client said it is
	want        []VideoRequest
	audio       []*slot
	video       []*slot
	negotiating bool // a subscriber offer awaits its answer
	again       bool // renegotiate when the answer comes
	iceRestart  bool // the next subscriber offer restarts ICE
	lastTracks  []TrackInfo
	lastMapping map[string]TrackID
	quality     Quality
	failed      bool
	lossEst     int                   // loss-based estimate for EstimateLoss
	remotes     []*webrtc.TrackRemote // published layers being read

	// up is the publisher connection's receive side, down the
	// subscriber connection's feedback and counts.
	up       *upConn
	down     downConn
	subReady atomic.Bool // the subscriber connection is connected
}

// newPeer creates participant id's two connections.
func newPeer(ss *Session, id ParticipantID, sig Signaller) (*Peer, error) {
	srv := ss.srv
	p := &Peer{
		ss: ss, id: id, sig: sig,
		log:         srv.log.With("class", string(ss.class), "participant", string(id)),
		declared:    map[string]PublishedTrack{},
		lastMapping: map[string]TrackID{},
		lossEst:     srv.cfg.InitialEstimate,
	}
	var err error
	p.up = newUpConn(srv, string(id))
	if p.pub, p.up.directOK, err = srv.pubAPI.newPeerConnection(p.up.buffer, &p.up.keys, ""); err != nil {
		return nil, fmt.Errorf("sfu: publisher connection: %w", err)
	}
	p.up.pc = p.pub
	p.down = downConn{srv: srv, name: string(id)}
	p.down.fail = func() { p.stateChange(PCSub, webrtc.PeerConnectionStateFailed) }
	if p.sub, p.down.directOK, err = srv.subAPI.newPeerConnection(p.down.buffer, &p.down.keys, ""); err != nil {
		_ = p.pub.Close()
		return nil, fmt.Errorf("sfu: subscriber connection: %w", err)
	}
	p.down.pc = p.sub
	if est, ok := srv.estimators.LoadAndDelete(p.sub.ID()); ok {
		p.est = est.(cc.BandwidthEstimator)
		p.down.est = p.est
	}
	// The publisher connection's estimator is never read; forget it.
	srv.estimators.Delete(p.pub.ID())

	p.pub.OnICECandidate(func(c *webrtc.ICECandidate) { p.candidate(PCPub, c) })
	p.sub.OnICECandidate(func(c *webrtc.ICECandidate) { p.candidate(PCSub, c) })
	p.pub.OnTrack(p.onTrack)
	p.pub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { p.stateChange(PCPub, s) })
	p.sub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { p.stateChange(PCSub, s) })

	p.mu.Lock()
	err = p.growLocked(webrtc.RTPCodecTypeAudio, initialAudioSlots)
	if err == nil {
		err = p.growLocked(webrtc.RTPCodecTypeVideo, min(initialVideoSlots, srv.cfg.VideoSlots))
	}
	p.mu.Unlock()
	if err != nil {
		p.closeConnections()
		return nil, err
	}
	return p, nil
}

// start sends the first subscriber offer.
func (p *Peer) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.negotiateLocked()
}

// ID returns the participant.
func (p *Peer) ID() ParticipantID { return p.id }

func (p *Peer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// candidate passes a local candidate to the client.
func (p *Peer) candidate(pc PC, c *webrtc.ICECandidate) {
	if c == nil { // gathering complete
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.sig.Candidate(pc, c.ToJSON())
	}
}

// stateChange follows a connection's state: a subscriber connection that
// comes up needs keyframes for what it already receives, and a failure is
// reported.
func (p *Peer) stateChange(pc PC, s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateClosed:
		if pc == PCSub {
			p.down.closed()
		} else {
			p.up.close()
		}
	case webrtc.PeerConnectionStateConnected:
		if pc == PCSub {
			p.down.choosePath()
		} else {
			p.up.up()
		}
		p.mu.Lock()
		p.failed = false
		var ups []*upTrack
		var layers []int
		if pc == PCSub {
			p.subReady.Store(true)
			// Keyframes sent before DTLS was up went nowhere.
			for _, sl := range p.video {
				if sl.up != nil {
					cur, target := sl.subscriber().Layers()
					ups, layers = append(ups, sl.up), append(layers, max(cur, target))
				}
			}
		}
		p.mu.Unlock()
		for i, t := range ups {
			t.requestKeyframe(layers[i])
		}
	case webrtc.PeerConnectionStateFailed:
		p.mu.Lock()
		report := !p.closed && !p.failed
		p.failed = true
		p.mu.Unlock()
		if report {
			p.ss.srv.events.PeerFailed(p.ss.class, p.id, fmt.Errorf("sfu: %s connection failed", pc))
		}
	}
}

// onTrack starts forwarding a published track (one call per simulcast
// layer).
func (p *Peer) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	mid := receiverMid(p.pub, receiver)
	p.mu.Lock()
	spec, ok := p.declared[mid]
	p.mu.Unlock()
	if !ok {
		// Undeclared: the kind decides.
		spec = PublishedTrack{Mid: mid, Source: SourceCamera, Simulcast: remote.RID() != ""}
		if remote.Kind() == webrtc.RTPCodecTypeAudio {
			spec.Source = SourceMic
		}
	}
	layer, ok := ridLayer(remote.RID())
	if !ok {
		p.log.Warn("unknown simulcast layer ignored", "rid", remote.RID(), "mid", mid)
		return
	}
	levelExt, twccExt := trackExts(remote, receiver)
	p.mu.Lock()
	p.remotes = append(p.remotes, remote)
	p.mu.Unlock()
	p.ss.publish(publisher{peer: p, id: p.id, pc: p.pub, wg: &p.wg, log: p.log, up: p.up}, spec, remote, layer, levelExt, twccExt)
}

// PublisherOffer applies the client's offer on the publisher connection,
// with its description of what each m-line carries, and sends the answer.
// A new offer with ICE restart restarts the publisher connection's ICE.
func (p *Peer) PublisherOffer(sdp string, tracks []PublishedTrack) error {
	sources := map[Source]bool{}
	mids := map[string]PublishedTrack{}
	for i, t := range tracks {
		switch t.Source {
		case SourceCamera, SourceMic, SourceScreen:
		default:
			return apperr.Field(fmt.Sprintf("tracks[%d].source", i), "unknown source %q", t.Source)
		}
		if sources[t.Source] {
			return apperr.Field(fmt.Sprintf("tracks[%d].source", i), "source %q declared twice", t.Source)
		}
		if _, dup := mids[t.Mid]; dup {
			return apperr.Field(fmt.Sprintf("tracks[%d].mid", i), "mid %q declared twice", t.Mid)
		}
		sources[t.Source] = true
		mids[t.Mid] = t
	}
	if p.up.directOK && strings.Contains(sdp, "a=setup:passive") {
		// The connection answers as the DTLS server (connAPI); an
		// offerer that insists on being the server too would never
		// connect. RFC 8842 has offers say actpass.
		return apperr.Field("sdp", "a=setup:passive is not supported: offer a=setup:actpass")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return apperr.New(apperr.Conflict, "media connection closed")
	}
	if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return apperr.Wrap(apperr.Invalid, err, "publisher offer")
	}
	maps.Copy(p.declared, mids)
	answer, err := p.pub.CreateAnswer(nil)
	if err != nil {
		return apperr.Wrap(apperr.Invalid, err, "publisher answer")
	}
	if err := p.pub.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("sfu: publisher answer: %w", err)
	}
	p.sig.Answer(p.pub.LocalDescription().SDP)
	return nil
}

// SubscriberAnswer applies the client's answer to the last subscriber
// offer, and sends the next offer if changes waited for it.
func (p *Peer) SubscriberAnswer(sdp string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return apperr.New(apperr.Conflict, "media connection closed")
	}
	if !p.negotiating {
		return apperr.New(apperr.Conflict, "no subscriber offer awaits an answer")
	}
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return apperr.Wrap(apperr.Invalid, err, "subscriber answer")
	}
	p.negotiating = false
	if p.again {
		p.again = false
		p.negotiateLocked()
	}
	return nil
}

// AddCandidate adds a remote ICE candidate to a connection.
func (p *Peer) AddCandidate(pc PC, c webrtc.ICECandidateInit) error {
	var conn *webrtc.PeerConnection
	switch pc {
	case PCPub:
		conn = p.pub
	case PCSub:
		conn = p.sub
	default:
		return apperr.Field("pc", "unknown connection %q", pc)
	}
	if err := conn.AddICECandidate(c); err != nil {
		return apperr.Wrap(apperr.Invalid, err, "candidate")
	}
	return nil
}

// RestartICE restarts the subscriber connection's ICE (the client asks
// after a network change; it restarts the publisher side with a new
// offer).
func (p *Peer) RestartICE() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return apperr.New(apperr.Conflict, "media connection closed")
	}
	p.iceRestart = true
	p.negotiateLocked()
	return nil
}

// Subscribe sets the videos (cameras, screen shares) the participant
// wants, with their tile sizes; at most MaxVideo. Audio needs no
// subscription: everyone in the group is heard.
func (p *Peer) Subscribe(video []VideoRequest) error {
	if len(video) > MaxVideo {
		return apperr.Field("video", "at most %d videos, got %d", MaxVideo, len(video))
	}
	seen := map[TrackID]bool{}
	want := make([]VideoRequest, 0, len(video))
	for i, v := range video {
		if v.Track == "" {
			return apperr.Field(fmt.Sprintf("video[%d].track", i), "track is required")
		}
		if v.Width < 0 || v.Height < 0 || v.Width > 16384 || v.Height > 16384 {
			return apperr.Field(fmt.Sprintf("video[%d].width", i), "tile size %d×%d is out of range", v.Width, v.Height)
		}
		if seen[v.Track] {
			continue
		}
		seen[v.Track] = true
		want = append(want, v)
	}
	ss := p.ss
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return apperr.New(apperr.Conflict, "media connection closed")
	}
	p.want = want
	for _, sl := range p.video {
		if sl.up != nil {
			if r, ok := p.request(sl.up.info.ID); ok {
				sl.req = r
			}
		}
	}
	p.mu.Unlock()
	ss.reconcileLocked(p)
	return nil
}

// request returns the participant's request for a track.
func (p *Peer) request(id TrackID) (VideoRequest, bool) {
	for _, r := range p.want {
		if r.Track == id {
			return r, true
		}
	}
	return VideoRequest{}, false
}

// Close closes the participant's connections and stops everything
// forwarded to and from it. It is safe to call more than once.
func (p *Peer) Close() {
	p.closing.Do(func() {
		p.ss.leave(p)
		p.up.close()
		p.closeConnections()
		// Pion does not always end a read that began while the
		// connection was closing (a stream created during Close stays
		// open); a deadline in the past ends them all.
		p.mu.Lock()
		now := time.Now()
		for _, r := range p.remotes {
			_ = r.SetReadDeadline(now)
		}
		p.mu.Unlock()
		// The estimator is closed with the connection's interceptors.
		p.wg.Wait()
	})
}

func (p *Peer) closeConnections() {
	if err := errors.Join(p.pub.Close(), p.sub.Close()); err != nil {
		p.log.Debug("closing connections", "err", err)
	}
}

// announceLocked sends the visible tracks when they changed.
func (p *Peer) announceLocked(visible []*upTrack) {
	infos := make([]TrackInfo, len(visible))
	for i, t := range visible {
		infos[i] = t.info
	}
	if slices.EqualFunc(infos, p.lastTracks, func(a, b TrackInfo) bool {
		return a.ID == b.ID && slices.Equal(a.Layers, b.Layers)
	}) && p.lastTracks != nil {
		return
	}
	p.lastTracks = infos
	p.sig.Tracks(infos)
}

// assignLocked gives each of the audio and video tracks a transceiver of
// the pool, keeping those that already have one, and releases the rest.
// It grows the pool, and renegotiates, only when it is too small.
func (p *Peer) assignLocked(audio, video []*upTrack) {
	grew := p.fill(webrtc.RTPCodecTypeAudio, audio)
	if p.fill(webrtc.RTPCodecTypeVideo, video) {
		grew = true
	}
	if grew {
		p.negotiateLocked()
		return
	}
	p.sendMappingLocked()
}

// fill assigns tracks to the slots of one kind; it reports whether the
// pool grew.
func (p *Peer) fill(kind webrtc.RTPCodecType, tracks []*upTrack) bool {
	slots := &p.audio
	chunk, limit := audioChunk, 1<<10
	if kind == webrtc.RTPCodecTypeVideo {
		slots = &p.video
		chunk, limit = videoChunk, p.ss.srv.cfg.VideoSlots
	}
	keep := make(map[*upTrack]bool, len(tracks))
	for _, t := range tracks {
		keep[t] = true
	}
	has := map[*upTrack]bool{}
	for _, sl := range *slots {
		if sl.up != nil && !keep[sl.up] {
			sl.release()
		}
		if sl.up != nil {
			has[sl.up] = true
		}
	}
	grew := false
	for _, t := range tracks {
		if has[t] {
			continue
		}
		free := p.freeSlot(*slots)
		if free == nil && len(*slots) < limit {
			if err := p.growLocked(kind, min(chunk, limit-len(*slots))); err != nil {
				p.log.Warn("cannot grow the subscriber pool", "err", err)
				return grew
			}
			grew = true
			free = p.freeSlot(*slots)
		}
		if free == nil {
			p.log.Warn("no transceiver left for a track", "track", string(t.info.ID))
			continue
		}
		req, _ := p.request(t.info.ID)
		if err := free.assign(t, req); err != nil {
			p.log.Warn("cannot subscribe", "track", string(t.info.ID), "err", err)
		}
	}
	return grew
}

// freeSlot returns a slot without a track.
func (p *Peer) freeSlot(slots []*slot) *slot {
	for _, sl := range slots {
		if sl.up == nil {
			return sl
		}
	}
	return nil
}

// growLocked adds n transceivers of a kind to the subscriber connection.
func (p *Peer) growLocked(kind webrtc.RTPCodecType, n int) error {
	for range n {
		prefix, n := "a", len(p.audio)
		if kind == webrtc.RTPCodecTypeVideo {
			prefix, n = "v", len(p.video)
		}
		sl, err := newSlot(&p.down, kind, fmt.Sprintf("%s%d", prefix, n), nil)
		if err != nil {
			return err
		}
		if kind == webrtc.RTPCodecTypeAudio {
			p.audio = append(p.audio, sl)
		} else {
			p.video = append(p.video, sl)
		}
	}
	return nil
}

// releaseAllLocked stops everything forwarded to the participant.
func (p *Peer) releaseAllLocked() {
	for _, sl := range p.audio {
		sl.release()
	}
	for _, sl := range p.video {
		sl.release()
	}
}

// negotiateLocked sends a subscriber offer, or marks one as due when an
// offer already awaits its answer (offers never cross: the server alone
// offers on this connection).
func (p *Peer) negotiateLocked() {
	if p.closed {
		return
	}
	if p.negotiating {
		p.again = true
		return
	}
	offer, err := p.sub.CreateOffer(&webrtc.OfferOptions{ICERestart: p.iceRestart})
	if err == nil {
		err = p.sub.SetLocalDescription(offer)
	}
	if err != nil {
		p.log.Warn("subscriber offer failed", "err", err)
		return
	}
	p.iceRestart = false
	p.negotiating = true
	for _, sl := range append(slices.Clip(p.audio), p.video...) {
		if sl.mid == "" {
			sl.mid = sl.tr.Mid()
		}
	}
	p.sig.Offer(p.sub.LocalDescription().SDP)
	p.sendMappingLocked()
}

// sendMappingLocked tells the client which mid carries which track, when
// that changed.
func (p *Peer) sendMappingLocked() {
	m := map[string]TrackID{}
	for _, sl := range append(slices.Clip(p.audio), p.video...) {
		if sl.up != nil && sl.mid != "" {
			m[sl.mid] = sl.up.info.ID
		}
	}
	if maps.Equal(m, p.lastMapping) {
		return
	}
	p.lastMapping = m
	p.sig.Mapping(maps.Clone(m))
}

// estimate returns the participant's downstream bandwidth estimate.
func (p *Peer) estimate(now time.Time) int {
	e := p.lossEst
	if p.est != nil {
		e = p.est.GetTargetBitrate()
	}
	return p.down.capREMB(e, now)
}

// audioReserve is what one forwarded microphone takes from the estimate.
const audioReserve = 40_000

// tick chooses the layer of every video the participant receives and
// grades its connection.
func (p *Peer) tick(now time.Time) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	loss, recent := p.down.recentLoss(now)
	if p.est == nil && recent {
		p.lossEst = adjustLossEstimate(p.lossEst, loss)
	}
	budget := p.estimate(now)
	for _, sl := range p.audio {
		if sl.up != nil {
			budget -= audioReserve
		}
	}
	var screens, cameras []*slot
	for _, sl := range p.video {
		switch {
		case sl.up == nil:
		case sl.up.info.Source == SourceScreen:
			screens = append(screens, sl)
		default:
			cameras = append(cameras, sl)
		}
	}
	// A screen share goes first, at the best layer the estimate allows;
	// the cameras share what is left.
	for _, sl := range screens {
		budget -= sl.choose(now, budget)
	}
	for i, sl := range cameras {
		budget -= sl.choose(now, budget/(len(cameras)-i))
	}
	q := QualityExcellent
	rtt := time.Duration(p.down.rtt.Load())
	switch {
	case p.failed:
		q = QualityLost
	case loss > 0.1 || rtt > 500*time.Millisecond:
		q = QualityPoor
	case loss > 0.02 || rtt > 200*time.Millisecond:
		q = QualityGood
	}
	changed := q != p.quality
	p.quality = q
	var srs []rtcp.Packet
	if p.subReady.Load() {
		for _, sl := range append(slices.Clip(p.audio), p.video...) {
			srs = sl.appendReport(srs, now)
		}
	}
	p.mu.Unlock()
	p.down.sendReports(srs)
	if changed {
		p.ss.srv.events.Quality(p.ss.class, p.id, q)
	}
}
