package sfu

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// srViewer is a WHEP viewer that records, per stream, every RTP packet
// (sequence number, timestamp, payload size, arrival) and every sender
// report with its arrival. It reads its receivers' RTCP, so that Pion's
// receiver-report interceptor sees the sender reports and fills LSR and
// DLSR in its receiver reports, as a browser does.
type srViewer struct {
	pc *webrtc.PeerConnection
	v  *Viewer
	wg sync.WaitGroup

	mu      sync.Mutex
	streams map[uint32]*srStream
}

type srStream struct {
	clock   uint32
	pkts    []srPacket
	reports []srReport
}

type srPacket struct {
	seq     uint16
	ts      uint32
	payload int
	at      time.Time
}

type srReport struct {
	sr rtcp.SenderReport
	at time.Time
	// received is how many packets of the stream had arrived then.
	received int
}

func (w *srViewer) stream(ssrc, clock uint32) *srStream {
	s := w.streams[ssrc]
	if s == nil {
		s = &srStream{clock: clock}
		w.streams[ssrc] = s
	}
	return s
}

func viewRecordingReports(t *testing.T, srv *Server, name ParticipantID) *srViewer {
	t.Helper()
	w := &srViewer{streams: map[uint32]*srStream{}}
	var err error
	if w.pc, err = newClientAPI(t).NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	addRecvAudioVideo(t, w.pc)
	w.pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		ssrc, clock := uint32(remote.SSRC()), remote.Codec().ClockRate
		w.wg.Go(func() {
			for {
				pkts, _, err := recv.ReadRTCP()
				if err != nil {
					return
				}
				now := time.Now()
				w.mu.Lock()
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == ssrc {
						s := w.stream(ssrc, clock)
						s.reports = append(s.reports, srReport{sr: *sr, at: now, received: len(s.pkts)})
					}
				}
				w.mu.Unlock()
			}
		})
		w.wg.Add(1)
		defer w.wg.Done()
		for {
			p, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			now := time.Now()
			w.mu.Lock()
			s := w.stream(ssrc, clock)
			s.pkts = append(s.pkts, srPacket{seq: p.SequenceNumber, ts: p.Timestamp, payload: len(p.Payload), at: now})
			w.mu.Unlock()
		}
	})
	w.v = negotiate(t, w.pc, func(offer string) (*Viewer, string, error) { return srv.View(broadcastClass, name, offer) })
	t.Cleanup(func() {
		_ = w.pc.Close()
		w.wg.Wait()
		w.v.Close()
	})
	return w
}

// TestSenderReports checks the sender reports the sfu itself sends (no
// report interceptor on the sending side): each stream of a viewer gets
// them about once a second, their packet and octet counts are what
// arrived, their NTP time is the wall clock, their RTP time is the
// stream's timestamp of that instant, so that a receiver lines audio up
// with video; and the receiver reports that answer them give the viewer
// a round-trip time.
func TestSenderReports(t *testing.T) {
	srv, _ := newServer(t, Config{Tick: 100 * time.Millisecond})
	publishSlowH264(t, srv, newClientAPI(t), 250*time.Millisecond)
	w := viewRecordingReports(t, srv, "v1")

	waitFor(t, "three sender reports on each stream, and a round trip", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.streams) < 2 {
			return false
		}
		for _, s := range w.streams {
			if len(s.reports) < 3 {
				return false
			}
		}
		return w.v.Stats().RTT > 0
	})
	if rtt := w.v.Stats().RTT; rtt > time.Second {
		t.Errorf("round trip on loopback %v, want well under a second", rtt)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	for ssrc, s := range w.streams {
		var prev *srReport
		for i := range s.reports {
			r := &s.reports[i]
			sent := ntpToTime(r.sr.NTPTime)
			// The NTP time is the sender's wall clock; on loopback it
			// arrives within moments.
			if d := r.at.Sub(sent); d < -50*time.Millisecond || d > time.Second {
				t.Errorf("ssrc %d report %d: NTP time %v, arrived %v later", ssrc, i, sent, d)
			}
			// Its packet count lies between what had arrived when it
			// did (a little slack: the RTP reader may lag the RTCP
			// reader) and all that arrived; its octet count is the
			// payload of exactly those packets (loopback loses none).
			if int(r.sr.PacketCount) > len(s.pkts) || int(r.sr.PacketCount)+20 < r.received {
				t.Errorf("ssrc %d report %d: %d packets sent, %d had arrived then, %d in all", ssrc, i, r.sr.PacketCount, r.received, len(s.pkts))
				continue
			}
			octets := 0
			for _, p := range s.pkts[:r.sr.PacketCount] {
				octets += p.payload
			}
			if uint32(octets) != r.sr.OctetCount {
				t.Errorf("ssrc %d report %d: %d octets, the first %d packets carried %d", ssrc, i, r.sr.OctetCount, r.sr.PacketCount, octets)
			}
			// The newest packet before the report, moved on to the
			// report's wall clock at the stream's clock rate, gives the
			// report's RTP time, within the packet's transit and the
			// scheduling of a loaded machine (50 ms: the video's frames
			// are 250 ms apart, so a report that did not move the
			// newest frame's timestamp on would be off by more).
			if r.sr.PacketCount > 0 {
				last := s.pkts[r.sr.PacketCount-1]
				want := last.ts + uint32(sent.Sub(last.at).Seconds()*float64(s.clock))
				if d := int32(r.sr.RTPTime - want); d > int32(s.clock/20) || d < -int32(s.clock/20) {
					t.Errorf("ssrc %d report %d: RTP time %d, %v from the newest packet's timestamp at the report's NTP time", ssrc, i, r.sr.RTPTime,
						time.Duration(float64(d)/float64(s.clock)*float64(time.Second)))
				}
			}
			// Between two reports, RTP time and NTP time advance
			// together at the clock rate, and the counts only grow.
			if prev != nil {
				dn := ntpToTime(r.sr.NTPTime).Sub(ntpToTime(prev.sr.NTPTime))
				dr := float64(r.sr.RTPTime-prev.sr.RTPTime) / float64(s.clock)
				if dn < 500*time.Millisecond || dn > 2*time.Second {
					t.Errorf("ssrc %d: reports %v apart, want about a second", ssrc, dn)
				}
				if diff := dr - dn.Seconds(); diff > 0.1 || diff < -0.1 {
					t.Errorf("ssrc %d: RTP time advanced %.3f s while NTP time advanced %.3f s", ssrc, dr, dn.Seconds())
				}
				if r.sr.PacketCount < prev.sr.PacketCount || r.sr.OctetCount < prev.sr.OctetCount {
					t.Errorf("ssrc %d: counts went back from %d/%d to %d/%d", ssrc, prev.sr.PacketCount, prev.sr.OctetCount, r.sr.PacketCount, r.sr.OctetCount)
				}
			}
			prev = r
		}
	}
}

// publishSlowH264 publishes a broadcast of H.264 keyframes every
// frameEvery, and Opus every 20 ms, with timestamps that follow the wall
// clock, as an encoder's do.
func publishSlowH264(t *testing.T, srv *Server, api *webrtc.API, frameEvery time.Duration) {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	video, audio := addH264Opus(t, pc, "host")
	ing := negotiate(t, pc, func(offer string) (*Ingest, string, error) { return srv.Ingest(broadcastClass, "host", offer) })
	done := make(chan struct{})
	var wg sync.WaitGroup
	send := func(tr *webrtc.TrackLocalStaticSample, every time.Duration, frame func(n int) []byte) {
		tick := time.NewTicker(every)
		defer tick.Stop()
		last := time.Now()
		for n := 0; ; n++ {
			var now time.Time
			select {
			case <-done:
				return
			case now = <-tick.C:
			}
			// The duration is the wall-clock time since the previous
			// sample, as a capture clock gives it: a tick the loaded
			// machine skipped leaves no lag in the timestamps.
			if tr.WriteSample(media.Sample{Data: frame(n), Duration: now.Sub(last)}) != nil {
				return
			}
			last = now
		}
	}
	wg.Go(func() { send(video, frameEvery, func(n int) []byte { return h264Frame(true, n) }) })
	wg.Go(func() { send(audio, 20*time.Millisecond, func(int) []byte { return []byte{0xfc, 1, 2, 3} }) })
	t.Cleanup(func() {
		close(done)
		wg.Wait()
		_ = pc.Close()
		ing.Close()
	})
}

// ntpToTime converts a 64-bit NTP timestamp to a time.
func ntpToTime(ntp uint64) time.Time {
	const ntpEpochOffset = 2208988800
	secs := int64(ntp>>32) - ntpEpochOffset
	frac := int64((ntp & 0xffffffff) * 1e9 >> 32)
	return time.Unix(secs, frac)
}

// TestNTPTime checks the conversion against a known instant and its
// middle 32 bits, the unit of LSR and DLSR.
func TestNTPTime(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 500_000_000, time.UTC)
	ntp := ntpTime(at)
	if got := ntp >> 32; got != uint64(at.Unix())+2208988800 {
		t.Errorf("seconds %d", got)
	}
	if got := uint32(ntp); got != 1<<31 {
		t.Errorf("fraction of half a second %#x, want %#x", got, uint32(1<<31))
	}
	if back := ntpToTime(ntp); !back.Equal(at) {
		t.Errorf("round trip %v, want %v", back, at)
	}
	if got, want := ntpMiddle(at), uint32(ntp>>16); got != want {
		t.Errorf("middle bits %#x, want %#x", got, want)
	}
}
