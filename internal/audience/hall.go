package audience

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/ratelimit"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/store"
)

// hall is one broadcast class's audience: who is connected and what they
// share. Its mutex guards everything below it; it is held while bytes are
// queued for connections (never blocking) and never while anything is
// written to a socket or the store.
type hall struct {
	h  *Hub
	id store.ClassID

	// loadMu serialises restore; loaded is set once it succeeded.
	loadMu sync.Mutex
	loaded bool
	// banMu serialises bans and unbans, each from its store write to its
	// effect in memory, so that the two never disagree on who is banned.
	banMu sync.Mutex

	mu     sync.Mutex
	conns  map[*conn]struct{}
	hosts  map[*conn]struct{}
	users  map[store.UserID]int // open connections per user
	joins  uint64               // connections that joined so far, numbering them
	ended  bool
	stream StreamState
	health *Health // the last, for hosts who join

	chat     []chatOut // recent messages, oldest first
	polls    []*poll
	banned   map[store.UserID]bannedOut // stored first: see bans.go
	muted    map[store.UserID]bool
	limits   map[store.UserID]*userLimits
	slowMode time.Duration

	reactions     map[string]int
	lastReactions time.Time
	lastResults   time.Time
	countSent     int // the count viewers were last told
	lastCount     time.Time
	countReported int // the count OnCount was last given
}

// userLimits are one user's rate limits, shared by their connections.
type userLimits struct {
	chat     ratelimit.Bucket
	react    ratelimit.Bucket
	lastChat time.Time // for slow mode
}

func newHall(h *Hub, id store.ClassID) *hall {
	return &hall{
		h: h, id: id,
		conns:     map[*conn]struct{}{},
		hosts:     map[*conn]struct{}{},
		users:     map[store.UserID]int{},
		stream:    StreamState{State: StateOffline},
		banned:    map[store.UserID]bannedOut{},
		muted:     map[store.UserID]bool{},
		limits:    map[store.UserID]*userLimits{},
		reactions: map[string]int{},
	}
}

// encode returns the JSON of v, logging a failure (a value that cannot be
// encoded, such as a NaN frame rate, is dropped rather than sent).
func (hl *hall) encode(v any) ([]byte, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		hl.h.log.Error("audience: cannot encode message", "class", hl.id, "type", fmt.Sprintf("%T", v), "err", err)
		return nil, false
	}
	return b, true
}

// toAllLocked queues v for every connection: encoded once, the same bytes
// for all (unless the hub measures its per-viewer baseline).
func (hl *hall) toAllLocked(v any) {
	hl.toLocked(hl.conns, v)
}

// toHostsLocked queues v for the hosts.
func (hl *hall) toHostsLocked(v any) []byte {
	return hl.toLocked(hl.hosts, v)
}

func (hl *hall) toLocked(set map[*conn]struct{}, v any) []byte {
	if len(set) == 0 {
		return nil
	}
	if hl.h.opt.EncodePerViewer {
		for c := range set {
			if b, ok := hl.encode(v); ok {
				c.send(b)
			}
		}
		return nil
	}
	b, ok := hl.encode(v)
	if !ok {
		return nil
	}
	n := 0
	for c := range set {
		if c.queue(b) {
			n++
		}
	}
	hl.h.sentMsgs.Add(uint64(n))
	return b
}

func (hl *hall) limitsLocked(user store.UserID) *userLimits {
	l, ok := hl.limits[user]
	if !ok {
		cr, rr := hl.h.opt.ChatRate, hl.h.opt.ReactionRate
		l = &userLimits{
			chat:  ratelimit.Every(cr.N, cr.Per),
			react: ratelimit.Every(rr.N, rr.Per),
		}
		hl.limits[user] = l
	}
	return l
}

// add puts c in the hall and queues its welcome first, atomically, so
// that c gets exactly the events that come after the welcome's snapshot.
// It refuses a banned user and an ended class.
func (hl *hall) add(c *conn) error {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	switch {
	case hl.h.shut.Load():
		return errClosing
	case hl.ended:
		return errEnded
	case hl.isBannedLocked(c.user) && !c.host:
		// A host's token passes a ban made while they were away.
		return errBanned
	}
	w := welcome{
		Type: TypeWelcome, V: Version, Class: hl.id,
		You:       you{ID: c.user, Name: c.name, Role: c.role()},
		Stream:    hl.stream,
		Viewers:   len(hl.users),
		Chat:      make([]chatOut, 0, len(hl.chat)),
		Polls:     make([]pollView, 0, len(hl.polls)),
		Results:   []pollResults{},
		Reactions: reactionSet(),
		SlowMode:  int(hl.slowMode / time.Second),
		Muted:     hl.muted[c.user] && !c.host,
		Limits:    welcomeLimits{ChatMax: hl.h.opt.ChatMax, ReactionEveryMs: int(hl.h.opt.ReactionInterval / time.Millisecond)},
	}
	if _, in := hl.users[c.user]; !in {
		w.Viewers++
	}
	if c.host {
		w.Health = hl.health
		w.Banned = hl.bansLocked()
	}
	w.Chat = append(w.Chat, hl.chat...)
	for _, p := range hl.polls {
		w.Polls = append(w.Polls, p.viewFor(c.user))
		if c.host || p.closed {
			w.Results = append(w.Results, p.results(""))
		}
	}
	b, ok := hl.encode(w)
	if !ok {
		return errInternal
	}
	c.send(b)
	if hl.users[c.user] >= hl.h.opt.MaxPerUser {
		hl.replaceOldestLocked(c.user)
	}
	hl.joins++
	c.seq = hl.joins
	hl.conns[c] = struct{}{}
	if c.host {
		hl.hosts[c] = struct{}{}
	}
	hl.users[c.user]++
	c.joined.Store(true)
	return nil
}

// replaceOldestLocked sends away the user's connection that joined first,
// to make room for a new one. It leaves the hall as any other does, when
// its reader ends.
func (hl *hall) replaceOldestLocked(user store.UserID) {
	var oldest *conn
	for o := range hl.conns {
		if o.user == user && !o.closing() && (oldest == nil || o.seq < oldest.seq) {
			oldest = o
		}
	}
	if oldest == nil {
		return
	}
	msg, _ := hl.encode(bareOut{Type: TypeReplaced})
	oldest.finish(msg, CloseReplaced, "replaced by a newer connection of the same user")
}

// remove takes c out of the hall.
func (hl *hall) remove(c *conn) {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if _, ok := hl.conns[c]; !ok {
		return
	}
	delete(hl.conns, c)
	delete(hl.hosts, c)
	if hl.users[c.user]--; hl.users[c.user] <= 0 {
		delete(hl.users, c.user)
	}
}

// viewers is the number of people connected now.
func (hl *hall) viewers() int {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	return len(hl.users)
}

// tick pushes what is due at now: aggregated reactions, hosts' live poll
// results, the viewer count. It returns the count to report to OnCount,
// if that is due.
func (hl *hall) tick(now time.Time) (count int, report bool) {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	o := hl.h.opt
	for c := range hl.conns {
		c.checkSlow(now)
	}
	if len(hl.reactions) > 0 && now.Sub(hl.lastReactions) >= o.ReactionInterval {
		hl.toAllLocked(reactionsOut{Type: TypeReactions, Counts: hl.reactions, IntervalMs: int(o.ReactionInterval / time.Millisecond)})
		hl.reactions = map[string]int{}
		hl.lastReactions = now
	}
	if now.Sub(hl.lastResults) >= o.ResultsInterval {
		sent := false
		for _, p := range hl.polls {
			if p.dirty {
				p.dirty = false
				hl.toHostsLocked(p.results(TypePollResults))
				sent = true
			}
		}
		if sent {
			hl.lastResults = now
		}
	}
	n := len(hl.users)
	if now.Sub(hl.lastCount) >= o.CountInterval && (n != hl.countSent || n != hl.countReported) {
		if n != hl.countSent {
			hl.toAllLocked(viewersOut{Type: TypeViewers, Count: n})
			hl.countSent = n
		}
		hl.lastCount = now
		if n != hl.countReported {
			hl.countReported = n
			return n, true
		}
	}
	return 0, false
}

// reactionSet is the emoji a viewer may send: the classroom's set.
func reactionSet() []string { return room.Reactions() }
