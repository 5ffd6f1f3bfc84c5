package rewrite

import (
	"encoding/binary"
	"testing"
	"time"
)

// base is the arrival time of the first packet in every test.
var base = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

// vp8 describes a VP8 test packet.
type vp8 struct {
	layer  int
	seq    uint16
	ts     uint32
	at     time.Duration // arrival after base
	key    bool          // starts a keyframe
	pid    uint16        // 15-bit picture ID
	tl0    uint8
	marker bool
	ext    bool // carry a one-byte header extension
	pad    int  // padding bytes
}

// ssrcOf gives each layer of the test publisher its own SSRC.
func ssrcOf(layer int) uint32 { return 0x1000 + uint32(layer) }

// build returns the wire bytes of v.
func (v vp8) build() []byte {
	b := make([]byte, 0, 64)
	b0 := byte(0x80)
	if v.ext {
		b0 |= 0x10
	}
	if v.pad > 0 {
		b0 |= 0x20
	}
	b1 := byte(96)
	if v.marker {
		b1 |= 0x80
	}
	b = append(b, b0, b1)
	b = binary.BigEndian.AppendUint16(b, v.seq)
	b = binary.BigEndian.AppendUint32(b, v.ts)
	b = binary.BigEndian.AppendUint32(b, ssrcOf(v.layer))
	if v.ext {
		// RFC 8285 one-byte header: mid "a0" padded to a word.
		b = append(b, 0xbe, 0xde, 0, 1, 0x11, 'a', '0', 0)
	}
	// Descriptor: X, S, PID 0; I, L, T; 15-bit picture ID; TL0PICIDX;
	// TID 0.
	b = append(b, 0x90, 0xe0)
	b = binary.BigEndian.AppendUint16(b, 0x8000|v.pid)
	b = append(b, v.tl0, 0x00)
	if v.key {
		b = append(b, 0x00) // P = 0
	} else {
		b = append(b, 0x01)
	}
	b = append(b, 0xaa, 0xbb, 0xcc)
	for i := range v.pad {
		if i == v.pad-1 {
			b = append(b, byte(v.pad))
		} else {
			b = append(b, 0)
		}
	}
	return b
}

// out is what a test expects of a forwarded packet.
type out struct {
	seq uint16
	ts  uint32
	pid uint16
	tl0 uint8
}

// sent decodes what Rewrite wrote, for comparison with out.
func sent(t *testing.T, b []byte) out {
	t.Helper()
	var p Packet
	if err := Parse(&p, b, VP8, 0, base); err != nil {
		t.Fatalf("output does not parse: %v (%x)", err, b)
	}
	if p.SSRC != 0xabcdef {
		t.Fatalf("output SSRC = %#x, want the subscriber's", p.SSRC)
	}
	if b[0]&0x10 != 0 {
		t.Fatalf("output keeps a header extension: %x", b)
	}
	return out{seq: p.Seq, ts: p.Timestamp, pid: p.vp8.pictureID, tl0: p.vp8.tl0}
}

// step is one event of a table test: a packet in, or a change of target.
type step struct {
	in     *vp8
	target *int
	want   *out // nil: the packet must be dropped
}

func pkt(v vp8, want *out) step { return step{in: &v, want: want} }
func target(l int) step         { return step{target: &l} }
func o(seq uint16, ts uint32, pid uint16, tl0 uint8) *out {
	return &out{seq: seq, ts: ts, pid: pid, tl0: tl0}
}

func newVP8(t testing.TB, first int) *Rewriter {
	t.Helper()
	r, err := New(Options{
		SSRC: 0xabcdef, Codec: VP8, ClockRate: 90000,
		FirstSeq: 1000, FirstTimestamp: 50000, FirstPictureID: 100,
		Target: first,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRewrite(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		first int
		steps []step
	}{
		{"waits for a keyframe, then maps by offset", 0, []step{
			pkt(vp8{seq: 7, ts: 900, pid: 5, tl0: 9}, nil),
			pkt(vp8{seq: 8, ts: 900, key: true, pid: 6, tl0: 10}, o(1000, 50000, 100, 0)),
			pkt(vp8{seq: 9, ts: 900, pid: 6, tl0: 10, ext: true}, o(1001, 50000, 100, 0)),
			pkt(vp8{seq: 10, ts: 3900, pid: 7, tl0: 11, at: 33 * ms}, o(1002, 53000, 101, 1)),
		}},
		{"loss upstream stays a gap", 0, []step{
			pkt(vp8{seq: 100, ts: 0, key: true, pid: 1}, o(1000, 50000, 100, 0)),
			pkt(vp8{seq: 103, ts: 3000, pid: 2}, o(1003, 53000, 101, 0)),
		}},
		{"out of order and duplicates keep their place", 0, []step{
			pkt(vp8{seq: 100, ts: 0, key: true, pid: 1}, o(1000, 50000, 100, 0)),
			pkt(vp8{seq: 102, ts: 3000, pid: 2}, o(1002, 53000, 101, 0)),
			pkt(vp8{seq: 101, ts: 0, pid: 1}, o(1001, 50000, 100, 0)),
			pkt(vp8{seq: 102, ts: 3000, pid: 2}, o(1002, 53000, 101, 0)),
			pkt(vp8{seq: 103, ts: 3000, pid: 2}, o(1003, 53000, 101, 0)),
		}},
		{"sequence numbers wrap at 65535", 0, []step{
			pkt(vp8{seq: 65534, ts: 10, key: true, pid: 1}, o(1000, 50000, 100, 0)),
			pkt(vp8{seq: 65535, ts: 10, pid: 1}, o(1001, 50000, 100, 0)),
			pkt(vp8{seq: 0, ts: 10, pid: 1}, o(1002, 50000, 100, 0)),
			pkt(vp8{seq: 1, ts: 3010, pid: 2}, o(1003, 53000, 101, 0)),
		}},
		{"timestamps wrap", 0, []step{
			pkt(vp8{seq: 1, ts: 0xffffff00, key: true, pid: 1}, o(1000, 50000, 100, 0)),
			pkt(vp8{seq: 2, ts: 0x00000100, pid: 2}, o(1001, 50000+0x200, 101, 0)),
		}},
		{"picture ID wraps at 15 bits", 0, []step{
			pkt(vp8{seq: 1, ts: 0, key: true, pid: 0x7fff}, o(1000, 50000, 100, 0)),
			pkt(vp8{seq: 2, ts: 3000, pid: 0}, o(1001, 53000, 101, 0)),
		}},
		{"switch up at a keyframe of the target layer", 0, []step{
			pkt(vp8{layer: 0, seq: 500, ts: 1000, key: true, pid: 40, tl0: 7}, o(1000, 50000, 100, 0)),
			pkt(vp8{layer: 0, seq: 501, ts: 4000, pid: 41, tl0: 8, at: 33 * ms}, o(1001, 53000, 101, 1)),
			target(2),
			// The new layer's packets before its keyframe are not
			// forwarded; the old layer keeps flowing meanwhile.
			pkt(vp8{layer: 2, seq: 9000, ts: 77000, pid: 900, tl0: 30, at: 40 * ms}, nil),
			pkt(vp8{layer: 0, seq: 502, ts: 7000, pid: 42, tl0: 9, at: 66 * ms}, o(1002, 56000, 102, 2)),
			// Keyframe on layer 2, 34 ms after the last forwarded
			// packet: 34 ms at 90 kHz is 3060 ticks.
			pkt(vp8{layer: 2, seq: 9001, ts: 80000, key: true, pid: 901, tl0: 31, at: 100 * ms}, o(1003, 59060, 103, 3)),
			pkt(vp8{layer: 2, seq: 9002, ts: 80000, pid: 901, tl0: 31, at: 101 * ms}, o(1004, 59060, 103, 3)),
			// The old layer is dropped after the switch.
			pkt(vp8{layer: 0, seq: 503, ts: 10000, pid: 43, tl0: 10, at: 102 * ms}, nil),
			pkt(vp8{layer: 2, seq: 9003, ts: 83000, pid: 902, tl0: 32, at: 133 * ms}, o(1005, 62060, 104, 4)),
		}},
		{"switch down", 2, []step{
			pkt(vp8{layer: 2, seq: 10, ts: 0, key: true, pid: 5, tl0: 1}, o(1000, 50000, 100, 0)),
			pkt(vp8{layer: 2, seq: 11, ts: 3000, pid: 6, tl0: 2, at: 33 * ms}, o(1001, 53000, 101, 1)),
			target(0),
			pkt(vp8{layer: 0, seq: 60000, ts: 123, key: true, pid: 77, tl0: 200, at: 40 * ms}, o(1002, 53630, 102, 2)),
			pkt(vp8{layer: 2, seq: 12, ts: 6000, pid: 7, tl0: 3, at: 41 * ms}, nil),
			pkt(vp8{layer: 0, seq: 60001, ts: 3123, pid: 78, tl0: 201, at: 73 * ms}, o(1003, 56630, 103, 3)),
		}},
		{"a late packet of the old layer keeps its place", 0, []step{
			pkt(vp8{layer: 0, seq: 20, ts: 0, key: true, pid: 1}, o(1000, 50000, 100, 0)),
			pkt(vp8{layer: 0, seq: 22, ts: 0, pid: 1}, o(1002, 50000, 100, 0)),
			target(1),
			pkt(vp8{layer: 1, seq: 300, ts: 5000, key: true, pid: 50, tl0: 4, at: 10 * ms}, o(1003, 50900, 101, 1)),
			// 21 was lost and comes late (or is retransmitted).
			pkt(vp8{layer: 0, seq: 21, ts: 0, pid: 1, at: 11 * ms}, o(1001, 50000, 100, 0)),
			// 23 never was forwarded; its place now belongs to layer 1.
			pkt(vp8{layer: 0, seq: 23, ts: 0, pid: 1, at: 12 * ms}, nil),
			// A packet of the new layer from before the switch point.
			pkt(vp8{layer: 1, seq: 299, ts: 2000, pid: 49, at: 13 * ms}, nil),
		}},
		{"no layer forwards nothing, and resumes at a keyframe", 0, []step{
			pkt(vp8{seq: 1, ts: 0, key: true, pid: 1}, o(1000, 50000, 100, 0)),
			target(NoLayer),
			pkt(vp8{seq: 2, ts: 3000, key: true, pid: 2, at: 33 * ms}, nil),
			target(0),
			pkt(vp8{seq: 3, ts: 6000, pid: 3, at: 66 * ms}, nil),
			pkt(vp8{seq: 4, ts: 9000, key: true, pid: 4, at: 1000 * ms}, o(1001, 140000, 101, 1)),
		}},
		{"a restart of the publisher's numbering resyncs at a keyframe", 0, []step{
			pkt(vp8{seq: 100, ts: 0, key: true, pid: 1}, o(1000, 50000, 100, 0)),
			pkt(vp8{seq: 40000, ts: 0, pid: 9, at: 10 * ms}, nil),
			pkt(vp8{seq: 40001, ts: 0, key: true, pid: 9, at: 20 * ms}, o(1001, 51800, 101, 1)),
			pkt(vp8{seq: 40002, ts: 0, pid: 9, at: 21 * ms}, o(1002, 51800, 101, 1)),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newVP8(t, tc.first)
			dst := make([]byte, 1500)
			for i, s := range tc.steps {
				if s.target != nil {
					r.SetTarget(*s.target)
					continue
				}
				var p Packet
				if err := Parse(&p, s.in.build(), VP8, s.in.layer, base.Add(s.in.at)); err != nil {
					t.Fatalf("step %d: Parse: %v", i, err)
				}
				n := r.Rewrite(dst, &p)
				switch {
				case s.want == nil && n != 0:
					t.Fatalf("step %d: forwarded %+v, want dropped", i, sent(t, dst[:n]))
				case s.want != nil && n == 0:
					t.Fatalf("step %d: dropped, want %+v", i, *s.want)
				case s.want != nil:
					if got := sent(t, dst[:n]); got != *s.want {
						t.Fatalf("step %d: got %+v, want %+v", i, got, *s.want)
					}
				}
			}
		})
	}
}

func TestHeaderExtensionAndPaddingHandled(t *testing.T) {
	r := newVP8(t, 0)
	in := vp8{seq: 5, key: true, ext: true, pad: 4}.build()
	var p Packet
	if err := Parse(&p, in, VP8, 0, base); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 1500)
	n := r.Rewrite(dst, &p)
	if n != len(in)-8 {
		t.Fatalf("output is %d bytes, want %d (input less its 8-byte extension)", n, len(in)-8)
	}
	if dst[0]&0x20 == 0 || dst[n-1] != 4 {
		t.Fatalf("padding lost: %x", dst[:n])
	}
	// The payload (from the descriptor on) is unchanged but for the
	// rewritten picture ID and TL0PICIDX.
	if got, want := dst[12+4:n], in[20+4:]; string(got) != string(want) {
		t.Fatalf("payload changed: %x, want %x", got, want)
	}
	if n := r.Rewrite(dst[:10], &p); n != 0 {
		t.Fatalf("Rewrite into a short buffer = %d, want 0", n)
	}
}

func TestWantKeyframe(t *testing.T) {
	r := newVP8(t, 1)
	if l, ok := r.WantKeyframe(); !ok || l != 1 {
		t.Fatalf("WantKeyframe before any packet = %d, %v; want 1, true", l, ok)
	}
	var p Packet
	must(t, Parse(&p, vp8{layer: 1, seq: 1, key: true}.build(), VP8, 1, base))
	r.Rewrite(make([]byte, 1500), &p)
	if _, ok := r.WantKeyframe(); ok {
		t.Fatal("WantKeyframe after the switch still true")
	}
	r.SetTarget(2)
	if l, ok := r.WantKeyframe(); !ok || l != 2 {
		t.Fatalf("WantKeyframe after SetTarget(2) = %d, %v", l, ok)
	}
	if cur, tgt := r.Layers(); cur != 1 || tgt != 2 {
		t.Fatalf("Layers = %d, %d; want 1, 2", cur, tgt)
	}
	r.SetTarget(NoLayer)
	if _, ok := r.WantKeyframe(); ok {
		t.Fatal("WantKeyframe with no target is true")
	}
}

func TestLookup(t *testing.T) {
	r := newVP8(t, 0)
	dst := make([]byte, 1500)
	feed := func(layer int, seq uint16, key bool) {
		t.Helper()
		var p Packet
		must(t, Parse(&p, vp8{layer: layer, seq: seq, key: key}.build(), VP8, layer, base))
		if r.Rewrite(dst, &p) == 0 {
			t.Fatalf("packet %d/%d dropped", layer, seq)
		}
	}
	feed(0, 65530, true) // out 1000
	for s := uint16(65531); s != 4; s++ {
		feed(0, s, false) // out 1001..1009, across the input wrap
	}
	r.SetTarget(2)
	feed(2, 700, true) // out 1010
	feed(2, 701, false)
	r.SetTarget(1)
	feed(1, 65535, true) // out 1012
	feed(1, 0, false)    // out 1013

	for _, tc := range []struct {
		seq   uint16
		layer int
		pub   uint16
		ok    bool
	}{
		{1000, 0, 65530, true},
		{1006, 0, 0, true},
		{1009, 0, 3, true},
		{1010, 2, 700, true},
		{1011, 2, 701, true},
		{1012, 1, 65535, true},
		{1013, 1, 0, true},
		{1014, 0, 0, false}, // not sent yet
		{999, 0, 0, false},  // before the first packet
	} {
		layer, pub, ok := r.Lookup(tc.seq)
		if ok != tc.ok || (ok && (layer != tc.layer || pub != tc.pub)) {
			t.Errorf("Lookup(%d) = %d, %d, %v; want %d, %d, %v", tc.seq, layer, pub, ok, tc.layer, tc.pub, tc.ok)
		}
	}
}

func TestAudioForwardsAtOnce(t *testing.T) {
	r, err := New(Options{SSRC: 0xabcdef, Codec: Audio, ClockRate: 48000, FirstSeq: 1, FirstTimestamp: 2})
	if err != nil {
		t.Fatal(err)
	}
	raw := vp8{seq: 77, ts: 960}.build()
	var p Packet
	must(t, Parse(&p, raw, Audio, 0, base))
	dst := make([]byte, 1500)
	n := r.Rewrite(dst, &p)
	if n != len(raw) {
		t.Fatalf("audio packet: wrote %d bytes, want %d", n, len(raw))
	}
	if seq, ts := binary.BigEndian.Uint16(dst[2:]), binary.BigEndian.Uint32(dst[4:]); seq != 1 || ts != 2 {
		t.Fatalf("audio packet: seq %d ts %d, want 1 2", seq, ts)
	}
	if string(dst[12:n]) != string(raw[12:]) {
		t.Fatal("audio payload changed")
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []Options{
		{Codec: 0, ClockRate: 90000},
		{Codec: VP8},
		{Codec: VP8, ClockRate: 90000, Target: -2},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted invalid options", o)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestZeroAllocations(t *testing.T) {
	r := newVP8(t, 0)
	raw := vp8{seq: 1, key: true, ext: true}.build()
	dst := make([]byte, 1500)
	seq := uint16(1)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(raw[2:], seq)
		var p Packet
		if err := Parse(&p, raw, VP8, 0, base); err != nil {
			t.Fatal(err)
		}
		r.Rewrite(dst, &p)
		r.Lookup(seq)
	})
	if allocs != 0 {
		t.Fatalf("Parse+Rewrite+Lookup allocate %.1f times per packet, want 0", allocs)
	}
}

func BenchmarkParseVP8(b *testing.B) {
	raw := vp8{seq: 1, ext: true}.build()
	raw = append(raw, make([]byte, 1100)...)
	b.ReportAllocs()
	var p Packet
	for b.Loop() {
		if err := Parse(&p, raw, VP8, 0, base); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrite(b *testing.B) {
	r := newVP8(b, 0)
	raw := vp8{seq: 1, key: true, ext: true}.build()
	raw = append(raw, make([]byte, 1100)...)
	var p Packet
	must(b, Parse(&p, raw, VP8, 0, base))
	dst := make([]byte, 1500)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		p.Seq++
		if r.Rewrite(dst, &p) == 0 {
			b.Fatalf("packet %d dropped", p.Seq)
		}
	}
}

// TestLongRun sends more than a whole sequence space through one layer: a
// run longer than half the space must not start to look "older" than its
// own start.
func TestLongRun(t *testing.T) {
	r := newVP8(t, 0)
	raw := vp8{seq: 40000, key: true}.build()
	var p Packet
	must(t, Parse(&p, raw, VP8, 0, base))
	dst := make([]byte, 1500)
	for i := range 140000 {
		if r.Rewrite(dst, &p) == 0 {
			t.Fatalf("packet %d of the run dropped", i)
		}
		if got, want := binary.BigEndian.Uint16(dst[2:]), uint16(1000+i); got != want {
			t.Fatalf("packet %d: seq %d, want %d", i, got, want)
		}
		p.Seq++
	}
}
