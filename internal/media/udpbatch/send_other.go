//go:build !linux

package udpbatch

// sysQueue sends datagram by datagram where sendmmsg does not exist.
type sysQueue struct{}

func (q *sysQueue) init(*Conn, int) {}

func (q *sysQueue) send(c *Conn) {
	for i := range c.n {
		if _, err := c.conn.WriteToUDPAddrPort(c.bufs[i][:c.lens[i]], c.addrs[i]); err != nil {
			c.failed.Add(1)
		}
	}
}
