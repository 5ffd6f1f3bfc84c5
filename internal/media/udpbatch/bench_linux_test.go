package udpbatch

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSend compares sending 64 datagrams of 1,200 bytes to 64
// receivers one system call each and in one batch.
func BenchmarkSend(b *testing.B) {
	to := receivers(b, 64)
	msg := make([]byte, 1200)
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			c := newConn(b, "udp4", "127.0.0.1:0", 64)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU(b)
			b.ReportAllocs()
			for b.Loop() {
				if batched {
					c.Begin()
				}
				for _, a := range to {
					if _, err := c.WriteToAddrPort(msg, a); err != nil {
						b.Fatal(err)
					}
				}
				if batched {
					c.End()
				}
			}
			reportPerDatagram(b, cpu0, b.N*len(to))
		})
	}
}

// receivers opens n sockets on loopback that nobody reads and returns
// their addresses.
func receivers(b *testing.B, n int) []netip.AddrPort {
	var to []netip.AddrPort
	for range n {
		to = append(to, addrOf(listen(b, "udp4", "127.0.0.1:0")))
	}
	return to
}

// reportPerDatagram reports the wall and thread CPU time per datagram of
// n datagrams sent since cpu0.
func reportPerDatagram(b *testing.B, cpu0 time.Duration, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/datagram")
	b.ReportMetric(float64((threadCPU(b)-cpu0).Nanoseconds())/float64(n), "cpu-ns/datagram")
}

// threadCPU returns the CPU time used by the calling OS thread: on a busy
// machine it measures the sender's own cost better than the wall clock.
func threadCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSendFrames sends what a forwarding pass of two video packets
// writes, a frame of 1,200 and 133 bytes to each of 32 receivers, with
// segmentation offload on and off: on, each receiver's frame is one
// message. The receivers are sockets on loopback that nobody reads (their
// buffers overflow, the kernel drops what does not fit: the sender's cost
// is what is measured).
func BenchmarkSendFrames(b *testing.B) {
	to := receivers(b, 32)
	full, rest := make([]byte, 1200), make([]byte, 133)
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("segmented=%v", on), func(b *testing.B) {
			c := newConn(b, "udp4", "127.0.0.1:0", 64)
			if got := c.SetSegmenting(on); got != on {
				b.Fatalf("SetSegmenting(%v) = %v", on, got)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU(b)
			b.ReportAllocs()
			for b.Loop() {
				c.Begin()
				for _, a := range to {
					if _, err := c.WriteToAddrPort(full, a); err != nil {
						b.Fatal(err)
					}
					if _, err := c.WriteToAddrPort(rest, a); err != nil {
						b.Fatal(err)
					}
				}
				c.End()
			}
			reportPerDatagram(b, cpu0, b.N*2*len(to))
		})
	}
}

// BenchmarkSendParallel runs forwarding passes on every P at once, as the
// layers of several classes do, each pass 32 datagrams of 1,200 bytes to
// 32 receivers on loopback: ns/datagram is wall time over all of them, so
// it falls as passes proceed in parallel.
func BenchmarkSendParallel(b *testing.B) {
	to := receivers(b, 32)
	msg := make([]byte, 1200)
	c := newConn(b, "udp4", "127.0.0.1:0", 64)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Begin()
			for _, a := range to {
				if _, err := c.WriteToAddrPort(msg, a); err != nil {
					b.Error(err)
					return
				}
			}
			c.End()
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(to)), "ns/datagram")
}
