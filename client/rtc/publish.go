package rtc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Outgoing is one source to publish. Tracks holds one track, or for
// simulcast one per layer, lowest first, each made with its RID
// (webrtc.WithRTPStreamID).
type Outgoing struct {
	Source Source
	Tracks []webrtc.TrackLocal
}

// Published is a source the publisher offered: the mid it was given and
// its sender, from which the caller reads keyframe requests (RTCP).
type Published struct {
	Source Source
	Mid    string
	Sender *webrtc.RTPSender
}

// Publication is what Publish offers.
type Publication struct {
	Tracks []Outgoing
	// Media, when set, goes out as a "media" message right after the
	// offer, as a browser tells the room what it now sends; its answer
	// reaches OnMessage.
	Media *Media
}

// Publish adds the sources to the publisher connection, offers them
// (docs/protocol.md section 4) and waits for the server's ok; the
// server's answer is applied as it arrives. The caller writes the media.
func (p *Participant) Publish(ctx context.Context, pub Publication) ([]Published, error) {
	if p.closing.Load() {
		return nil, errClosed
	}
	outs := pub.Tracks
	var pubs []Published
	for _, o := range outs {
		if len(o.Tracks) == 0 {
			return nil, fmt.Errorf("publish %s: no track", o.Source)
		}
		sender, err := p.pub.AddTrack(o.Tracks[0])
		if err != nil {
			return nil, fmt.Errorf("publish %s: %w", o.Source, err)
		}
		for _, tr := range o.Tracks[1:] {
			if err := sender.AddEncoding(tr); err != nil {
				return nil, fmt.Errorf("publish %s: %w", o.Source, err)
			}
		}
		pubs = append(pubs, Published{Source: o.Source, Sender: sender})
	}
	offer, err := p.pub.CreateOffer(nil)
	if err != nil {
		return nil, err
	}
	if err := p.pub.SetLocalDescription(offer); err != nil {
		return nil, err
	}
	var desc []map[string]any
	for _, tr := range p.pub.GetTransceivers() {
		for i := range pubs {
			if tr.Sender() == pubs[i].Sender {
				pubs[i].Mid = tr.Mid()
				desc = append(desc, map[string]any{"mid": tr.Mid(), "source": pubs[i].Source, "simulcast": len(outs[i].Tracks) > 1})
			}
		}
	}
	p.mu.Lock()
	p.pubDesc = desc
	p.mu.Unlock()
	return pubs, p.offer(ctx, offer.SDP, false, pub.Media)
}

// RestartPublisher restarts ICE on the publisher connection: a new offer
// with fresh credentials, sent with "iceRestart": true.
func (p *Participant) RestartPublisher(ctx context.Context) error {
	offer, err := p.pub.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return err
	}
	// Candidates of the new generation wait for the offer they belong to.
	p.setReady(PCPub, false)
	if err := p.pub.SetLocalDescription(offer); err != nil {
		return err
	}
	return p.offer(ctx, offer.SDP, true, nil)
}

// offer sends the publisher's offer, lets its candidates follow, sends
// media if set, and waits for the ok.
func (p *Participant) offer(ctx context.Context, sdp string, restart bool, media *Media) error {
	p.mu.Lock()
	fields := map[string]any{"pc": PCPub, "sdp": sdp, "tracks": p.pubDesc}
	p.mu.Unlock()
	if restart {
		fields["iceRestart"] = true
	}
	_, err := p.roundTrip(ctx, TypeOffer, fields, func() {
		p.setReady(PCPub, true)
		if media != nil {
			_, _ = p.Send(ctx, "media", map[string]any{"mic": media.Mic, "camera": media.Camera, "screen": media.Screen})
		}
	})
	return err
}

// PublishSynthetic publishes a synthetic camera (VP8, 25 frames a
// second, every one a 320×180 keyframe, so that forwarding may start on
// any) and microphone (Opus, 20 ms frames), as m says, until Close. It
// is media for tests that check what the server forwards, not what a
// browser's encoder sends (the room load tester paces its own).
func (p *Participant) PublishSynthetic(ctx context.Context, m Media) error {
	var outs []Outgoing
	var cam, mic *webrtc.TrackLocalStaticSample
	var err error
	if m.Camera {
		if cam, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "camera", "s"); err != nil {
			return err
		}
		outs = append(outs, Outgoing{Source: SourceCamera, Tracks: []webrtc.TrackLocal{cam}})
	}
	if m.Mic {
		if mic, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "mic", "s"); err != nil {
			return err
		}
		outs = append(outs, Outgoing{Source: SourceMic, Tracks: []webrtc.TrackLocal{mic}})
	}
	if len(outs) == 0 {
		return errors.New("publish: nothing to publish")
	}
	if _, err := p.Publish(ctx, Publication{Tracks: outs}); err != nil {
		return err
	}
	// A keyframe: the frame tag with the key bit clear, the start code,
	// the picture size.
	frame := append([]byte{0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00}, make([]byte, 600)...)
	opus := append([]byte{0xfc}, make([]byte, 80)...)
	ok := p.spawn(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			if mic != nil {
				_ = mic.WriteSample(media.Sample{Data: opus, Duration: 20 * time.Millisecond})
			}
			if cam != nil && i%2 == 0 {
				_ = cam.WriteSample(media.Sample{Data: frame, Duration: 40 * time.Millisecond})
			}
		}
	})
	if !ok {
		return errClosed
	}
	return nil
}
