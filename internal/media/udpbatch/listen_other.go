//go:build !linux

package udpbatch

import "net"

// Listen opens a UDP socket on laddr and wraps it, with bufBytes of
// kernel buffer each way (0 leaves the system's default).
func Listen(network string, laddr *net.UDPAddr, bufBytes, size int) (*Conn, error) {
	uc, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return wrap(uc, bufBytes, size)
}
