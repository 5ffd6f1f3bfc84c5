// Package broadcast serves broadcast (IVS) classes over HTTP: WHIP
// (RFC 9725) ingest for the one publisher of a class's channel (OBS with a
// stream key, the presenter page with its host join token), WHEP playback
// for viewers holding a join token of the class, and the broadcast's
// lifecycle around them.
//
// The lifecycle: a class goes LIVE when its stream's first track arrives;
// viewers are told "reconnecting" when the publisher's connection drops
// and "live" again when a publisher returns; "offline" when the publisher
// stops on purpose (WHIP DELETE); ENDED when a host ends the class (End),
// or when the class is past its end time plus a grace with nobody
// publishing. Class changes are published through OnClassChange (the
// classes service's ClassChanged, so that onUpdateLiveClass fires); the
// stream's state and health go to the audience hub.
//
// While a publisher's video is published, an HLS packager is fed from the
// media server's taps, restarted when a returning publisher sends another
// codec, and stopped when the class ends.
//
// One publisher per channel: a second publish is refused (409) while the
// first is connected or still connecting; once the first's connection has
// failed, closed or disconnected, a new publish replaces it, which is how
// an encoder reconnects.
//
// The package knows the media server, the audience hub and the HLS
// packager only through the small interfaces below; the wiring in
// internal/cli connects the real ones.
package broadcast

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/audience"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/sfu"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/webrtc/v4"
)

// Media is what the service needs of the media server (*sfu.Server, through
// SFU).
type Media interface {
	// Ingest answers a publisher's offer; its tracks are published into
	// the class's session as participant p's.
	Ingest(class store.ClassID, p sfu.ParticipantID, offerSDP string) (Ingest, string, error)
	// View answers a viewer's offer.
	View(class store.ClassID, v sfu.ParticipantID, offerSDP string) (Viewer, string, error)
	// Tap copies track t's RTP packets into w until stop is called.
	Tap(class store.ClassID, t sfu.TrackID, w io.Writer) (stop func(), err error)
}

// Ingest is one publisher's connection.
type Ingest interface {
	Close()
	// Done is closed once the connection has closed, failed, or stayed
	// disconnected for a few seconds.
	Done() <-chan struct{}
	// Connected reports whether ICE is connected now.
	Connected() bool
	Stats() sfu.IngestStats
}

// ICEServerLister is a Media that hands clients STUN and TURN servers
// (the embedded TURN server); WHIP and WHEP answers carry them in Link
// headers.
type ICEServerLister interface {
	ICEServers() []webrtc.ICEServer
}

// Keyframer is a Media that can ask a track's publisher for a keyframe;
// the HLS packager asks for one when ffmpeg (re)starts.
type Keyframer interface {
	RequestKeyframe(class store.ClassID, t sfu.TrackID)
}

// Viewer is one WHEP viewer's connection.
type Viewer interface {
	Close()
	Done() <-chan struct{}
}

// Audience is told the stream's state and health (*audience.Hub).
type Audience interface {
	SetStream(class store.ClassID, s audience.StreamState)
	SetHealth(class store.ClassID, h audience.Health)
}

// Store is the part of the database the service uses.
type Store interface {
	ClassByID(ctx context.Context, id store.ClassID) (store.LiveClass, error)
	ListClasses(ctx context.Context, q store.ClassQuery) (store.List[store.LiveClass], error)
	SetClassStatus(ctx context.Context, id store.ClassID, s store.Status) error
	SetCurrentParticipants(ctx context.Context, id store.ClassID, n int) error
	// AudienceBans lists the users a host banned from the class: they
	// are refused its video as well as its audience.
	AudienceBans(ctx context.Context, class store.ClassID) ([]store.AudienceBan, error)
}

// Keys checks stream keys and the join window (*classes.Service).
type Keys interface {
	CheckStreamKey(ctx context.Context, class store.ClassID, secret string) error
	JoinWindow(c store.LiveClass) (opens, closes time.Time)
}

// Tokens verifies join tokens (*jointoken.Signer).
type Tokens interface {
	Verify(token string, now time.Time) (jointoken.Claims, error)
}

// Packager packages one channel's stream as HLS (*hls.Packager). Its
// writes take one RTP packet each and must not block.
type Packager interface {
	WriteVideo(pkt []byte) error
	WriteAudio(pkt []byte) error
	Close() error
}

// Options configures a Service. Zero durations take the defaults noted.
type Options struct {
	Store  Store  // required
	Keys   Keys   // required
	Tokens Tokens // required
	// Audience is told the stream's state and health; nil tells nobody.
	Audience Audience
	// OnClassChange is called after the service changed a class's status,
	// so that subscribers hear of it.
	OnClassChange func(ctx context.Context, id store.ClassID)
	Logger        *slog.Logger
	Now           func() time.Time
	// MaxWebRTCViewers is how many WHEP viewers a channel takes; the next
	// is answered 503 FULL with the HLS URL. 0 sends every viewer to HLS.
	MaxWebRTCViewers int
	// EndGrace is how long past a class's end time a broadcast with
	// nobody publishing stays LIVE before it is ENDED (default 15 min).
	EndGrace time.Duration
	// ConnectWindow is how long a publish that has not connected yet
	// holds the channel against another publish (default 10 s).
	ConnectWindow time.Duration
	// HealthInterval is how often the publisher's stream health goes to
	// the audience (default 2 s).
	HealthInterval time.Duration
	// SweepInterval is how often live broadcasts are checked against
	// their end time (default 15 s).
	SweepInterval time.Duration
	// StartHLS starts a class's HLS packager for a video codec; the
	// packager calls requestKeyframe when it needs one. Nil: no HLS.
	StartHLS func(class store.ClassID, videoCodec string, requestKeyframe func()) (Packager, error)
	// HLSURL is the signed playlist URL of a class, given to viewers the
	// WebRTC fan-out cannot take. Nil: none.
	HLSURL func(class store.ClassID, now time.Time) string
	// MaxBodyBytes caps an SDP offer (default 128 KiB).
	MaxBodyBytes int64
}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("broadcast: service closed")

// Service runs the broadcast classes of this process.
type Service struct {
	opt Options
	log *slog.Logger

	mu       sync.Mutex
	media    Media
	channels map[store.ClassID]*channel
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a service; SetMedia must be called before it serves.
func New(opt Options) (*Service, error) {
	switch {
	case opt.Store == nil:
		return nil, errors.New("broadcast: Options.Store is required")
	case opt.Keys == nil:
		return nil, errors.New("broadcast: Options.Keys is required")
	case opt.Tokens == nil:
		return nil, errors.New("broadcast: Options.Tokens is required")
	case opt.MaxWebRTCViewers < 0:
		return nil, errors.New("broadcast: Options.MaxWebRTCViewers must not be negative")
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.OnClassChange == nil {
		opt.OnClassChange = func(context.Context, store.ClassID) {}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opt.EndGrace, 15*time.Minute)
	def(&opt.ConnectWindow, 10*time.Second)
	def(&opt.HealthInterval, 2*time.Second)
	def(&opt.SweepInterval, 15*time.Second)
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 128 << 10
	}
	s := &Service{opt: opt, log: opt.Logger, channels: map[store.ClassID]*channel{}, stop: make(chan struct{})}
	// The broadcasts a previous process left LIVE, before anyone can join:
	// nobody is in their audiences now, and those past their end are over.
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	s.sweep(ctx, true)
	cancel()
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// SetMedia connects the media server. The sfu is built after the service
// (its events go through Events), so the two are joined here.
func (s *Service) SetMedia(m Media) {
	s.mu.Lock()
	s.media = m
	s.mu.Unlock()
}

// Close disconnects every publisher and viewer of this process and stops
// the packagers. Classes stay LIVE: a process that starts again, or the
// sweep past their end time, decides what becomes of them.
func (s *Service) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	chans := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		chans = append(chans, ch)
	}
	s.mu.Unlock()
	close(s.stop)
	for _, ch := range chans {
		ch.shutdown()
	}
	s.wg.Wait()
}

// channelFor returns the class's channel, creating it; nil after Close.
// s.mu is held.
func (s *Service) channelLocked(class store.ClassID) *channel {
	if s.closed {
		return nil
	}
	ch, ok := s.channels[class]
	if !ok {
		ch = newChannel(s, class)
		s.channels[class] = ch
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ch.run()
		}()
	}
	return ch
}

// loop sends the health of live streams and sweeps broadcasts past their
// end time until Close.
func (s *Service) loop() {
	defer s.wg.Done()
	health := time.NewTicker(s.opt.HealthInterval)
	defer health.Stop()
	sweep := time.NewTicker(s.opt.SweepInterval)
	defer sweep.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-health.C:
			s.sendHealth()
		case <-sweep.C:
			s.sweep(ctx, false)
		}
	}
}

// sendHealth tells the audience how each connected publisher's stream
// arrives, and each live stream's HLS URL when it was renewed.
func (s *Service) sendHealth() {
	if s.opt.Audience == nil {
		return
	}
	type live struct {
		class   store.ClassID
		ing     Ingest
		viewers int
	}
	var all []live
	s.mu.Lock()
	for id, ch := range s.channels {
		ch.do(ch.refreshHLS)
		if p := ch.pub; p != nil && p.ingest != nil {
			all = append(all, live{id, p.ingest, len(ch.viewers)})
		}
	}
	s.mu.Unlock()
	now := s.opt.Now()
	for _, l := range all {
		if !l.ing.Connected() {
			continue
		}
		st := l.ing.Stats()
		s.opt.Audience.SetHealth(l.class, audience.Health{
			Codec: st.Codec, Layers: st.Layers, BitrateBps: st.BitrateBps, FrameRate: st.FrameRate,
			Packets: st.Packets, PacketsLost: st.PacketsLost, WebRTCViewers: l.viewers, At: now,
		})
	}
}

// sweep ends the live broadcasts that are past their end time plus the
// grace with nobody publishing: in this process, and those a stopped
// process left LIVE. At start (atStart) it also sets their audience counts
// back to 0: a count a killed process left behind counts nobody.
func (s *Service) sweep(ctx context.Context, atStart bool) {
	filter := &store.Filter{Conds: []store.Cond{
		{Field: "status", Op: store.OpEq, Values: []any{string(store.StatusLive)}},
		{Field: "awsService", Op: store.OpEq, Values: []any{string(store.ServiceIVS)}},
	}}
	now := s.opt.Now()
	for after := ""; ; {
		page, err := s.opt.Store.ListClasses(ctx, store.ClassQuery{Filter: filter, Now: now, Page: store.Page{Limit: 100, After: after}})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("broadcast: listing live broadcasts", "err", err)
			}
			return
		}
		for _, c := range page.Items {
			if atStart && c.CurrentParticipants != 0 {
				if err := s.opt.Store.SetCurrentParticipants(ctx, c.ID, 0); err != nil {
					s.log.Warn("broadcast: resetting the audience count of a broadcast left live", "class", c.ID, "err", err)
				} else {
					s.opt.OnClassChange(ctx, c.ID)
				}
			}
			if now.Before(c.EndTime.Add(s.opt.EndGrace)) {
				continue
			}
			s.mu.Lock()
			ch := s.channelLocked(c.ID)
			publishing := ch != nil && ch.pub != nil
			s.mu.Unlock()
			if ch == nil || publishing {
				continue
			}
			ch.do(func() { ch.endIfIdle(c.EndTime) })
		}
		if page.Next == "" {
			return
		}
		after = page.Next
	}
}

// End ends a broadcast class: the publisher and every viewer are
// disconnected, HLS packaging stops, the class is ENDED and the audience
// told. It is the hub's OnEnd; the caller has checked that a host asked.
// Ending an ended class does nothing.
// DropUser ends every WHEP viewer of user in class: the audience calls
// it when a host bans them (audience.Options.OnBan), so that the ban takes
// the video away, not only the chat. HLS cannot follow: its signed URLs
// are the class's, not a person's.
func (s *Service) DropUser(class store.ClassID, user store.UserID) {
	s.mu.Lock()
	var drop []*viewer
	if ch := s.channels[class]; ch != nil {
		for id, v := range ch.viewers {
			if v.user == string(user) && !v.closed {
				v.closed = true
				delete(ch.viewers, id)
				drop = append(drop, v)
			}
		}
	}
	s.mu.Unlock()
	for _, v := range drop {
		v.conn.Close()
	}
	if len(drop) > 0 {
		s.log.Info("broadcast: banned viewer's video ended", "class", class, "user", user, "connections", len(drop))
	}
}

func (s *Service) End(ctx context.Context, class store.ClassID) error {
	c, err := s.opt.Store.ClassByID(ctx, class)
	if err != nil {
		return err
	}
	if c.Service != store.ServiceIVS {
		return errNotBroadcast
	}
	s.mu.Lock()
	ch := s.channelLocked(class)
	s.mu.Unlock()
	if ch == nil {
		return ErrClosed
	}
	errc := make(chan error, 1)
	if !ch.do(func() { errc <- ch.end(ctx) }) {
		return ErrClosed
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Publishing reports whether a publisher of the class is connected now.
func (s *Service) Publishing(class store.ClassID) bool {
	s.mu.Lock()
	ch := s.channels[class]
	var ing Ingest
	if ch != nil && ch.pub != nil {
		ing = ch.pub.ingest
	}
	s.mu.Unlock()
	return ing != nil && ing.Connected()
}

// Viewers is the number of WHEP viewers of the class connected through
// this service.
func (s *Service) Viewers(class store.ClassID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[class]; ch != nil {
		return len(ch.viewers)
	}
	return 0
}
