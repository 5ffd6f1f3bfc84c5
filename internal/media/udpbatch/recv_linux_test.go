package udpbatch

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

// TestReadsComeInBatches sends datagrams from two sockets before the Conn
// reads any, and checks that they come out one per call, in order, each
// with its sender, and that the kernel handed over several per call.
func TestReadsComeInBatches(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			c := newConn(t, tc.network, tc.addr, 0)
			senders := []*net.UDPConn{listen(t, tc.network, tc.addr), listen(t, tc.network, tc.addr)}
			const n = 40
			for i := range n {
				s := senders[i%2]
				if _, err := s.WriteToUDPAddrPort([]byte(fmt.Sprintf("datagram %d", i)), addrOf(c.conn)); err != nil {
					t.Fatal(err)
				}
			}
			must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			buf := make([]byte, 100)
			for i := range n {
				m, from, err := c.ReadFromAddrPort(buf)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				if want := fmt.Sprintf("datagram %d", i); string(buf[:m]) != want {
					t.Fatalf("read %d = %q, want %q", i, buf[:m], want)
				}
				if want := addrOf(senders[i%2]); from != want {
					t.Fatalf("read %d from %v, want %v", i, from, want)
				}
				if i == 0 && c.recv.got < 2 {
					t.Fatalf("the first read took %d datagrams from the kernel with %d waiting", c.recv.got, n)
				}
			}
		})
	}
}

// TestQueuedReadTruncates checks that a queued datagram larger than the
// caller's buffer is cut to it, as a read from the socket would cut it,
// and that a zero-length read loses nothing.
func TestQueuedReadTruncates(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 0)
	s := listen(t, "udp4", "127.0.0.1:0")
	for _, msg := range []string{"first", "second and longer", "third"} {
		if _, err := s.WriteToUDPAddrPort([]byte(msg), addrOf(c.conn)); err != nil {
			t.Fatal(err)
		}
	}
	must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	// Wait until all three are in the socket's queue, so that one
	// recvmmsg takes them all.
	time.Sleep(50 * time.Millisecond)
	buf := make([]byte, 100)
	if n, _, err := c.ReadFromAddrPort(buf); err != nil || string(buf[:n]) != "first" {
		t.Fatalf("first read = %q, %v", buf[:n], err)
	}
	if n, _, err := c.ReadFromAddrPort(buf[:6]); err != nil || string(buf[:n]) != "second" {
		t.Fatalf("short read = %q, %v", buf[:n], err)
	}
	if n, from, err := c.ReadFrom(buf); err != nil || string(buf[:n]) != "third" || from.String() != s.LocalAddr().String() {
		t.Fatalf("ReadFrom = %q from %v, %v", buf[:n], from, err)
	}
}

// TestConcurrentReaders checks that two goroutines reading the same Conn
// get every datagram exactly once.
func TestConcurrentReaders(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 0)
	s := listen(t, "udp4", "127.0.0.1:0")
	must(t, c.conn.SetReadBuffer(1<<20))
	const n = 300
	must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for range 2 {
		wg.Go(func() {
			buf := make([]byte, 100)
			for {
				m, _, err := c.ReadFromAddrPort(buf)
				if err != nil {
					return // the deadline, after the last datagram
				}
				mu.Lock()
				seen[string(buf[:m])]++
				done := len(seen) == n
				mu.Unlock()
				if done {
					must(t, c.SetReadDeadline(time.Now()))
				}
			}
		})
	}
	for i := range n {
		if _, err := s.WriteToUDPAddrPort([]byte(fmt.Sprint(i)), addrOf(c.conn)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i := range n {
		if k := seen[fmt.Sprint(i)]; k != 1 {
			t.Fatalf("datagram %d read %d times", i, k)
		}
	}
}

// TestReadAfterClose checks that a read blocked on an empty socket ends
// with an error when the Conn closes.
func TestReadAfterClose(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 0)
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFromAddrPort(make([]byte, 10))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	must(t, c.Close())
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("read on a closed Conn succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read still blocked after Close")
	}
}

// TestDirectWriteErrors checks a write outside a pass: an address of the
// other family fails, a good one allocates nothing, a closed socket fails.
func TestDirectWriteErrors(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", 0)
	r6 := listen(t, "udp6", "[::1]:0")
	if _, err := c.WriteToAddrPort([]byte("x"), addrOf(r6)); err == nil {
		t.Fatal("an IPv4 socket sent to an IPv6 address")
	}
	r := listen(t, "udp4", "127.0.0.1:0")
	if n, err := c.WriteToAddrPort([]byte("ok"), addrOf(r)); err != nil || n != 2 {
		t.Fatalf("WriteToAddrPort = %d, %v", n, err)
	}
	if got := receive(t, r, 1); !bytes.Equal(got[0], []byte("ok")) {
		t.Fatalf("got %q", got[0])
	}
	msg := make([]byte, 200)
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := c.WriteToAddrPort(msg, addrOf(r)); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Fatalf("a direct write allocates %.1f times, want 0", allocs)
	}
	must(t, c.Close())
	// Too large for the queue's closed check: this one reaches the socket.
	if _, err := c.WriteToAddrPort(make([]byte, 1600), addrOf(r)); err == nil {
		t.Fatal("a write on a closed Conn succeeded")
	}
}
