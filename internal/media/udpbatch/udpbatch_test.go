package udpbatch

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listen(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, ua)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newConn(t testing.TB, network, addr string, size int) *Conn {
	t.Helper()
	c, err := New(listen(t, network, addr), size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// receive reads n datagrams from r, with a deadline.
func receive(t testing.TB, r *net.UDPConn, n int) [][]byte {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	buf := make([]byte, 2000)
	for range n {
		m, _, err := r.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), n, err)
		}
		got = append(got, bytes.Clone(buf[:m]))
	}
	return got
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestBatchToManyReceivers(t *testing.T) {
	for _, tc := range []struct {
		name, network, local, remote string
		mapped                       bool
	}{
		{"IPv4", "udp4", "127.0.0.1:0", "127.0.0.1:0", false},
		{"IPv4 addresses written v4-mapped", "udp4", "127.0.0.1:0", "127.0.0.1:0", true},
		{"IPv6", "udp6", "[::1]:0", "[::1]:0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newConn(t, tc.network, tc.local, 8)
			var rs []*net.UDPConn
			for range 3 {
				rs = append(rs, listen(t, tc.network, tc.remote))
			}
			c.Begin()
			for i := range 5 {
				for j, r := range rs {
					to := addrOf(r)
					if tc.mapped {
						to = netip.AddrPortFrom(netip.AddrFrom16(to.Addr().As16()), to.Port())
					}
					msg := fmt.Appendf(nil, "packet %d for %d", i, j)
					if n, err := c.WriteToAddrPort(msg, to); err != nil || n != len(msg) {
						t.Fatalf("WriteToAddrPort = %d, %v", n, err)
					}
				}
			}
			// 15 datagrams through a queue of 8: one batch went when it
			// filled up, the rest wait for End.
			if b, d, _ := c.Stats(); b != 1 || d != 8 {
				t.Fatalf("before End: %d batches, %d datagrams; want 1, 8", b, d)
			}
			c.End()
			if b, d, f := c.Stats(); b != 2 || d != 15 || f != 0 {
				t.Fatalf("after End: %d batches, %d datagrams, %d failed; want 2, 15, 0", b, d, f)
			}
			for j, r := range rs {
				got := receive(t, r, 5)
				for i, g := range got {
					if want := fmt.Sprintf("packet %d for %d", i, j); string(g) != want {
						t.Fatalf("receiver %d datagram %d = %q, want %q", j, i, g, want)
					}
				}
			}
		})
	}
}

func TestOutsideAPassWritesGoStraightOut(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 0)
	r := listen(t, "udp4", "127.0.0.1:0")
	if _, err := c.WriteTo([]byte("direct"), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, r, 1); string(got[0]) != "direct" {
		t.Fatalf("got %q", got[0])
	}
	if b, d, _ := c.Stats(); b != 0 || d != 0 {
		t.Fatalf("a direct write went through the queue: %d batches, %d datagrams", b, d)
	}
	if _, err := c.WriteTo([]byte("x"), &net.TCPAddr{}); err == nil {
		t.Fatal("WriteTo a TCP address succeeded")
	}
	// Datagrams too large for the queue are sent directly, even in a pass.
	c.Begin()
	big := bytes.Repeat([]byte{7}, 1600)
	if _, err := c.WriteToAddrPort(big, addrOf(r)); err != nil {
		t.Fatal(err)
	}
	c.End()
	if got := receive(t, r, 1); !bytes.Equal(got[0], big) {
		t.Fatal("large datagram changed")
	}
}

func TestNestedPassesAndClose(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 0)
	r := listen(t, "udp4", "127.0.0.1:0")
	c.Begin()
	c.Begin()
	if _, err := c.WriteToAddrPort([]byte("one"), addrOf(r)); err != nil {
		t.Fatal(err)
	}
	c.End()
	if _, err := c.WriteToAddrPort([]byte("two"), addrOf(r)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := receive(t, r, 2)
	if string(got[0]) != "one" || string(got[1]) != "two" {
		t.Fatalf("got %q", got)
	}
	// A write to a closed socket fails, in a pass or not.
	if _, err := c.WriteToAddrPort([]byte("x"), addrOf(r)); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

func TestReadAndDeadlines(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 0)
	s := listen(t, "udp4", "127.0.0.1:0")
	if _, err := s.WriteToUDPAddrPort([]byte("hello"), addrOf(c.conn)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := c.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" || from != addrOf(s) {
		t.Fatalf("ReadFromAddrPort = %q from %v, %v", buf[:n], from, err)
	}
	if _, err := s.WriteToUDPAddrPort([]byte("again"), addrOf(c.conn)); err != nil {
		t.Fatal(err)
	}
	n, _, err = c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "again" {
		t.Fatalf("ReadFrom = %q, %v", buf[:n], err)
	}
	must(t, c.SetReadDeadline(time.Now().Add(time.Millisecond)))
	if _, _, err := c.ReadFrom(buf); err == nil {
		t.Fatal("read past the deadline succeeded")
	}
	must(t, c.SetWriteDeadline(time.Time{}))
	if c.LocalAddr().String() != c.conn.LocalAddr().String() {
		t.Fatal("LocalAddr differs from the socket's")
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(listen(t, "udp4", "127.0.0.1:0"), 5000); err == nil {
		t.Fatal("New accepted a queue of 5000")
	}
}

func TestQueuedWritesAllocateNothing(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 16)
	r := listen(t, "udp4", "127.0.0.1:0")
	must(t, r.SetReadBuffer(4<<20))
	to := addrOf(r)
	msg := make([]byte, 1200)
	allocs := testing.AllocsPerRun(100, func() {
		c.Begin()
		for range 10 {
			if _, err := c.WriteToAddrPort(msg, to); err != nil {
				t.Fatal(err)
			}
		}
		c.End()
	})
	if allocs != 0 {
		t.Fatalf("a pass of 10 datagrams allocates %.1f times, want 0", allocs)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDivert checks that the datagrams the divert function takes, from
// the first of a batch and from the queued rest, never reach the reader,
// that it sees them with their senders, and that the others come through
// in order.
func TestDivert(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 0)
	taken, kept := listen(t, "udp4", "127.0.0.1:0"), listen(t, "udp4", "127.0.0.1:0")
	var got []string
	c.SetDivert(func(b []byte, from netip.AddrPort) bool {
		if from != addrOf(taken) {
			return false
		}
		got = append(got, string(b))
		b[0] = 'X' // the function may use the buffer
		return true
	})
	const n = 30
	for i := range n {
		s := kept
		if i%3 != 1 {
			s = taken // the first datagram of the batch among them
		}
		if _, err := s.WriteToUDPAddrPort([]byte(fmt.Sprintf("datagram %d", i)), addrOf(c.conn)); err != nil {
			t.Fatal(err)
		}
	}
	must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 100)
	for i := 1; i < n; i += 3 {
		m, from, err := c.ReadFromAddrPort(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if want := fmt.Sprintf("datagram %d", i); string(buf[:m]) != want || from != addrOf(kept) {
			t.Fatalf("read %q from %v, want %q from %v", buf[:m], from, want, addrOf(kept))
		}
	}
	var want []string
	for i := range n {
		if i%3 != 1 {
			want = append(want, fmt.Sprintf("datagram %d", i))
		}
	}
	// The last taken datagram follows the last kept one: it is diverted
	// by the read that waits after it.
	c.SetDivert(func(b []byte, from netip.AddrPort) bool {
		got = append(got, string(b))
		return true
	})
	must(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	if _, _, err := c.ReadFromAddrPort(buf); err == nil {
		t.Fatal("a diverted datagram was returned")
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("diverted %q, want %q", got, want)
	}
	c.SetDivert(nil)
	if _, err := taken.WriteToUDPAddrPort([]byte("after"), addrOf(c.conn)); err != nil {
		t.Fatal(err)
	}
	must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	if m, _, err := c.ReadFromAddrPort(buf); err != nil || string(buf[:m]) != "after" {
		t.Fatalf("with no divert function: %q, %v", buf[:m], err)
	}
}
