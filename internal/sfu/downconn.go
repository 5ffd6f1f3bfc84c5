package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// downConn is what the slots of one sending connection share: the
// connection, the goroutines reading its feedback, and the counts and
// feedback those goroutines record. A participant's subscriber connection
// (Peer) and a broadcast viewer's connection (Viewer) each have one.
type downConn struct {
	srv  *Server
	name string // who receives, for logs and subscriber names
	pc   *webrtc.PeerConnection
	wg   *sync.WaitGroup // the RTCP loops of the slots

	// Written by the RTCP loops, read by the ticks and Stats.
	remb    atomic.Int64  // latest REMB from the receiver, bits/s
	rembAt  atomic.Int64  // when it came, Unix ns
	loss    atomic.Uint32 // latest loss fraction reported, ×256
	rtt     atomic.Int64  // latest round trip, ns
	packets atomic.Uint64 // RTP packets sent
	bytes   atomic.Uint64
	rtx     atomic.Uint64 // retransmissions answered from the caches
	nacked  atomic.Uint64 // sequence numbers NACKed by the receiver
}

// lossFraction returns the loss of the latest receiver report, 0 to 1.
func (c *downConn) lossFraction() float64 { return float64(c.loss.Load()) / 256 }

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
