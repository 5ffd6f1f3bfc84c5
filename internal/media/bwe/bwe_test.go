package bwe

import (
	"testing"
	"time"
)

// layers is a typical camera simulcast: 180p, 360p, 720p.
var layers = []Layer{
	{Bitrate: 150_000, Width: 320, Height: 180},
	{Bitrate: 500_000, Width: 640, Height: 360},
	{Bitrate: 1_500_000, Width: 1280, Height: 720},
}

func TestSelect(t *testing.T) {
	const s = time.Second
	type step struct {
		at       time.Duration
		estimate int
		w, h     int
		want     int
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"starts low and goes up only after the hold", []step{
			{0, 5_000_000, 1280, 720, 0},
			{1 * s, 5_000_000, 1280, 720, 0},
			{2 * s, 5_000_000, 1280, 720, 2},
		}},
		{"goes down at once", []step{
			{0, 5_000_000, 1280, 720, 0},
			{2 * s, 5_000_000, 1280, 720, 2},
			{2*s + 1, 1_000_000, 1280, 720, 1},
			{2*s + 2, 100_000, 1280, 720, 0},
		}},
		{"a wavering estimate does not flip layers", []step{
			{0, 2_000_000, 1280, 720, 0},
			{2 * s, 2_000_000, 1280, 720, 2},
			{3 * s, 1_400_000, 1280, 720, 1},
			{3*s + 500*time.Millisecond, 1_600_000, 1280, 720, 1},
			{4 * s, 1_400_000, 1280, 720, 1},
			{4*s + 500*time.Millisecond, 1_600_000, 1280, 720, 1},
			{6*s + 499*time.Millisecond, 1_600_000, 1280, 720, 1},
			{6*s + 500*time.Millisecond, 1_600_000, 1280, 720, 2},
		}},
		{"the middle layer is held for separately", []step{
			{0, 600_000, 1280, 720, 0},
			{2 * s, 600_000, 1280, 720, 1},
			{3 * s, 2_000_000, 1280, 720, 1},
			{5 * s, 2_000_000, 1280, 720, 2},
		}},
		{"the tile caps the layer", []step{
			{0, 5_000_000, 300, 170, 0},
			{3 * s, 5_000_000, 300, 170, 0},
			{4 * s, 5_000_000, 640, 360, 1},
			{5 * s, 5_000_000, 641, 360, 2},
			{6 * s, 5_000_000, 3840, 2160, 2},
			{7 * s, 5_000_000, 200, 100, 0},
		}},
		{"a larger tile goes up at once when the estimate has long allowed it", []step{
			{0, 5_000_000, 320, 180, 0},
			{10 * s, 5_000_000, 320, 180, 0},
			{10*s + 1, 5_000_000, 1280, 720, 2},
		}},
		{"a hidden tile is off, and comes back at the right layer", []step{
			{0, 700_000, 640, 360, 0},
			{1 * s, 700_000, 0, 0, Off},
			{2 * s, 700_000, 640, 360, 1},
		}},
		{"below the lowest layer keeps the lowest", []step{
			{0, 10_000, 1280, 720, 0},
			{10 * s, 0, 1280, 720, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := New(Options{Layers: layers, Hold: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
			for i, st := range tc.steps {
				got := sel.Select(t0.Add(st.at), st.estimate, st.w, st.h)
				if got != st.want || sel.Current() != got {
					t.Fatalf("step %d (%v, %d bps, %dx%d): layer %d, want %d", i, st.at, st.estimate, st.w, st.h, got, st.want)
				}
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for name, o := range map[string]Options{
		"no layers":       {},
		"zero bitrate":    {Layers: []Layer{{Bitrate: 0, Width: 1, Height: 1}}},
		"descending rate": {Layers: []Layer{layers[1], layers[0]}},
		"shrinking size":  {Layers: []Layer{{Bitrate: 1, Width: 10, Height: 10}, {Bitrate: 2, Width: 5, Height: 10}}},
		"negative hold":   {Layers: layers, Hold: -time.Second},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted invalid options", name)
		}
	}
	sel, err := New(Options{Layers: layers})
	if err != nil || sel.hold != DefaultHold {
		t.Fatalf("New with default hold = %v, %v", sel, err)
	}
}

func BenchmarkSelect(b *testing.B) {
	sel, err := New(Options{Layers: layers})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		sel.Select(t0.Add(time.Duration(i)*time.Millisecond), 400_000+(i%8)*200_000, 1280, 720)
	}
}
