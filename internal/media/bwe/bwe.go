// Package bwe chooses the simulcast layer a subscriber receives, from its
// estimated bandwidth (TWCC or REMB) and the size of the tile that shows it.
//
// A layer larger than its tile wastes bandwidth and decoder time, so the
// tile caps the layer. The bandwidth caps it too, with hysteresis: when the
// estimate drops below the current layer's bitrate the subscriber goes down
// at once (it is already losing packets or queueing), but it goes up only
// after the estimate has stayed above the higher layer's bitrate for
// Options.Hold, so that an estimate that wavers around a threshold does not
// make the picture flip between layers, each flip costing a keyframe.
package bwe

import (
	"fmt"
	"time"
)

// Off is the layer for a tile that is not shown: forward nothing.
const Off = -1

// DefaultHold is how long the estimate must stay above a higher layer's
// bitrate before the subscriber moves up to it.
const DefaultHold = 2 * time.Second

// Layer describes one simulcast layer of a published track.
type Layer struct {
	// Bitrate is what the layer needs, in bits per second.
	Bitrate int
	// Width and Height are the layer's picture size in pixels.
	Width, Height int
}

// Options configure a Selector.
type Options struct {
	// Layers lists the track's layers from the lowest to the highest,
	// each with more bitrate and at least the size of the one before.
	Layers []Layer
	// Hold is the time the estimate must stay above a layer's bitrate to
	// go up to it; DefaultHold when zero.
	Hold time.Duration
}

// Selector is one subscriber's layer choice for one track. It is not safe
// for concurrent use: its owner calls Select from the goroutine that
// handles the subscriber's bandwidth estimates.
type Selector struct {
	layers  []Layer
	hold    time.Duration
	current int
	// above[i] is when the estimate last rose to layer i's bitrate and
	// has stayed there since; zero while it is below.
	above []time.Time
}

// New returns a Selector that starts on the lowest layer.
func New(opts Options) (*Selector, error) {
	if len(opts.Layers) == 0 {
		return nil, fmt.Errorf("bwe: no layers")
	}
	for i, l := range opts.Layers {
		if l.Bitrate <= 0 || l.Width <= 0 || l.Height <= 0 {
			return nil, fmt.Errorf("bwe: layer %d: bitrate and size must be positive", i)
		}
		if i > 0 {
			p := opts.Layers[i-1]
			if l.Bitrate <= p.Bitrate || l.Width < p.Width || l.Height < p.Height {
				return nil, fmt.Errorf("bwe: layer %d is not above layer %d", i, i-1)
			}
		}
	}
	if opts.Hold == 0 {
		opts.Hold = DefaultHold
	}
	if opts.Hold < 0 {
		return nil, fmt.Errorf("bwe: hold %v is negative", opts.Hold)
	}
	return &Selector{
		layers: append([]Layer(nil), opts.Layers...),
		hold:   opts.Hold,
		above:  make([]time.Time, len(opts.Layers)),
	}, nil
}

// Current returns the layer chosen by the last Select.
func (s *Selector) Current() int { return s.current }

// Select returns the layer to forward now, given the subscriber's estimated
// bandwidth in bits per second and the tile's size in pixels (0 × 0 for a
// tile that is not shown). The lowest layer is kept even when the estimate
// is below its bitrate: a poor picture beats none, and the estimate can
// only grow if packets flow.
func (s *Selector) Select(now time.Time, estimate, tileWidth, tileHeight int) int {
	for i, l := range s.layers {
		if estimate >= l.Bitrate {
			if s.above[i].IsZero() {
				s.above[i] = now
			}
		} else {
			s.above[i] = time.Time{}
		}
	}
	if tileWidth <= 0 || tileHeight <= 0 {
		s.current = Off
		return Off
	}

	// The smallest layer that fills the tile; the top one if none does.
	bySize := len(s.layers) - 1
	for i, l := range s.layers {
		if l.Width >= tileWidth && l.Height >= tileHeight {
			bySize = i
			break
		}
	}

	// The highest layer the estimate allows: layers up to the current one
	// as soon as the estimate covers them, higher ones after Hold.
	byRate := 0
	for i := len(s.layers) - 1; i > 0; i-- {
		since := s.above[i]
		if since.IsZero() {
			continue
		}
		if i <= s.current || now.Sub(since) >= s.hold {
			byRate = i
			break
		}
	}
	s.current = min(bySize, byRate)
	return s.current
}
