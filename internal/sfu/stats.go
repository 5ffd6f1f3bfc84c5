package sfu

import (
	"sync/atomic"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

// counters are the Server's process-wide counts.
type counters struct {
	plis    atomic.Uint64 // keyframe requests sent to publishers
	dropped atomic.Uint64 // malformed published packets dropped
}

// PeerStats describes one participant's downstream media.
type PeerStats struct {
	Class       store.ClassID
	Participant ParticipantID
	// PacketsSent and BytesSent count the RTP forwarded to the
	// participant, retransmissions included.
	PacketsSent, BytesSent uint64
	// Nacked counts the sequence numbers the participant asked for again;
	// Retransmitted those answered from the packet caches.
	Nacked, Retransmitted uint64
	// Loss is the fraction of packets lost in the participant's latest
	// receiver report.
	Loss float64
	// RTT is the latest round trip from the receiver reports; 0 before
	// the first.
	RTT time.Duration
	// Estimate is the downstream bandwidth estimate, bits per second.
	Estimate int
	// Quality is the connection grade last reported.
	Quality Quality
}

// Stats describes the whole Server, for /metrics and the load tester.
type Stats struct {
	Sessions int
	// PacketsForwarded and BytesForwarded sum the peers' PacketsSent and
	// BytesSent.
	PacketsForwarded, BytesForwarded uint64
	Retransmitted                    uint64
	// PLIs counts keyframe requests sent to publishers.
	PLIs uint64
	// Dropped counts malformed packets from publishers.
	Dropped uint64
	// ReceivedDirect counts the published packets that came the sfu's
	// own receive path (upconn.go), Refused those it dropped (failed
	// authentication, replays) and Shed the video it dropped because a
	// layer's forwarding fell behind: over the participants and
	// broadcast publishers connected now.
	ReceivedDirect, Refused, Shed uint64
	// Datagrams counts what the forwarding passes sent on the media
	// sockets, Segmented those of them that left in messages of several
	// (segmentation offload, udpbatch): since the server started.
	Datagrams, Segmented uint64
	Peers                []PeerStats
}

// Stats returns the Server's counts and every peer's.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	sessions := make([]*Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	st := Stats{Sessions: len(sessions), PLIs: s.counters.plis.Load(), Dropped: s.counters.dropped.Load()}
	for _, c := range s.batch {
		_, d, _ := c.Stats()
		st.Datagrams += d
		st.Segmented += c.Segmented()
	}
	now := time.Now()
	for _, ss := range sessions {
		ss.mu.Lock()
		peers := make([]*Peer, 0, len(ss.peers))
		ups := make([]*upConn, 0, len(ss.peers)+len(ss.ingests))
		for _, p := range ss.peers {
			peers = append(peers, p)
			ups = append(ups, p.up)
		}
		for _, ing := range ss.ingests {
			ups = append(ups, ing.up)
		}
		ss.mu.Unlock()
		for _, u := range ups {
			st.ReceivedDirect += u.direct.Load()
			st.Refused += u.refused.Load()
			st.Shed += u.shed.Load()
		}
		for _, p := range peers {
			ps := p.Stats(now)
			st.PacketsForwarded += ps.PacketsSent
			st.BytesForwarded += ps.BytesSent
			st.Retransmitted += ps.Retransmitted
			st.Peers = append(st.Peers, ps)
		}
	}
	return st
}

// Stats returns the participant's counts at now.
func (p *Peer) Stats(now time.Time) PeerStats {
	p.mu.Lock()
	est, q := p.estimate(now), p.quality
	p.mu.Unlock()
	return PeerStats{
		Class: p.ss.class, Participant: p.id,
		PacketsSent: p.down.packets.Load(), BytesSent: p.down.bytes.Load(),
		Nacked: p.down.nacked.Load(), Retransmitted: p.down.rtx.Load(),
		Loss:     p.down.lossFraction(),
		RTT:      time.Duration(p.down.rtt.Load()),
		Estimate: est, Quality: q,
	}
}
