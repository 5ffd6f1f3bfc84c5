//go:build !linux

package udpbatch

import "net/netip"

// recvQueue reads datagram by datagram where recvmmsg does not exist.
type recvQueue struct{}

func (q *recvQueue) init() {}

func (c *Conn) read(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(b)
		if err != nil || !c.diverted(b[:n], from) {
			return n, from, err
		}
	}
}
