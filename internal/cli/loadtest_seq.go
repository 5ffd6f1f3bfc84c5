package cli

import (
	"sync"
	"sync/atomic"
)

// seqTrack follows the sequence numbers of one received RTP stream, so
// that the loss of a window counts the packets sent in it that never
// arrived, retransmissions included, whenever they come. Counting
// received against expected packets between two instants instead counts
// as lost every packet whose NACK was still on its way at the window's
// end: on a loaded machine, where repairs take a second, that is several
// per cent of a short window, for packets that did arrive.
//
// Only the stream's read loop calls add; window and missingIn may be
// called from any goroutine.
type seqTrack struct {
	// first and highest are extended sequence numbers (the 16-bit
	// number with its wraps counted); -1 before the first packet.
	first, highest atomic.Int64

	mu sync.Mutex
	// missing holds the extended numbers above first and below highest
	// that have not arrived yet; at most maxMissing, the oldest dropped.
	missing map[int64]struct{}
}

// maxMissing bounds what a seqTrack remembers of a stream whose packets
// stop arriving: 2¹⁵ numbers, beyond which the 16-bit numbers become
// ambiguous anyway.
const maxMissing = 1 << 15

func newSeqTrack() *seqTrack {
	s := &seqTrack{missing: map[int64]struct{}{}}
	s.first.Store(-1)
	s.highest.Store(-1)
	return s
}

// add records the arrival of seq.
func (s *seqTrack) add(seq uint16) {
	h := s.highest.Load()
	if h < 0 {
		// Far from zero, so that a late packet from before the first
		// extends to a positive number.
		ext := int64(1<<20) + int64(seq)
		s.first.Store(ext)
		s.highest.Store(ext)
		return
	}
	ext := h + int64(int16(seq-uint16(h)))
	switch {
	case ext == h:
		// A duplicate of the newest.
	case ext > h:
		if ext > h+1 {
			s.mu.Lock()
			for n := max(h+1, ext-maxMissing); n < ext; n++ {
				s.missing[n] = struct{}{}
			}
			if len(s.missing) > maxMissing {
				for n := range s.missing {
					if n < ext-maxMissing {
						delete(s.missing, n)
					}
				}
			}
			s.mu.Unlock()
		}
		s.highest.Store(ext)
	default:
		// Late, or a retransmission: one hole fewer (or a duplicate).
		s.mu.Lock()
		delete(s.missing, ext)
		s.mu.Unlock()
	}
}

// mark returns the newest extended number so far, the bound of a window;
// for a stream that has not started, the number before its first packet,
// whenever it comes (-1 until then).
func (s *seqTrack) mark() int64 { return s.highest.Load() }

// window returns the range of numbers sent between two marks: (from, to].
// A stream that started after from counts from its first packet.
func (s *seqTrack) window(from, to int64) (lo, hi int64) {
	first := s.first.Load()
	if first < 0 {
		return 0, 0 // nothing arrived
	}
	from = max(from, first-1)
	return from, max(to, from)
}

// missingIn counts the numbers in (lo, hi] that have not arrived.
func (s *seqTrack) missingIn(lo, hi int64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	if hi-lo < int64(len(s.missing)) {
		for x := lo + 1; x <= hi; x++ {
			if _, ok := s.missing[x]; ok {
				n++
			}
		}
		return n
	}
	for x := range s.missing {
		if x > lo && x <= hi {
			n++
		}
	}
	return n
}
