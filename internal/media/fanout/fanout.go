// Package fanout forwards one published track to its subscribers: the hot
// path of the SFU and of the broadcast.
//
// A Forwarder owns what is shared per published track (one packet cache and
// one keyframe throttle per simulcast layer, parsed once per packet) and a
// list of subscribers, each with its own rewriter. Forward parses a
// publisher packet once, caches it for retransmission, and writes it,
// rewritten, to every subscriber that receives that layer, through a small
// Writer interface that a Pion webrtc.TrackLocalStaticRTP satisfies. The
// per-packet path allocates nothing and takes no lock shared between
// subscribers: the subscriber list is copy-on-write.
package fanout

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"

	"github.com/liveclass/liveclass/internal/media/keyframe"
	"github.com/liveclass/liveclass/internal/media/packetcache"
	"github.com/liveclass/liveclass/internal/media/rewrite"
)

// Writer receives a subscriber's packets, one whole RTP packet per call.
// The slice is only valid during the call. Write may be called from several
// goroutines at once (one per simulcast layer, plus retransmissions). A
// *webrtc.TrackLocalStaticRTP bound to the subscriber's PeerConnection is
// one.
type Writer interface {
	Write(packet []byte) (int, error)
}

// TimedWriter is a Writer that is also given the arrival time of the
// packet it forwards, so that it need not read the clock itself: one read
// per packet per subscriber is, at a class's packet rates, a measurable
// share of the server. A retransmission's time is when it is sent.
type TimedWriter interface {
	Writer
	WriteAt(packet []byte, now time.Time) (int, error)
}

// Options configure a Forwarder.
type Options struct {
	// Codec is the codec of the published track.
	Codec rewrite.Codec
	// ClockRate is the track's RTP clock rate.
	ClockRate uint32
	// Layers is the number of simulcast layers (1 for audio and for a
	// track without simulcast).
	Layers int
	// Cache sizes each layer's retransmission cache.
	Cache packetcache.Options
	// LayerCacheSizes, when set, overrides Cache.Size layer by layer
	// (lowest first; a layer past its end keeps Cache.Size): a simulcast
	// layer's packet rate, and so the history a NACK can reach, grows
	// with its bitrate.
	LayerCacheSizes []int
	// Keyframe configures each layer's PLI throttle; its Now is also the
	// clock of Forward's keyframe re-asks.
	Keyframe keyframe.Options
	// RequestKeyframe is called when a PLI must be sent to the publisher
	// for a layer. It is called from Forward and Subscriber.SetLayer and
	// must not block.
	RequestKeyframe func(layer int)
	// Logger receives warnings about subscribers whose writes fail.
	Logger *slog.Logger
	// Batch, when set, brackets each Forward's writes so that they can
	// leave in one system call (a *udpbatch.Conn under the subscribers'
	// ICE UDP mux is one). Optional.
	Batch Batch
}

// Batch groups the datagrams written during one forwarding pass.
type Batch interface {
	// Begin starts a pass: writes may be held back until End.
	Begin()
	// End ends a pass and sends what was held back.
	End()
}

// maxPacket bounds the packets forwarded; it matches the cache default and
// any MTU a WebRTC stack uses.
const maxPacket = 1500

// MaxBatch is the most packets ForwardBatch writes subscriber by
// subscriber; a longer batch is forwarded in parts of this size.
const MaxBatch = 32

// layerState is what the Forwarder keeps per simulcast layer. Forward and
// ForwardBatch for one layer run on one goroutine at a time, so pkts and
// out need no lock.
type layerState struct {
	cache *packetcache.Cache
	kf    *keyframe.Throttle
	pkts  [MaxBatch]rewrite.Packet
	out   [maxPacket]byte
}

// Forwarder forwards one published track to its subscribers.
type Forwarder struct {
	codec     rewrite.Codec
	clockRate uint32
	requestKF func(layer int)
	log       *slog.Logger
	batch     Batch
	layers    []*layerState

	mu   sync.Mutex // serialises changes to subs
	subs atomic.Pointer[[]*Subscriber]

	rtxMu  sync.Mutex // guards the retransmission buffers
	rtxIn  [maxPacket]byte
	rtxOut [maxPacket]byte
	rtxPkt rewrite.Packet
}

// ErrLayer is returned for a layer number the track does not have.
var ErrLayer = errors.New("fanout: no such layer")

// New returns a Forwarder with no subscribers.
func New(opts Options) (*Forwarder, error) {
	if opts.Layers < 1 {
		return nil, fmt.Errorf("fanout: %d layers, want at least 1", opts.Layers)
	}
	if opts.RequestKeyframe == nil {
		return nil, fmt.Errorf("fanout: RequestKeyframe is required")
	}
	if opts.Logger == nil {
		return nil, fmt.Errorf("fanout: Logger is required")
	}
	// Check the codec and clock rate once, here, rather than per subscriber.
	if _, err := rewrite.New(rewrite.Options{Codec: opts.Codec, ClockRate: opts.ClockRate}); err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	f := &Forwarder{
		codec:     opts.Codec,
		clockRate: opts.ClockRate,
		requestKF: opts.RequestKeyframe,
		log:       opts.Logger,
		batch:     opts.Batch,
	}
	for i := range opts.Layers {
		co := opts.Cache
		if i < len(opts.LayerCacheSizes) {
			co.Size = opts.LayerCacheSizes[i]
		}
		c, err := packetcache.New(co)
		if err != nil {
			return nil, fmt.Errorf("fanout: %w", err)
		}
		kf, err := keyframe.New(opts.Keyframe)
		if err != nil {
			return nil, fmt.Errorf("fanout: %w", err)
		}
		f.layers = append(f.layers, &layerState{cache: c, kf: kf})
	}
	f.subs.Store(&[]*Subscriber{})
	return f, nil
}

// Forward sends one packet of a layer, received at arrival, to every
// subscriber of that layer. Forward may run concurrently for different
// layers, not for the same layer. A malformed packet is dropped with an
// error; a subscriber whose write fails is counted and logged, and the
// others are served regardless.
func (f *Forwarder) Forward(layer int, raw []byte, arrival time.Time) error {
	if layer < 0 || layer >= len(f.layers) {
		return ErrLayer
	}
	ls := f.layers[layer]
	if err := f.take(ls, layer, &ls.pkts[0], raw, arrival); err != nil {
		return err
	}
	f.send(ls, 1)
	f.poll()
	return nil
}

// Arrived is a published packet and when it arrived.
type Arrived struct {
	Raw []byte
	At  time.Time
}

// ForwardBatch forwards packets of one layer as Forward would one after
// the other, but writes them subscriber by subscriber: a subscriber's
// packets leave one after the other, which lets the socket's batch send
// the packets of a video frame to one subscriber as one message (see
// udpbatch). It returns how many packets were dropped as malformed or
// oversized. The packets must stay unchanged until it returns. Like
// Forward, it may run concurrently for different layers, not with itself
// or Forward for the same layer.
func (f *Forwarder) ForwardBatch(layer int, pkts []Arrived) (dropped int, err error) {
	if layer < 0 || layer >= len(f.layers) {
		return 0, ErrLayer
	}
	ls := f.layers[layer]
	n := 0
	for _, a := range pkts {
		if n == len(ls.pkts) {
			f.send(ls, n)
			n = 0
		}
		if f.take(ls, layer, &ls.pkts[n], a.Raw, a.At) != nil {
			dropped++
			continue
		}
		n++
	}
	f.send(ls, n)
	f.poll()
	return dropped, nil
}

// take parses a packet of a layer into p and keeps it for
// retransmission.
func (f *Forwarder) take(ls *layerState, layer int, p *rewrite.Packet, raw []byte, arrival time.Time) error {
	if len(raw) > maxPacket {
		return fmt.Errorf("fanout: %d-byte packet exceeds %d bytes", len(raw), maxPacket)
	}
	if err := rewrite.Parse(p, raw, f.codec, layer, arrival); err != nil {
		return err
	}
	ls.cache.Store(p.Seq, raw)
	if p.Keyframe {
		ls.kf.Keyframe()
	}
	return nil
}

// send writes the first n parsed packets of a layer to every subscriber,
// subscriber by subscriber, in one pass.
func (f *Forwarder) send(ls *layerState, n int) {
	if n == 0 {
		return
	}
	if f.batch != nil {
		f.batch.Begin()
	}
	for _, s := range *f.subs.Load() {
		for i := range n {
			p := &ls.pkts[i]
			if m := s.rw.Rewrite(ls.out[:], p); m > 0 {
				s.write(ls.out[:m], p.Arrival)
			}
		}
	}
	if f.batch != nil {
		f.batch.End()
	}
}

// poll re-asks for keyframes still missing; it runs after every packet of
// any layer, so a layer the publisher has paused is still asked for.
func (f *Forwarder) poll() {
	for i, l := range f.layers {
		if l.kf.Poll() {
			f.requestKF(i)
		}
	}
}

// Cache returns the retransmission cache of a layer, or nil for a layer
// the track does not have.
func (f *Forwarder) Cache(layer int) *packetcache.Cache {
	if layer < 0 || layer >= len(f.layers) {
		return nil
	}
	return f.layers[layer].cache
}

// KeyframeStats returns, for a layer, how many keyframe requests the
// subscribers made and how many PLIs they cost.
func (f *Forwarder) KeyframeStats(layer int) (requests, plis uint64) {
	if layer < 0 || layer >= len(f.layers) {
		return 0, 0
	}
	return f.layers[layer].kf.Stats()
}

// SubscriberOptions configure one subscriber of a Forwarder.
type SubscriberOptions struct {
	// Name identifies the subscriber in logs (a participant or track id).
	Name string
	// Writer receives the subscriber's packets.
	Writer Writer
	// SSRC, FirstSeq, FirstTimestamp and FirstPictureID are passed to the
	// subscriber's rewriter (see rewrite.Options).
	SSRC           uint32
	FirstSeq       uint16
	FirstTimestamp uint32
	FirstPictureID uint16
	// Layer is the layer to send first, or rewrite.NoLayer.
	Layer int
}

// Subscriber is one subscriber of a Forwarder.
type Subscriber struct {
	f      *Forwarder
	name   string
	w      Writer
	tw     TimedWriter // w, when it is one
	rw     *rewrite.Rewriter
	sent   atomic.Uint64
	failed atomic.Uint64
}

// Add makes w a subscriber of the track and asks the publisher for a
// keyframe of its first layer.
func (f *Forwarder) Add(opts SubscriberOptions) (*Subscriber, error) {
	if opts.Writer == nil {
		return nil, fmt.Errorf("fanout: subscriber %q has no writer", opts.Name)
	}
	if opts.Layer >= len(f.layers) {
		return nil, fmt.Errorf("fanout: subscriber %q: %w %d", opts.Name, ErrLayer, opts.Layer)
	}
	rw, err := rewrite.New(rewrite.Options{
		SSRC: opts.SSRC, Codec: f.codec, ClockRate: f.clockRate,
		FirstSeq: opts.FirstSeq, FirstTimestamp: opts.FirstTimestamp, FirstPictureID: opts.FirstPictureID,
		Target: opts.Layer,
	})
	if err != nil {
		return nil, fmt.Errorf("fanout: subscriber %q: %w", opts.Name, err)
	}
	s := &Subscriber{f: f, name: opts.Name, w: opts.Writer, rw: rw}
	s.tw, _ = opts.Writer.(TimedWriter)
	f.mu.Lock()
	old := *f.subs.Load()
	subs := make([]*Subscriber, len(old), len(old)+1)
	copy(subs, old)
	subs = append(subs, s)
	f.subs.Store(&subs)
	f.mu.Unlock()
	s.askKeyframe()
	return s, nil
}

// Remove stops forwarding to s. It is safe to call more than once.
func (f *Forwarder) Remove(s *Subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := *f.subs.Load()
	subs := make([]*Subscriber, 0, len(old))
	for _, o := range old {
		if o != s {
			subs = append(subs, o)
		}
	}
	f.subs.Store(&subs)
}

// Len returns the number of subscribers.
func (f *Forwarder) Len() int { return len(*f.subs.Load()) }

// SetLayer chooses the layer s receives (rewrite.NoLayer for none). The
// switch happens at the layer's next keyframe, which is asked for.
func (s *Subscriber) SetLayer(layer int) error {
	if layer >= len(s.f.layers) {
		return fmt.Errorf("fanout: subscriber %q: %w %d", s.name, ErrLayer, layer)
	}
	s.rw.SetTarget(layer)
	s.askKeyframe()
	return nil
}

// Layers returns the layer s receives and the one it waits to switch to.
func (s *Subscriber) Layers() (current, target int) { return s.rw.Layers() }

// Stats returns how many packets were written to s and how many writes
// failed.
func (s *Subscriber) Stats() (sent, failed uint64) { return s.sent.Load(), s.failed.Load() }

// askKeyframe asks the throttle of the layer s waits for, if any.
func (s *Subscriber) askKeyframe() {
	if layer, ok := s.rw.WantKeyframe(); ok && s.f.layers[layer].kf.Request() {
		s.f.requestKF(layer)
	}
}

// HandleRTCP acts on the RTCP feedback s sent about this track: each
// sequence number a NACK lists is retransmitted from the cache, and a PLI
// or FIR asks the publisher (through the throttle) for a keyframe of the
// layer s receives. Reports and bandwidth feedback (receiver reports, REMB,
// TWCC) are left to the caller's estimator. It returns how many packets
// were retransmitted.
func (s *Subscriber) HandleRTCP(pkts []rtcp.Packet) int {
	sent := 0
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			for _, pair := range p.Nacks {
				// PacketList allocates; walking the bitmap does not.
				if s.Retransmit(pair.PacketID) {
					sent++
				}
				for i := range uint16(16) {
					if pair.LostPackets&(1<<i) != 0 && s.Retransmit(pair.PacketID+i+1) {
						sent++
					}
				}
			}
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			if cur, _ := s.rw.Layers(); cur != rewrite.NoLayer && s.f.layers[cur].kf.Request() {
				s.f.requestKF(cur)
			}
		}
	}
	return sent
}

// Retransmit answers a NACK from s for its sequence number seq, from the
// cache of the layer the packet came from. It reports whether the packet
// was still cached and was sent.
func (s *Subscriber) Retransmit(seq uint16) bool {
	layer, pubSeq, ok := s.rw.Lookup(seq)
	if !ok {
		return false
	}
	f := s.f
	f.rtxMu.Lock()
	defer f.rtxMu.Unlock()
	n := f.layers[layer].cache.Get(pubSeq, f.rtxIn[:])
	if n == 0 {
		return false
	}
	// The arrival time only matters at a switch, which a retransmitted
	// (old) packet never causes: it is not a keyframe start of a new run,
	// or its run is already open.
	if err := rewrite.Parse(&f.rtxPkt, f.rtxIn[:n], f.codec, layer, time.Time{}); err != nil {
		return false
	}
	f.rtxPkt.Keyframe = false
	m := s.rw.Rewrite(f.rtxOut[:], &f.rtxPkt)
	if m == 0 {
		return false
	}
	s.write(f.rtxOut[:m], time.Now())
	return true
}

// write sends one packet to s and counts the outcome. The first failure is
// logged; later ones only counted, so that a dead connection cannot flood
// the log at packet rate before its owner removes it.
func (s *Subscriber) write(b []byte, now time.Time) {
	var err error
	if s.tw != nil {
		_, err = s.tw.WriteAt(b, now)
	} else {
		_, err = s.w.Write(b)
	}
	if err != nil {
		if s.failed.Add(1) == 1 {
			s.f.log.Warn("forwarding to subscriber failed", "subscriber", s.name, "err", err)
		}
		return
	}
	s.sent.Add(1)
}
