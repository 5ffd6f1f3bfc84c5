package audience

import (
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

// SetStream tells a class's audience the stream's state; everyone gets
// it, and viewers who join later start from it. StateEnded ends the
// audience: everyone gets the state and "ended", their connections close
// with 4010 (their attendance is closed as they go), and nobody may join
// the class's audience again.
func (h *Hub) SetStream(class store.ClassID, s StreamState) {
	if s.Since.IsZero() {
		s.Since = h.opt.Now()
	}
	var hl *hall
	if s.State == StateEnded {
		var ok bool
		if hl, ok = h.hall(class); !ok {
			return // nobody came; the store's ENDED status refuses newcomers
		}
	} else {
		var err error
		if hl, err = h.hallFor(class); err != nil {
			return // shutting down
		}
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if hl.ended {
		return
	}
	hl.stream = s
	hl.toAllLocked(streamOut{Type: TypeStream, StreamState: s})
	if s.State != StateEnded {
		return
	}
	hl.ended = true
	msg, _ := hl.encode(bareOut{Type: TypeEnded})
	for c := range hl.conns {
		c.finish(msg, CloseEnded, "the class has ended")
	}
	// What was only for the live class goes; the hall stays as a marker
	// that refuses newcomers.
	hl.chat, hl.polls, hl.limits, hl.reactions = nil, nil, nil, map[string]int{}
}

// SetHealth tells a class's hosts the publisher's stream health; hosts
// who connect later get the last one.
func (h *Hub) SetHealth(class store.ClassID, hlth Health) {
	if hlth.At.IsZero() {
		hlth.At = h.opt.Now()
	}
	hl, ok := h.hall(class)
	if !ok {
		return // nobody watches
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if hl.ended {
		return
	}
	if b, ok := hl.encode(healthOut{Type: TypeHealth, Health: hlth}); ok {
		hl.health = &hlth
		for c := range hl.hosts {
			c.send(b)
		}
	}
}

// Viewers reports how many people (distinct users, hosts included) are
// connected to a class's audience now.
func (h *Hub) Viewers(class store.ClassID) int {
	hl, ok := h.hall(class)
	if !ok {
		return 0
	}
	return hl.viewers()
}

// Close closes every audience connection with 1001, waits for them to end
// (their attendance is written), reports the final counts to OnCount and
// stops the hub's goroutines. The hub refuses connections afterwards.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.shut.Store(true)
	halls := make([]*hall, 0, len(h.halls))
	for _, hl := range h.halls {
		halls = append(halls, hl)
	}
	for c := range h.conns {
		if !c.joined.Load() {
			// Still saying hello: nothing to finish, nothing stored.
			go func() { _ = c.ws.Close(CloseGoingAway, "server shutting down") }()
		}
	}
	h.mu.Unlock()
	for _, hl := range halls {
		hl.mu.Lock()
		for c := range hl.conns {
			c.finish(nil, CloseGoingAway, "server shutting down")
		}
		hl.mu.Unlock()
	}
	h.serving.Wait()
	close(h.stop)
	h.loops.Wait()
	// Counts the loop had no time to hand over, and every class's last.
	pending := h.counts.take()
	if pending == nil {
		pending = map[store.ClassID]int{}
	}
	for _, hl := range halls {
		hl.mu.Lock()
		if n := len(hl.users); n != hl.countReported {
			hl.countReported = n
			pending[hl.id] = n
		}
		hl.mu.Unlock()
	}
	if h.opt.OnCount != nil {
		for class, n := range pending {
			h.opt.OnCount(class, n)
		}
	}
}

// tickLoop pushes what time decides (reactions, live results, counts).
func (h *Hub) tickLoop() {
	defer h.loops.Done()
	o := h.opt
	every := min(o.ReactionInterval, o.ResultsInterval, o.CountInterval) / 2
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	var halls []*hall
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.mu.Lock()
			halls = halls[:0]
			for id, hl := range h.halls {
				if hl.over() {
					delete(h.halls, id)
					continue
				}
				halls = append(halls, hl)
			}
			h.mu.Unlock()
			for _, hl := range halls {
				if n, report := hl.tick(now); report {
					h.counts.put(hl.id, n)
				}
			}
		}
	}
}

// over reports whether the class has ended and everyone has left.
func (hl *hall) over() bool {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	return hl.ended && len(hl.conns) == 0
}

// countQueue hands counts to the goroutine that calls OnCount, the latest
// per class winning, so that a slow OnCount (a database write) never
// holds up the ticker.
type countQueue struct {
	mu      sync.Mutex
	pending map[store.ClassID]int
	wake    chan struct{}
}

func (q *countQueue) put(class store.ClassID, n int) {
	q.mu.Lock()
	if q.pending == nil {
		q.pending = map[store.ClassID]int{}
	}
	q.pending[class] = n
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *countQueue) take() map[store.ClassID]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending
	q.pending = nil
	return p
}

func (h *Hub) countLoop() {
	defer h.loops.Done()
	for {
		select {
		case <-h.stop:
			return
		case <-h.counts.wake:
			for class, n := range h.counts.take() {
				if h.opt.OnCount != nil {
					h.opt.OnCount(class, n)
				}
			}
		}
	}
}
