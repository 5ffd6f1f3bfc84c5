package broadcast

import (
	"context"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/audience"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
)

var errNotBroadcast = apperr.New(apperr.NotFound, "no such broadcast class")

// storeTimeout bounds a store call made for the lifecycle, which no
// request waits for.
const storeTimeout = 10 * time.Second

// channel is one broadcast class's channel in this process.
//
// Its lifecycle work (store writes, the audience, HLS) runs on one
// goroutine, in the order the events came: the media server's callbacks
// and the HTTP handlers only queue it (do), so they never wait on a
// database or ffmpeg, and never call back into the media server while it
// calls them.
type channel struct {
	s     *Service
	class store.ClassID

	// Under s.mu: what the HTTP handlers decide on at once.
	pub      *publisher
	viewers  map[string]*viewer
	reserved int  // WHEP offers being answered
	ended    bool // ended by this process: no new publish or viewer

	// The work queue.
	qmu    sync.Mutex
	queue  []func()
	wake   chan struct{}
	closed bool
	done   chan struct{}

	// Owned by the run goroutine.
	state              string // audience.State…
	codec              string
	since              time.Time
	video, audio       *sfu.TrackInfo // the current publisher's tracks
	pkg                Packager
	pkgCodec           string
	stopVideo, stopAud func()
	hlsSent            string // the HLS URL the audience was last told
}

// publisherID is the participant every publisher of a channel publishes
// as, one after the other: the tracks of a returning publisher then have
// the IDs of the previous one's, and the taps feeding HLS continue on them
// as one stream (the media server keeps a tap across a track's return).
const publisherID sfu.ParticipantID = publisherPrefix + "publisher"

// publisher is one WHIP publish.
type publisher struct {
	id       string   // resource ID, in the Location
	bearer   [32]byte // SHA-256 of the credential it was started with
	started  time.Time
	ingest   Ingest // nil while the offer is being answered
	stopping bool   // DELETEd: stopped on purpose
	gone     bool   // handled by publisherGone
}

// viewer is one WHEP viewer.
type viewer struct {
	id     string
	user   string
	conn   Viewer
	closed bool
}

func newChannel(s *Service, class store.ClassID) *channel {
	return &channel{
		s: s, class: class, viewers: map[string]*viewer{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		state: audience.StateOffline,
	}
}

// do queues fn on the channel's goroutine; false once the channel is shut.
func (ch *channel) do(fn func()) bool {
	ch.qmu.Lock()
	if ch.closed {
		ch.qmu.Unlock()
		return false
	}
	ch.queue = append(ch.queue, fn)
	ch.qmu.Unlock()
	select {
	case ch.wake <- struct{}{}:
	default:
	}
	return true
}

// run works through the queue until shutdown.
func (ch *channel) run() {
	defer close(ch.done)
	for {
		ch.qmu.Lock()
		q := ch.queue
		ch.queue = nil
		closed := ch.closed
		ch.qmu.Unlock()
		for _, fn := range q {
			fn()
		}
		if closed && len(q) == 0 {
			ch.stopMedia()
			return
		}
		if len(q) == 0 {
			<-ch.wake
		}
	}
}

// shutdown disconnects everyone and stops the goroutine once the work
// queued before it is done (Service.Close).
func (ch *channel) shutdown() {
	ch.s.mu.Lock()
	p := ch.pub
	ch.pub = nil
	vs := ch.takeViewersLocked()
	ch.s.mu.Unlock()
	disconnect(p, vs)
	ch.qmu.Lock()
	ch.closed = true
	ch.qmu.Unlock()
	select {
	case ch.wake <- struct{}{}:
	default:
	}
	<-ch.done
}

// takeViewersLocked empties the viewer set, returning it. s.mu is held.
func (ch *channel) takeViewersLocked() []*viewer {
	vs := make([]*viewer, 0, len(ch.viewers))
	for id, v := range ch.viewers {
		v.closed = true
		vs = append(vs, v)
		delete(ch.viewers, id)
	}
	return vs
}

// disconnect closes the connections of a publisher (nil for none) and of
// viewers taken from a channel. Callers release s.mu first: closing takes
// the media server's locks and tears down peer connections, work that the
// HTTP handlers should not wait behind.
func disconnect(p *publisher, vs []*viewer) {
	if p != nil && p.ingest != nil {
		p.ingest.Close()
	}
	for _, v := range vs {
		v.conn.Close()
	}
}

// publishing reports whether the channel has a publisher.
func (ch *channel) publishing() bool {
	ch.s.mu.Lock()
	defer ch.s.mu.Unlock()
	return ch.pub != nil
}

// The work below runs on the channel's goroutine.

// trackPublished: a track of the class arrived. The current publisher's
// first track makes the class LIVE and the stream "live"; its video starts
// (or, for another codec, restarts) the HLS packager.
func (ch *channel) trackPublished(t sfu.TrackInfo) {
	if t.Participant != publisherID || !ch.publishing() {
		return
	}
	switch t.Source {
	case sfu.SourceMic:
		ch.audio = &t
	case sfu.SourceCamera, sfu.SourceScreen:
		ch.video = &t
	default:
		return
	}
	ch.goLive()
	if ch.video != nil {
		ch.codec = ch.video.Codec
	}
	ch.packageHLS()
	ch.setState(audience.StateLive)
}

// trackUnpublished: a track ended. Its tap and the packager stay, for the
// publisher's return.
func (ch *channel) trackUnpublished(t sfu.TrackInfo) {
	if ch.video != nil && ch.video.ID == t.ID {
		ch.video = nil
	}
	if ch.audio != nil && ch.audio.ID == t.ID {
		ch.audio = nil
	}
}

// goLive moves a SCHEDULED class to LIVE.
func (ch *channel) goLive() {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	c, err := ch.s.opt.Store.ClassByID(ctx, ch.class)
	if err != nil {
		ch.s.log.Warn("broadcast: reading the class going live", "class", ch.class, "err", err)
		return
	}
	if c.Status != store.StatusScheduled {
		return
	}
	if err := ch.s.opt.Store.SetClassStatus(ctx, ch.class, store.StatusLive); err != nil {
		ch.s.log.Warn("broadcast: marking the class LIVE", "class", ch.class, "err", err)
		return
	}
	ch.s.log.Info("broadcast: class is live", "class", ch.class)
	ch.s.opt.OnClassChange(ctx, ch.class)
}

// publisherGone: a publish ended, dropped or was replaced. Viewers see
// "offline" for a deliberate stop and "reconnecting" for a drop, until a
// publisher's track arrives again.
func (ch *channel) publisherGone(p *publisher) {
	ch.s.mu.Lock()
	if p.gone {
		ch.s.mu.Unlock()
		return
	}
	p.gone = true
	wasCurrent := ch.pub == p
	if wasCurrent {
		ch.pub = nil
	}
	replaced := ch.pub != nil
	stopping, ended := p.stopping, ch.ended
	ch.s.mu.Unlock()
	if p.ingest != nil {
		p.ingest.Close() // a drop leaves the connection to be released
	}
	if ended {
		return
	}
	ch.s.log.Info("broadcast: publisher gone", "class", ch.class, "publish", p.id, "stopped", stopping, "replaced", replaced)
	if ch.state != audience.StateLive {
		return
	}
	if stopping && wasCurrent {
		ch.setState(audience.StateOffline)
	} else {
		ch.setState(audience.StateReconnecting)
	}
}

// endIfIdle ends the class if nobody publishes and it is past its end time
// (as the sweep read it) plus the grace.
func (ch *channel) endIfIdle(endTime time.Time) {
	ch.s.mu.Lock()
	idle := ch.pub == nil
	ch.s.mu.Unlock()
	if !idle || ch.s.opt.Now().Before(endTime.Add(ch.s.opt.EndGrace)) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := ch.end(ctx); err != nil {
		ch.s.log.Warn("broadcast: ending a broadcast past its end time", "class", ch.class, "err", err)
		return
	}
	ch.s.log.Info("broadcast: ended a broadcast past its end time with nobody publishing", "class", ch.class, "end_time", endTime)
}

// end ends the class: everyone disconnected, packaging stopped, ENDED
// stored and published, the audience told.
func (ch *channel) end(ctx context.Context) error {
	ch.s.mu.Lock()
	ch.ended = true
	p := ch.pub
	ch.pub = nil
	if p != nil {
		p.stopping, p.gone = true, true
	}
	vs := ch.takeViewersLocked()
	ch.s.mu.Unlock()
	disconnect(p, vs)
	ch.stopMedia()
	c, err := ch.s.opt.Store.ClassByID(ctx, ch.class)
	if err != nil {
		return err
	}
	if c.Status != store.StatusEnded && c.Status != store.StatusCancelled {
		if err := ch.s.opt.Store.SetClassStatus(ctx, ch.class, store.StatusEnded); err != nil {
			return err
		}
		ch.s.log.Info("broadcast: class ended", "class", ch.class)
		ch.s.opt.OnClassChange(ctx, ch.class)
	}
	ch.setState(audience.StateEnded)
	return nil
}

// stopMedia stops the taps and the packager.
func (ch *channel) stopMedia() {
	ch.stopTaps()
	ch.video, ch.audio = nil, nil
	ch.closePackager()
}

// closePackager closes the HLS packager, if there is one. A failure is
// only logged: the packager is dropped either way, and a new one starts
// with the next video.
func (ch *channel) closePackager() {
	if ch.pkg == nil {
		return
	}
	if err := ch.pkg.Close(); err != nil {
		ch.s.log.Warn("broadcast: closing the HLS packager", "class", ch.class, "err", err)
	}
	ch.pkg, ch.pkgCodec = nil, ""
}

// setState tells the audience the stream's state, once per change.
func (ch *channel) setState(state string) {
	if ch.state == state && state != audience.StateLive {
		return
	}
	changed := ch.state != state
	ch.state = state
	if changed {
		ch.since = ch.s.opt.Now()
	}
	if ch.s.opt.Audience == nil {
		return
	}
	st := audience.StreamState{State: state, Codec: ch.codec, Since: ch.since}
	if ch.pkg != nil && ch.s.opt.HLSURL != nil {
		st.HLS = ch.s.opt.HLSURL(ch.class, ch.s.opt.Now())
	}
	ch.hlsSent = st.HLS
	if state == audience.StateEnded || state == audience.StateOffline {
		st.Codec = ""
	}
	ch.s.opt.Audience.SetStream(ch.class, st)
}

// refreshHLS tells the audience of a live stream its HLS URL again when
// the signed URL changed (its expiry moves on every hour), so that a
// player watching for hours switches to a fresh URL before the one it
// has expires.
func (ch *channel) refreshHLS() {
	if ch.state != audience.StateLive || ch.pkg == nil || ch.s.opt.HLSURL == nil {
		return
	}
	if ch.s.opt.HLSURL(ch.class, ch.s.opt.Now()) != ch.hlsSent {
		ch.setState(ch.state)
	}
}

// packageHLS starts the packager for the current video codec (restarting
// it for another codec) and taps the current tracks into it.
func (ch *channel) packageHLS() {
	if ch.s.opt.StartHLS == nil || ch.video == nil {
		return
	}
	ch.s.mu.Lock()
	m := ch.s.media
	ch.s.mu.Unlock()
	if m == nil {
		return
	}
	if ch.pkg != nil && ch.pkgCodec != ch.video.Codec {
		ch.s.log.Info("broadcast: the video codec changed; restarting HLS", "class", ch.class, "from", ch.pkgCodec, "to", ch.video.Codec)
		ch.stopTaps()
		ch.closePackager()
	}
	if ch.pkg == nil {
		var rekey func()
		if k, ok := m.(Keyframer); ok {
			class, video := ch.class, ch.video.ID
			rekey = func() { k.RequestKeyframe(class, video) }
		}
		pkg, err := ch.s.opt.StartHLS(ch.class, ch.video.Codec, rekey)
		if err != nil {
			ch.s.log.Warn("broadcast: starting HLS", "class", ch.class, "codec", ch.video.Codec, "err", err)
			return
		}
		ch.pkg, ch.pkgCodec = pkg, ch.video.Codec
		ch.s.log.Info("broadcast: HLS started", "class", ch.class, "codec", ch.video.Codec)
	}
	if ch.stopVideo == nil {
		ch.stopVideo = ch.tap(m, ch.video.ID, ch.pkg.WriteVideo)
	}
	if ch.audio != nil && ch.stopAud == nil {
		ch.stopAud = ch.tap(m, ch.audio.ID, ch.pkg.WriteAudio)
	}
}

func (ch *channel) stopTaps() {
	if ch.stopVideo != nil {
		ch.stopVideo()
		ch.stopVideo = nil
	}
	if ch.stopAud != nil {
		ch.stopAud()
		ch.stopAud = nil
	}
}

// tap feeds track t into write; nil when the tap could not start.
func (ch *channel) tap(m Media, t sfu.TrackID, write func([]byte) error) func() {
	stop, err := m.Tap(ch.class, t, writerFunc(write))
	if err != nil {
		ch.s.log.Warn("broadcast: tapping a track for HLS", "class", ch.class, "track", t, "err", err)
		return nil
	}
	return stop
}

// writerFunc adapts a packager's write to io.Writer.
type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}
