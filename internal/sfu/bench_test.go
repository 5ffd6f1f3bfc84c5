package sfu

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time of the calling OS thread, all of it and
// its user-space part: on loopback the kernel's share includes delivering
// each datagram to the receiving socket, which a real network card does not
// charge to the sender, so the two are reported apart.
func threadCPU(b *testing.B) (total, user time.Duration) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), time.Duration(ru.Utime.Nano())
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// vp8Source makes 1,200-byte VP8 packets of one layer, three to a frame:
// a keyframe first, and again at the next frame start after keyframe is
// called, as an encoder answers a keyframe request.
type vp8Source struct {
	seq uint16
	n   int
	key bool // the next frame is a keyframe
	buf [1200]byte
}

// keyframe makes the next frame a keyframe. A receiver that missed the
// first one (it was not subscribed yet, or the packet was written before
// the connection was up) can start on no other.
func (s *vp8Source) keyframe() { s.key = true }

func (s *vp8Source) next() []byte {
	b := s.buf[:]
	b[0], b[1] = 0x80, 96
	if s.n%3 == 2 {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], uint32(s.n/3)*1500)
	binary.BigEndian.PutUint32(b[8:], 0x1234)
	b[12] = 0x10
	if s.n%3 != 0 {
		b[12] = 0
	}
	b[13] = 1 // inter frame
	if s.n%3 == 0 && (s.n == 0 || s.key) {
		b[13] = 0
		s.key = false
	}
	s.seq++
	s.n++
	return b
}

// ctxSwitches returns the process's context switches so far, voluntary
// and not: the threads' sleeps and wake-ups that goroutines waiting on
// the network cost.
func ctxSwitches(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	var n uint64
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			n += x
		} else if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
			x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			n += x
		}
	}
	return n
}

// meter holds the counts taken as a forwarding benchmark's timed loop
// starts, for the figures its report gives. The caller locks its
// goroutine to its OS thread first: threadCPU measures the calling thread.
type meter struct {
	cpu, user         time.Duration
	mallocs, switches uint64
}

// startMeter takes the counts and resets the timer; the timed loop
// follows.
func startMeter(b *testing.B) meter {
	b.ReportAllocs()
	var m meter
	m.cpu, m.user = threadCPU(b)
	m.mallocs = mallocs()
	m.switches = ctxSwitches(b)
	b.ResetTimer()
	return m
}

// report adds the figures of the loop since startMeter, for n subscribers
// with g0 goroutines before they came and perSub bytes of heap each;
// delivered counts the packets they got in the loop, read last.
func (m meter) report(b *testing.B, n, g0 int, perSub float64, delivered func() uint64) {
	cpu, user := threadCPU(b)
	allocs := mallocs() - m.mallocs
	reportProcess(b, n, g0, ctxSwitches(b)-m.switches)
	reportFigures(b, n, cpu-m.cpu, user-m.user, allocs, perSub, delivered())
}

// reportProcess adds the process-wide figures: goroutines per subscriber
// (the server's and its in-process client's) and context switches per
// publisher packet.
func reportProcess(b *testing.B, n, goroutines0 int, switches uint64) {
	b.ReportMetric(float64(runtime.NumGoroutine()-goroutines0)/float64(n), "goroutines/sub")
	b.ReportMetric(float64(switches)/float64(b.N), "ctxsw/pkt")
}

// report adds the per-packet-per-subscriber figures.
func reportFigures(b *testing.B, n int, cpu, user time.Duration, allocs uint64, perSub float64, delivered uint64) {
	per := float64(b.N * n)
	b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/pkt/sub")
	b.ReportMetric(float64(user.Nanoseconds())/per, "user-ns/pkt/sub")
	b.ReportMetric(float64(allocs)/per, "allocs/pkt/sub")
	b.ReportMetric(perSub/(1<<20), "MB/sub")
	b.ReportMetric(float64(delivered)/per, "delivered/pkt")
}

// BenchmarkSFUForward is one publisher's camera forwarded to N
// subscribers through the whole SFU: the published track's forwarder,
// each subscriber's slot, the subscriber connection's interceptors (sender
// reports, TWCC sequence numbers, congestion control), SRTP and the UDP
// mux. Its op is one publisher packet; cpu-ns/pkt/sub is the forwarding
// thread's CPU divided by N (the receiving clients run on other threads);
// allocs/pkt/sub counts every allocation in the process, the clients'
// included; MB/sub is the heap of one subscriber, its in-process client
// included, after warm-up.
func BenchmarkSFUForward(b *testing.B) {
	for _, mode := range []struct {
		name string
		cfg  Config
	}{
		{"twcc", Config{Estimation: EstimateTWCC}},
		{"loss", Config{Estimation: EstimateLoss}},
		// The same as loss through Pion's SRTP writer instead of the
		// sfu's own path: what the direct path saves, in the same run.
		{"loss-pionwrite", Config{Estimation: EstimateLoss, PionWrite: true}},
	} {
		for _, n := range []int{1, 10, 50} {
			b.Run(fmt.Sprintf("est=%s/subs=%d", mode.name, n), func(b *testing.B) { benchSFU(b, mode.cfg, n) })
		}
	}
}

func benchSFU(b *testing.B, cfg Config, n int) {
	{
		{
			srv, _ := newServer(b, cfg)
			api := newClientAPI(b)
			alice := join(b, srv, api, class, "alice", 1)
			alice.maxFrames.Store(3)
			alice.publish(true, false)
			up := waitTrack(b, srv, class, "alice/camera")
			heap0 := heapInUse()
			g0 := runtime.NumGoroutine()
			var subs []*client
			for i := range n {
				c := join(b, srv, api, class, ParticipantID(fmt.Sprint("s", i)), 2)
				c.subscribe(320, 180, "alice/camera")
				subs = append(subs, c)
			}
			for _, c := range subs {
				waitFor(b, "subscriber connected", func() bool { return c.peer.subReady.Load() })
			}
			// Wait until alice's read loop has forwarded her last packet
			// of layer 0 (3 frames of 2 packets from 1000): from here on
			// only the benchmark calls Forward for it.
			waitFor(b, "alice's last packet", func() bool {
				last, ok := up.fwd.Cache(0).Newest()
				return ok && last == 1005
			})
			src := vp8Source{seq: 1006}
			// Warm up: every subscriber on layer 0, then measure memory.
			// A subscriber starts at a keyframe that reaches its slot;
			// one that came too early for it, or was lost, is followed by
			// the next batch's.
			waitFor(b, "packets at every subscriber", func() bool {
				src.keyframe()
				for range 30 {
					_ = up.fwd.Forward(0, src.next(), time.Now())
				}
				for _, c := range subs {
					if c.recv("alice/camera").packets <= 100 {
						return false
					}
				}
				return true
			})
			perSub := float64(int64(heapInUse())-int64(heap0)) / float64(n)
			before := srv.Stats().PacketsForwarded
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := startMeter(b)
			for b.Loop() {
				_ = up.fwd.Forward(0, src.next(), time.Now())
			}
			start.report(b, n, g0, perSub, func() uint64 { return srv.Stats().PacketsForwarded - before })
		}
	}
}

// BenchmarkPionBaseline is the same-run baseline: a plain Pion fan-out
// with Pion's default interceptors (NACK responder with its 1,024-packet
// buffer per stream, reports, TWCC), one server PeerConnection per
// subscriber, the publisher packet unmarshalled once and written with
// WriteRTP to every subscriber's track. The clients are the same as in
// BenchmarkSFUForward.
func BenchmarkPionBaseline(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			before := runtime.NumGoroutine()
			m := &webrtc.MediaEngine{}
			if err := m.RegisterDefaultCodecs(); err != nil {
				b.Fatal(err)
			}
			ir := &interceptor.Registry{}
			if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
				b.Fatal(err)
			}
			var se webrtc.SettingEngine
			se.SetIncludeLoopbackCandidate(true)
			se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
			server := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
			clientAPI := newClientAPI(b)
			heap0 := heapInUse()
			g0 := runtime.NumGoroutine()
			var (
				tracks   []*webrtc.TrackLocalStaticRTP
				pcs      []*webrtc.PeerConnection
				received atomic.Uint64
				wg       sync.WaitGroup
			)
			b.Cleanup(func() {
				for _, pc := range pcs {
					_ = pc.Close()
				}
				wg.Wait()
				waitGoroutines(b, before)
			})
			for i := range n {
				spc, err := server.NewPeerConnection(webrtc.Configuration{})
				if err != nil {
					b.Fatal(err)
				}
				cpc, err := clientAPI.NewPeerConnection(webrtc.Configuration{})
				if err != nil {
					b.Fatal(err)
				}
				pcs = append(pcs, spc, cpc)
				tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, fmt.Sprint("v", i), "pub")
				if err != nil {
					b.Fatal(err)
				}
				sender, err := spc.AddTrack(tr)
				if err != nil {
					b.Fatal(err)
				}
				tracks = append(tracks, tr)
				wg.Go(func() {
					for {
						if _, _, err := sender.ReadRTCP(); err != nil {
							return
						}
					}
				})
				cpc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
					wg.Add(1)
					defer wg.Done()
					buf := make([]byte, 1500)
					for {
						if _, _, err := remote.Read(buf); err != nil {
							return
						}
						received.Add(1)
					}
				})
				connectPair(b, spc, cpc)
			}
			var src vp8Source
			var pkt rtp.Packet
			// Warm up until the clients have received 100 packets each:
			// packets written before a receiver's first read may be
			// dropped by a busy machine, so keep writing until they arrive.
			waitFor(b, "packets at the subscribers", func() bool {
				for range 50 {
					_ = pkt.Unmarshal(src.next())
					for _, tr := range tracks {
						_ = tr.WriteRTP(&pkt)
					}
				}
				return received.Load() > uint64(100*n)
			})
			perSub := float64(int64(heapInUse())-int64(heap0)) / float64(n)
			r0 := received.Load()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := startMeter(b)
			for b.Loop() {
				if err := pkt.Unmarshal(src.next()); err != nil {
					b.Fatal(err)
				}
				for _, tr := range tracks {
					if err := tr.WriteRTP(&pkt); err != nil {
						b.Fatal(err)
					}
				}
			}
			start.report(b, n, g0, perSub, func() uint64 { return received.Load() - r0 })
		})
	}
}

// connectPair negotiates offerer → answerer with full gathering.
func connectPair(b *testing.B, offerer, answerer *webrtc.PeerConnection) {
	b.Helper()
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	g := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		b.Fatal(err)
	}
	<-g
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		b.Fatal(err)
	}
	g = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		b.Fatal(err)
	}
	<-g
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		b.Fatal(err)
	}
	waitFor(b, "connected", func() bool { return offerer.ConnectionState() == webrtc.PeerConnectionStateConnected })
}
