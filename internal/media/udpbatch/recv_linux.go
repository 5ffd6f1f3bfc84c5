package udpbatch

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvBatch is how many datagrams one recvmmsg may return: the ones that
// queued up while the reader was busy, typically a few.
const recvBatch = 16

// recvSize is the size of a queued datagram's buffer: as large as the one
// Pion's ICE mux reads into, so that batching truncates nothing it would
// not have.
const recvSize = 8192

// recvQueue reads datagrams with recvmmsg, as raw system calls.
//
// Reads go through raw calls for the same reason as sendmmsg: a read
// through Go's syscall package first tells the runtime it enters a
// system call, and when the process was idle just before (the usual case
// for a server woken by a packet), that wakes the runtime's monitor
// thread out of its deep sleep and sets it polling every 20 µs again.
// On a 50-person class that was thousands of extra thread wake-ups a
// second on the media core. The socket is non-blocking, so a raw call
// cannot block; waiting for data stays with the runtime's poller.
type recvQueue struct {
	mu     sync.Mutex // one reader at a time: the queue is shared state
	msgs   []mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6
	bufs   [][]byte // bufs[0] is unused: the first datagram goes straight into the caller's buffer
	next   int      // queued datagrams are msgs[next:got]
	got    int
	errno  unix.Errno
	readFn func(fd uintptr) bool
}

func (q *recvQueue) init() {
	q.msgs = make([]mmsghdr, recvBatch)
	q.iovs = make([]unix.Iovec, recvBatch)
	q.names = make([]unix.RawSockaddrInet6, recvBatch)
	q.bufs = make([][]byte, recvBatch)
	for i := 1; i < recvBatch; i++ {
		q.bufs[i] = make([]byte, recvSize)
	}
	for i := range q.msgs {
		h := &q.msgs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&q.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = &q.iovs[i]
		h.SetIovlen(1)
		if i > 0 {
			// The kernel reads the iovecs and never writes them: these
			// stay as set here.
			q.iovs[i].Base = &q.bufs[i][0]
			q.iovs[i].SetLen(recvSize)
		}
	}
	q.readFn = q.recvmmsg
}

// read returns the next datagram not diverted: a queued one if any, else
// the first of a new batch, read into b directly.
func (c *Conn) read(b []byte) (int, netip.AddrPort, error) {
	q := &c.recv
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for q.next < q.got {
			i := q.next
			q.next++
			from := addrFrom(&q.names[i])
			pkt := q.bufs[i][:q.msgs[i].len]
			if c.diverted(pkt, from) {
				continue
			}
			return copy(b, pkt), from, nil
		}
		if len(b) == 0 {
			// recvmmsg would drop the datagram into an empty buffer; a
			// zero read must not lose one, so it takes the plain path.
			return c.conn.ReadFromUDPAddrPort(b)
		}
		n, from, err := c.readBatch(b)
		if err != nil || !c.diverted(b[:n], from) {
			return n, from, err
		}
	}
}

// readBatch reads a new batch, its first datagram into b, and returns
// that one; q.mu is held.
func (c *Conn) readBatch(b []byte) (int, netip.AddrPort, error) {
	q := &c.recv
	q.iovs[0].Base = &b[0]
	q.iovs[0].SetLen(len(b))
	// The address lengths are value-result: only the messages the last
	// call filled were shortened (to an IPv4 address's) and need their
	// room back.
	for i := range q.got {
		q.msgs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	}
	q.next, q.got, q.errno = 0, 0, 0
	if err := c.raw.Read(q.readFn); err != nil {
		// Closed, or past the read deadline: the errors a read on the
		// socket itself returns.
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: c.conn.LocalAddr(), Err: err}
	}
	if q.errno != 0 {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Source: c.conn.LocalAddr(), Err: q.errno}
	}
	q.next = 1
	return int(q.msgs[0].len), addrFrom(&q.names[0]), nil
}

// recvmmsg runs inside RawConn.Read; returning false waits until the
// socket is readable and runs it again.
func (q *recvQueue) recvmmsg(fd uintptr) bool {
	for {
		r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&q.msgs[0])), recvBatch, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			q.got = int(r)
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			q.errno = errno
			return true
		}
	}
}

// addrFrom reads the sender's address the kernel wrote into name, in the
// form Go's own UDP reads give it (IPv4 senders on an IPv6 socket stay
// v4-mapped).
func addrFrom(name *unix.RawSockaddrInet6) netip.AddrPort {
	switch name.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), getPort(&sa.Port))
	case unix.AF_INET6:
		ip := netip.AddrFrom16(name.Addr)
		if name.Scope_id != 0 {
			zone := strconv.Itoa(int(name.Scope_id))
			if ifi, err := net.InterfaceByIndex(int(name.Scope_id)); err == nil {
				zone = ifi.Name
			}
			ip = ip.WithZone(zone)
		}
		return netip.AddrPortFrom(ip, getPort(&name.Port))
	}
	return netip.AddrPort{}
}

// getPort reads a port stored in network byte order.
func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
