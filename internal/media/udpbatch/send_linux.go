package udpbatch

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// sysQueue holds the kernel's view of the queue; all of it is allocated
// once, so a flush allocates nothing.
type sysQueue struct {
	msgs    []mmsghdr
	iovs    []unix.Iovec
	names   []unix.RawSockaddrInet6 // large enough for either family
	sent    int                     // messages handed over so far
	pending int                     // messages in this flush
	refused int                     // messages the kernel refused
	sendFn  func(fd uintptr) bool
}

func (q *sysQueue) init(_ *Conn, size int) {
	q.msgs = make([]mmsghdr, size)
	q.iovs = make([]unix.Iovec, size)
	q.names = make([]unix.RawSockaddrInet6, size)
	// A method value made once: RawConn.Write takes a func, and making it
	// per flush would allocate.
	q.sendFn = q.sendmmsg
}

// send fills the message headers for the queued datagrams and hands them
// to the kernel in as few sendmmsg calls as it takes.
func (q *sysQueue) send(c *Conn) {
	n := 0
	for i := range c.n {
		name := &q.names[n]
		namelen, ok := fill(name, c.addrs[i], c.v4)
		if !ok {
			c.failed.Add(1)
			continue
		}
		q.iovs[n].Base = &c.bufs[i][0]
		q.iovs[n].SetLen(c.lens[i])
		h := &q.msgs[n].hdr
		h.Name = (*byte)(unsafe.Pointer(name))
		h.Namelen = namelen
		h.Iov = &q.iovs[n]
		h.SetIovlen(1)
		n++
	}
	if n == 0 {
		return
	}
	q.sent, q.pending, q.refused = 0, n, 0
	if c.twin >= 0 && q.sendmmsg(uintptr(c.twin)) {
		// All of it went on the send-only socket; what did not (its
		// buffer full) goes on the first, whose poller can wait.
		if q.refused > 0 {
			c.failed.Add(uint64(q.refused))
		}
		return
	}
	if err := c.raw.Write(q.sendFn); err != nil {
		// The socket is closed: the rest is lost, as a send on a closed
		// socket would have lost it.
		q.refused += q.pending - q.sent
	}
	if q.refused > 0 {
		c.failed.Add(uint64(q.refused))
	}
}

// sendmmsg runs inside RawConn.Write; returning false waits until the
// socket is writable (its send buffer full) and runs it again.
func (q *sysQueue) sendmmsg(fd uintptr) bool {
	for q.sent < q.pending {
		// A raw system call: the socket is non-blocking (MSG_DONTWAIT),
		// so the call cannot block, only take a while (a batch of 64
		// datagrams is some hundreds of µs). Through Syscall6 the
		// runtime would count it as a blocking call, and past 20 µs its
		// monitor hands the goroutine's P to another thread, which wakes
		// up, finds nothing to run and sleeps again, while this thread
		// must win a P back when the call returns: several thread
		// switches per batch, more CPU than the batch itself saves.
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&q.msgs[q.sent])), uintptr(q.pending-q.sent),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			q.sent += int(r)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			// The first message was refused (an unreachable address,
			// say): skip it and send the rest.
			q.refused++
			q.sent++
		}
	}
	return true
}

// fill writes addr as a socket address of the socket's family into name
// and returns its length; false if the family cannot carry it.
func fill(name *unix.RawSockaddrInet6, addr netip.AddrPort, v4 bool) (uint32, bool) {
	ip := addr.Addr()
	port := addr.Port()
	if v4 {
		if !ip.Unmap().Is4() {
			return 0, false
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
		putPort(&sa.Port, port)
		return unix.SizeofSockaddrInet4, true
	}
	*name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
	putPort(&name.Port, port)
	return unix.SizeofSockaddrInet6, true
}

// putPort stores port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// oneSend sends a datagram written outside a pass (ICE, DTLS, RTCP) as a
// raw sendto, for the reason recvQueue gives: no wake-up of the runtime's
// monitor for a call that cannot block.
type oneSend struct {
	mu      sync.Mutex // the fields below are one call's arguments
	buf     []byte
	name    unix.RawSockaddrInet6
	namelen uint32
	errno   unix.Errno
	fn      func(fd uintptr) bool
}

func (o *oneSend) init() { o.fn = o.sendto }

// writeOne sends b to addr now.
func (c *Conn) writeOne(b []byte, addr netip.AddrPort) (int, error) {
	o := &c.one
	o.mu.Lock()
	defer o.mu.Unlock()
	namelen, ok := fill(&o.name, addr, c.v4)
	if !ok {
		return 0, c.writeErr(addr, errors.New("address family does not match the socket's"))
	}
	o.buf, o.namelen, o.errno = b, namelen, 0
	var err error
	if c.twin < 0 || !o.sendto(uintptr(c.twin)) {
		err = c.raw.Write(o.fn)
	}
	o.buf = nil
	if err != nil {
		return 0, c.writeErr(addr, err)
	}
	if o.errno != 0 {
		return 0, c.writeErr(addr, os.NewSyscallError("sendto", o.errno))
	}
	return len(b), nil
}

func (c *Conn) writeErr(addr netip.AddrPort, err error) error {
	return &net.OpError{Op: "write", Net: "udp", Source: c.conn.LocalAddr(), Addr: net.UDPAddrFromAddrPort(addr), Err: err}
}

// sendto runs inside RawConn.Write; false waits for room in the send buffer.
func (o *oneSend) sendto(fd uintptr) bool {
	var p unsafe.Pointer
	if len(o.buf) > 0 {
		p = unsafe.Pointer(&o.buf[0])
	}
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(p), uintptr(len(o.buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&o.name)), uintptr(o.namelen))
		switch errno {
		case 0:
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			o.errno = errno
			return true
		}
	}
}

// closeTwin closes the send-only socket.
func closeTwin(fd int) { _ = unix.Close(fd) }
