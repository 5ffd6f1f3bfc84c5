package sfu

import (
	"fmt"
	"io"
	"strings"

	"github.com/liveclass/liveclass/internal/media/srtpkeys"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// apiKind says which side of a Peer an API builds connections for.
type apiKind int

const (
	apiPublisher apiKind = iota
	apiSubscriber
	// apiIngest is a broadcast publisher (WHIP): a browser's VP8
	// simulcast or an encoder's H.264 (OBS), and Opus.
	apiIngest
	// apiViewer is a broadcast viewer (WHEP): it receives VP8 or H.264,
	// whichever the publisher sends, and Opus.
	apiViewer
)

// Payload types, fixed so that the SDP of every connection looks the same.
const (
	ptOpus = 111
	ptVP8  = 96
)

// Header extension URIs not named by pion/sdp.
const (
	uriAudioLevel  = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	uriRepairedRID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
)

// codecOpus and codecVP8 are what the interactive classes use; broadcast
// publishers and viewers add codecsH264.
var (
	codecOpus = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			// In-band FEC survives single losses without a round trip;
			// DTX sends almost nothing while a participant is silent,
			// which with 50 microphones open is most of them.
			SDPFmtpLine:  "minptime=10;useinbandfec=1;usedtx=1",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}},
		},
		PayloadType: ptOpus,
	}
	codecVP8 = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{
				{Type: webrtc.TypeRTCPFBGoogREMB},
				{Type: webrtc.TypeRTCPFBTransportCC},
				{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
				{Type: webrtc.TypeRTCPFBNACK},
				{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
			},
		},
		PayloadType: ptVP8,
	}
)

// h264Profiles are the H.264 profile-level-ids a broadcast publisher or
// viewer may negotiate, with their payload types: constrained baseline and
// baseline (what Chromium and OBS offer first), main and high (OBS's
// default x264 profile, Chromium's hardware encoders). Pion matches
// profile and constraints, not level, so one entry per profile covers
// every level. Packetization mode 1 only: FU-A is what every WebRTC
// sender uses and what the rewriter's keyframe detection reads.
var h264Profiles = [...]struct {
	pt uint8
	id string
}{{102, "42e01f"}, {104, "42001f"}, {106, "4d001f"}, {108, "640c1f"}, {110, "64001f"}}

// codecsH264 returns the H.264 codecs of h264Profiles, fresh each call.
func codecsH264() []webrtc.RTPCodecParameters {
	out := make([]webrtc.RTPCodecParameters, 0, len(h264Profiles))
	for _, p := range h264Profiles {
		out = append(out, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p.id,
				RTCPFeedback: codecVP8.RTCPFeedback,
			},
			PayloadType: webrtc.PayloadType(p.pt),
		})
	}
	return out
}

// newMediaEngine registers the codecs and header extensions of one side.
// The publisher side reads simulcast (mid, rid, repaired rid) and audio
// levels and sends TWCC feedback so that the browser's encoder gets the
// bandwidth to send all layers; the subscriber side needs only mid and the
// TWCC sequence numbers its estimate runs on.
func newMediaEngine(kind apiKind) (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	audioCodecs := []webrtc.RTPCodecParameters{codecOpus}
	// No RTX: retransmissions come on the original SSRC. Pion v4.2.26
	// races (receiveForRid against the layer's reader) when a simulcast
	// layer's repair stream starts, and the SFU's own retransmissions
	// come from the packet cache on the original SSRC anyway.
	videoCodecs := []webrtc.RTPCodecParameters{codecVP8}
	if kind == apiIngest || kind == apiViewer {
		videoCodecs = append(videoCodecs, codecsH264()...)
	}
	for _, c := range audioCodecs {
		if kind == apiViewer {
			c = withoutTWCC(c)
		}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	for _, c := range videoCodecs {
		if kind == apiViewer {
			c = withoutTWCC(c)
		}
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	video := []string{sdp.SDESMidURI, sdp.TransportCCURI}
	audio := []string{sdp.SDESMidURI, sdp.TransportCCURI}
	if kind == apiViewer {
		// A viewer's estimate is loss-based (REMB and receiver
		// reports): no TWCC sequence numbers to stamp on every packet.
		video, audio = []string{sdp.SDESMidURI}, []string{sdp.SDESMidURI}
	}
	if kind == apiPublisher || kind == apiIngest {
		video = append(video, sdp.SDESRTPStreamIDURI, uriRepairedRID)
		audio = append(audio, uriAudioLevel)
	}
	for _, uri := range video {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	for _, uri := range audio {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// withoutTWCC returns c without transport-wide congestion control
// feedback: a receiver that cannot send it falls back to REMB.
func withoutTWCC(c webrtc.RTPCodecParameters) webrtc.RTPCodecParameters {
	fb := make([]webrtc.RTCPFeedback, 0, len(c.RTCPFeedback))
	for _, f := range c.RTCPFeedback {
		if f.Type != webrtc.TypeRTCPFBTransportCC {
			fb = append(fb, f)
		}
	}
	c.RTCPFeedback = fb
	return c
}

// connAPI builds the connections of one side: each gets an API of its
// own, the side's codecs and interceptors with a setting engine whose
// buffer factory hands the connection's incoming packets to the sfu as
// Pion's SRTP sessions read them. A sending side (subscribers, viewers)
// handles its RTCP there (downConn.buffer), so no goroutine per sender
// waits on it; a receiving side (publishers, ingests) notes its
// publisher's sender reports (upConn.buffer).
type connAPI struct {
	se webrtc.SettingEngine
	m  *webrtc.MediaEngine
	ir *interceptor.Registry
	// direct: the connections may send or receive on the sfu's own path
	// (direct.go, upconn.go); not when Pion's interceptors must see
	// every packet (TWCC estimation) or the configuration says Pion's.
	direct bool
}

// newConnAPI builds side kind.
func newConnAPI(se webrtc.SettingEngine, kind apiKind, ccf *cc.InterceptorFactory, direct bool) (*connAPI, error) {
	m, ir, err := newEngine(kind, ccf)
	if err != nil {
		return nil, err
	}
	return &connAPI{se: se, m: m, ir: ir, direct: direct && ccf == nil}, nil
}

// newPeerConnection makes a connection whose SRTP buffers come from
// buffer and whose keys, on the direct path, keys collects; offer is the
// remote offer it will answer, empty for a connection the sfu offers or
// one whose offer comes later (a participant's publisher connection). It
// reports whether the connection may take the direct path.
// NewPeerConnection copies the media engine and builds the interceptors
// afresh, as it does with a shared API.
func (a *connAPI) newPeerConnection(buffer func(packetio.BufferPacketType, uint32) io.ReadWriteCloser, keys *srtpkeys.Collector, offer string) (*webrtc.PeerConnection, bool, error) {
	se := a.se
	se.BufferFactory = buffer
	if a.direct {
		// The key log goes to the connection's collector, in memory;
		// with the ServerHello it gives the SRTP keys.
		se.SetDTLSKeyLogWriter(keys)
		se.SetDTLSServerHelloMessageHook(keys.ServerHello)
		// The keys come from the server side of the handshake only
		// (srtpkeys). The sfu offers subscriber connections, and
		// browsers and Pion answer them as DTLS clients; a publisher or
		// a WHEP viewer offers, with actpass as RFC 8842 asks, so the
		// sfu answers as the server. An offer that insists on a role
		// keeps it: the setting would override it and leave both sides
		// waiting (a publisher's offer comes after its connection is
		// made, so Peer.PublisherOffer refuses a passive one).
		if !insistsOnRole(offer) {
			se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer)
		}
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(a.m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(a.ir))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	return pc, a.direct, err
}

// insistsOnRole reports whether an offer fixes the DTLS roles (setup
// passive or active) instead of leaving the answerer the choice.
func insistsOnRole(offer string) bool {
	return strings.Contains(offer, "a=setup:passive") || strings.Contains(offer, "a=setup:active\r") || strings.Contains(offer, "a=setup:active\n")
}

// newEngine builds the codecs and interceptors of one side.
func newEngine(kind apiKind, ccf *cc.InterceptorFactory) (*webrtc.MediaEngine, *interceptor.Registry, error) {
	m, err := newMediaEngine(kind)
	if err != nil {
		return nil, nil, fmt.Errorf("sfu: media engine: %w", err)
	}
	ir := &interceptor.Registry{}
	switch kind {
	case apiPublisher, apiIngest:
		// No interceptors: the connection's upConn sends the receiver
		// reports, NACKs and TWCC feedback, from packets that come
		// either through Pion or on the sfu's own path, which Pion's
		// interceptors never see.
	case apiSubscriber, apiViewer:
		// No sender-report interceptor: it takes a lock and updates its
		// state on every packet of every stream, where the sfu's downTrack
		// already holds its own lock and counts; the session's tick sends
		// the reports (slot.appendReport).
		if ccf != nil {
			// Outgoing packets pass the interceptors last-added first,
			// so the congestion controller, which needs the TWCC
			// sequence number, goes in before the interceptor that
			// writes it.
			ir.Add(ccf)
			hx, err := twcc.NewHeaderExtensionInterceptor()
			if err != nil {
				return nil, nil, err
			}
			ir.Add(hx)
		}
	}
	return m, ir, nil
}
