package hls

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// The loopback UDP ports between the packager and ffmpeg, read from the
// kernel's table where ffmpeg says nothing.

// freePortPairs returns two even UDP ports on loopback whose odd
// neighbours (ffmpeg's RTCP ports) are free too. ffmpeg binds them itself
// from the SDP, so they are released before it starts: another process
// could take one in between, and the run would then fail and be retried
// with new ports.
func freePortPairs() (int, int, error) {
	var held []*net.UDPConn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < 2 && tries < 100; tries++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
		if err != nil {
			return 0, 0, fmt.Errorf("hls: free UDP port: %w", err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port+1 > 65535 {
			c.Close()
			continue
		}
		c2, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: port + 1})
		if err != nil {
			c.Close()
			continue
		}
		held = append(held, c, c2)
		ports = append(ports, port)
	}
	if len(ports) < 2 {
		return 0, 0, errors.New("hls: no free pair of UDP ports")
	}
	return ports[0], ports[1], nil
}

func dialLoopback(port int) (*net.UDPConn, error) {
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	return c, nil
}

// portsBound reports whether some socket is bound to each of the ports,
// from the kernel's table (ffmpeg says nothing when it has bound them):
// the local address column only, "ADDR:PORT" in hex.
func portsBound(ports ...int) bool {
	data, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false
	}
	found := 0
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			continue
		}
		for _, p := range ports {
			if int(port) == p {
				found++
			}
		}
	}
	return found >= len(ports)
}

// socketDrops reads the drop counters of the current run's sockets from
// the kernel's table: a packet sent to a full socket on loopback is
// dropped by the receiving side, so the sender never hears of it.
func (p *Packager) socketDrops() uint64 {
	r := p.run.Load()
	if r == nil || !r.ready.Load() {
		return 0
	}
	data, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0
	}
	var drops uint64
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		// sl local rem st queues tr retrnsmt uid timeout inode ref pointer drops
		if len(fields) < 13 || fields[3] != "07" {
			continue // ffmpeg's sockets are unconnected (07); ours are connected
		}
		_, hexPort, _ := strings.Cut(fields[1], ":")
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || (int(port) != r.ports[0] && int(port) != r.ports[1]) {
			continue
		}
		if n, err := strconv.ParseUint(fields[12], 10, 64); err == nil {
			drops += n
		}
	}
	return drops
}
