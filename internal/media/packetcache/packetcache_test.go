package packetcache

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
)

// packet builds a distinguishable fake RTP packet for seq.
func packet(seq uint16, size int) []byte {
	p := make([]byte, size)
	p[0] = 0x80
	binary.BigEndian.PutUint16(p[2:], seq)
	for i := 12; i < size; i++ {
		p[i] = byte(int(seq) + i)
	}
	return p
}

func mustNew(t testing.TB, opts Options) *Cache {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return c
}

func TestNewValidatesOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"one", Options{Size: 1}, true},
		{"max", Options{Size: MaxSize}, true},
		{"not power of two", Options{Size: 100}, false},
		{"negative", Options{Size: -4}, false},
		{"too big", Options{Size: MaxSize * 2}, false},
		{"tiny packets", Options{MaxPacket: 8}, false},
		{"huge packets", Options{MaxPacket: 70000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.opts)
			if (err == nil) != tc.ok {
				t.Fatalf("New(%+v) error = %v, want ok=%v", tc.opts, err, tc.ok)
			}
			if tc.ok && tc.opts.Size == 0 && c.Size() != DefaultSize {
				t.Fatalf("Size() = %d, want %d", c.Size(), DefaultSize)
			}
		})
	}
}

func TestStoreGet(t *testing.T) {
	c := mustNew(t, Options{Size: 8, MaxPacket: 200})
	buf := make([]byte, 200)
	if n := c.Get(0, buf); n != 0 {
		t.Fatalf("Get on empty cache = %d, want 0", n)
	}
	if _, ok := c.Newest(); ok {
		t.Fatal("Newest on empty cache reported a packet")
	}
	for seq := uint16(100); seq < 105; seq++ {
		if !c.Store(seq, packet(seq, 50+int(seq))) {
			t.Fatalf("Store(%d) refused", seq)
		}
	}
	for seq := uint16(100); seq < 105; seq++ {
		n := c.Get(seq, buf)
		if want := packet(seq, 50+int(seq)); !bytes.Equal(buf[:n], want) {
			t.Fatalf("Get(%d) = %d bytes %x, want %x", seq, n, buf[:n], want)
		}
	}
	if n := c.Get(105, buf); n != 0 {
		t.Fatalf("Get of a packet never stored (ahead) = %d, want 0", n)
	}
	if n := c.Get(99, buf); n != 0 {
		t.Fatalf("Get of a packet never stored (behind) = %d, want 0", n)
	}
	if n := c.Get(100, buf[:10]); n != 0 {
		t.Fatalf("Get into a short buffer = %d, want 0", n)
	}
	if newest, _ := c.Newest(); newest != 104 {
		t.Fatalf("Newest = %d, want 104", newest)
	}
}

func TestOverwriteEvictsOldest(t *testing.T) {
	c := mustNew(t, Options{Size: 4, MaxPacket: 100})
	buf := make([]byte, 100)
	for seq := uint16(0); seq < 10; seq++ {
		c.Store(seq, packet(seq, 40))
	}
	for seq := uint16(0); seq < 6; seq++ {
		if n := c.Get(seq, buf); n != 0 {
			t.Errorf("Get(%d) after eviction = %d, want 0", seq, n)
		}
	}
	for seq := uint16(6); seq < 10; seq++ {
		if n := c.Get(seq, buf); n != 40 || !bytes.Equal(buf[:n], packet(seq, 40)) {
			t.Errorf("Get(%d) = %d bytes, want the stored packet", seq, n)
		}
	}
}

func TestWrapAround(t *testing.T) {
	c := mustNew(t, Options{Size: 16, MaxPacket: 100})
	buf := make([]byte, 100)
	start := uint16(65530)
	for i := range 12 {
		seq := start + uint16(i) // wraps to 0..5
		if !c.Store(seq, packet(seq, 30)) {
			t.Fatalf("Store(%d) refused", seq)
		}
	}
	if newest, _ := c.Newest(); newest != 5 {
		t.Fatalf("Newest across the wrap = %d, want 5", newest)
	}
	for i := range 12 {
		seq := start + uint16(i)
		if n := c.Get(seq, buf); n != 30 || !bytes.Equal(buf[:n], packet(seq, 30)) {
			t.Fatalf("Get(%d) across the wrap = %d bytes, want the stored packet", seq, n)
		}
	}
	if n := c.Get(6, buf); n != 0 {
		t.Fatalf("Get(6), never stored, = %d", n)
	}
}

func TestLateAndDuplicatePackets(t *testing.T) {
	c := mustNew(t, Options{Size: 4, MaxPacket: 100})
	buf := make([]byte, 100)
	for seq := uint16(10); seq < 14; seq++ {
		c.Store(seq, packet(seq, 20))
	}
	// A packet older than everything held would evict seq 12 (same slot
	// as 8); it is refused and 12 stays.
	if c.Store(8, packet(8, 20)) {
		t.Fatal("Store of a packet older than the window was accepted")
	}
	if n := c.Get(12, buf); n != 20 {
		t.Fatalf("Get(12) after a refused late packet = %d, want 20", n)
	}
	// A late packet inside the window (reordered) is kept, and does not
	// move Newest back.
	c.Store(15, packet(15, 20))
	if !c.Store(14, packet(14, 25)) {
		t.Fatal("Store of a reordered packet in the window was refused")
	}
	if newest, _ := c.Newest(); newest != 15 {
		t.Fatalf("Newest after a reordered packet = %d, want 15", newest)
	}
	// A duplicate replaces its copy.
	c.Store(15, packet(15, 33))
	if n := c.Get(15, buf); n != 33 {
		t.Fatalf("Get(15) after a duplicate = %d, want 33", n)
	}
	if c.Store(16, nil) || c.Store(16, make([]byte, 101)) {
		t.Fatal("Store accepted an empty or oversized packet")
	}
}

func TestReset(t *testing.T) {
	c := mustNew(t, Options{Size: 4})
	c.Store(1000, packet(1000, 20))
	c.Reset()
	if n := c.Get(1000, make([]byte, 100)); n != 0 {
		t.Fatalf("Get after Reset = %d", n)
	}
	// After a reset a stream may restart anywhere, even far behind.
	if !c.Store(3, packet(3, 20)) {
		t.Fatal("Store after Reset refused")
	}
}

func TestConcurrentReaders(t *testing.T) {
	c := mustNew(t, Options{Size: 64, MaxPacket: 100})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 100)
			for i := range 2000 {
				seq := uint16(i)
				if n := c.Get(seq, buf); n != 0 && !bytes.Equal(buf[:n], packet(seq, 40)) {
					t.Errorf("Get(%d) returned a torn packet", seq)
					return
				}
			}
		})
	}
	for seq := range uint16(2000) {
		c.Store(seq, packet(seq, 40))
	}
	wg.Wait()
}

func TestZeroAllocations(t *testing.T) {
	c := mustNew(t, Options{Size: 256})
	p := packet(1, 1200)
	buf := make([]byte, 1500)
	seq := uint16(0)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		c.Store(seq, p)
		c.Get(seq-10, buf)
	})
	if allocs != 0 {
		t.Fatalf("Store+Get allocate %.1f times per packet, want 0", allocs)
	}
}

func BenchmarkStore(b *testing.B) {
	c := mustNew(b, Options{Size: 1024})
	p := packet(1, 1200)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	seq := uint16(0)
	for b.Loop() {
		seq++
		c.Store(seq, p)
	}
}

func BenchmarkGet(b *testing.B) {
	c := mustNew(b, Options{Size: 1024})
	for seq := range uint16(1024) {
		c.Store(seq, packet(seq, 1200))
	}
	buf := make([]byte, 1500)
	b.SetBytes(1200)
	b.ReportAllocs()
	seq := uint16(0)
	for b.Loop() {
		seq++
		c.Get(seq&1023, buf)
	}
}
