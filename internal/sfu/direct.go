package sfu

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/liveclass/liveclass/internal/media/srtpgcm"
	"github.com/liveclass/liveclass/internal/media/udpbatch"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// A sending connection's forwarded RTP takes one of two paths, chosen once
// when the connection first comes up:
//
//   - direct: the sfu encrypts each packet itself (srtpgcm for AES-GCM, a
//     pion/srtp context of the connection's own for AES-CM) and hands the
//     datagram to the ICE mux's batching socket, addressed to the selected
//     candidate pair's remote side. Pion's per-packet chain
//     (its SRTP session's write lock and per-SSRC lookups, the mux
//     endpoint, the ICE connection's per-packet address check and
//     timestamps) is about a fifth of a loaded server's CPU, and none of it
//     is needed to send a packet the sfu has already rewritten.
//   - pion: through the sender's TrackLocalWriter, as before. A connection
//     takes it when the sfu could not recover its SRTP keys (it was not the
//     DTLS server), when its pair is not a UDP host candidate on one of the
//     mux's sockets (ICE-TCP), or when TWCC estimation needs Pion's
//     interceptors to see every packet.
//
// Until the choice is made, forwarded packets are dropped, as Pion drops
// them before SRTP is up: so each SSRC's packets are encrypted by one
// context only, whose rollover counter the receiver follows.
const (
	pathUndecided int32 = iota
	pathPion
	pathDirect
)

// directOut is a connection's direct path: its SRTP sealing, the socket
// and the remote address. One lock serialises the connection's writers
// (the forwarding goroutines of the tracks it receives, the RTCP
// handler's retransmissions): a pion/srtp context is not safe for
// concurrent use, and the plaintext and datagram buffers are shared. A
// writer takes its downTrack's lock first, then this one.
type directOut struct {
	mu sync.Mutex
	// gcm seals with AES-GCM (what the sfu negotiates first), each
	// stream's rollover state kept by its downTrack; ctx is pion/srtp's
	// context for the AES-CM profiles, when gcm is nil.
	gcm   *srtpgcm.Sender
	ctx   *srtp.Context
	conn  *udpbatch.Conn
	to    netip.AddrPort
	gone  bool
	plain [1600]byte // the header, and for AES-CM the packet, before encryption
	enc   []byte     // the datagram, reused
}

// writeRTP encrypts one packet and sends it (or queues it, during a
// forwarding pass). It returns the datagram's length, or 0 for a packet
// dropped because the connection is moving off the path.
func (d *directOut) writeRTP(h *rtp.Header, payload []byte, st *srtpgcm.Stream) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return 0, nil
	}
	hl, err := h.MarshalTo(d.plain[:])
	if err != nil {
		return 0, err
	}
	if hl+len(payload) > len(d.plain) {
		return 0, errors.New("sfu: RTP packet larger than a datagram")
	}
	var out []byte
	if d.gcm != nil {
		// Sealed from where header and payload are: no copy first.
		out, err = d.gcm.Seal(d.enc[:0], d.plain[:hl], payload, h.SSRC, h.SequenceNumber, st)
	} else {
		n := hl + copy(d.plain[hl:], payload)
		out, err = d.ctx.EncryptRTP(d.enc[:0], d.plain[:n], h)
	}
	if err != nil {
		return 0, err
	}
	d.enc = out[:0]
	return d.conn.WriteToAddrPort(out, d.to)
}

// choosePath picks the connection's path when it first comes up; later
// calls do nothing.
func (c *downConn) choosePath() {
	if c.path.Load() != pathUndecided {
		return
	}
	d, why := c.newDirect()
	if d == nil {
		c.path.Store(pathPion)
		c.srv.log.Debug("forwarding through Pion's writer", "receiver", c.name, "why", why)
		return
	}
	c.direct.Store(d)
	c.path.Store(pathDirect)
	c.pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(c.pairChanged)
}

// closed stops the direct path for good when the connection is closed:
// until its slots leave their forwarders, packets would otherwise still go
// to the old address, where Pion's writer would have refused them.
func (c *downConn) closed() {
	if d := c.direct.Load(); d != nil {
		d.mu.Lock()
		d.gone = true
		d.mu.Unlock()
	}
}

// newDirect builds the direct path, or says why there is none.
func (c *downConn) newDirect() (*directOut, string) {
	if !c.directOK {
		return nil, "disabled"
	}
	keys, err := c.keys.Keys()
	if err != nil {
		return nil, err.Error()
	}
	pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return nil, "no selected candidate pair"
	}
	conn, to, ok := c.srv.directTarget(pair)
	if !ok {
		return nil, "candidate pair not on the UDP mux"
	}
	d := &directOut{conn: conn, to: to, enc: make([]byte, 0, 1700)}
	switch keys.Profile {
	case srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAeadAes256Gcm:
		d.gcm, err = srtpgcm.New(keys.Profile, keys.Key, keys.Salt)
	default:
		d.ctx, err = srtp.CreateContext(keys.Key, keys.Salt, keys.Profile)
	}
	if err != nil {
		return nil, err.Error()
	}
	return d, ""
}

// pairChanged follows an ICE restart or a re-nomination: a new UDP pair
// on the mux only moves the address. A pair the direct path cannot reach
// (ICE-TCP) goes back to Pion's writer if no stream's sequence numbers
// have wrapped yet (Pion's context starts each SSRC at rollover count 0,
// as the receiver then expects); otherwise the receiver would reject
// every packet, and the connection is failed so that the client
// reconnects.
func (c *downConn) pairChanged(pair *webrtc.ICECandidatePair) {
	d := c.direct.Load()
	if d == nil || pair == nil {
		return
	}
	conn, to, ok := c.srv.directTarget(pair)
	d.mu.Lock()
	if ok {
		d.conn, d.to = conn, to
		d.mu.Unlock()
		return
	}
	// From here no write seals or sends on the path. The lock is let go
	// before the streams' states are read: a writer holds its
	// downTrack's lock while it waits for this one.
	d.gone = true
	d.mu.Unlock()
	wrapped := false
	c.mu.Lock()
	for ssrc, sl := range c.bySSRC {
		if d.gcm != nil {
			sl.track.mu.Lock()
			wrapped = wrapped || sl.track.gcm.Wrapped()
			sl.track.mu.Unlock()
		} else if roc, ok := d.ctx.ROC(ssrc); ok && roc != 0 {
			wrapped = true
		}
	}
	c.mu.Unlock()
	if !wrapped {
		c.path.Store(pathPion)
		c.direct.Store(nil)
		return
	}
	c.srv.log.Warn("connection moved to a path the sfu cannot send on; closing it", "receiver", c.name)
	if c.fail != nil {
		go c.fail()
	}
}

// directTarget returns the mux socket and remote address of a candidate
// pair whose local side is a UDP host candidate of the mux. The local
// candidate's address is matched against the sockets' own; behind a
// configured public IP the candidate carries that address instead, and
// the socket is the only one on its port that is not loopback (or the
// loopback one, for a loopback peer).
func (s *Server) directTarget(pair *webrtc.ICECandidatePair) (*udpbatch.Conn, netip.AddrPort, bool) {
	l, r := pair.Local, pair.Remote
	if l == nil || r == nil || l.Protocol != webrtc.ICEProtocolUDP || l.Typ != webrtc.ICECandidateTypeHost || r.Protocol != webrtc.ICEProtocolUDP {
		return nil, netip.AddrPort{}, false
	}
	ra, err := netip.ParseAddr(r.Address)
	if err != nil {
		return nil, netip.AddrPort{}, false
	}
	la, _ := netip.ParseAddr(l.Address)
	var byPort []*udpbatch.Conn
	for _, c := range s.batch {
		ua, ok := c.LocalAddr().(*net.UDPAddr)
		if !ok || ua.Port != int(l.Port) {
			continue
		}
		a, _ := netip.AddrFromSlice(ua.IP)
		if a.Unmap() == la.Unmap() {
			return c, netip.AddrPortFrom(ra.Unmap(), r.Port), true
		}
		if a.IsLoopback() == ra.IsLoopback() {
			byPort = append(byPort, c)
		}
	}
	if len(byPort) != 1 {
		return nil, netip.AddrPort{}, false
	}
	return byPort[0], netip.AddrPortFrom(ra.Unmap(), r.Port), true
}
