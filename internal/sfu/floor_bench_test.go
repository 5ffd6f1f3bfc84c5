package sfu

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/liveclass/liveclass/internal/media/udpbatch"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// BenchmarkUDPFloor is what any forwarder on this machine pays before it
// does anything of its own: one 1,212-byte datagram (a 1,200-byte packet
// with SRTP's tag) to each of N loopback sockets per op, sent in one
// sendmmsg batch through the same udpbatch.Conn the sfu uses, each socket
// read by a goroutine as the benchmarks' Pion clients read theirs. With
// srtp, each datagram is first encrypted with AES-128-GCM, as the sfu's
// direct path does. The figures are BenchmarkSFUForward's, so the same
// run shows how much of the sfu's cost per packet per subscriber is the
// kernel's (and, on loopback, the receiving side's) and how much its own.
func BenchmarkUDPFloor(b *testing.B) {
	for _, enc := range []bool{false, true} {
		for _, n := range []int{10, 50, 200} {
			name := fmt.Sprintf("subs=%d", n)
			if enc {
				name = "srtp/" + name
			}
			b.Run(name, func(b *testing.B) { benchFloor(b, n, enc) })
		}
	}
}

func benchFloor(b *testing.B, n int, encrypt bool) {
	g0 := runtime.NumGoroutine()
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	_ = uc.SetWriteBuffer(4 << 20)
	out, err := udpbatch.New(uc, 0)
	if err != nil {
		b.Fatal(err)
	}
	var (
		received atomic.Uint64
		wg       sync.WaitGroup
		socks    []*net.UDPConn
	)
	b.Cleanup(func() {
		_ = out.Close()
		for _, s := range socks {
			_ = s.Close()
		}
		wg.Wait()
	})
	for range n {
		s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.SetReadBuffer(1 << 20)
		socks = append(socks, s)
		wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				received.Add(1)
			}
		})
	}
	ctx, err := srtp.CreateContext(make([]byte, 16), make([]byte, 12), srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		b.Fatal(err)
	}
	var src vp8Source
	var hdr rtp.Header
	dgram := make([]byte, 0, 1500)
	plain := make([]byte, 1212)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := startMeter(b)
	for b.Loop() {
		pkt := src.next()
		out.Begin()
		for i, s := range socks {
			d := plain
			if encrypt {
				// One SSRC per receiver, as each has its own stream.
				pkt[8], pkt[9] = byte(i>>8), byte(i)
				if d, err = ctx.EncryptRTP(dgram[:0], pkt, &hdr); err != nil {
					b.Fatal(err)
				}
			}
			_, _ = out.WriteToAddrPort(d, s.LocalAddr().(*net.UDPAddr).AddrPort())
		}
		out.End()
	}
	start.report(b, n, g0, 0, received.Load)
}
