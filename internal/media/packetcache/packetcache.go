// Package packetcache keeps the most recent RTP packets of one published
// stream so that a lost packet can be sent again when a subscriber asks for
// it with a NACK.
//
// One Cache belongs to one published stream (one SSRC) and is shared by all
// of that stream's subscribers. Pion's default NACK responder keeps 1,024
// packets per stream per subscriber, which is most of the 2.7 MB a default
// subscriber connection costs; a shared cache makes that a per-publisher
// cost instead. Subscribers translate their own sequence numbers back to the
// publisher's (see package rewrite) before they look a packet up.
//
// The cache is a direct-mapped ring: the packet with sequence number s lives
// in slot s mod Size, so Store and Get are O(1), and all packet memory is
// allocated once by New, so neither allocates.
package packetcache

import (
	"fmt"
	"sync"
)

// DefaultSize is the number of packets a cache holds when Options.Size is
// zero: at 2.5 Mbps of 1,200-byte packets that is about 1.7 s of video,
// longer than any round trip a retransmission can still rescue.
const DefaultSize = 512

// DefaultMaxPacket is the largest packet stored when Options.MaxPacket is
// zero: the RTP packets WebRTC stacks send stay below a 1,500-byte MTU.
const DefaultMaxPacket = 1500

// MaxSize bounds Options.Size: more than half the sequence space would make
// "older than the newest by Size" ambiguous across the wrap at 65535.
const MaxSize = 1 << 15

// Options configure a Cache. The zero value gives DefaultSize packets of up
// to DefaultMaxPacket bytes.
type Options struct {
	// Size is the number of packets kept; a power of two up to MaxSize.
	Size int
	// MaxPacket is the largest packet stored, in bytes; larger ones are
	// refused by Store.
	MaxPacket int
}

// slot describes one cached packet; its bytes live in Cache.buf.
type slot struct {
	seq    uint16
	length uint16 // 0 when the slot is empty
}

// Cache holds the last Size packets of one RTP stream. It is safe for one
// writer and any number of concurrent readers.
type Cache struct {
	mu        sync.Mutex
	mask      uint16
	maxPacket int
	slots     []slot
	buf       []byte // len(slots) * maxPacket bytes, slot i at i*maxPacket
	newest    uint16 // highest sequence number stored, in RTP order
	started   bool   // whether newest is meaningful
}

// New returns an empty cache with all its memory allocated.
func New(opts Options) (*Cache, error) {
	size := opts.Size
	if size == 0 {
		size = DefaultSize
	}
	if size < 1 || size > MaxSize || size&(size-1) != 0 {
		return nil, fmt.Errorf("packetcache: size %d is not a power of two between 1 and %d", size, MaxSize)
	}
	maxPacket := opts.MaxPacket
	if maxPacket == 0 {
		maxPacket = DefaultMaxPacket
	}
	if maxPacket < 12 || maxPacket > 0xffff {
		return nil, fmt.Errorf("packetcache: max packet %d is not between 12 and 65535 bytes", maxPacket)
	}
	return &Cache{
		mask:      uint16(size - 1),
		maxPacket: maxPacket,
		slots:     make([]slot, size),
		buf:       make([]byte, size*maxPacket),
	}, nil
}

// Size returns the number of packets the cache can hold.
func (c *Cache) Size() int { return len(c.slots) }

// MaxPacket returns the largest packet Store accepts, in bytes.
func (c *Cache) MaxPacket() int { return c.maxPacket }

// Store copies packet, the whole RTP packet whose sequence number is seq,
// into the cache, replacing the packet Size sequence numbers older that
// shared its slot. It returns false, storing nothing, when the packet is
// empty or larger than MaxPacket, or when it is so late that it is older than
// everything the cache holds (storing it would evict a newer packet).
func (c *Cache) Store(seq uint16, packet []byte) bool {
	if len(packet) == 0 || len(packet) > c.maxPacket {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.started = true
		c.newest = seq
	} else if d := seq - c.newest; d < 0x8000 {
		// seq is newer than (or equal to) everything seen, in RTP order.
		c.newest = seq
	} else if c.newest-seq > c.mask {
		return false
	}
	i := int(seq & c.mask)
	off := i * c.maxPacket
	copy(c.buf[off:off+c.maxPacket], packet)
	c.slots[i] = slot{seq: seq, length: uint16(len(packet))}
	return true
}

// Get copies the packet with sequence number seq into buf and returns its
// length, or returns 0 when the cache no longer (or never) held it or when
// buf is too small for it.
func (c *Cache) Get(seq uint16, buf []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started || c.newest-seq > c.mask {
		// Too old (evicted) or ahead of the newest packet (never seen).
		return 0
	}
	i := int(seq & c.mask)
	s := c.slots[i]
	if s.length == 0 || s.seq != seq || int(s.length) > len(buf) {
		return 0
	}
	off := i * c.maxPacket
	return copy(buf, c.buf[off:off+int(s.length)])
}

// Newest returns the highest sequence number stored, and false when nothing
// has been stored yet.
func (c *Cache) Newest() (uint16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newest, c.started
}

// Reset empties the cache, keeping its memory, for a stream that restarts
// its sequence numbers (a publisher that reconnects with the same SSRC).
func (c *Cache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.slots)
	c.started = false
	c.newest = 0
}
