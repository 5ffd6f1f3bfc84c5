package rtc

import (
	"io"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// URIAudioLevel is the header extension a publisher stamps on microphone
// packets (RFC 6464), from which the server picks the active speaker.
const URIAudioLevel = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// APIOptions configure NewAPIs.
type APIOptions struct {
	// LoopbackOnly gathers loopback candidates only: the server is on
	// this machine, and ICE should not spend checks on other interfaces.
	LoopbackOnly bool
}

// NewAPIs builds the Pion APIs of a participant, to share between many
// participants of one process: a publisher that stamps transport-wide
// sequence numbers, mids, rids and audio levels as a browser does, and a
// subscriber that sends back what a browser sends (receiver reports,
// NACKs and TWCC feedback, which the server's bandwidth estimate runs
// on). Neither keeps a NACK responder buffer: a synthetic publisher
// repairs nothing it sends. Candidates are UDP over IPv4, loopback
// included, without mDNS names.
func NewAPIs(o APIOptions) (pub, sub *webrtc.API, err error) {
	// Pion's own logs are mostly its connections noticing, at the end,
	// that they were closed; what matters reaches Options.OnError.
	quiet := &logging.DefaultLoggerFactory{DefaultLogLevel: logging.LogLevelDisabled, ScopeLevels: map[string]logging.LogLevel{}, Writer: io.Discard}
	var se webrtc.SettingEngine
	se.LoggerFactory = quiet
	se.SetIncludeLoopbackCandidate(true)
	// Accept a packet up to 1,024 behind the newest, as browsers'
	// SRTP does (libwebrtc and Firefox set that window): a NACK's
	// retransmission comes after the packets sent since, and Pion's
	// default of 64 drops the repair of any loss older than a third of a
	// second of 720p.
	se.SetSRTPReplayProtectionWindow(1024)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if o.LoopbackOnly {
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	}
	build := func(publisher bool) (*webrtc.API, error) {
		m := &webrtc.MediaEngine{}
		if err := m.RegisterDefaultCodecs(); err != nil {
			return nil, err
		}
		type ext struct {
			uri  string
			kind webrtc.RTPCodecType
		}
		exts := []ext{
			{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo}, {sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
			{sdp.TransportCCURI, webrtc.RTPCodecTypeVideo}, {sdp.TransportCCURI, webrtc.RTPCodecTypeAudio},
		}
		if publisher {
			exts = append(exts, ext{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo}, ext{URIAudioLevel, webrtc.RTPCodecTypeAudio})
		}
		for _, e := range exts {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
				return nil, err
			}
		}
		ir := &interceptor.Registry{}
		if publisher {
			hx, err := twcc.NewHeaderExtensionInterceptor()
			if err != nil {
				return nil, err
			}
			ir.Add(hx)
		} else {
			rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(quiet))
			if err != nil {
				return nil, err
			}
			ir.Add(rr)
			gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(quiet))
			if err != nil {
				return nil, err
			}
			ir.Add(gen)
			fb, err := twcc.NewSenderInterceptor(twcc.WithLoggerFactory(quiet))
			if err != nil {
				return nil, err
			}
			ir.Add(fb)
		}
		return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
	}
	if pub, err = build(true); err != nil {
		return nil, nil, err
	}
	if sub, err = build(false); err != nil {
		return nil, nil, err
	}
	return pub, sub, nil
}

// ExtensionIDs returns the negotiated IDs of the mid, rid and audio level
// header extensions of a sender, for a caller that writes its own RTP
// packets (TrackLocalStaticRTP) and must stamp them as a browser does.
func ExtensionIDs(s *webrtc.RTPSender) (mid, rid, level uint8) {
	for _, e := range s.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			mid = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			rid = uint8(e.ID)
		case URIAudioLevel:
			level = uint8(e.ID)
		}
	}
	return mid, rid, level
}
