package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/media/bwe"
	"github.com/liveclass/liveclass/internal/store"
	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/logging"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
)

// Estimation chooses how the SFU estimates a subscriber's bandwidth.
type Estimation int

const (
	// EstimateLoss, the default, uses only REMB and receiver-report loss.
	// It costs nothing per packet: measured on the forwarding path, the
	// TWCC alternative's per-packet work (sequence-number extension,
	// congestion controller's feedback history) took more CPU than
	// everything else in user space together and about 13 allocations per
	// packet per subscriber, for an estimate a class of 180p tiles rarely
	// needs (docs/benchmarks.md).
	EstimateLoss Estimation = iota
	// EstimateTWCC runs Google congestion control on transport-wide
	// congestion control feedback from the subscriber, bounded by REMB and
	// by the loss in its receiver reports: a faster, finer estimate, for
	// subscribers on constrained links receiving large layers.
	EstimateTWCC
)

// TURNConfig configures the embedded TURN server, for networks that block
// UDP to the media port but allow it to a TURN port, or allow only TCP.
type TURNConfig struct {
	// Port is the UDP and TCP port the TURN server listens on; 0 picks one.
	Port int
	// Realm is the TURN realm; "liveclass" when empty.
	Realm string
	// Username and Password are the one long-term credential handed to
	// clients with the ICE servers.
	Username, Password string
}

// Config configures a Server. The zero value works on a machine whose
// interfaces are reachable by the clients, with random ports.
type Config struct {
	// UDPPort is the one UDP port every participant's ICE runs on; 0 picks
	// a free one (tests).
	UDPPort int
	// TCPPort is the ICE-TCP fallback port; 0 picks a free one.
	TCPPort int
	// DisableTCP turns the ICE-TCP fallback off.
	DisableTCP bool
	// PublicIP, when set, is advertised in host candidates instead of the
	// machine's addresses: a server behind a 1:1 NAT.
	PublicIP string
	// IncludeLoopback gathers loopback candidates: tests, and a machine
	// whose only interface is loopback.
	IncludeLoopback bool
	// ICEServers are STUN/TURN servers handed to clients (see ICEServers).
	ICEServers []webrtc.ICEServer
	// TURN, when set, starts an embedded TURN server and adds it to
	// ICEServers.
	TURN *TURNConfig
	// Layers describes the simulcast layers clients publish, lowest first
	// (DefaultLayers() when empty): their bitrates and sizes choose what a
	// subscriber gets.
	Layers []bwe.Layer
	// LayerHold is how long a subscriber's estimate must stay above a
	// higher layer's bitrate before it moves up (bwe.DefaultHold if 0).
	LayerHold time.Duration
	// Tick is the period of layer selection, quality and active-speaker
	// detection; 300 ms when zero.
	Tick time.Duration
	// InitialEstimate is a subscriber's bandwidth estimate before any
	// feedback, in bits per second; 1.5 Mbps when zero.
	InitialEstimate int
	// Estimation chooses the bandwidth estimator.
	Estimation Estimation
	// PionWrite sends forwarded packets through Pion's SRTP writer
	// rather than the sfu's own path (direct.go): the benchmarks measure
	// one against the other, and the tests check that both reach a
	// receiver.
	PionWrite bool
	// PionRead receives every published packet through Pion's receive
	// chain (ICE mux, DTLS/SRTP demultiplexer, SRTP session, track
	// buffer) instead of the sfu's own direct path (upconn.go): the
	// comparison the benchmarks make.
	PionRead bool
	// VideoSlots is the size of the pool of video transceivers each
	// subscriber connection grows to; MaxVideo when zero.
	VideoSlots int
	// Events receives what the SFU observes; nil discards it.
	Events Events
	// Logger receives the SFU's logs; required.
	Logger *slog.Logger
}

// DefaultLayers returns the three camera layers the live page publishes:
// 180p, 360p and 720p at the bitrates Chromium targets for them. A fresh
// slice each call, so that no server can change another's.
func DefaultLayers() []bwe.Layer {
	return []bwe.Layer{
		{Bitrate: 150_000, Width: 320, Height: 180},
		{Bitrate: 500_000, Width: 640, Height: 360},
		{Bitrate: 1_500_000, Width: 1280, Height: 720},
	}
}

// Server is the SFU of one process: the shared ports and Pion APIs, and the
// sessions of the live classes.
type Server struct {
	cfg    Config
	log    *slog.Logger
	events Events

	pubAPI *connAPI
	subAPI *connAPI
	// ingAPI and viewAPI serve the broadcast: WHIP publishers and WHEP
	// viewers.
	ingAPI      *connAPI
	viewAPI     *connAPI
	udpMux      ice.UDPMux
	tcpMux      ice.TCPMux
	tcpListener net.Listener
	turn        *turn.Server
	turnConns   []net.PacketConn
	iceServers  []webrtc.ICEServer
	udpAddrs    []net.Addr
	// batch brackets forwarding passes on the mux's sockets.
	batch batchGroup

	// estimators hands each subscriber connection its congestion
	// controller: the cc interceptor reports it by connection ID while
	// NewPeerConnection runs.
	estimators sync.Map // string (PeerConnection ID) → cc.BandwidthEstimator
	// receivers maps the remote address of each publishing connection on
	// the direct receive path to it (upconn.go).
	receivers sync.Map // netip.AddrPort → *upConn
	// queued pools the video packets on their way from the direct path
	// to their layers' goroutines.
	queued sync.Pool

	mu       sync.Mutex
	sessions map[store.ClassID]*Session
	closed   bool
	counters counters
}

// New starts a Server: it binds the media ports (and the TURN port) and
// builds the Pion APIs once.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		return nil, errors.New("sfu: Config.Logger is required")
	}
	if cfg.Tick == 0 {
		cfg.Tick = 300 * time.Millisecond
	}
	if cfg.InitialEstimate == 0 {
		cfg.InitialEstimate = 1_500_000
	}
	if cfg.VideoSlots <= 0 || cfg.VideoSlots > MaxVideo {
		cfg.VideoSlots = MaxVideo
	}
	if len(cfg.Layers) == 0 {
		cfg.Layers = DefaultLayers()
	}
	if _, err := bwe.New(bwe.Options{Layers: cfg.Layers, Hold: cfg.LayerHold}); err != nil {
		return nil, fmt.Errorf("sfu: layers: %w", err)
	}
	if cfg.PublicIP != "" && net.ParseIP(cfg.PublicIP) == nil {
		return nil, fmt.Errorf("sfu: public IP %q is not an IP address", cfg.PublicIP)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, events: cfg.Events, sessions: map[store.ClassID]*Session{}}
	if s.events == nil {
		s.events = nopEvents{}
	}
	if err := s.start(); err != nil {
		s.closeNet()
		return nil, err
	}
	return s, nil
}

// start binds the sockets and builds the APIs.
func (s *Server) start() error {
	cfg := s.cfg
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.IncludeLoopback)
	if cfg.PublicIP != "" {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        []string{cfg.PublicIP},
			AsCandidateType: webrtc.ICECandidateTypeHost,
		}); err != nil {
			return fmt.Errorf("sfu: public IP: %w", err)
		}
	}
	// AES-128-GCM first: about a seventh of the CPU of AES-CM with
	// HMAC-SHA1 per packet, and a little less than AES-256-GCM, which Pion
	// prefers by default. AES-CM stays for clients that lack GCM.
	// One logger factory for every connection: the sending sides build
	// an API per connection (connAPI), which would otherwise make one
	// each.
	se.LoggerFactory = logging.NewDefaultLoggerFactory()
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	// A publisher's retransmission answers the sfu's NACK a round trip
	// later; at 720p that is dozens of packets on. Pion's replay window
	// of 64 packets would drop it as a replay; 1,024 is what libwebrtc
	// and Firefox use.
	se.SetSRTPReplayProtectionWindow(1024)
	std, err := stdnet.NewNet()
	if err != nil {
		return fmt.Errorf("sfu: network: %w", err)
	}
	bn := &batchNet{Net: std}
	opts := []ice.UDPMuxFromPortOption{
		ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6),
		ice.UDPMuxFromPortWithNet(bn),
	}
	if cfg.IncludeLoopback {
		opts = append(opts, ice.UDPMuxFromPortWithLoopback())
	}
	mux, err := ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
	if err != nil {
		return fmt.Errorf("sfu: ICE UDP port %d: %w", cfg.UDPPort, err)
	}
	s.udpMux = mux
	s.batch = batchGroup(bn.conns)
	if !cfg.PionRead {
		for _, c := range bn.conns {
			c.SetDivert(s.divert)
		}
	}
	s.udpAddrs = mux.GetListenAddresses()
	se.SetICEUDPMux(mux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if !cfg.DisableTCP {
		l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			return fmt.Errorf("sfu: ICE TCP port %d: %w", cfg.TCPPort, err)
		}
		s.tcpListener = l
		s.tcpMux = webrtc.NewICETCPMux(logging.NewDefaultLoggerFactory().NewLogger("ice-tcp"), l, 8)
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)

	s.iceServers = append(s.iceServers, cfg.ICEServers...)
	if cfg.TURN != nil {
		if err := s.startTURN(*cfg.TURN); err != nil {
			return err
		}
	}

	if s.pubAPI, err = newConnAPI(se, apiPublisher, nil, !cfg.PionRead); err != nil {
		return err
	}
	var ccf *cc.InterceptorFactory
	if cfg.Estimation == EstimateTWCC {
		ccf, err = cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
			return gcc.NewSendSideBWE(
				gcc.SendSideBWEInitialBitrate(cfg.InitialEstimate),
				// No pacing: the SFU forwards what publishers send, and
				// a pacer would copy and queue every packet.
				gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
			)
		})
		if err != nil {
			return fmt.Errorf("sfu: congestion control: %w", err)
		}
		ccf.OnNewPeerConnection(func(id string, est cc.BandwidthEstimator) { s.estimators.Store(id, est) })
	}
	if s.subAPI, err = newConnAPI(se, apiSubscriber, ccf, !cfg.PionWrite); err != nil {
		return err
	}
	if s.ingAPI, err = newConnAPI(se, apiIngest, nil, !cfg.PionRead); err != nil {
		return err
	}
	if s.viewAPI, err = newConnAPI(se, apiViewer, nil, !cfg.PionWrite); err != nil {
		return err
	}
	return nil
}

// startTURN starts the embedded TURN server on UDP and TCP.
func (s *Server) startTURN(tc TURNConfig) error {
	if tc.Username == "" || tc.Password == "" {
		return errors.New("sfu: TURN needs a username and a password")
	}
	realm := tc.Realm
	if realm == "" {
		realm = "liveclass"
	}
	udp, err := net.ListenPacket("udp4", net.JoinHostPort("", strconv.Itoa(tc.Port)))
	if err != nil {
		return fmt.Errorf("sfu: TURN port %d: %w", tc.Port, err)
	}
	s.turnConns = append(s.turnConns, udp)
	port := udp.LocalAddr().(*net.UDPAddr).Port
	relayIP := s.cfg.PublicIP
	if relayIP == "" {
		relayIP = "127.0.0.1"
		if !s.cfg.IncludeLoopback {
			relayIP = outboundIP()
		}
	}
	key := turn.GenerateAuthKey(tc.Username, realm, tc.Password)
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			if ra.Username != tc.Username {
				return "", nil, false
			}
			return ra.Username, key, true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: udp,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP(relayIP),
				Address:      "0.0.0.0",
			},
		}},
	})
	if err != nil {
		return fmt.Errorf("sfu: TURN: %w", err)
	}
	s.turn = srv
	host := s.cfg.PublicIP
	if host == "" {
		host = relayIP
	}
	s.iceServers = append(s.iceServers, webrtc.ICEServer{
		URLs:       []string{fmt.Sprintf("turn:%s?transport=udp", net.JoinHostPort(host, strconv.Itoa(port)))},
		Username:   tc.Username,
		Credential: tc.Password,
	})
	return nil
}

// outboundIP returns the address the machine reaches others from, for a
// TURN relay without a configured public IP.
func outboundIP() string {
	c, err := net.Dial("udp4", "192.0.2.1:9")
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// ICEServers returns the STUN and TURN servers a client should use, the
// embedded TURN server included; the signalling layer sends them in
// "joined".
func (s *Server) ICEServers() []webrtc.ICEServer {
	return append([]webrtc.ICEServer(nil), s.iceServers...)
}

// UDPAddrs returns the addresses the ICE UDP mux listens on.
func (s *Server) UDPAddrs() []net.Addr { return append([]net.Addr(nil), s.udpAddrs...) }

// TCPAddr returns the ICE-TCP listener's address, or nil when TCP is off.
func (s *Server) TCPAddr() net.Addr {
	if s.tcpListener == nil {
		return nil
	}
	return s.tcpListener.Addr()
}

// Close disconnects every participant and releases the ports.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sessions := make([]*Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.close()
	}
	return s.closeNet()
}

// closeNet releases the sockets.
func (s *Server) closeNet() error {
	var errs []error
	if s.turn != nil {
		errs = append(errs, s.turn.Close())
	} else {
		for _, c := range s.turnConns {
			errs = append(errs, c.Close())
		}
	}
	if s.udpMux != nil {
		errs = append(errs, s.udpMux.Close())
	}
	if s.tcpMux != nil {
		errs = append(errs, s.tcpMux.Close())
	}
	if s.tcpListener != nil {
		// The TCP mux closes its listener; a second close only reports
		// that it is closed already.
		if err := s.tcpListener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ErrClosed is returned by Join on a closed Server.
var ErrClosed = errors.New("sfu: server closed")

// Join adds participant p to the class's session (creating it), with its
// signaller, and sends the first subscriber offer. A participant already
// in the session is replaced: its old Peer is closed.
func (s *Server) Join(class store.ClassID, p ParticipantID, sig Signaller) (*Peer, error) {
	if sig == nil {
		return nil, errors.New("sfu: Join needs a Signaller")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	ss, ok := s.sessions[class]
	if !ok {
		ss = newSession(s, class)
		s.sessions[class] = ss
	}
	ss.joining++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		ss.joining--
		s.mu.Unlock()
	}()
	return ss.join(p, sig)
}

// enter returns the session of a class, creating it, held against being
// forgotten until done is called: the caller is about to add someone.
func (s *Server) enter(class store.ClassID) (ss *Session, done func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	ss, ok := s.sessions[class]
	if !ok {
		ss = newSession(s, class)
		s.sessions[class] = ss
	}
	ss.joining++
	return ss, func() {
		s.mu.Lock()
		ss.joining--
		s.mu.Unlock()
		ss.dropIfIdle()
	}, nil
}

// Session returns the session of a class, if it has one.
func (s *Server) Session(class store.ClassID) (*Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[class]
	return ss, ok
}

// SetGroup moves participant p of a class to group g: from now on it
// exchanges media only with the participants of g. The group is kept for a
// participant who has not joined the SFU yet.
func (s *Server) SetGroup(class store.ClassID, p ParticipantID, g GroupID) {
	s.sessionFor(class).setGroup(p, g)
}

// Block stops (or resumes) forwarding participant p's source ("mic",
// "camera", "screen") to everyone: the host's mute and stop-video, enforced
// by the server whatever the client does.
func (s *Server) Block(class store.ClassID, p ParticipantID, source string, blocked bool) {
	s.sessionFor(class).block(p, Source(source), blocked)
}

// Disconnect closes participant p's connections in a class.
func (s *Server) Disconnect(class store.ClassID, p ParticipantID) {
	if ss, ok := s.Session(class); ok {
		if peer := ss.peer(p); peer != nil {
			peer.Close()
		}
	}
}

// sessionFor returns the session of a class, creating it so that groups
// and blocks set before anyone joins the media are kept.
func (s *Server) sessionFor(class store.ClassID) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[class]
	if !ok {
		ss = newSession(s, class)
		if !s.closed {
			s.sessions[class] = ss
		}
	}
	return ss
}

// nopEvents discards events.
type nopEvents struct{}

func (nopEvents) TrackPublished(store.ClassID, TrackInfo)             {}
func (nopEvents) TrackUnpublished(store.ClassID, TrackInfo)           {}
func (nopEvents) ActiveSpeaker(store.ClassID, GroupID, ParticipantID) {}
func (nopEvents) Quality(store.ClassID, ParticipantID, Quality)       {}
func (nopEvents) PeerFailed(store.ClassID, ParticipantID, error)      {}
