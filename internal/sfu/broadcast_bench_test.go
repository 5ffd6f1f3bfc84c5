package sfu

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkWHEPForward is one broadcast publisher's 720p layer forwarded
// to N WHEP viewers through the whole SFU: the track's forwarder, each
// viewer's slot and downTrack, the viewer connection's sender-report
// interceptor, SRTP and the UDP mux with its sendmmsg batches. Its op is
// one publisher packet (1,200 bytes of VP8). The figures are those of
// BenchmarkSFUForward, so that BenchmarkPionBaseline of the same run is
// the baseline: cpu-ns/pkt/sub is the forwarding thread's CPU per packet
// per viewer, allocs/pkt/sub every allocation in the process per packet
// per viewer (the in-process clients' included), MB/sub the heap of one
// viewer with its in-process client after warm-up.
func BenchmarkWHEPForward(b *testing.B) {
	for _, n := range []int{1, 10, 50, 200} {
		b.Run(fmt.Sprintf("viewers=%d", n), func(b *testing.B) { benchWHEP(b, Config{}, n) })
	}
	// Through Pion's SRTP writer instead of the sfu's own path: what the
	// direct path saves, in the same run.
	for _, n := range []int{10, 50, 200} {
		b.Run(fmt.Sprintf("pionwrite/viewers=%d", n), func(b *testing.B) { benchWHEP(b, Config{PionWrite: true}, n) })
	}
}

func benchWHEP(b *testing.B, cfg Config, n int) {
	srv, _ := newServer(b, cfg)
	api := newClientAPI(b)
	pub := publishWHIPOneLayer(b, srv, api, broadcastClass, "host", 3)
	up := waitTrack(b, srv, broadcastClass, "host/camera")
	// Wait for the publisher's 9 packets to pass: from then on only the
	// benchmark calls Forward.
	waitFor(b, "the publisher's last packet", func() bool {
		last, ok := up.fwd.Cache(0).Newest()
		return ok && last == 8
	})
	_ = pub
	heap0 := heapInUse()
	g0 := runtime.NumGoroutine()
	viewers := make([]*whepView, 0, n)
	for i := range n {
		viewers = append(viewers, viewWHEP(b, srv, api, broadcastClass, ParticipantID(fmt.Sprint("v", i))))
	}
	for _, v := range viewers {
		waitFor(b, "viewer connected", func() bool { return v.v.Connected() })
	}
	src := vp8Source{seq: 9}
	waitFor(b, "packets at every viewer", func() bool {
		// A keyframe in every batch: a viewer starts at one that
		// reaches its slot, and the first may have come too early for
		// it, or been lost.
		src.keyframe()
		for range 30 {
			_ = up.fwd.Forward(0, src.next(), time.Now())
		}
		for _, v := range viewers {
			if video, _ := v.recv(); video.packets < 100 {
				return false
			}
		}
		return true
	})
	perSub := float64(int64(heapInUse())-int64(heap0)) / float64(n)
	before := viewerPackets(viewers)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := startMeter(b)
	for b.Loop() {
		_ = up.fwd.Forward(0, src.next(), time.Now())
	}
	start.report(b, n, g0, perSub, func() uint64 { return viewerPackets(viewers) - before })
}

// viewerPackets sums the packets the server sent to the viewers.
func viewerPackets(vs []*whepView) uint64 {
	var n uint64
	for _, v := range vs {
		n += v.v.Stats().Packets
	}
	return n
}
