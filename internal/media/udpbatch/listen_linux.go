package udpbatch

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listen opens a UDP socket on laddr and wraps it, with bufBytes of
// kernel buffer each way (0 leaves the system's default).
//
// On Linux the Conn sends from a second socket bound to the same address
// (SO_REUSEPORT), which only sends: a reuseport program steers every
// datagram arriving on the port to the first socket. The first socket is
// registered with the runtime's poller for reading, and every datagram it
// sent would, when the kernel freed it, wake that registration for
// "writable" — a wake-up of the poller's epoll per datagram, for a state
// nobody waits on. The second socket is never registered, so its frees
// wake nobody. A send that finds its buffer full falls back to the first
// socket, which can wait.
func Listen(network string, laddr *net.UDPAddr, bufBytes, size int) (*Conn, error) {
	if laddr.Port != 0 {
		// SO_REUSEPORT would let another socket of the same user bind
		// the port without an error; a plain bind first finds a port
		// already in use, as it did before.
		probe, err := net.ListenUDP(network, laddr)
		if err != nil {
			return nil, err
		}
		_ = probe.Close()
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr.String())
	if err != nil {
		return nil, err
	}
	c, err := wrap(pc.(*net.UDPConn), bufBytes, size)
	if err != nil {
		return nil, err
	}
	fd, err := sendSocket(c, bufBytes)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	c.twin = fd
	return c, nil
}

// sendSocket opens the send-only twin of c's socket: same family, same
// address, the reuseport group steered to c's socket.
func sendSocket(c *Conn, bufBytes int) (int, error) {
	var (
		local   unix.Sockaddr
		family  int
		v6only  int
		sockErr error
	)
	if err := c.raw.Control(func(fd uintptr) {
		local, sockErr = unix.Getsockname(int(fd))
		if sockErr != nil {
			return
		}
		if _, ok := local.(*unix.SockaddrInet6); ok {
			family = unix.AF_INET6
			v6only, sockErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		} else {
			family = unix.AF_INET
		}
	}); err != nil {
		return -1, err
	}
	if sockErr != nil {
		return -1, fmt.Errorf("udpbatch: %w", sockErr)
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, fmt.Errorf("udpbatch: send socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("udpbatch: send socket: %s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("SO_REUSEPORT", err)
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return fail("IPV6_V6ONLY", err)
		}
	}
	if bufBytes > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, bufBytes)
	}
	if err := unix.Bind(fd, local); err != nil {
		return fail("bind", err)
	}
	// Classic BPF "return 0": every datagram to the group goes to its
	// first socket, the one bound first, which reads.
	filter := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &prog); err != nil {
		return fail("SO_ATTACH_REUSEPORT_CBPF", err)
	}
	return fd, nil
}
