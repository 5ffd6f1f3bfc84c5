package sfu

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/media/fanout"
	"github.com/liveclass/liveclass/internal/media/srtpgcm"
	"github.com/liveclass/liveclass/internal/media/srtpkeys"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// A publishing connection's packets arrive on one of two paths:
//
//   - direct: the ICE mux's socket offers every datagram it reads to the
//     sfu first (udpbatch.Divert). An RTP packet from the remote address
//     of a connection on the direct path, of an SSRC already published,
//     is opened there (srtpgcm) and forwarded: audio on the reading
//     goroutine, video on its layer's own goroutine (enqueue).
//     Pion's receive chain — the mux's per-address buffer, the ICE
//     candidate's read loop, the DTLS/SRTP demultiplexer, the SRTP
//     session, the track's buffer — is five goroutine hand-offs and four
//     copies per packet, about a fifth of a loaded server's CPU.
//   - pion: everything else. ICE, DTLS and RTCP always; RTP of an SSRC not
//     yet published (Pion finds a simulcast layer's RID in its first
//     packets and fires OnTrack), and all RTP of a connection the sfu has
//     no keys for (it was not the DTLS server), of a profile other than
//     AES-GCM, or on ICE-TCP or TURN.
//
// Either way the upConn keeps the receive side's RTCP, which Pion's
// interceptors would keep if they saw the packets: NACKs for lost video,
// receiver reports, and transport-wide congestion control feedback, which
// is what the browser's encoder sizes its layers by.

// Feedback intervals towards a publisher.
const (
	twccInterval = 100 * time.Millisecond // as Pion's and libwebrtc's default
	rrInterval   = time.Second
	nackInterval = 20 * time.Millisecond // how often losses are looked at
	nackRetry    = 100 * time.Millisecond
	nackTries    = 5
	// nackMax bounds the losses remembered per stream: a larger gap is a
	// restarted stream, not losses to repair.
	nackMax = 128
)

// upConn is the receive side of one publishing connection: a
// participant's publisher connection or a broadcast ingest's.
type upConn struct {
	srv  *Server
	name string
	pc   *webrtc.PeerConnection

	// directOK says the connection may take the direct path; keys
	// gathers its SRTP keys during the handshake.
	directOK bool
	keys     srtpkeys.Collector

	mu      sync.Mutex
	streams map[uint32]*upStream // published layers, by SSRC
	open    *srtpgcm.Receiver    // the direct path's keys; nil off it
	addr    netip.AddrPort       // the direct path's remote address
	closed  bool
	ssrc    uint32 // the sender SSRC of the feedback
	start   time.Time
	twcc    *twcc.Recorder
	twccAt  time.Time
	rrAt    time.Time
	nackAt  time.Time

	direct  atomic.Uint64 // packets that came the direct path
	refused atomic.Uint64 // packets dropped by the direct path (forged, replayed)
	shed    atomic.Uint64 // video packets dropped because their layer's goroutine fell behind
}

// upStream is one published layer's SSRC as its connection receives it.
type upStream struct {
	t        *upTrack
	layer    int
	ssrc     uint32
	clock    uint32 // RTP clock rate
	nack     bool   // losses are NACKed (video)
	twccExt  uint8  // transport-wide sequence number extension ID; 0 none
	levelExt uint8  // audio level extension ID; 0 none
	srtp     srtpgcm.RecvStream
	// q takes a video layer's packets of the direct path to its own
	// goroutine (forward); nil for audio, which is forwarded where it is
	// read. Sent to and closed with the connection's lock held.
	q       chan *queued
	qClosed bool
	shed    *atomic.Uint64 // the connection's count of video shed; nil in tests

	// Receiver statistics (RFC 3550 §6.4.1, appendix A.3 and A.8).
	started      bool
	base, maxExt uint32 // first and highest extended sequence numbers
	received     uint32
	priorExp     uint32 // expected and received at the previous report
	priorRecv    uint32
	jitter       uint32 // ×16, in RTP units
	transit      int64
	haveTransit  bool
	lsr          uint32    // middle of the newest sender report's NTP time
	lsrAt        time.Time // when it came
	missing      []loss
}

// loss is a sequence number not received, and its NACKs.
type loss struct {
	ext   uint32
	tries int
	next  time.Time
}

func newUpConn(srv *Server, name string) *upConn {
	return &upConn{srv: srv, name: name, ssrc: rand.Uint32(), start: time.Now()}
}

// addStream registers a published layer. Its packets come through Pion
// until the direct path takes them, right away when it is up.
func (u *upConn) addStream(st *upStream) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.streams == nil {
		u.streams = map[uint32]*upStream{}
	}
	u.streams[st.ssrc] = st
}

// removeStream forgets a layer whose reading ended, and ends its
// forwarding goroutine once what is queued is forwarded.
func (u *upConn) removeStream(st *upStream) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.streams[st.ssrc] == st {
		delete(u.streams, st.ssrc)
	}
	if st.q != nil && !st.qClosed {
		st.qClosed = true
		close(st.q)
	}
}

// buffer is the connection's srtp buffer factory: RTP goes to Pion's own
// kind of buffer, read by the track's reader; RTCP (the publisher's sender
// reports) is read on the SRTCP session's goroutine and kept nowhere.
func (u *upConn) buffer(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
	if kind == packetio.RTCPBufferPacket {
		return &srSink{u: u}
	}
	b := packetio.NewBuffer()
	b.SetLimitSize(1000 * 1000) // pion/srtp's own limit
	return rtpBuffer{b}
}

// rtpBuffer is pion/srtp's default read stream buffer.
type rtpBuffer struct{ *packetio.Buffer }

func (b rtpBuffer) Read(p []byte) (int, error) {
	n, _, err := b.Buffer.Read(p, nil)
	return n, err
}

func (b rtpBuffer) Write(p []byte) (int, error) { return b.Buffer.Write(p, nil) }

func (b rtpBuffer) ReadWithAttributes(p []byte, a packetio.Attributes) (int, packetio.Attributes, error) {
	return b.Buffer.Read(p, a)
}

func (b rtpBuffer) WriteWithAttributes(p []byte, a packetio.Attributes) (int, error) {
	return b.Buffer.Write(p, a)
}

// srSink takes a publisher's RTCP: sender reports give the receiver
// reports their LSR and DLSR (the publisher's round trip); nothing else a
// publisher sends matters to the sfu.
type srSink struct{ u *upConn }

func (s *srSink) Write(p []byte) (int, error) {
	b := p
	for len(b) >= 8 {
		n := 4 * (int(binary.BigEndian.Uint16(b[2:])) + 1)
		if n > len(b) {
			break
		}
		if b[1] == rtcpSR && n >= 28 {
			s.u.senderReport(binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[10:]), time.Now())
		}
		b = b[n:]
	}
	return len(p), nil
}

func (s *srSink) Read([]byte) (int, error) { return 0, io.EOF }
func (s *srSink) Close() error             { return nil }

// rtcpSR is RFC 3550's sender report packet type.
const rtcpSR = 200

// senderReport notes a sender report's NTP time (the middle 32 bits).
func (u *upConn) senderReport(ssrc, ntpMiddle uint32, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if st := u.streams[ssrc]; st != nil {
		st.lsr, st.lsrAt = ntpMiddle, now
	}
}

// up starts the direct path once the connection is connected, if it can:
// the keys are known, the profile is AES-GCM and the selected pair is on
// the mux.
func (u *upConn) up() {
	if !u.directOK {
		return
	}
	keys, err := u.keys.Keys()
	if err != nil {
		u.srv.log.Debug("receiving through Pion", "publisher", u.name, "why", err)
		return
	}
	switch keys.Profile {
	case srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAeadAes256Gcm:
	default:
		u.srv.log.Debug("receiving through Pion", "publisher", u.name, "why", "profile "+keys.Profile.String())
		return
	}
	open, err := srtpgcm.NewReceiver(keys.Profile, keys.RemoteKey, keys.RemoteSalt)
	if err != nil {
		u.srv.log.Debug("receiving through Pion", "publisher", u.name, "why", err)
		return
	}
	ice := u.pc.SCTP().Transport().ICETransport()
	u.mu.Lock()
	if u.open != nil || u.closed {
		u.mu.Unlock()
		return // up before: back from a disconnection, same keys
	}
	u.open = open
	u.mu.Unlock()
	ice.OnSelectedCandidatePairChange(u.pairChanged)
	if pair, err := ice.GetSelectedCandidatePair(); err == nil {
		u.pairChanged(pair)
	}
}

// pairChanged moves the direct path to the connection's new candidate
// pair: its remote address when the pair is on the mux, none (Pion's
// path) when it is not.
func (u *upConn) pairChanged(pair *webrtc.ICECandidatePair) {
	var to netip.AddrPort
	var ok bool
	if pair != nil {
		_, to, ok = u.srv.directTarget(pair)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || u.open == nil {
		return
	}
	if u.addr.IsValid() {
		u.srv.receivers.CompareAndDelete(u.addr, u)
		u.addr = netip.AddrPort{}
	}
	if ok {
		u.addr = to
		u.srv.receivers.Store(to, u)
	}
}

// close takes the connection off the direct path for good.
func (u *upConn) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	if u.addr.IsValid() {
		u.srv.receivers.CompareAndDelete(u.addr, u)
	}
}

// divert is the mux sockets' divert function: it takes the RTP of the
// connections on the direct path.
func (s *Server) divert(b []byte, from netip.AddrPort) bool {
	// RFC 7983: RTP and RTCP start with 128–191; RFC 5761: RTCP's
	// packet types are 192–223, where RTP's marker and payload type are
	// never (payload types 64–95 are not used).
	if len(b) < 12 || b[0]&0xc0 != 0x80 || b[1] >= 192 && b[1] <= 223 {
		return false
	}
	v, ok := s.receivers.Load(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	if !ok {
		return false
	}
	return v.(*upConn).receive(b, time.Now())
}

// receive opens and forwards one packet of the direct path, or returns
// false to leave it to Pion (an SSRC not published yet).
func (u *upConn) receive(b []byte, now time.Time) bool {
	u.mu.Lock()
	st := u.streams[binary.BigEndian.Uint32(b[8:])]
	if st == nil || u.open == nil || u.closed {
		u.mu.Unlock()
		return false
	}
	pkt, err := u.open.Open(b, &st.srtp)
	if err != nil {
		u.mu.Unlock()
		u.refused.Add(1)
		return true // Pion's context would refuse it as well
	}
	fb := u.observeLocked(st, pkt, now)
	u.direct.Add(1)
	if st.q != nil {
		// Video goes to its layer's goroutine (forward); under u.mu, so
		// that removeStream cannot close the queue meanwhile.
		if !st.enqueue(&u.srv.queued, pkt, now) {
			u.shed.Add(1)
		}
		u.mu.Unlock()
	} else {
		u.mu.Unlock()
		st.t.receive(st, pkt, now)
	}
	u.send(fb)
	return true
}

// videoQueue is how many packets a video layer's goroutine may fall
// behind the reading goroutine before packets are shed: about a second of
// a 720p layer, several keyframes' worth.
const videoQueue = 256

// videoLag is how late a layer's goroutine may forward a packet: past it
// the packet is shed. A 180p layer sends 30 packets a second, so the
// count alone would let its video fall eight seconds behind the audio.
// Half a second is far beyond a working server's lag (a few ms, about
// 65 ms when a CPU quota throttles it), and video later than that is
// no use in a conversation: the subscriber's NACK then finds nothing, and
// its keyframe request brings the picture back.
const videoLag = 500 * time.Millisecond

// queued is a published video packet on its way to its layer's
// goroutine; the Server pools them.
type queued struct {
	buf [1500]byte
	n   int
	at  time.Time
}

// enqueue hands a video packet to its layer's goroutine, or reports false
// when that goroutine has fallen videoQueue packets behind: the server is
// out of CPU, and video is what gives way, so that the reading goroutine
// keeps emptying the socket and audio, forwarded right there, goes on.
// The caller holds the connection's lock.
func (st *upStream) enqueue(pool *sync.Pool, pkt []byte, now time.Time) bool {
	if len(pkt) > len(queued{}.buf) {
		return false
	}
	qp, _ := pool.Get().(*queued)
	if qp == nil {
		qp = new(queued)
	}
	qp.n, qp.at = copy(qp.buf[:], pkt), now
	select {
	case st.q <- qp:
		return true
	default:
		pool.Put(qp)
		return false
	}
}

// forward forwards a video layer's queued packets until the layer ends
// (removeStream closes the queue). Each layer forwarding on its own
// goroutine lets the layers of a server's classes use all its cores.
// What has queued up meanwhile (the packets of a frame, which arrive
// together) is handed to deliver at once, to be forwarded subscriber by
// subscriber (upTrack.receiveBatch); what waited longer than videoLag is
// shed.
func (st *upStream) forward(pool *sync.Pool, deliver func([]fanout.Arrived)) {
	var (
		taken [fanout.MaxBatch]*queued
		pkts  [fanout.MaxBatch]fanout.Arrived
	)
	for qp := range st.q {
		taken[0] = qp
		n := 1
	drain:
		for n < len(taken) {
			select {
			case qp, ok := <-st.q:
				if !ok {
					break drain
				}
				taken[n] = qp
				n++
			default:
				break drain
			}
		}
		// The queue is in arrival order: what is too late is in front.
		late, now := 0, time.Now()
		for late < n && now.Sub(taken[late].at) > videoLag {
			late++
		}
		if late > 0 && st.shed != nil {
			st.shed.Add(uint64(late))
		}
		for i, qp := range taken[late:n] {
			pkts[i] = fanout.Arrived{Raw: qp.buf[:qp.n], At: qp.at}
		}
		if late < n {
			deliver(pkts[:n-late])
		}
		for i, qp := range taken[:n] {
			pool.Put(qp)
			taken[i], pkts[i] = nil, fanout.Arrived{}
		}
	}
}

// observe records a packet that came through Pion and returns the
// feedback due, if any.
func (u *upConn) observe(st *upStream, pkt []byte, now time.Time) []rtcp.Packet {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.observeLocked(st, pkt, now)
}

// send writes feedback gathered by observe.
func (u *upConn) send(fb []rtcp.Packet) {
	if len(fb) == 0 {
		return
	}
	if err := u.pc.WriteRTCP(fb); err != nil {
		u.srv.log.Debug("feedback to a publisher", "publisher", u.name, "err", err)
	}
}

// observeLocked updates a stream's statistics, losses and the TWCC record
// with one packet, and gathers the feedback that is due; u.mu is held.
func (u *upConn) observeLocked(st *upStream, pkt []byte, now time.Time) []rtcp.Packet {
	seq := binary.BigEndian.Uint16(pkt[2:])
	ts := binary.BigEndian.Uint32(pkt[4:])
	st.count(seq, ts, now.Sub(u.start), now)
	if st.twccExt != 0 {
		if v, ok := headerExtension(pkt, st.twccExt); ok && len(v) >= 2 {
			if u.twcc == nil {
				u.twcc = twcc.NewRecorder(u.ssrc)
			}
			u.twcc.Record(st.ssrc, binary.BigEndian.Uint16(v), now.Sub(u.start).Microseconds())
		}
	}
	return u.feedbackLocked(now)
}

// count folds one packet into the stream's statistics and losses.
func (st *upStream) count(seq uint16, ts uint32, since time.Duration, now time.Time) {
	if !st.started {
		st.started, st.base, st.maxExt = true, uint32(seq), uint32(seq)
		st.received = 1
		return
	}
	st.received++
	d := seq - uint16(st.maxExt)
	switch {
	case d == 0:
		return // a duplicate
	case d < 0x8000:
		ext := st.maxExt + uint32(d)
		if st.nack {
			if d > nackMax {
				st.missing = st.missing[:0] // a restart, not losses
			} else {
				for e := st.maxExt + 1; e < ext; e++ {
					if len(st.missing) == nackMax {
						copy(st.missing, st.missing[1:])
						st.missing = st.missing[:nackMax-1]
					}
					st.missing = append(st.missing, loss{ext: e, next: now})
				}
			}
		}
		st.maxExt = ext
		// Interarrival jitter, from packets in order.
		arrival := int64(since) * int64(st.clock) / int64(time.Second)
		transit := arrival - int64(ts)
		if st.haveTransit {
			dt := transit - st.transit
			if dt < 0 {
				dt = -dt
			}
			dt = min(dt, 1<<28) // a pause, not jitter
			st.jitter += uint32(dt) - (st.jitter+8)>>4
		}
		st.transit, st.haveTransit = transit, true
	default:
		// Late: a reordered packet or the answer to a NACK.
		ext := st.maxExt - uint32(uint16(st.maxExt)-seq)
		for i, l := range st.missing {
			if l.ext == ext {
				st.missing = append(st.missing[:i], st.missing[i+1:]...)
				break
			}
		}
	}
}

// feedbackLocked gathers the NACKs, TWCC feedback and receiver reports
// that are due; u.mu is held. The slice is new each time it is not
// empty: the direct path and Pion's may each be sending one.
func (u *upConn) feedbackLocked(now time.Time) []rtcp.Packet {
	var fb []rtcp.Packet
	if now.Sub(u.nackAt) >= nackInterval {
		u.nackAt = now
		for _, st := range u.streams {
			if n := st.nacks(u.ssrc, now); n != nil {
				fb = append(fb, n)
			}
		}
	}
	if u.twcc != nil && now.Sub(u.twccAt) >= twccInterval {
		u.twccAt = now
		fb = append(fb, u.twcc.BuildFeedbackPacket()...)
	}
	if now.Sub(u.rrAt) >= rrInterval {
		u.rrAt = now
		rr := &rtcp.ReceiverReport{SSRC: u.ssrc}
		for _, st := range u.streams {
			if st.started && len(rr.Reports) < 31 {
				rr.Reports = append(rr.Reports, st.report(now))
			}
		}
		if len(rr.Reports) > 0 {
			fb = append(fb, rr)
		}
	}
	return fb
}

// nacks returns the NACK of the stream's losses due now, nil if none.
func (st *upStream) nacks(sender uint32, now time.Time) *rtcp.TransportLayerNack {
	if len(st.missing) == 0 {
		return nil
	}
	var seqs []uint16
	kept := st.missing[:0]
	for _, l := range st.missing {
		if !now.Before(l.next) {
			seqs = append(seqs, uint16(l.ext))
			l.tries++
			l.next = now.Add(nackRetry)
		}
		if l.tries < nackTries {
			kept = append(kept, l)
		}
	}
	st.missing = kept
	if len(seqs) == 0 {
		return nil
	}
	return &rtcp.TransportLayerNack{SenderSSRC: sender, MediaSSRC: st.ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
}

// report returns the stream's reception report block and starts the next
// interval.
func (st *upStream) report(now time.Time) rtcp.ReceptionReport {
	expected := st.maxExt - st.base + 1
	lost := int64(expected) - int64(st.received)
	expInt, recvInt := expected-st.priorExp, st.received-st.priorRecv
	st.priorExp, st.priorRecv = expected, st.received
	var fraction uint8
	if lostInt := int64(expInt) - int64(recvInt); expInt > 0 && lostInt > 0 {
		fraction = uint8(lostInt << 8 / int64(expInt))
	}
	// Cumulative loss is a signed 24-bit field.
	lost = max(min(lost, 0x7fffff), -0x800000)
	r := rtcp.ReceptionReport{
		SSRC:               st.ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost) & 0xffffff,
		LastSequenceNumber: st.maxExt,
		Jitter:             st.jitter >> 4,
	}
	if !st.lsrAt.IsZero() {
		r.LastSenderReport = st.lsr
		r.Delay = uint32(now.Sub(st.lsrAt) * 65536 / time.Second)
	}
	return r
}
