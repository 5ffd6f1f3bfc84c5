package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Viewer is a broadcast viewer (WHEP): one PeerConnection answering the
// client's offer, with one video and one audio slot that carry the
// broadcast's camera (or screen) and microphone. The video's layer follows
// the viewer's bandwidth estimate (REMB and receiver-report loss), NACKs
// are answered from the tracks' shared caches, and keyframe requests go to
// the publisher through its throttle. The slots outlive the publisher: when
// it leaves and comes back, its new tracks continue on the same SSRCs and
// sequence numbers.
//
// A Viewer costs one PeerConnection and no goroutine beyond Pion's own:
// its packets are written by the publisher's read loops, its RTCP is
// handled by the connection's SRTCP reader (downConn.buffer), and its
// sender reports are sent from the session's tick.
type Viewer struct {
	ss   *Session
	id   ParticipantID
	pc   *webrtc.PeerConnection
	log  *slog.Logger
	down downConn
	done chan struct{}

	closing sync.Once
	conn    connWatch

	mu      sync.Mutex // guards the slots' owner-guarded fields and what follows
	closed  bool
	audio   *slot // nil when the offer has no audio
	video   *slot // nil when the offer has no video
	lossEst int
}

// ViewerStats describes what a broadcast viewer receives.
type ViewerStats struct {
	// Packets and Bytes count the RTP sent, retransmissions included.
	Packets, Bytes uint64
	// Layer is the simulcast layer of the video being sent (0 is the
	// lowest, and the only one without simulcast); -1 when no video is
	// sent.
	Layer int
	// Codec is the video codec being sent, "" when none.
	Codec string
	// Estimate is the bandwidth estimate, bits per second.
	Estimate int
	// Loss is the fraction lost in the viewer's latest receiver report.
	Loss float64
	// RTT is the latest round trip from the receiver reports; 0 before
	// the first.
	RTT time.Duration
	// Nacked counts the sequence numbers the viewer asked for again;
	// Retransmitted those answered from the caches.
	Nacked, Retransmitted uint64
}

// View answers a WHEP viewer's offer for a class as viewer v and returns
// the Viewer and the answer, with all the server's candidates. The offer
// is recvonly (or sendrecv: the server sends only) with an audio and a
// video m-line (either may be absent); the answer keeps every codec both
// sides support, and packets go out with the payload type of the codec
// the publisher sends. A viewer already in the class under the same ID is
// closed first. A malformed offer, or one with nothing the server can
// send, is an apperr.Invalid error.
func (s *Server) View(class store.ClassID, v ParticipantID, offerSDP string) (*Viewer, string, error) {
	ss, done, err := s.enterOffer(class, "viewer", v, offerSDP)
	if err != nil {
		return nil, "", err
	}
	defer done()
	vw := &Viewer{
		ss: ss, id: v, done: make(chan struct{}), lossEst: s.cfg.InitialEstimate,
		log: s.log.With("class", string(class), "viewer", string(v)),
	}
	vw.down = downConn{srv: s, name: string(v)}
	vw.down.fail = func() { vw.Close() }
	pc, direct, err := s.viewAPI.newPeerConnection(vw.down.buffer, &vw.down.keys, offerSDP)
	vw.down.directOK = direct
	if err != nil {
		return nil, "", fmt.Errorf("sfu: viewer connection: %w", err)
	}
	vw.pc, vw.down.pc = pc, pc
	vw.conn.end = vw.Close
	pc.OnConnectionStateChange(vw.stateChange)
	// The transceivers exist before the offer is applied, so that its
	// m-lines take them instead of new receive-only ones.
	vw.mu.Lock()
	vw.audio, err = newSlot(&vw.down, webrtc.RTPCodecTypeAudio, "audio", nil)
	if err == nil {
		vw.video, err = newSlot(&vw.down, webrtc.RTPCodecTypeVideo, "video", []string{webrtc.MimeTypeVP8, webrtc.MimeTypeH264})
	}
	vw.mu.Unlock()
	if err != nil {
		vw.Close()
		return nil, "", err
	}
	answer, err := answerOffer(pc, offerSDP, webrtc.RTPTransceiverDirectionSendonly)
	if err != nil {
		vw.Close()
		return nil, "", err
	}
	vw.mu.Lock()
	// A slot whose m-line the offer lacks stays out of the answer; it
	// never sends.
	if vw.audio.tr.Mid() == "" {
		vw.audio = nil
	}
	if vw.video.tr.Mid() == "" {
		vw.video = nil
	}
	vw.mu.Unlock()

	ss.mu.Lock()
	var old *Viewer
	for o := range ss.viewers {
		if o.id == v {
			old = o
		}
	}
	ss.mu.Unlock()
	if old != nil {
		old.Close()
	}
	ss.mu.Lock()
	ss.viewers[vw] = struct{}{}
	ss.startTickerLocked()
	video, audio := ss.broadcastLocked()
	vw.reconcile(video, audio)
	ss.mu.Unlock()
	return vw, answer, nil
}

// reconcile makes the viewer's slots carry video and audio (nil for
// none). The session's lock is held.
func (vw *Viewer) reconcile(video, audio *upTrack) {
	vw.mu.Lock()
	defer vw.mu.Unlock()
	if vw.closed {
		return
	}
	top := vw.ss.srv.cfg.Layers[len(vw.ss.srv.cfg.Layers)-1]
	for _, a := range [...]struct {
		sl *slot
		t  *upTrack
	}{{vw.video, video}, {vw.audio, audio}} {
		if a.sl == nil || a.sl.up == a.t {
			continue
		}
		if a.sl.up != nil {
			a.sl.release()
		}
		if a.t == nil {
			continue
		}
		// The viewer's player fills its window: the tile is the top
		// layer's size, and the estimate alone chooses the layer.
		req := VideoRequest{Track: a.t.info.ID, Width: top.Width, Height: top.Height}
		if err := a.sl.assign(a.t, req); err != nil {
			vw.log.Warn("cannot send the broadcast to the viewer", "track", string(a.t.info.ID), "err", err)
		}
	}
}

// tick chooses the video's layer from the viewer's estimate and sends
// the sender reports that are due.
func (vw *Viewer) tick(now time.Time) {
	vw.mu.Lock()
	if vw.closed {
		vw.mu.Unlock()
		return
	}
	if loss, recent := vw.down.recentLoss(now); recent {
		vw.lossEst = adjustLossEstimate(vw.lossEst, loss)
	}
	budget := vw.down.capREMB(vw.lossEst, now)
	if vw.audio != nil && vw.audio.up != nil {
		budget -= audioReserve
	}
	if vw.video != nil && vw.video.up != nil {
		vw.video.choose(now, budget)
	}
	var buf [2]rtcp.Packet
	srs := buf[:0]
	if vw.conn.connected.Load() {
		for _, sl := range [...]*slot{vw.audio, vw.video} {
			if sl != nil {
				srs = sl.appendReport(srs, now)
			}
		}
	}
	vw.mu.Unlock()
	vw.down.sendReports(srs)
}

// stateChange asks for a keyframe when the connection comes up (those
// sent before DTLS was up went nowhere); vw.conn ends the viewer when the
// connection is lost.
func (vw *Viewer) stateChange(s webrtc.PeerConnectionState) {
	switch s {
	case webrtc.PeerConnectionStateConnected:
		vw.down.choosePath()
	case webrtc.PeerConnectionStateClosed:
		vw.down.closed()
	}
	if !vw.conn.change(s) {
		return
	}
	vw.mu.Lock()
	var up *upTrack
	layer := 0
	if sl := vw.video; sl != nil && sl.up != nil {
		if sub := sl.subscriber(); sub != nil {
			cur, target := sub.Layers()
			up, layer = sl.up, max(cur, target)
		}
	}
	vw.mu.Unlock()
	if up != nil {
		up.requestKeyframe(layer)
	}
}

// ID returns the viewer's ID.
func (vw *Viewer) ID() ParticipantID { return vw.id }

// Done is closed when the viewer has ended: Close, or its connection
// failed, closed, or stayed disconnected for a few seconds.
func (vw *Viewer) Done() <-chan struct{} { return vw.done }

// Connected reports whether the connection is up now.
func (vw *Viewer) Connected() bool { return vw.conn.connected.Load() }

// Stats returns what the viewer receives.
func (vw *Viewer) Stats() ViewerStats {
	now := time.Now()
	st := ViewerStats{
		Packets: vw.down.packets.Load(), Bytes: vw.down.bytes.Load(),
		Nacked: vw.down.nacked.Load(), Retransmitted: vw.down.rtx.Load(),
		Loss: vw.down.lossFraction(), RTT: time.Duration(vw.down.rtt.Load()),
		Layer: -1,
	}
	vw.mu.Lock()
	defer vw.mu.Unlock()
	st.Estimate = vw.down.capREMB(vw.lossEst, now)
	if sl := vw.video; sl != nil && sl.up != nil {
		st.Codec = sl.up.info.Codec
		if sub := sl.subscriber(); sub != nil {
			if cur, _ := sub.Layers(); cur >= 0 {
				st.Layer = cur
			}
		}
	}
	return st
}

// Close ends the viewer. It is safe to call more than once.
func (vw *Viewer) Close() {
	vw.closing.Do(func() {
		ss := vw.ss
		ss.mu.Lock()
		delete(ss.viewers, vw)
		stop := ss.idleTickerLocked()
		vw.conn.stop()
		vw.mu.Lock()
		vw.closed = true
		for _, sl := range [...]*slot{vw.audio, vw.video} {
			if sl != nil {
				sl.release()
			}
		}
		vw.mu.Unlock()
		ss.mu.Unlock()
		ss.stopTicker(stop)
		if err := vw.pc.Close(); err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
			vw.log.Debug("closing viewer connection", "err", err)
		}
		vw.conn.connected.Store(false)
		close(vw.done)
		ss.dropIfIdle()
	})
}

// Viewers returns the number of broadcast viewers of a class now: those
// answered and not ended, connecting ones included, so that a limit on
// viewers holds during a burst of joins.
func (s *Server) Viewers(class store.ClassID) int {
	ss, ok := s.Session(class)
	if !ok {
		return 0
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.viewers)
}
