package sfu

import (
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/media/keyframe"
	"github.com/pion/webrtc/v4"
)

// TestIgnoredKeyframeRequestIsRepeated covers a subscriber connection that
// comes up right after its join asked for a keyframe: the publisher's
// browser ignores the second PLI (too soon after the first), no keyframe
// comes, and every later request of the subscriber is held back as already
// asked. The polling of the read loop must ask again once the timeout has
// passed, and stop asking once a keyframe came.
func TestIgnoredKeyframeRequestIsRepeated(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	up := &upTrack{kind: webrtc.RTPCodecTypeVideo, info: TrackInfo{ID: "p/camera", Layers: []string{"q", "h", "f"}}}
	for i := range up.layers() {
		kf, err := keyframe.New(keyframe.Options{Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		up.subKF[i] = kf
	}
	plis := func(layer int) uint64 {
		_, n := up.subKF[layer].Stats()
		return n
	}

	up.requestKeyframe(1) // the subscriber connection came up
	if got := plis(1); got != 1 {
		t.Fatalf("first request: %d PLIs, want 1", got)
	}
	// The publisher ignores it; the subscriber's own PLIs keep coming.
	for range 5 {
		now = now.Add(100 * time.Millisecond)
		up.requestKeyframe(1)
		up.pollKeyframes()
	}
	if got := plis(1); got != 1 {
		t.Fatalf("within the timeout: %d PLIs, want 1 (throttled)", got)
	}
	now = now.Add(keyframe.DefaultTimeout)
	up.pollKeyframes()
	if got := plis(1); got != 2 {
		t.Fatalf("after the timeout with no keyframe: %d PLIs, want 2", got)
	}
	if plis(0) != 0 || plis(2) != 0 {
		t.Fatalf("layers nobody asked for got PLIs: q %d, f %d", plis(0), plis(2))
	}

	// A keyframe ends the waiting: polling asks no more.
	up.subKF[1].Keyframe()
	now = now.Add(10 * keyframe.DefaultTimeout)
	up.pollKeyframes()
	if got := plis(1); got != 2 {
		t.Fatalf("after the keyframe: %d PLIs, want 2", got)
	}
}
