package sfu

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/media/fanout"
	"github.com/liveclass/liveclass/internal/media/srtpkeys"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// downConn is what the slots of one sending connection share: the
// connection, the handling of its incoming RTCP, and the counts and
// feedback that handling records. A participant's subscriber connection
// (Peer) and a broadcast viewer's connection (Viewer) each have one.
type downConn struct {
	srv  *Server
	name string // who receives, for logs and subscriber names
	pc   *webrtc.PeerConnection
	est  cc.BandwidthEstimator // the TWCC estimator fed the feedback; nil without TWCC

	mu     sync.Mutex
	bySSRC map[uint32]*slot // the connection's senders, by their SSRC

	// The send path (direct.go): directOK says the connection may take
	// the direct one, keys gathers its SRTP keys during the handshake,
	// fail ends the connection's owner when the path is lost.
	directOK bool
	keys     srtpkeys.Collector
	fail     func()
	path     atomic.Int32
	direct   atomic.Pointer[directOut]

	// Written by the RTCP handling, read by the ticks and Stats.
	remb    atomic.Int64  // latest REMB from the receiver, bits/s
	rembAt  atomic.Int64  // when it came, Unix ns
	loss    atomic.Uint32 // latest loss fraction reported, ×256
	lossAt  atomic.Int64  // when it came, Unix ns; 0 before the first
	rtt     atomic.Int64  // latest round trip, ns
	packets atomic.Uint64 // RTP packets sent
	bytes   atomic.Uint64
	rtx     atomic.Uint64 // retransmissions answered from the caches
	nacked  atomic.Uint64 // sequence numbers NACKed by the receiver
}

// addSlot registers a sender of the connection, before the offer that
// carries it: its RTCP can come only after.
func (c *downConn) addSlot(sl *slot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bySSRC == nil {
		c.bySSRC = map[uint32]*slot{}
	}
	c.bySSRC[sl.ssrc] = sl
}

// buffer is the connection's srtp buffer factory (SettingEngine's
// BufferFactory). Pion's SRTCP session splits each compound packet it
// reads by destination SSRC and writes every part to the read stream of
// that SSRC, a buffer that a goroutine per sender would have to read
// (RTPSender.ReadRTCP); the buffers made here handle the part right
// there, on the session's own reading goroutine, and keep nothing.
func (c *downConn) buffer(kind packetio.BufferPacketType, ssrc uint32) io.ReadWriteCloser {
	if kind != packetio.RTCPBufferPacket {
		// A sending connection receives no media: what a client sends
		// anyway is dropped.
		return &rtcpSink{}
	}
	c.mu.Lock()
	sl := c.bySSRC[ssrc]
	c.mu.Unlock()
	return &rtcpSink{c: c, sl: sl}
}

// rtcpSink is the read stream buffer of one SSRC's incoming RTCP; one
// without a connection drops what it is given.
type rtcpSink struct {
	c  *downConn
	sl *slot // nil for an SSRC none of the connection's senders has
}

// Write handles one RTCP packet addressed to the sink's SSRC.
func (s *rtcpSink) Write(b []byte) (int, error) {
	if s.c != nil {
		s.c.handleRTCP(s.sl, b)
	}
	return len(b), nil
}

// Read reports the end at once: the packets were handled as they came,
// nothing is left to read.
func (s *rtcpSink) Read([]byte) (int, error) { return 0, io.EOF }

// Close implements io.Closer; the sink holds nothing.
func (s *rtcpSink) Close() error { return nil }

// RTCP packet types (RFC 3550, RFC 4585).
const (
	rtcpRR    = 201
	rtcpRTPFB = 205 // transport feedback: NACK, TWCC
	rtcpPSFB  = 206 // payload-specific feedback: PLI, FIR, REMB
)

// handleRTCP handles one RTCP packet from the receiver, addressed to sl
// (nil: to an SSRC that is not one of ours): NACKs answered from the
// packet cache, keyframe requests passed on through the throttle, REMB
// and receiver reports for the estimate and the quality, transport-wide
// feedback to the TWCC estimator. A packet addressed to several of our
// SSRCs (a receiver report, a REMB) comes once for each.
func (c *downConn) handleRTCP(sl *slot, b []byte) {
	// Sender descriptions, goodbyes and extended reports are none of
	// the sfu's business: skip them without parsing.
	if len(b) < 8 {
		return
	}
	switch b[1] {
	case rtcpRR, rtcpRTPFB, rtcpPSFB:
	default:
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, pkt := range pkts {
		switch pk := pkt.(type) {
		case *rtcp.TransportLayerNack:
			if sl == nil || pk.MediaSSRC != sl.ssrc {
				continue
			}
			sub := sl.sub.Load()
			for _, pair := range pk.Nacks {
				// Walking the bitmap allocates nothing; PacketList would.
				c.retransmit(sub, pair.PacketID)
				for i := range uint16(16) {
					if pair.LostPackets&(1<<i) != 0 {
						c.retransmit(sub, pair.PacketID+i+1)
					}
				}
			}
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			if sl == nil {
				continue
			}
			if up, sub := sl.upA.Load(), sl.sub.Load(); up != nil && sub != nil {
				cur, _ := sub.Layers()
				up.requestKeyframe(cur)
			}
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			c.remb.Store(int64(pk.Bitrate))
			c.rembAt.Store(time.Now().UnixNano())
		case *rtcp.ReceiverReport:
			if sl == nil {
				continue
			}
			for _, r := range pk.Reports {
				if r.SSRC != sl.ssrc {
					continue
				}
				c.loss.Store(uint32(r.FractionLost))
				c.lossAt.Store(time.Now().UnixNano())
				if r.LastSenderReport != 0 {
					now := ntpMiddle(time.Now())
					if d := now - r.LastSenderReport - r.Delay; d < 1<<20 { // < 16 s: sane
						c.rtt.Store(int64(time.Duration(d) * time.Second / 65536))
					}
				}
			}
		case *rtcp.TransportLayerCC:
			if c.est != nil {
				_ = c.est.WriteRTCP([]rtcp.Packet{pk}, nil)
			}
		}
	}
}

// retransmit answers the receiver's NACK of seq from the packet cache.
func (c *downConn) retransmit(sub *fanout.Subscriber, seq uint16) {
	c.nacked.Add(1)
	if sub != nil && sub.Retransmit(seq) {
		c.rtx.Add(1)
	}
}

// lossFraction returns the loss of the latest receiver report, 0 to 1.
func (c *downConn) lossFraction() float64 { return float64(c.loss.Load()) / 256 }

// reportFresh is how long a receiver report steers the loss-based
// estimate: receivers report every second or so, so one older than this
// means the reports have stopped (the receiver is gone, or its RTCP does
// not get through), and the estimate must not go on growing on the word
// of the last one.
const reportFresh = 3 * time.Second

// recentLoss returns the loss of the latest receiver report and whether
// that report is recent enough to adjust the estimate by at now.
func (c *downConn) recentLoss(now time.Time) (float64, bool) {
	at := c.lossAt.Load()
	return c.lossFraction(), at != 0 && now.UnixNano()-at < int64(reportFresh)
}

// adjustLossEstimate is one step of the loss-based control of RFC 8698's
// spirit: back off on heavy loss, creep up on little. It returns the new
// estimate.
func adjustLossEstimate(est int, loss float64) int {
	switch {
	case loss > 0.1:
		return max(est*85/100, 50_000)
	case loss < 0.02:
		return min(est*108/100, 50_000_000)
	}
	return est
}

// capREMB bounds an estimate by the receiver's latest REMB, if it is
// recent.
func (c *downConn) capREMB(e int, now time.Time) int {
	if r := int(c.remb.Load()); r > 0 && now.UnixNano()-c.rembAt.Load() < int64(5*time.Second) {
		e = min(e, r)
	}
	return e
}
