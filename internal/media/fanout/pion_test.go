package fanout

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"golang.org/x/sys/unix"

	"github.com/liveclass/liveclass/internal/media/rewrite"
	"github.com/liveclass/liveclass/internal/media/udpbatch"
)

// This file runs the forwarding path through real Pion PeerConnections over
// loopback: DTLS-SRTP encryption and UDP sends included.

// interceptors says which Pion interceptors the server side registers.
type interceptors int

const (
	// noInterceptors is liveclass's own path: retransmission comes from
	// the shared packet cache, not from a per-subscriber NACK buffer.
	noInterceptors interceptors = iota
	// defaultInterceptors is Pion's RegisterDefaultInterceptors: NACK
	// responder with its 1,024-packet buffer per stream, RTCP reports,
	// stats, TWCC: the naive fan-out baseline.
	defaultInterceptors
)

// rig is a set of subscriber connections: each is a server-side
// PeerConnection sending one video track and a client-side PeerConnection
// receiving it. All server sides share one UDP socket (ICE UDP mux), as
// the SFU's participants do; so do all client sides.
type rig struct {
	t        testing.TB
	batch    *udpbatch.Conn // the server socket, when batched
	server   *webrtc.API
	client   *webrtc.API
	muxes    []*ice.UDPMuxDefault
	pairs    []*pcPair
	readers  sync.WaitGroup
	received atomic.Uint64
}

// pcPair is one subscriber connection.
type pcPair struct {
	server, client *webrtc.PeerConnection
	track          *webrtc.TrackLocalStaticRTP
	received       atomic.Uint64
	// ssrc is the SSRC the client receives the track on, known once
	// its first packet arrived.
	ssrc atomic.Uint32
	// onRTCP, when set, gets the RTCP the client sends about the track.
	onRTCP atomic.Pointer[func([]rtcp.Packet)]

	mu   sync.Mutex
	seqs map[uint16]int // how often each sequence number arrived
}

// got reports how often the client received sequence number seq.
func (p *pcPair) got(seq uint16) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seqs[seq]
}

// rigOptions choose how the server side of a rig is built.
type rigOptions struct {
	interceptors interceptors
	// batch puts a udpbatch.Conn under the server's UDP mux.
	batch bool
}

func newMux(t testing.TB, batch bool) (*ice.UDPMuxDefault, *udpbatch.Conn) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	// Large socket buffers, so that bursts of a fast benchmark are not
	// dropped by the kernel before the receiving side reads them.
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetWriteBuffer(8 << 20)
	if !batch {
		return ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn}), nil
	}
	bc, err := udpbatch.New(conn, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: bc}), bc
}

func newAPI(t testing.TB, mux ice.UDPMux, ic interceptors) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	// The machine has only loopback, which Pion leaves out by default.
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if mux != nil {
		se.SetICEUDPMux(mux)
	}
	ir := &interceptor.Registry{}
	if ic == defaultInterceptors {
		if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
			t.Fatal(err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
}

// newRig connects n subscriber connections; everything is closed by
// t.Cleanup, and the test fails if goroutines are left behind.
func newRig(t testing.TB, n int, opts rigOptions) *rig {
	t.Helper()
	before := runtime.NumGoroutine()
	r := &rig{t: t}
	serverMux, batch := newMux(t, opts.batch)
	r.batch = batch
	r.muxes = []*ice.UDPMuxDefault{serverMux}
	r.server = newAPI(t, serverMux, opts.interceptors)
	r.client = newAPI(t, nil, noInterceptors)
	t.Cleanup(func() {
		r.close()
		waitGoroutines(t, before)
	})
	for i := range n {
		if err := r.connect(i); err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
	}
	return r
}

// connect sets up subscriber connection i and waits until it is connected.
func (r *rig) connect(i int) error {
	server, err := r.server.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	p := &pcPair{server: server, seqs: map[uint16]int{}}
	r.pairs = append(r.pairs, p)
	client, err := r.client.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	p.client = client

	p.track, err = webrtc.NewTrackLocalStaticRTP(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		fmt.Sprintf("video%d", i), "publisher")
	if err != nil {
		return err
	}
	sender, err := server.AddTrack(p.track)
	if err != nil {
		return err
	}
	// RTCP from the subscriber must be read, or the interceptors that
	// act on it (NACK, reports) never see it.
	r.readers.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := sender.Read(buf)
			if err != nil {
				return
			}
			if h := p.onRTCP.Load(); h != nil {
				if pkts, err := rtcp.Unmarshal(buf[:n]); err == nil {
					(*h)(pkts)
				}
			}
		}
	})
	connected := make(chan struct{})
	var once sync.Once
	server.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	client.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		r.readers.Add(1)
		defer r.readers.Done()
		p.ssrc.Store(uint32(tr.SSRC()))
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				p.mu.Lock()
				p.seqs[binary.BigEndian.Uint16(buf[2:])]++
				p.mu.Unlock()
			}
			p.received.Add(1)
			r.received.Add(1)
		}
	})

	offer, err := server.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(server)
	if err := server.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	if err := client.SetRemoteDescription(*server.LocalDescription()); err != nil {
		return err
	}
	answer, err := client.CreateAnswer(nil)
	if err != nil {
		return err
	}
	gathered = webrtc.GatheringCompletePromise(client)
	if err := client.SetLocalDescription(answer); err != nil {
		return err
	}
	<-gathered
	if err := server.SetRemoteDescription(*client.LocalDescription()); err != nil {
		return err
	}
	select {
	case <-connected:
		return nil
	case <-time.After(20 * time.Second):
		return fmt.Errorf("not connected after 20 s (state %s)", server.ConnectionState())
	}
}

// close closes every connection and the sockets, and waits for the
// reading goroutines to end.
func (r *rig) close() {
	for _, p := range r.pairs {
		if p.client != nil {
			_ = p.client.Close()
		}
		_ = p.server.Close()
	}
	for _, m := range r.muxes {
		_ = m.Close()
	}
	r.readers.Wait()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGoroutines fails the test if the goroutine count does not come back
// to what it was before the rig, once everything is closed.
func waitGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("goroutines leaked: %d before, %d after closing\n%s",
				before, runtime.NumGoroutine(), buf[:n])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForwardOverPion sends a simulcast stream through the Forwarder to
// real Pion subscribers over loopback, with a switch of layer and a NACK
// answered from the cache, and checks what each subscriber receives.
func TestForwardOverPion(t *testing.T) {
	r := newRig(t, 2, rigOptions{batch: true})
	var pl plis
	f, err := New(Options{
		Codec: rewrite.VP8, ClockRate: 90000, Layers: 2,
		RequestKeyframe: pl.request, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Batch: r.batch,
	})
	must(t, err)
	var subs []*Subscriber
	// Subscriber 0's link loses its packet 133 once.
	lossy := &lossyWriter{w: r.pairs[0].track, drop: map[uint16]bool{133: true}}
	for i, p := range r.pairs {
		var w Writer = p.track
		if i == 0 {
			w = lossy
		}
		s, err := f.Add(SubscriberOptions{Name: fmt.Sprint("sub", i), Writer: w, Layer: i, FirstSeq: 100})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	l0, l1 := newSource(0, 1, 300), newSource(1, 60000, 1100)
	send := func(frames int) {
		for range frames * 3 {
			for _, s := range []*source{l0, l1} {
				raw, _ := s.next()
				if err := f.Forward(s.layer, raw, s.arrival); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	send(10)
	waitFor(t, "30 packets at each subscriber", 10*time.Second, func() bool {
		return r.pairs[0].received.Load() >= 30 && r.pairs[1].received.Load() >= 30
	})
	// Subscriber 0 moves up to layer 1 at its next keyframe.
	must(t, subs[0].SetLayer(1))
	l1.forceKey = true
	send(10)
	// Out 130 is layer 0's last, 131 layer 1's keyframe, 160 its 30th.
	waitFor(t, "the switch", 10*time.Second, func() bool {
		cur, _ := subs[0].Layers()
		return cur == 1 && r.pairs[0].got(160) == 1
	})
	// The subscriber's RTCP reaches the forwarder: a NACK is answered
	// from the cache, a PLI becomes a keyframe request for its layer.
	if r.pairs[0].got(133) != 0 {
		t.Fatal("the lost packet arrived")
	}
	var retransmitted atomic.Int64
	handle := func(pkts []rtcp.Packet) { retransmitted.Add(int64(subs[0].HandleRTCP(pkts))) }
	r.pairs[0].onRTCP.Store(&handle)
	requests, _ := f.KeyframeStats(1)
	ssrc := r.pairs[0].ssrc.Load()
	must(t, r.pairs[0].client.WriteRTCP([]rtcp.Packet{
		// 130, 131 (received already) and 133 (lost).
		&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: []rtcp.NackPair{{PacketID: 130, LostPackets: 0b101}}},
		&rtcp.PictureLossIndication{MediaSSRC: ssrc},
	}))
	// The receiver's SRTP replay check drops the copies of 130 and 131;
	// the lost 133 gets through.
	waitFor(t, "the lost packet, retransmitted", 10*time.Second, func() bool {
		return retransmitted.Load() == 3 && r.pairs[0].got(133) == 1
	})
	waitFor(t, "the PLI", 10*time.Second, func() bool {
		now, _ := f.KeyframeStats(1)
		return now == requests+1
	})
	for i, s := range subs {
		if sent, failed := s.Stats(); sent < 60 || failed != 0 {
			t.Fatalf("subscriber %d: sent %d, failed %d", i, sent, failed)
		}
	}
	// The media went out in batches, one per Forward (at most two
	// datagrams each here), with none refused.
	if batches, datagrams, failed := r.batch.Stats(); batches < 60 || datagrams < 120 || failed != 0 {
		t.Fatalf("batches %d, datagrams %d, failed %d", batches, datagrams, failed)
	}
}

// cpuTime is the CPU time an OS thread used, in user space (Go code:
// rewriting, Pion, SRTP) and in the kernel (system calls: the UDP send and,
// on loopback, the delivery into the receiving socket too).
type cpuTime struct{ user, sys time.Duration }

func (c cpuTime) sub(o cpuTime) cpuTime { return cpuTime{c.user - o.user, c.sys - o.sys} }

// lossyWriter loses chosen packets once, as a lossy link would.
type lossyWriter struct {
	w    Writer
	mu   sync.Mutex
	drop map[uint16]bool
}

func (l *lossyWriter) Write(b []byte) (int, error) {
	seq := binary.BigEndian.Uint16(b[2:])
	l.mu.Lock()
	lose := l.drop[seq]
	delete(l.drop, seq)
	l.mu.Unlock()
	if lose {
		return len(b), nil
	}
	return l.w.Write(b)
}

// threadCPU returns the CPU time used by the calling OS thread, which the
// benchmark locks to its goroutine: the receivers' work on other threads
// is left out.
func threadCPU(b *testing.B) cpuTime {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return cpuTime{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// reportPerPacket adds the per-packet-per-subscriber figures to a
// benchmark whose op is one publisher packet sent to n subscribers.
func reportPerPacket(b *testing.B, n int, cpu cpuTime, mallocs uint64) {
	per := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/pkt/sub")
	b.ReportMetric(float64((cpu.user+cpu.sys).Nanoseconds())/per, "cpu-ns/pkt/sub")
	b.ReportMetric(float64(cpu.user.Nanoseconds())/per, "user-ns/pkt/sub")
	b.ReportMetric(float64(cpu.sys.Nanoseconds())/per, "sys-ns/pkt/sub")
	b.ReportMetric(float64(mallocs)/per, "allocs/pkt/sub")
}

// mallocs returns the process's allocation count so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkForwardPion is the forwarding hot path with its real cost: one
// publisher VP8 packet of 1,200 bytes parsed, cached, rewritten and
// written to N subscribers' TrackLocalStaticRTP, SRTP-encrypted and sent
// over loopback UDP by Pion. Its op is one publisher packet;
// ns/pkt/sub divides by N, cpu-ns/pkt/sub counts only the sending thread's
// CPU (the receivers run on other threads), allocs/pkt/sub counts every
// allocation in the process, the receivers' included.
func BenchmarkForwardPion(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		for _, batch := range []bool{false, true} {
			b.Run(fmt.Sprintf("subs=%d/batch=%v", n, batch), func(b *testing.B) {
				benchmarkForward(b, n, batch)
			})
		}
	}
}

func benchmarkForward(b *testing.B, n int, batch bool) {
	r := newRig(b, n, rigOptions{batch: batch})
	var pl plis
	opts := Options{
		Codec: rewrite.VP8, ClockRate: 90000, Layers: 1,
		RequestKeyframe: pl.request, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if batch {
		opts.Batch = r.batch
	}
	f, err := New(opts)
	must(b, err)
	for i, p := range r.pairs {
		if _, err := f.Add(SubscriberOptions{Name: fmt.Sprint("sub", i), Writer: p.track, SSRC: uint32(i)}); err != nil {
			b.Fatal(err)
		}
	}
	src := newSource(0, 1, 1200)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	cpu0, allocs0 := threadCPU(b), mallocs()
	for b.Loop() {
		raw, _ := src.next()
		if err := f.Forward(0, raw, src.arrival); err != nil {
			b.Fatal(err)
		}
	}
	reportPerPacket(b, n, threadCPU(b).sub(cpu0), mallocs()-allocs0)
	checkDelivered(b, r)
	reportDelivered(b, r)
}

// BenchmarkFanoutPionBaseline is the same-run baseline: a plain Pion
// fan-out, with Pion's default interceptors, that unmarshals the publisher
// packet once and calls WriteRTP on every subscriber's track.
func BenchmarkFanoutPionBaseline(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			r := newRig(b, n, rigOptions{interceptors: defaultInterceptors})
			src := newSource(0, 1, 1200)
			var pkt rtp.Packet
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ReportAllocs()
			cpu0, allocs0 := threadCPU(b), mallocs()
			for b.Loop() {
				raw, _ := src.next()
				if err := pkt.Unmarshal(raw); err != nil {
					b.Fatal(err)
				}
				for _, p := range r.pairs {
					if err := p.track.WriteRTP(&pkt); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportPerPacket(b, n, threadCPU(b).sub(cpu0), mallocs()-allocs0)
			checkDelivered(b, r)
			reportDelivered(b, r)
		})
	}
}

// checkDelivered fails the benchmark unless every subscriber received
// packets: a benchmark of packets that go nowhere would measure nothing.
func checkDelivered(b *testing.B, r *rig) {
	b.Helper()
	waitFor(b, "packets at every subscriber", 10*time.Second, func() bool {
		for _, p := range r.pairs {
			if p.received.Load() == 0 {
				return false
			}
		}
		return true
	})
}

// reportDelivered adds the share of the packets sent that arrived (UDP on
// a busy loopback drops some when a receiver falls behind).
func reportDelivered(b *testing.B, r *rig) {
	b.ReportMetric(float64(r.received.Load())/float64(b.N*len(r.pairs)), "delivered/pkt")
}

// Compile-time check that a Pion track is a Writer.
var _ Writer = (*webrtc.TrackLocalStaticRTP)(nil)

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkSubscriberMemory reports the live heap per subscriber connection
// once 1,100 packets have flowed (enough to fill Pion's 1,024-packet NACK
// buffer), for the liveclass path (shared packet cache, no per-subscriber
// interceptors) and for the default-interceptor baseline. The figure counts
// both ends of each loopback connection; the client ends are configured
// alike in both cases, so the difference is the server side's. Its op is
// one packet forwarded to every subscriber.
func BenchmarkSubscriberMemory(b *testing.B) {
	const n = 20
	for _, tc := range []struct {
		name string
		opts rigOptions
	}{
		{"liveclass", rigOptions{batch: true}},
		{"baseline", rigOptions{interceptors: defaultInterceptors}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			before := heapInUse()
			r := newRig(b, n, tc.opts)
			src := newSource(0, 1, 1200)
			var send func()
			if tc.opts.interceptors == defaultInterceptors {
				var pkt rtp.Packet
				send = func() {
					raw, _ := src.next()
					must(b, pkt.Unmarshal(raw))
					for _, p := range r.pairs {
						must(b, p.track.WriteRTP(&pkt))
					}
				}
			} else {
				var pl plis
				f, err := New(Options{
					Codec: rewrite.VP8, ClockRate: 90000, Layers: 1,
					RequestKeyframe: pl.request, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
					Batch: r.batch,
				})
				must(b, err)
				for i, p := range r.pairs {
					_, err := f.Add(SubscriberOptions{Name: fmt.Sprint("sub", i), Writer: p.track})
					must(b, err)
				}
				send = func() {
					raw, _ := src.next()
					must(b, f.Forward(0, raw, src.arrival))
				}
			}
			for range 1100 {
				send()
			}
			for b.Loop() {
				send()
			}
			checkDelivered(b, r)
			after := heapInUse()
			b.ReportMetric(float64(after-before)/n, "heap-B/sub")
		})
	}
}
