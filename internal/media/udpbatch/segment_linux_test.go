package udpbatch

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSegmentation sends the datagrams of a pass as the forwarder writes
// them, each receiver's in a row, with segmentation offload on and off:
// either way every receiver gets each datagram whole, alone and in order,
// and with it on the rows left as messages of several.
func TestSegmentation(t *testing.T) {
	for _, tc := range []struct {
		name, network, addr string
		on, twin            bool
	}{
		{"IPv4", "udp4", "127.0.0.1:0", true, false},
		{"IPv6", "udp6", "[::1]:0", true, false},
		{"off", "udp4", "127.0.0.1:0", false, false},
		{"IPv4 from the send-only twin", "udp4", "127.0.0.1:0", true, true},
		{"IPv6 from the send-only twin", "udp6", "[::1]:0", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConn(t, tc.network, tc.addr, 64)
			if tc.twin {
				var err error
				c, err = Listen(tc.network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.addr)), 1<<20, 64)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				if c.twin < 0 {
					t.Fatal("no send-only socket")
				}
			}
			if on := c.SetSegmenting(tc.on); on != tc.on {
				t.Fatalf("SetSegmenting(%v) = %v; the kernel has had UDP_SEGMENT since 4.18", tc.on, on)
			}
			a, b := listen(t, tc.network, tc.addr), listen(t, tc.network, tc.addr)
			// Per receiver, the sizes of its datagrams in the order
			// written: a frame of three (two full, one short), a frame
			// of two of one size, a lone packet, one larger than the
			// one before (which cannot join its row), one too large to
			// be cut from a message at all.
			rows := []struct {
				to    *net.UDPConn
				sizes []int
			}{
				{a, []int{1200, 1200, 133}},
				{b, []int{700, 700}},
				{a, []int{90}},
				{b, []int{300, 1000}},
				{a, []int{1450, 1450}},
			}
			want := map[*net.UDPConn][][]byte{}
			c.Begin()
			for r, row := range rows {
				for i, size := range row.sizes {
					msg := bytes.Repeat([]byte{byte(r*16 + i)}, size)
					copy(msg, fmt.Sprintf("row %d datagram %d", r, i))
					want[row.to] = append(want[row.to], msg)
					if _, err := c.WriteToAddrPort(msg, addrOf(row.to)); err != nil {
						t.Fatal(err)
					}
				}
			}
			c.End()
			for _, r := range []*net.UDPConn{a, b} {
				got := receive(t, r, len(want[r]))
				for i := range got {
					if !bytes.Equal(got[i], want[r][i]) {
						t.Fatalf("datagram %d: %d bytes starting %q, want %d bytes starting %q",
							i, len(got[i]), got[i][:16], len(want[r][i]), want[r][i][:16])
					}
				}
			}
			// 3 + 2 datagrams in rows of one size but the last; the
			// rest alone.
			wantSeg := uint64(0)
			if tc.on {
				wantSeg = 5
			}
			if _, d, f := c.Stats(); d != 10 || f != 0 || c.Segmented() != wantSeg {
				t.Fatalf("%d datagrams, %d failed, %d segmented; want 10, 0, %d", d, f, c.Segmented(), wantSeg)
			}
		})
	}
}

// TestRun checks which queued datagrams may leave as one message.
func TestRun(t *testing.T) {
	x := netip.MustParseAddrPort("192.0.2.1:5000")
	y := netip.MustParseAddrPort("192.0.2.2:5000")
	many := func(n, size int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = size
		}
		return s
	}
	to := func(n int, a netip.AddrPort) []netip.AddrPort {
		s := make([]netip.AddrPort, n)
		for i := range s {
			s[i] = a
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		lens  []int
		addrs []netip.AddrPort
		want  int
	}{
		{"alone", []int{1200}, to(1, x), 1},
		{"a frame", []int{1200, 1200, 133, 1200}, to(4, x), 3},
		{"another address", []int{1200, 1200}, []netip.AddrPort{x, y}, 1},
		{"larger after", []int{500, 600}, to(2, x), 1},
		{"empty after", []int{500, 0}, to(2, x), 1},
		{"empty first", []int{0, 0}, to(2, x), 1},
		{"over the segment size", []int{1401, 1401}, to(2, x), 1},
		{"at most maxSegments", many(100, 100), to(100, x), maxSegments},
		{"at most maxMessage", many(60, 1400), to(60, x), maxMessage / 1400},
	} {
		if got := run(tc.lens, tc.addrs); got != tc.want {
			t.Errorf("%s: run = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestSegmentationRefused sends rows on a socket whose route refuses
// segmentation (SO_NO_CHECK: without a UDP checksum the kernel cannot cut
// a message): every datagram still arrives, and the Conn stops trying.
func TestSegmentationRefused(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 64)
	raw, err := c.Socket().SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_NO_CHECK: %v, %v", err, serr)
	}
	r := listen(t, "udp4", "127.0.0.1:0")
	sizes := []int{90, 1200, 1200, 133, 500, 500}
	c.Begin()
	for i, size := range sizes {
		msg := bytes.Repeat([]byte{byte(i)}, size)
		if _, err := c.WriteToAddrPort(msg, addrOf(r)); err != nil {
			t.Fatal(err)
		}
	}
	c.End()
	got := receive(t, r, len(sizes))
	for i, g := range got {
		if len(g) != sizes[i] || g[0] != byte(i) {
			t.Fatalf("datagram %d: %d bytes of %d, want %d bytes of %d", i, len(g), g[0], sizes[i], i)
		}
	}
	if _, d, f := c.Stats(); d != uint64(len(sizes)) || f != 0 || c.Segmented() != 0 {
		t.Fatalf("%d datagrams, %d failed, %d segmented; want %d, 0, 0", d, f, c.Segmented(), len(sizes))
	}
	c.mu.Lock()
	on := c.sys.gso
	c.mu.Unlock()
	if on {
		t.Fatal("segmentation still on after the route refused it")
	}
}
