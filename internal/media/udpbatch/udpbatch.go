// Package udpbatch sends the datagrams of one forwarding pass in one system
// call, and reads what has arrived several datagrams per call.
//
// Forwarding one publisher packet to N subscribers is N datagrams from one
// socket (the SFU's ICE UDP mux) to N addresses. Sent one by one, the
// sendto system call costs more than everything else on the path put
// together; Linux's sendmmsg sends many datagrams, to different addresses,
// in one call. A Conn wraps the mux's UDP socket: between Begin and End
// (one forwarding pass) writes are copied into a preallocated queue, and
// End sends the queue at once. Outside a pass, writes go straight out, so
// ICE and DTLS traffic is never held back. On Linux, consecutive queued
// datagrams to one address that the kernel can cut from one message (one
// size, the last possibly shorter) leave as that one message, with UDP
// segmentation offload (see send_linux.go). On systems without sendmmsg the
// queue is sent datagram by datagram, which is correct, only slower.
//
// On Linux every call on the socket is a raw system call (see recvQueue):
// the socket is non-blocking, so none can block.
package udpbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultSize is the number of datagrams queued before the queue is sent
// even though the pass has not ended: large enough to amortise the system
// call, small enough to stay within the socket's send buffer.
const DefaultSize = 64

// maxDatagram is the largest datagram queued; larger ones (none in WebRTC,
// whose packets stay under the MTU) are sent directly.
const maxDatagram = 1500

// Conn is a UDP socket whose writes can be batched. It implements
// net.PacketConn and the AddrPort read and write methods that Pion's ICE
// UDP mux uses to avoid allocations.
type Conn struct {
	conn *net.UDPConn
	raw  syscall.RawConn
	v4   bool // the socket is AF_INET, not AF_INET6

	mu     sync.Mutex
	passes int // Begin calls not yet ended
	closed bool
	n      int // datagrams queued
	bufs   [][maxDatagram]byte
	lens   []int
	addrs  []netip.AddrPort
	sys    sysQueue

	one    oneSend   // writes outside a pass
	recv   recvQueue // reads
	divert atomic.Pointer[Divert]
	// twin is the send-only socket of Listen on Linux, -1 without one.
	// Written with mu and one.mu held, read with either.
	twin int

	batches   atomic.Uint64
	datagram  atomic.Uint64
	failed    atomic.Uint64
	segmented atomic.Uint64
}

// New wraps conn, whose writes from now on must go through the returned
// Conn. size is the queue length; DefaultSize if zero.
func New(conn *net.UDPConn, size int) (*Conn, error) {
	if size == 0 {
		size = DefaultSize
	}
	if size < 1 || size > 1024 {
		return nil, fmt.Errorf("udpbatch: size %d is not between 1 and 1024", size)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udpbatch: %w", err)
	}
	la, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil, fmt.Errorf("udpbatch: local address %v is not UDP", conn.LocalAddr())
	}
	c := &Conn{
		twin:  -1,
		conn:  conn,
		raw:   raw,
		v4:    la.IP.To4() != nil && !la.IP.IsUnspecified(),
		bufs:  make([][maxDatagram]byte, size),
		lens:  make([]int, size),
		addrs: make([]netip.AddrPort, size),
	}
	c.sys.init(c, size)
	c.one.init()
	c.recv.init()
	return c, nil
}

// Divert is given every datagram read before the socket's reader sees
// it, with its sender, and returns whether it took it: a datagram taken
// is not returned by the read. It runs on the reading goroutine, one
// datagram at a time, and may change b, which is not kept after it
// returns.
type Divert func(b []byte, from netip.AddrPort) bool

// SetDivert sets the function that datagrams are offered to before a
// read returns them; nil offers them to nobody. It may be called while a
// read waits.
func (c *Conn) SetDivert(f Divert) {
	if f == nil {
		c.divert.Store(nil)
		return
	}
	c.divert.Store(&f)
}

// diverted offers a datagram to the divert function.
func (c *Conn) diverted(b []byte, from netip.AddrPort) bool {
	f := c.divert.Load()
	return f != nil && (*f)(b, from)
}

// wrap sizes a socket Listen opened and wraps it, closing it on failure.
func wrap(uc *net.UDPConn, bufBytes, size int) (*Conn, error) {
	if bufBytes > 0 {
		_ = uc.SetReadBuffer(bufBytes)
		_ = uc.SetWriteBuffer(bufBytes)
	}
	c, err := New(uc, size)
	if err != nil {
		_ = uc.Close()
		return nil, err
	}
	return c, nil
}

// Begin starts a forwarding pass: writes are queued until End.
func (c *Conn) Begin() {
	c.mu.Lock()
	c.passes++
	c.mu.Unlock()
}

// End ends a pass and sends everything queued.
func (c *Conn) End() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.passes > 0 {
		c.passes--
	}
	c.flush()
}

// Stats returns how many batches and datagrams were sent through the queue
// and how many datagrams the kernel refused.
func (c *Conn) Stats() (batches, datagrams, failed uint64) {
	return c.batches.Load(), c.datagram.Load(), c.failed.Load()
}

// Segmented returns how many of the datagrams sent through the queue left
// in messages of several, cut by the kernel (segmentation offload).
func (c *Conn) Segmented() uint64 { return c.segmented.Load() }

// SetSegmenting turns segmentation offload on or off and reports whether
// it is on: it is on from New where the kernel has it (Linux 4.18), and
// goes off by itself when a route refuses it.
func (c *Conn) SetSegmenting(on bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sys.setSegmenting(on)
}

// WriteToAddrPort sends b to addr, or queues a copy during a pass. A queued
// datagram that the kernel later refuses is counted in Stats, not
// reported: UDP gives no delivery guarantee either way.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if len(b) <= maxDatagram {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, &net.OpError{Op: "write", Net: "udp", Err: net.ErrClosed}
		}
		if c.passes > 0 {
			i := c.n
			c.lens[i] = copy(c.bufs[i][:], b)
			c.addrs[i] = addr
			c.n++
			if c.n == len(c.bufs) {
				c.flush()
			}
			c.mu.Unlock()
			return len(b), nil
		}
		c.mu.Unlock()
	}
	return c.writeOne(b, addr)
}

// WriteTo implements net.PacketConn.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errors.New("not a UDP address")}
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// ReadFromAddrPort reads one datagram. Several may be read from the
// kernel at once and handed out one per call.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.read(b)
}

// ReadFrom implements net.PacketConn.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.read(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// Close sends what is queued and closes the socket.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.flush()
	c.closed = true
	c.one.mu.Lock()
	twin := c.twin
	c.twin = -1
	c.one.mu.Unlock()
	c.mu.Unlock()
	if twin >= 0 {
		closeTwin(twin)
	}
	return c.conn.Close()
}

// Socket returns the socket the Conn reads from, for what the Conn does
// not wrap (its buffers, its options). Writes must not bypass the Conn.
func (c *Conn) Socket() *net.UDPConn { return c.conn }

// LocalAddr implements net.PacketConn.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// SetDeadline implements net.PacketConn.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline implements net.PacketConn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// flush sends the queue; c.mu is held.
func (c *Conn) flush() {
	if c.n == 0 {
		return
	}
	c.batches.Add(1)
	c.datagram.Add(uint64(c.n))
	c.sys.send(c)
	c.n = 0
}
