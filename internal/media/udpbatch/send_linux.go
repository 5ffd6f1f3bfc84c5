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

// Segmentation offload (UDP_SEGMENT, Linux 4.18): consecutive queued
// datagrams to one address, all of one size but the last, which may be
// shorter, leave as one message that the kernel cuts into datagrams as
// late as it can, at the device or, on loopback, at the receiving socket.
// The route, the IP and UDP layers and the device are then crossed once
// per message, not once per datagram. The forwarding pass writes a
// subscriber's packets of one layer one after the other, and the packets
// of one video frame are split to one size but the last, so a frame to a
// subscriber is one message.
const (
	// maxSegments is the kernel's limit per message (UDP_MAX_SEGMENTS).
	maxSegments = 64
	// maxSegment is the largest datagram cut from a message: a message
	// whose segments do not fit the route's MTU is refused outright, where
	// a datagram alone would be fragmented. WebRTC's packets stay under
	// 1,200 bytes and any Ethernet path carries 1,452 over IPv6.
	maxSegment = 1400
	// maxMessage bounds a message's payload under a UDP length's 65,535.
	maxMessage = 65000
)

// sysQueue holds the kernel's view of the queue; all of it is allocated
// once, so a flush allocates nothing.
type sysQueue struct {
	c         *Conn
	msgs      []mmsghdr
	iovs      []unix.Iovec            // one per queued datagram
	names     []unix.RawSockaddrInet6 // one per message; large enough for either family
	ctrls     []byte                  // a UDP_SEGMENT control message per message
	first     []int                   // the first queued datagram of each message
	segs      []int                   // the datagrams each message carries
	gso       bool                    // runs leave as one message
	sent      int                     // messages handed over so far
	pending   int                     // messages in this flush
	refused   int                     // datagrams the kernel refused
	segmented int                     // datagrams it took in messages of several
	sendFn    func(fd uintptr) bool
}

func (q *sysQueue) init(c *Conn, size int) {
	q.c = c
	q.msgs = make([]mmsghdr, size)
	q.iovs = make([]unix.Iovec, size)
	q.names = make([]unix.RawSockaddrInet6, size)
	q.ctrls = make([]byte, size*unix.CmsgSpace(2))
	q.first = make([]int, size)
	q.segs = make([]int, size)
	// A method value made once: RawConn.Write takes a func, and making it
	// per flush would allocate.
	q.sendFn = q.sendmmsg
	q.gso = q.kernelSegments()
}

// kernelSegments reports whether the kernel has UDP_SEGMENT: the option
// reads back only where it knows it.
func (q *sysQueue) kernelSegments() bool {
	ok := false
	_ = q.c.raw.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// setSegmenting turns segmentation offload on or off; c.mu is held. It
// stays off where the kernel lacks it.
func (q *sysQueue) setSegmenting(on bool) bool {
	q.gso = on && q.kernelSegments()
	return q.gso
}

// send fills the message headers for the queued datagrams and hands them
// to the kernel in as few sendmmsg calls as it takes.
func (q *sysQueue) send(c *Conn) {
	n := q.build(0, 0, false)
	if n == 0 {
		return
	}
	q.sent, q.pending, q.refused, q.segmented = 0, n, 0, 0
	if c.twin >= 0 && q.sendmmsg(uintptr(c.twin)) {
		// All of it went on the send-only socket; what did not (its
		// buffer full) goes on the first, whose poller can wait.
		q.count()
		return
	}
	if err := c.raw.Write(q.sendFn); err != nil {
		// The socket is closed: the rest is lost, as a send on a closed
		// socket would have lost it.
		for m := q.sent; m < q.pending; m++ {
			q.refused += q.segs[m]
		}
	}
	q.count()
}

// count adds the outcome of a flush to the Conn's statistics.
func (q *sysQueue) count() {
	if q.refused > 0 {
		q.c.failed.Add(uint64(q.refused))
	}
	if q.segmented > 0 {
		q.c.segmented.Add(uint64(q.segmented))
	}
}

// build fills message headers from message m on, for the queued
// datagrams from i on, and returns the number of messages. A datagram
// whose address the socket cannot reach is counted as failed the first
// time (again says it is the second).
func (q *sysQueue) build(i, m int, again bool) int {
	c := q.c
	for i < c.n {
		name := &q.names[m]
		namelen, ok := fill(name, c.addrs[i], c.v4)
		if !ok {
			if !again {
				c.failed.Add(1)
			}
			i++
			continue
		}
		k := 1
		if q.gso {
			k = run(c.lens[i:c.n], c.addrs[i:c.n])
		}
		for j := i; j < i+k; j++ {
			q.iovs[j].Base = &c.bufs[j][0]
			q.iovs[j].SetLen(c.lens[j])
		}
		h := &q.msgs[m].hdr
		h.Name = (*byte)(unsafe.Pointer(name))
		h.Namelen = namelen
		h.Iov = &q.iovs[i]
		h.SetIovlen(k)
		if k > 1 {
			space := unix.CmsgSpace(2)
			ctrl := q.ctrls[m*space : (m+1)*space]
			cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
			cm.Level = unix.IPPROTO_UDP
			cm.Type = unix.UDP_SEGMENT
			cm.SetLen(unix.CmsgLen(2))
			*(*uint16)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)])) = uint16(c.lens[i])
			h.Control = &ctrl[0]
			h.SetControllen(space)
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		q.first[m], q.segs[m] = i, k
		i += k
		m++
	}
	return m
}

// run returns how many of the datagrams, from the first on, can leave as
// one message: to the first's address, each of the first's size but the
// last, which may be shorter and ends the run.
func run(lens []int, addrs []netip.AddrPort) int {
	size := lens[0]
	if size > maxSegment || size == 0 {
		return 1
	}
	k, total := 1, size
	for k < len(lens) && k < maxSegments {
		l := lens[k]
		if addrs[k] != addrs[0] || l > size || l == 0 || total+l > maxMessage {
			break
		}
		k++
		total += l
		if l < size {
			break
		}
	}
	return k
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
			for m := q.sent; m < q.sent+int(r); m++ {
				if q.segs[m] > 1 {
					q.segmented += q.segs[m]
				}
			}
			q.sent += int(r)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		case unix.EIO, unix.EINVAL:
			if q.segs[q.sent] > 1 {
				// The route refuses segmentation (a device without
				// checksum offload, an MTU under the segment size):
				// the rest of the flush, and the Conn from now on,
				// go datagram by datagram.
				q.gso = false
				q.pending = q.build(q.first[q.sent], q.sent, true)
				continue
			}
			q.refused++
			q.sent++
		default:
			// The first message was refused (an unreachable address,
			// say): skip it and send the rest.
			q.refused += q.segs[q.sent]
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
