package cli

import "testing"

// TestSeqTrack follows a stream through a gap, its late repair, a
// duplicate and the wrap of the 16-bit numbers: the window's loss counts
// the numbers still missing, whenever the repairs came.
func TestSeqTrack(t *testing.T) {
	s := newSeqTrack()
	if lo, hi := s.window(s.mark(), s.mark()); hi-lo != 0 {
		t.Fatalf("window of a stream that has not started: (%d, %d]", lo, hi)
	}
	from := s.mark()
	for _, q := range []uint16{65530, 65531, 65533, 65534, 65535, 0, 3, 4} { // 65532, 1 and 2 lost
		s.add(q)
	}
	to := s.mark()
	lo, hi := s.window(from, to)
	if hi-lo != 11 {
		t.Fatalf("window (%d, %d] holds %d numbers, want 11 (65530 to 4)", lo, hi, hi-lo)
	}
	if n := s.missingIn(lo, hi); n != 3 {
		t.Fatalf("%d missing, want 3", n)
	}
	s.add(1)     // a retransmission after the window
	s.add(1)     // and again: a duplicate
	s.add(65532) // from before the wrap
	s.add(5)     // after the window: not in it
	if n := s.missingIn(lo, hi); n != 1 {
		t.Fatalf("%d missing after the repairs, want 1 (2)", n)
	}
	// A later window starts at the mark and counts only its own numbers.
	from = to
	s.add(7) // 6 lost
	lo, hi = s.window(from, s.mark())
	if hi-lo != 3 || s.missingIn(lo, hi) != 1 {
		t.Fatalf("second window (%d, %d]: %d missing, want 3 numbers and 1 missing", lo, hi, s.missingIn(lo, hi))
	}
}
