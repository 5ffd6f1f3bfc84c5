package sfu

import (
	"net"
	"net/netip"

	"github.com/liveclass/liveclass/internal/media/udpbatch"
	"github.com/pion/transport/v5"
)

// batchNet is the network the ICE UDP mux binds its sockets through: each
// UDP socket it opens is wrapped in a udpbatch.Conn, so that one forwarding
// pass (one publisher packet to all its subscribers) leaves in one sendmmsg
// instead of one sendto per subscriber. Everything but ListenUDP is the
// standard network's.
type batchNet struct {
	transport.Net
	conns []*udpbatch.Conn // filled while the mux is built, read-only after
}

// ListenUDP opens a socket and wraps it for batching.
func (n *batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	if laddr == nil {
		laddr = &net.UDPAddr{}
	}
	// Room for the bursts of a keyframe sent to a whole class.
	bc, err := udpbatch.Listen(network, laddr, 4<<20, 0)
	if err != nil {
		return nil, err
	}
	n.conns = append(n.conns, bc)
	return &batchedConn{UDPConn: bc.Socket(), b: bc}, nil
}

// batchedConn routes the writes and reads the ICE mux makes through the
// batching Conn; the rest (deadlines, buffers, addresses) goes to the
// socket itself.
type batchedConn struct {
	transport.UDPConn
	b *udpbatch.Conn
}

func (c *batchedConn) WriteTo(p []byte, addr net.Addr) (int, error) { return c.b.WriteTo(p, addr) }

func (c *batchedConn) WriteToUDP(p []byte, addr *net.UDPAddr) (int, error) {
	return c.b.WriteToAddrPort(p, addr.AddrPort())
}

func (c *batchedConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	return c.b.WriteToAddrPort(p, addr)
}

func (c *batchedConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return c.b.ReadFromAddrPort(p)
}

func (c *batchedConn) Close() error { return c.b.Close() }

// batchGroup brackets a forwarding pass on every socket of the mux (one
// per local address): the subscribers of one track may be reached through
// any of them.
type batchGroup []*udpbatch.Conn

// Begin implements fanout.Batch.
func (g batchGroup) Begin() {
	for _, c := range g {
		c.Begin()
	}
}

// End implements fanout.Batch.
func (g batchGroup) End() {
	for _, c := range g {
		c.End()
	}
}
