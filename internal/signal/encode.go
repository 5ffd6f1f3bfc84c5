package signal

import (
	"encoding/json"
	"reflect"
	"sync"

	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/store"
)

// encoder encodes a room's events once for all their recipients. The
// room hands the same event to each recipient's sink in turn, under its
// lock; the encoder remembers the last event and its bytes, so that in a
// class of 50 a speaker change or a hand going up is encoded once, not 50
// times. Events are compared by value, which is safe because equal values
// encode to equal bytes; an event type that cannot be compared (one with
// slices) is encoded per recipient.
type encoder struct {
	mu   sync.Mutex
	last room.Event
	data []byte
	refs int // connections of the class using it, guarded by Handler.mu
}

// encode returns the JSON of e. The bytes are shared: never modify them.
func (en *encoder) encode(e room.Event) ([]byte, error) {
	if !reflect.TypeOf(e).Comparable() {
		return json.Marshal(e)
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	if en.last != nil && reflect.TypeOf(en.last) == reflect.TypeOf(e) && en.last == e {
		return en.data, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	en.last, en.data = e, b
	return b, nil
}

// encoderFor returns the class's encoder, counting one more user.
func (h *Handler) encoderFor(class store.ClassID) *encoder {
	h.mu.Lock()
	defer h.mu.Unlock()
	en, ok := h.encoders[class]
	if !ok {
		en = &encoder{}
		h.encoders[class] = en
	}
	en.refs++
	return en
}

// releaseEncoder forgets the class's encoder when nobody uses it.
func (h *Handler) releaseEncoder(class store.ClassID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if en, ok := h.encoders[class]; ok {
		if en.refs--; en.refs <= 0 {
			delete(h.encoders, class)
		}
	}
}
