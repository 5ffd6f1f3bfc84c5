package fanout

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/liveclass/liveclass/internal/media/keyframe"
	"github.com/liveclass/liveclass/internal/media/packetcache"
	"github.com/liveclass/liveclass/internal/media/rewrite"
)

// source generates the VP8 packets of one simulcast layer: frames of
// perFrame packets, a keyframe every keyEvery frames, 30 frames a second.
type source struct {
	layer     int
	seq       uint16
	ts        uint32
	pid       uint16
	frame     int
	inFrame   int
	perFrame  int
	keyEvery  int
	size      int
	forceKey  bool
	buf       []byte
	arrival   time.Time
	frameTime time.Duration
}

func newSource(layer int, seq uint16, size int) *source {
	return &source{
		layer: layer, seq: seq, ts: uint32(seq) * 7, pid: seq,
		perFrame: 3, keyEvery: 100, size: size,
		buf:       make([]byte, size),
		arrival:   time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC),
		frameTime: time.Second / 30,
		forceKey:  true,
	}
}

// next returns the next packet (valid until the following call) and
// whether it starts a keyframe.
func (s *source) next() ([]byte, bool) {
	first := s.inFrame == 0
	key := first && (s.forceKey || s.frame%s.keyEvery == 0)
	if first {
		s.forceKey = false
	}
	b := s.buf
	b[0] = 0x80
	b[1] = 96
	if s.inFrame == s.perFrame-1 {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], s.ts)
	binary.BigEndian.PutUint32(b[8:], 0x5000+uint32(s.layer))
	// VP8 descriptor: X, S only on the first packet; I with a 15-bit
	// picture ID.
	b[12] = 0x80
	if first {
		b[12] |= 0x10
	}
	b[13] = 0x80
	binary.BigEndian.PutUint16(b[14:], 0x8000|s.pid&0x7fff)
	if key {
		b[16] = 0x00
	} else {
		b[16] = 0x01
	}
	s.seq++
	s.inFrame++
	if s.inFrame == s.perFrame {
		s.inFrame = 0
		s.frame++
		s.pid++
		s.ts += 3000
		s.arrival = s.arrival.Add(s.frameTime)
	}
	return b, key
}

// recorder is a Writer that keeps copies of what it receives.
type recorder struct {
	mu      sync.Mutex
	packets [][]byte
	err     error
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	r.packets = append(r.packets, slices.Clone(b))
	return len(b), nil
}

func (r *recorder) seqs() []uint16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint16
	for _, p := range r.packets {
		out = append(out, binary.BigEndian.Uint16(p[2:]))
	}
	return out
}

// plis records the keyframe requests a Forwarder makes.
type plis struct {
	mu     sync.Mutex
	layers []int
}

func (p *plis) request(layer int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.layers = append(p.layers, layer)
}

func (p *plis) get() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.layers)
}

// fakeClock is a clock the tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newForwarder(t testing.TB, layers int, pl *plis) *Forwarder {
	f, _ := newForwarderClock(t, layers, pl)
	return f
}

func newForwarderClock(t testing.TB, layers int, pl *plis) (*Forwarder, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
	f, err := New(Options{
		Codec: rewrite.VP8, ClockRate: 90000, Layers: layers,
		Keyframe:        keyframe.Options{Now: clock.Now},
		RequestKeyframe: pl.request,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, clock
}

func TestForwardToSubscribers(t *testing.T) {
	var pl plis
	f, clock := newForwarderClock(t, 3, &pl)
	var a, b recorder
	sa, err := f.Add(SubscriberOptions{Name: "a", Writer: &a, SSRC: 1, FirstSeq: 100, Layer: 0})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := f.Add(SubscriberOptions{Name: "b", Writer: &b, SSRC: 2, FirstSeq: 65534, Layer: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Two subscribers joining ask once per layer they wait for.
	if got := pl.get(); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("keyframe requests on join = %v, want [0 2]", got)
	}
	l0, l2 := newSource(0, 1000, 200), newSource(2, 50000, 1000)
	for range 9 {
		for _, s := range []*source{l0, l2} {
			raw, _ := s.next()
			if err := f.Forward(s.layer, raw, s.arrival); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := a.seqs(), []uint16{100, 101, 102, 103, 104, 105, 106, 107, 108}; !slices.Equal(got, want) {
		t.Fatalf("subscriber a got %v, want %v", got, want)
	}
	if got, want := b.seqs(), []uint16{65534, 65535, 0, 1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("subscriber b got %v, want %v", got, want)
	}
	for _, p := range b.packets {
		if len(p) != 1000 || binary.BigEndian.Uint32(p[8:]) != 2 {
			t.Fatalf("subscriber b got a packet of %d bytes with SSRC %d", len(p), binary.BigEndian.Uint32(p[8:]))
		}
	}
	if sent, failed := sa.Stats(); sent != 9 || failed != 0 {
		t.Fatalf("a: sent %d failed %d", sent, failed)
	}

	// a moves up to layer 2: the last PLI for layer 2 was just now, so
	// the request waits out the interval, then is sent by Forward.
	if err := sa.SetLayer(2); err != nil {
		t.Fatal(err)
	}
	if got := pl.get(); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("keyframe requests right after a switch = %v, want [0 2]", got)
	}
	clock.advance(keyframe.DefaultInterval)
	raw, _ := l0.next()
	must(t, f.Forward(0, raw, l0.arrival))
	if got := pl.get(); !slices.Equal(got, []int{0, 2, 2}) {
		t.Fatalf("keyframe requests after the interval = %v, want [0 2 2]", got)
	}
	l2.forceKey = true
	for range 3 {
		for _, s := range []*source{l0, l2} {
			raw, _ := s.next()
			if err := f.Forward(s.layer, raw, s.arrival); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, want := a.seqs()[9:], []uint16{109, 110, 111, 112, 113}; !slices.Equal(got, want) {
		t.Fatalf("a after the switch got %v, want %v", got, want)
	}
	if cur, _ := sa.Layers(); cur != 2 {
		t.Fatalf("a is on layer %d after the keyframe, want 2", cur)
	}
	if f.Len() != 2 {
		t.Fatalf("Len = %d", f.Len())
	}
	f.Remove(sb)
	f.Remove(sb)
	if f.Len() != 1 {
		t.Fatalf("Len after Remove = %d", f.Len())
	}
	n := len(b.seqs())
	raw, _ = l2.next()
	if err := f.Forward(2, raw, l2.arrival); err != nil {
		t.Fatal(err)
	}
	if len(b.seqs()) != n {
		t.Fatal("a removed subscriber still receives packets")
	}
}

func TestRetransmit(t *testing.T) {
	var pl plis
	f := newForwarder(t, 2, &pl)
	var a recorder
	s, err := f.Add(SubscriberOptions{Name: "a", Writer: &a, SSRC: 1, FirstSeq: 10, Layer: 0})
	if err != nil {
		t.Fatal(err)
	}
	l0, l1 := newSource(0, 65533, 300), newSource(1, 7, 300)
	for range 5 {
		raw, _ := l0.next()
		must(t, f.Forward(0, raw, l0.arrival))
	}
	must(t, s.SetLayer(1))
	l1.forceKey = true
	for range 3 {
		raw, _ := l1.next()
		must(t, f.Forward(1, raw, l1.arrival))
	}
	// Out 10..14 came from layer 0 (65533..1), 15..17 from layer 1 (7..9).
	for _, tc := range []struct {
		seq  uint16
		ok   bool
		from uint16 // publisher sequence number expected in the payload
	}{
		{12, true, 65535}, {14, true, 1}, {16, true, 8}, {18, false, 0}, {9, false, 0},
	} {
		before := len(a.seqs())
		if got := s.Retransmit(tc.seq); got != tc.ok {
			t.Fatalf("Retransmit(%d) = %v, want %v", tc.seq, got, tc.ok)
		}
		if !tc.ok {
			continue
		}
		seqs := a.seqs()
		if len(seqs) != before+1 || seqs[before] != tc.seq {
			t.Fatalf("Retransmit(%d) sent %v", tc.seq, seqs[before:])
		}
	}
	// A retransmission of a packet gone from the cache fails cleanly.
	f.Cache(0).Reset()
	if s.Retransmit(12) {
		t.Fatal("Retransmit of an evicted packet succeeded")
	}
}

func TestKeyframeRequestsThrottled(t *testing.T) {
	var pl plis
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f, err := New(Options{
		Codec: rewrite.VP8, ClockRate: 90000, Layers: 1,
		Keyframe:        keyframe.Options{Interval: 500 * time.Millisecond, Timeout: time.Second, Now: clock},
		RequestKeyframe: pl.request,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	must(t, err)
	for i := range 40 {
		if _, err := f.Add(SubscriberOptions{Name: "s", Writer: &recorder{}, SSRC: uint32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got := pl.get(); len(got) != 1 {
		t.Fatalf("40 joins asked %d times, want once", len(got))
	}
	// No keyframe comes: Forward re-asks after the timeout.
	src := newSource(0, 1, 100)
	src.forceKey = false
	src.frame = 1
	for range 10 {
		raw, key := src.next()
		if key {
			t.Fatal("source sent a keyframe")
		}
		must(t, f.Forward(0, raw, src.arrival))
	}
	if got := pl.get(); len(got) != 1 {
		t.Fatalf("asked %d times before the timeout, want once", len(got))
	}
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	raw, _ := src.next()
	must(t, f.Forward(0, raw, src.arrival))
	if got := pl.get(); len(got) != 2 {
		t.Fatalf("asked %d times after the timeout, want twice", len(got))
	}
	if req, sent := f.KeyframeStats(0); req != 40 || sent != 2 {
		t.Fatalf("KeyframeStats = %d, %d; want 40, 2", req, sent)
	}
}

func TestFailingSubscriberDoesNotStopOthers(t *testing.T) {
	var pl plis
	f := newForwarder(t, 1, &pl)
	bad := &recorder{err: errors.New("connection closed")}
	var good recorder
	sbad, _ := f.Add(SubscriberOptions{Name: "bad", Writer: bad})
	if _, err := f.Add(SubscriberOptions{Name: "good", Writer: &good}); err != nil {
		t.Fatal(err)
	}
	src := newSource(0, 1, 100)
	for range 5 {
		raw, _ := src.next()
		must(t, f.Forward(0, raw, src.arrival))
	}
	if len(good.seqs()) != 5 {
		t.Fatalf("good subscriber got %d packets, want 5", len(good.seqs()))
	}
	if sent, failed := sbad.Stats(); sent != 0 || failed != 5 {
		t.Fatalf("bad subscriber: sent %d failed %d", sent, failed)
	}
}

func TestBadInput(t *testing.T) {
	var pl plis
	f := newForwarder(t, 2, &pl)
	var r recorder
	if _, err := f.Add(SubscriberOptions{Name: "r", Writer: &r}); err != nil {
		t.Fatal(err)
	}
	if err := f.Forward(2, make([]byte, 20), time.Now()); !errors.Is(err, ErrLayer) {
		t.Fatalf("Forward to layer 2 of 2: %v", err)
	}
	if err := f.Forward(0, []byte{0x80, 96}, time.Now()); !errors.Is(err, rewrite.ErrShort) {
		t.Fatalf("Forward of a short packet: %v", err)
	}
	if err := f.Forward(0, make([]byte, 1501), time.Now()); err == nil {
		t.Fatal("Forward of an oversized packet succeeded")
	}
	if _, err := f.Add(SubscriberOptions{Name: "x", Writer: &r, Layer: 5}); !errors.Is(err, ErrLayer) {
		t.Fatalf("Add on layer 5: %v", err)
	}
	if _, err := f.Add(SubscriberOptions{Name: "x"}); err == nil {
		t.Fatal("Add without a writer succeeded")
	}
	if f.Cache(7) != nil {
		t.Fatal("Cache of a missing layer is not nil")
	}
	for _, o := range []Options{
		{Codec: rewrite.VP8, ClockRate: 90000, Layers: 0, RequestKeyframe: pl.request, Logger: slog.Default()},
		{Codec: rewrite.VP8, ClockRate: 90000, Layers: 1, Logger: slog.Default()},
		{Codec: rewrite.VP8, ClockRate: 90000, Layers: 1, RequestKeyframe: pl.request},
		{Codec: 0, ClockRate: 90000, Layers: 1, RequestKeyframe: pl.request, Logger: slog.Default()},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted invalid options", o)
		}
	}
	if len(r.seqs()) != 0 {
		t.Fatal("bad input reached a subscriber")
	}
}

// discarding returns a one-layer Forwarder with 10 subscribers whose
// writers drop everything.
func discarding(t *testing.T) *Forwarder {
	t.Helper()
	var pl plis
	f := newForwarder(t, 1, &pl)
	for range 10 {
		if _, err := f.Add(SubscriberOptions{Name: "d", Writer: discard{}}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestForwardAllocatesNothing(t *testing.T) {
	f := discarding(t)
	src := newSource(0, 1, 1200)
	allocs := testing.AllocsPerRun(1000, func() {
		raw, _ := src.next()
		if err := f.Forward(0, raw, src.arrival); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Forward to 10 subscribers allocates %.1f times per packet, want 0", allocs)
	}
}

// discard is a Writer that drops everything, to measure Forward alone.
type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkForwardNoNetwork measures the forwarding logic alone: parse,
// cache, rewrite for each subscriber, with writers that drop the packet.
func BenchmarkForwardNoNetwork(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			var pl plis
			f := newForwarder(b, 1, &pl)
			for range n {
				if _, err := f.Add(SubscriberOptions{Name: "d", Writer: discard{}}); err != nil {
					b.Fatal(err)
				}
			}
			src := newSource(0, 1, 1200)
			b.ReportAllocs()
			for b.Loop() {
				raw, _ := src.next()
				if err := f.Forward(0, raw, src.arrival); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pkt/sub")
		})
	}
}

// TestConcurrentUse runs what the SFU runs at once: one read loop per
// layer forwarding, NACKs being answered, layers being chosen, and
// subscribers joining and leaving. The race detector checks it.
func TestConcurrentUse(t *testing.T) {
	var pl plis
	f := newForwarder(t, 3, &pl)
	var subs []*Subscriber
	var recs []*recorder
	for i := range 4 {
		r := &recorder{}
		s, err := f.Add(SubscriberOptions{Name: fmt.Sprint("s", i), Writer: r, Layer: i % 3})
		must(t, err)
		subs, recs = append(subs, s), append(recs, r)
	}
	var wg sync.WaitGroup
	for layer := range 3 {
		wg.Go(func() {
			src := newSource(layer, uint16(layer*1000), 200)
			src.keyEvery = 5
			for range 600 {
				raw, _ := src.next()
				if err := f.Forward(layer, raw, src.arrival); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 600 {
			s := subs[i%len(subs)]
			s.Retransmit(uint16(i))
			if i%50 == 0 {
				if err := s.SetLayer(i / 50 % 3); err != nil {
					t.Error(err)
				}
			}
		}
	})
	wg.Go(func() {
		for range 100 {
			s, err := f.Add(SubscriberOptions{Name: "short", Writer: &recorder{}})
			if err != nil {
				t.Error(err)
				return
			}
			f.Remove(s)
		}
	})
	wg.Wait()
	if f.Len() != 4 {
		t.Fatalf("Len = %d after the joins and leaves, want 4", f.Len())
	}
	for i, r := range recs {
		if len(r.seqs()) == 0 {
			t.Fatalf("subscriber %d received nothing", i)
		}
	}
}

func TestHandleRTCP(t *testing.T) {
	var pl plis
	f, clock := newForwarderClock(t, 2, &pl)
	var a recorder
	s, err := f.Add(SubscriberOptions{Name: "a", Writer: &a, FirstSeq: 500, Layer: 1})
	must(t, err)
	src := newSource(1, 40, 300)
	for range 20 {
		raw, _ := src.next()
		must(t, f.Forward(1, raw, src.arrival))
	}
	// Out 500..519 were sent. NACK 502 with 503, 505 and 518 in its
	// bitmap, and 530, which was never sent.
	n := s.HandleRTCP([]rtcp.Packet{
		&rtcp.ReceiverReport{},
		&rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{
			{PacketID: 502, LostPackets: 1<<0 | 1<<2 | 1<<15},
			{PacketID: 530},
		}},
	})
	if n != 4 {
		t.Fatalf("HandleRTCP retransmitted %d packets, want 4", n)
	}
	if got, want := a.seqs()[20:], []uint16{502, 503, 505, 518}; !slices.Equal(got, want) {
		t.Fatalf("retransmitted %v, want %v", got, want)
	}
	// A PLI asks for a keyframe of the subscriber's layer, through the
	// throttle: the join's request was just now, so this one waits.
	before := len(pl.get())
	s.HandleRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{}})
	if len(pl.get()) != before {
		t.Fatal("a PLI right after the join's keyframe went out unthrottled")
	}
	clock.advance(keyframe.DefaultInterval)
	s.HandleRTCP([]rtcp.Packet{&rtcp.FullIntraRequest{}})
	if got := pl.get(); len(got) != before+1 || got[len(got)-1] != 1 {
		t.Fatalf("keyframe requests after a FIR = %v, want one more for layer 1", got)
	}
}

// TestLayerCacheSizes checks that each layer's cache takes its own size
// where one is given, and Cache.Size past the list.
func TestLayerCacheSizes(t *testing.T) {
	f, err := New(Options{
		Codec: rewrite.VP8, ClockRate: 90000, Layers: 3,
		Cache:           packetcache.Options{Size: 16},
		LayerCacheSizes: []int{4, 8},
		RequestKeyframe: func(int) {},
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for layer, want := range []int{4, 8, 16} {
		if got := f.Cache(layer).Size(); got != want {
			t.Fatalf("layer %d: cache of %d, want %d", layer, got, want)
		}
	}
	_, err = New(Options{
		Codec: rewrite.VP8, ClockRate: 90000, Layers: 2, LayerCacheSizes: []int{3},
		RequestKeyframe: func(int) {}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Fatalf("a cache size that is not a power of two: %v", err)
	}
}
