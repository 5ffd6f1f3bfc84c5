package udpbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestListenTwin checks the send-only socket of Listen: every datagram
// sent to the port reaches the reading socket, whatever its source port
// (the reuseport hash would spread them over both sockets), what the
// Conn sends leaves from the port itself, in a pass and outside one, a
// second Listen on the port fails as a plain bind would, and Close frees
// the port.
func TestListenTwin(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			c, err := Listen(tc.network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tc.addr)), 1<<20, 0)
			if err != nil {
				t.Fatal(err)
			}
			if c.twin < 0 {
				t.Fatal("no send-only socket")
			}
			local := addrOf(c.conn)
			var senders []*net.UDPConn
			for range 20 {
				senders = append(senders, listen(t, tc.network, tc.addr))
			}
			for i, s := range senders {
				if _, err := s.WriteToUDPAddrPort([]byte(fmt.Sprint("from ", i)), local); err != nil {
					t.Fatal(err)
				}
			}
			must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			buf := make([]byte, 100)
			got := map[string]bool{}
			for range senders {
				n, _, err := c.ReadFromAddrPort(buf)
				if err != nil {
					t.Fatalf("after %d datagrams: %v", len(got), err)
				}
				got[string(buf[:n])] = true
			}
			if len(got) != len(senders) {
				t.Fatalf("%d distinct datagrams of %d", len(got), len(senders))
			}

			// Out of the port: one datagram outside a pass, two in one.
			dst := senders[0]
			if _, err := c.WriteToAddrPort([]byte("one"), addrOf(dst)); err != nil {
				t.Fatal(err)
			}
			c.Begin()
			for _, m := range []string{"pass 1", "pass 2"} {
				if _, err := c.WriteToAddrPort([]byte(m), addrOf(dst)); err != nil {
					t.Fatal(err)
				}
			}
			c.End()
			must(t, dst.SetReadDeadline(time.Now().Add(5*time.Second)))
			for _, want := range []string{"one", "pass 1", "pass 2"} {
				n, from, err := dst.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatal(err)
				}
				if string(buf[:n]) != want || from != local {
					t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, want, local)
				}
			}

			if _, err := Listen(tc.network, net.UDPAddrFromAddrPort(local), 0, 0); !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("a second Listen on %v: %v", local, err)
			}
			must(t, c.Close())
			again, err := Listen(tc.network, net.UDPAddrFromAddrPort(local), 0, 0)
			if err != nil {
				t.Fatalf("the port after Close: %v", err)
			}
			must(t, again.Close())
		})
	}
}
