package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

const loadBaselineUsage = `Usage: liveclass loadtest broadcast-baseline [flags]

Serves the same-run baseline of loadtest broadcast: a plain Pion fan-out,
as Pion's own broadcast example builds it, behind the same two URLs.
POST /whip/{class} takes a publisher's offer; POST /whep/{class} a
viewer's, which gets the publisher's top simulcast layer (rid "f", or the
only one) and its audio through one shared TrackLocalStaticRTP each, with
Pion's default codecs and interceptors (NACK responder, reports, TWCC).
Every viewer's PLI is passed to the publisher. No credential is checked:
run it on loopback only. It serves until interrupted.`

func loadBaselineCmd(ctx context.Context, e Env, args []string) error {
	fs := newFlagSet("loadtest broadcast-baseline", "", loadBaselineUsage)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve on")
	if err := parse(fs, e, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	b, err := newBaselineServer()
	if err != nil {
		_ = l.Close()
		return err
	}
	defer b.close()
	fmt.Fprintf(e.Stdout, "plain Pion WHIP/WHEP fan-out at http://%s\n", l.Addr())
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// baselineServer is the plain Pion fan-out.
type baselineServer struct {
	api   *webrtc.API
	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP

	mu  sync.Mutex
	pub *webrtc.PeerConnection
	pcs []*webrtc.PeerConnection
	wg  sync.WaitGroup
}

func newBaselineServer() (*baselineServer, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	// mid and rid, without which Pion cannot tell simulcast layers apart.
	for _, e := range []struct {
		uri  string
		kind webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo}, {sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
	} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.kind); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	b := &baselineServer{api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))}
	var err error
	if b.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "baseline"); err != nil {
		return nil, err
	}
	if b.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "baseline"); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *baselineServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	offer, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var answer string
	switch {
	case strings.HasPrefix(r.URL.Path, "/whip/"):
		answer, err = b.publish(string(offer))
	case strings.HasPrefix(r.URL.Path, "/whep/"):
		answer, err = b.view(string(offer))
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// answer applies an offer and returns the answer with all candidates.
func answer(pc *webrtc.PeerConnection, offer string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	a, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(a); err != nil {
		return "", err
	}
	<-gathered
	return pc.LocalDescription().SDP, nil
}

// publish takes the publisher: its top layer and audio go to the shared
// tracks.
func (b *baselineServer) publish(offer string) (string, error) {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		out := b.audio
		if remote.Kind() == webrtc.RTPCodecTypeVideo {
			if rid := remote.RID(); rid != "" && rid != "f" {
				// Read the layers no viewer gets, as a server must.
				for {
					if _, _, err := remote.ReadRTP(); err != nil {
						return
					}
				}
			}
			out = b.video
		}
		for {
			p, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			_ = out.WriteRTP(p)
		}
	})
	b.mu.Lock()
	if b.pub != nil {
		_ = b.pub.Close()
	}
	b.pub = pc
	b.mu.Unlock()
	return answer(pc, offer)
}

// view adds a viewer of the shared tracks.
func (b *baselineServer) view(offer string) (string, error) {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	for _, tr := range []*webrtc.TrackLocalStaticRTP{b.audio, b.video} {
		s, err := pc.AddTrack(tr)
		if err != nil {
			_ = pc.Close()
			return "", err
		}
		b.wg.Go(func() { b.readRTCP(s) })
	}
	b.mu.Lock()
	b.pcs = append(b.pcs, pc)
	b.mu.Unlock()
	return answer(pc, offer)
}

// readRTCP passes a viewer's keyframe requests to the publisher's top
// layer.
func (b *baselineServer) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); !ok {
				continue
			}
			b.mu.Lock()
			pub := b.pub
			b.mu.Unlock()
			if pub == nil {
				continue
			}
			for _, tr := range pub.GetReceivers() {
				for _, t := range tr.Tracks() {
					if t.Kind() == webrtc.RTPCodecTypeVideo && (t.RID() == "" || t.RID() == "f") {
						_ = pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
					}
				}
			}
		}
	}
}

func (b *baselineServer) close() {
	b.mu.Lock()
	pcs := append(b.pcs, b.pub)
	b.mu.Unlock()
	for _, pc := range pcs {
		if pc != nil {
			_ = pc.Close()
		}
	}
	b.wg.Wait()
}
