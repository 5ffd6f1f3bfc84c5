package sfu

import (
	"io"
	"math/rand/v2"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/media/fanout"
	"github.com/liveclass/liveclass/internal/store"
)

// tap is a server-side consumer of one track (the HLS packager, a
// recorder): a forwarder subscriber on the track's highest layer whose
// packets go to an io.Writer. Like a viewer's slot it outlives the track:
// when a track of the same ID is published again (the publisher
// reconnected), the tap continues on it with the same SSRC and continuous
// sequence numbers and timestamps, so that the consumer sees one stream.
type tap struct {
	ss   *Session
	id   TrackID
	w    io.Writer
	ssrc uint32
	cont continuity

	// Guarded by ss.mu.
	up    *upTrack
	sub   *fanout.Subscriber
	layer int // the layer asked of the forwarder
}

// Write passes one rewritten packet on; the forwarder calls it.
func (tp *tap) Write(b []byte) (int, error) {
	tp.cont.note(b, time.Now())
	return tp.w.Write(b)
}

// reconcileLocked attaches the tap to the track of its ID now published,
// if it is not attached to it already.
func (tp *tap) reconcileLocked() {
	t := tp.ss.tracks[tp.id]
	if t == tp.up {
		return
	}
	tp.detachLocked()
	if t == nil {
		return
	}
	seq, ts := tp.cont.next(t.clockRate())
	layer := t.topLayer(time.Now())
	sub, err := t.fwd.Add(fanout.SubscriberOptions{
		Name: "tap←" + string(t.info.ID), Writer: tp, SSRC: tp.ssrc,
		FirstSeq: seq, FirstTimestamp: ts, FirstPictureID: uint16(rand.Uint32()) & 0x7fff,
		Layer: layer,
	})
	if err != nil {
		t.log.Warn("cannot tap a track", "err", err)
		return
	}
	tp.up, tp.sub, tp.layer = t, sub, layer
}

// followLocked moves the tap to the highest layer the publisher still
// sends: down when the top layer pauses, back up when it returns. The
// forwarder switches at the new layer's next keyframe, which it asks for.
func (tp *tap) followLocked(now time.Time) {
	if tp.up == nil || tp.sub == nil || tp.up.layers() < 2 {
		return
	}
	want := tp.up.topLayer(now)
	if want == tp.layer {
		return
	}
	if err := tp.sub.SetLayer(want); err != nil {
		tp.up.log.Warn("cannot move a tap to another layer", "layer", want, "err", err)
		return
	}
	tp.layer = want
}

// detachLocked stops forwarding to the tap.
func (tp *tap) detachLocked() {
	if tp.up != nil && tp.sub != nil {
		tp.up.fwd.Remove(tp.sub)
	}
	tp.up, tp.sub = nil, nil
}

// Tap makes w a consumer of track t of a class: each Write is one RTP
// packet of the track's highest layer the publisher sends (it follows
// the publisher pausing and resuming its top layer), rewritten onto one continuous SSRC,
// sequence and timestamp stream, header extensions removed, with the
// publisher's payload type. A keyframe is asked for when the tap starts.
// The tap survives the publisher leaving: when a track of the same ID is
// published again it continues on it (asking for a keyframe again). Write
// is called from the forwarding path and must not block; the slice is
// valid only during the call (copy it to keep it). stop ends the tap; it
// is safe to call more than once. A track not published now is an
// apperr.NotFound error.
func (s *Server) Tap(class store.ClassID, t TrackID, w io.Writer) (stop func(), err error) {
	if w == nil {
		return nil, apperr.Field("writer", "writer is required")
	}
	ss, ok := s.Session(class)
	if !ok {
		return nil, apperr.New(apperr.NotFound, "track %s is not published", t)
	}
	ss.mu.Lock()
	if ss.tracks[t] == nil {
		ss.mu.Unlock()
		return nil, apperr.New(apperr.NotFound, "track %s is not published", t)
	}
	tp := &tap{ss: ss, id: t, w: w, ssrc: rand.Uint32()}
	ss.taps[tp] = struct{}{}
	tp.reconcileLocked()
	// The session's clock moves the tap between layers.
	ss.startTickerLocked()
	ss.mu.Unlock()
	return func() {
		ss.mu.Lock()
		_, live := ss.taps[tp]
		delete(ss.taps, tp)
		tp.detachLocked()
		stop := ss.idleTickerLocked()
		ss.mu.Unlock()
		ss.stopTicker(stop)
		if live {
			ss.dropIfIdle()
		}
	}, nil
}

// RequestKeyframe asks the publisher of track t for a keyframe of its
// highest layer arriving, the one taps receive, throttled like subscribers'
// requests. A packager asks when its transcoder (re)starts: a browser
// publisher sends keyframes only when asked, and the one asked when the
// tap started may have gone by before the transcoder was listening.
func (s *Server) RequestKeyframe(class store.ClassID, t TrackID) {
	ss, ok := s.Session(class)
	if !ok {
		return
	}
	ss.mu.Lock()
	up := ss.tracks[t]
	ss.mu.Unlock()
	if up != nil {
		up.requestKeyframe(up.topLayer(time.Now()))
	}
}
