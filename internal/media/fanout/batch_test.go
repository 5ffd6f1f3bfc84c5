package fanout

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/media/keyframe"
	"github.com/liveclass/liveclass/internal/media/rewrite"
)

// written is one write a subscriber's writer got.
type written struct {
	sub    string
	packet []byte
	at     time.Time
}

// journal is the TimedWriter of several subscribers, keeping their writes
// in the order they came, with the passes around them.
type journal struct {
	writes []written
	passes []int // writes in each pass
	open   bool
}

func (j *journal) Begin() { j.open = true; j.passes = append(j.passes, 0) }
func (j *journal) End()   { j.open = false }

// writer returns the writer of subscriber name.
func (j *journal) writer(name string) TimedWriter { return journalWriter{j, name} }

type journalWriter struct {
	j    *journal
	name string
}

func (w journalWriter) Write(b []byte) (int, error) {
	return 0, errors.New("a forwarded packet written without its arrival")
}

func (w journalWriter) WriteAt(b []byte, at time.Time) (int, error) {
	if !w.j.open {
		return 0, errors.New("a forwarded packet written outside a pass")
	}
	w.j.writes = append(w.j.writes, written{w.name, slices.Clone(b), at})
	w.j.passes[len(w.j.passes)-1]++
	return len(b), nil
}

// TestForwardBatch forwards one stream packet by packet and, to a second
// Forwarder with the same subscribers, in batches: the subscribers get
// the same bytes with the same arrival times, but within a batch each
// subscriber's packets one after the other, in one pass per MaxBatch
// packets; a malformed packet in a batch is dropped and counted.
func TestForwardBatch(t *testing.T) {
	var pl plis
	newF := func(j *journal) *Forwarder {
		f, err := New(Options{
			Codec: rewrite.VP8, ClockRate: 90000, Layers: 2,
			Keyframe:        keyframe.Options{Now: (&fakeClock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}).Now},
			RequestKeyframe: pl.request,
			Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
			Batch:           j,
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"a", "b", "c"} {
			if _, err := f.Add(SubscriberOptions{Name: name, Writer: j.writer(name), SSRC: uint32(i + 1), FirstSeq: uint16(100 * i), Layer: 1}); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	var one, many journal
	fOne, fMany := newF(&one), newF(&many)
	src := newSource(1, 4000, 900)
	sizes := []int{1, 3, 2, MaxBatch + 8, 5}
	var parts []int // packets in each pass of fMany
	for bi, size := range sizes {
		var batch []Arrived
		for range size {
			raw, _ := src.next()
			batch = append(batch, Arrived{Raw: bytes.Clone(raw), At: src.arrival})
			if err := fOne.Forward(1, raw, src.arrival); err != nil {
				t.Fatal(err)
			}
		}
		wantDropped := 0
		if bi == 2 {
			batch = slices.Insert(batch, 1, Arrived{Raw: []byte{0x80, 96}, At: src.arrival})
			wantDropped = 1
		}
		dropped, err := fMany.ForwardBatch(1, batch)
		if err != nil || dropped != wantDropped {
			t.Fatalf("batch %d: %d dropped, %v; want %d, nil", bi, dropped, err, wantDropped)
		}
		for size > MaxBatch {
			parts = append(parts, MaxBatch)
			size -= MaxBatch
		}
		parts = append(parts, size)
	}
	if len(one.writes) != len(many.writes) {
		t.Fatalf("%d writes packet by packet, %d in batches", len(one.writes), len(many.writes))
	}
	bySub := func(ws []written, sub string) []written {
		var out []written
		for _, w := range ws {
			if w.sub == sub {
				out = append(out, w)
			}
		}
		return out
	}
	for _, sub := range []string{"a", "b", "c"} {
		o, m := bySub(one.writes, sub), bySub(many.writes, sub)
		for i := range o {
			if !bytes.Equal(o[i].packet, m[i].packet) || !o[i].at.Equal(m[i].at) {
				t.Fatalf("%s, packet %d: batches gave %d bytes at %v, packet by packet %d bytes at %v",
					sub, i, len(m[i].packet), m[i].at, len(o[i].packet), o[i].at)
			}
		}
	}
	// One pass per part, each subscriber's packets of the part in a row.
	if len(many.passes) != len(parts) {
		t.Fatalf("%d passes, want %d (%v)", len(many.passes), len(parts), parts)
	}
	at := 0
	for p, n := range parts {
		if many.passes[p] != 3*n {
			t.Fatalf("pass %d wrote %d packets, want %d", p, many.passes[p], 3*n)
		}
		for s, sub := range []string{"a", "b", "c"} {
			for i := range n {
				if w := many.writes[at+s*n+i]; w.sub != sub {
					t.Fatalf("pass %d, write %d went to %s, want %s", p, s*n+i, w.sub, sub)
				}
			}
		}
		at += 3 * n
	}
	if _, err := fMany.ForwardBatch(2, nil); !errors.Is(err, ErrLayer) {
		t.Fatalf("ForwardBatch to layer 2 of 2: %v", err)
	}
}

func TestForwardBatchAllocatesNothing(t *testing.T) {
	f := discarding(t)
	src := newSource(0, 1, 1200)
	batch := make([]Arrived, 3)
	bufs := make([][]byte, 3)
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range batch {
			raw, _ := src.next()
			bufs[i] = append(bufs[i][:0], raw...)
			batch[i] = Arrived{Raw: bufs[i], At: src.arrival}
		}
		if _, err := f.ForwardBatch(0, batch); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ForwardBatch of 3 packets to 10 subscribers allocates %.1f times, want 0", allocs)
	}
}
