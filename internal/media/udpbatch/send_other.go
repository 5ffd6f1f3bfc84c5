//go:build !linux

package udpbatch

import (
	"net/netip"
	"sync"
)

// sysQueue sends datagram by datagram where sendmmsg does not exist.
type sysQueue struct{}

func (q *sysQueue) init(*Conn, int) {}

// setSegmenting reports that there is no segmentation offload.
func (q *sysQueue) setSegmenting(bool) bool { return false }

func (q *sysQueue) send(c *Conn) {
	for i := range c.n {
		if _, err := c.conn.WriteToUDPAddrPort(c.bufs[i][:c.lens[i]], c.addrs[i]); err != nil {
			c.failed.Add(1)
		}
	}
}

// oneSend needs no state where writes go through the socket itself; mu
// is Close's, as on Linux.
type oneSend struct{ mu sync.Mutex }

func (o *oneSend) init() {}

func (c *Conn) writeOne(b []byte, addr netip.AddrPort) (int, error) {
	return c.conn.WriteToUDPAddrPort(b, addr)
}

// closeTwin is never called: only Linux has a send-only socket.
func closeTwin(int) {}
