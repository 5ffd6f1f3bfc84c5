package room

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/jointoken"
	"github.com/liveclass/liveclass/internal/store"
)

// Room is one live class's classroom. Its methods take the acting
// participant and return errors with apperr kinds: Forbidden for an
// attendee doing a host's job, Invalid for bad input, NotFound for an
// unknown participant or poll, TooMany past a rate limit.
type Room struct {
	m  *Manager
	id store.ClassID

	// fx is taken before mu is released and held while the effects of a
	// change run, so that effects run in the order of the changes without
	// holding mu during I/O.
	fx sync.Mutex

	mu         sync.Mutex
	class      store.LiveClass
	status     store.Status
	endedAt    time.Time
	members    map[ParticipantID]*member
	order      []*member       // join order: listings and round-robin
	banned     map[string]bool // token IDs of removed participants
	locked     bool
	micsLocked bool
	hands      []ParticipantID
	groups     int // breakout rooms b1..bN; 0 when closed
	timerEnds  *time.Time
	chat       []chatEntry // recent messages, oldest first
	polls      []*poll
}

type member struct {
	Participant
	user      store.UserID
	tokenID   string
	sink      Sink
	blocked   map[string]bool // sources a host stopped
	chatRate  window
	reactRate window
	stay      store.AttendanceID
}

type chatEntry struct {
	msg     ChatMessage
	toHosts bool
	toUser  ParticipantID
}

func newRoom(m *Manager, c store.LiveClass) *Room {
	return &Room{
		m:       m,
		id:      c.ID,
		class:   c,
		status:  c.Status,
		members: make(map[ParticipantID]*member),
		banned:  make(map[string]bool),
	}
}

// ID is the class the room belongs to.
func (r *Room) ID() store.ClassID { return r.id }

// changeSet collects what a change must do once the state lock is released.
type changeSet struct {
	fx           []effect
	classChanged bool
	countChanged bool
}

func (c *changeSet) add(f effect) { c.fx = append(c.fx, f) }

// change runs fn under the state lock and then, in order with other
// changes of this room, the effects fn queued.
func (r *Room) change(fn func(c *changeSet) error) error {
	c := &changeSet{}
	r.mu.Lock()
	err := fn(c)
	if c.countChanged {
		n := len(r.members)
		c.add(func(ctx context.Context) error { return r.m.opt.Store.SetCurrentParticipants(ctx, r.id, n) })
	}
	if len(c.fx) > 0 {
		r.fx.Lock()
		r.mu.Unlock()
		r.m.run(r.id, c.fx)
		r.fx.Unlock()
	} else {
		r.mu.Unlock()
	}
	// Outside both locks: the callback re-reads the class, and the order
	// of two callbacks does not matter when each reads the latest row.
	if (c.classChanged || c.countChanged) && r.m.opt.OnClassChange != nil {
		r.m.opt.OnClassChange(r.id)
	}
	return err
}

func (r *Room) media(f func(md Media)) effect {
	return func(context.Context) error {
		if md := r.m.mediaPlane(); md != nil {
			f(md)
		}
		return nil
	}
}

// get returns the member acting, or NotFound.
func (r *Room) get(p ParticipantID) (*member, error) {
	if r.status == store.StatusEnded {
		return nil, ErrEnded
	}
	mb, ok := r.members[p]
	if !ok {
		return nil, apperr.New(apperr.NotFound, "participant %s is not in the room", p)
	}
	return mb, nil
}

// host returns the acting member if they host, else Forbidden.
func (r *Room) host(p ParticipantID) (*member, error) {
	mb, err := r.get(p)
	if err != nil {
		return nil, err
	}
	if !mb.IsHost() {
		return nil, apperr.New(apperr.Forbidden, "only a host may do this")
	}
	return mb, nil
}

// each calls f for every member in join order.
func (r *Room) each(f func(*member)) {
	for _, mb := range r.order {
		f(mb)
	}
}

func (r *Room) toAll(e Event) { r.each(func(mb *member) { mb.sink.Deliver(e) }) }

func (r *Room) toHosts(e Event) {
	r.each(func(mb *member) {
		if mb.IsHost() {
			mb.sink.Deliver(e)
		}
	})
}

func (r *Room) toGroup(g GroupID, e Event) {
	r.each(func(mb *member) {
		if mb.Group == g {
			mb.sink.Deliver(e)
		}
	})
}

func (r *Room) updated(mb *member) {
	r.toAll(ParticipantUpdated{Type: TypeParticipantUpdated, Participant: mb.Participant})
}

// join adds or replaces the participant; with state set, it also fills
// *state with the participant's snapshot under the same lock, so that the
// events the sink gets next are exactly those after it.
func (r *Room) join(req JoinRequest, sink Sink, conn uint64, state *State) (Participant, error) {
	var out Participant
	err := r.change(func(c *changeSet) error {
		err := r.admit(c, req, sink, conn, &out)
		if err == nil && state != nil {
			*state = r.snapshot(r.members[out.ID])
		}
		return err
	})
	return out, err
}

func (r *Room) admit(c *changeSet, req JoinRequest, sink Sink, conn uint64, out *Participant) error {
	if r.status == store.StatusEnded {
		return ErrEnded
	}
	if req.TokenID != "" && r.banned[req.TokenID] {
		return ErrRemoved
	}
	// The latest read of the class wins: the host may have raised
	// maxParticipants or moved endTime since the room was made.
	st := r.status
	r.class = req.Class
	r.status = st
	id := ParticipantID(req.UserID)
	host := req.Role == jointoken.RoleHost
	now := r.m.opt.Now()
	if old, ok := r.members[id]; ok {
		old.sink.Deliver(Replaced{Type: TypeReplaced})
		old.sink, old.tokenID, old.Conn = sink, req.TokenID, conn
		old.Name, old.Role = req.Name, req.Role
		*out = old.Participant
		return nil
	}
	if !host {
		if r.locked {
			return ErrLocked
		}
		if max := r.class.MaxParticipants; max > 0 && len(r.members) >= max {
			return ErrFull
		}
	}
	mb := &member{
		Participant: Participant{
			ID: id, Name: req.Name, Role: req.Role, JoinedAt: now, Conn: conn,
			Media: MediaState{Mic: !req.Muted && (host || !r.micsLocked)},
		},
		user:    req.UserID,
		tokenID: req.TokenID,
		sink:    sink,
		blocked: map[string]bool{},
		stay:    store.AttendanceID(newID()),
	}
	r.toAll(ParticipantJoined{Type: TypeParticipantJoined, Participant: mb.Participant})
	r.members[id] = mb
	r.order = append(r.order, mb)
	if host && r.status != store.StatusLive {
		r.status = store.StatusLive
		c.classChanged = true
		c.add(func(ctx context.Context) error {
			return r.m.opt.Store.SetClassStatus(ctx, r.id, store.StatusLive)
		})
	}
	a := store.Attendance{ID: mb.stay, ClassID: r.id, UserID: req.UserID, JoinedAt: now}
	c.add(func(ctx context.Context) error { return r.m.opt.Store.RecordJoin(ctx, &a) })
	c.countChanged = true
	*out = mb.Participant
	return nil
}

func (r *Room) leave(p ParticipantID, conn uint64) {
	_ = r.change(func(c *changeSet) error {
		mb, ok := r.members[p]
		if !ok || (conn != 0 && mb.Conn != conn) {
			return nil
		}
		r.drop(c, mb, LeftLeft)
		return nil
	})
}

// drop takes a member out and queues the bookkeeping of their stay.
func (r *Room) drop(c *changeSet, mb *member, reason string) {
	delete(r.members, mb.ID)
	r.order = slices.DeleteFunc(r.order, func(x *member) bool { return x == mb })
	r.toAll(ParticipantLeft{Type: TypeParticipantLeft, Participant: mb.ID, Reason: reason})
	if i := slices.Index(r.hands, mb.ID); i >= 0 {
		r.hands = slices.Delete(r.hands, i, i+1)
		r.sendHands()
	}
	if r.groups > 0 && mb.Group != Main {
		r.sendBreakouts()
	}
	r.closeStay(c, mb)
	c.countChanged = true
}

// closeStay queues the end of a member's stay and the update of their
// enrollment's attendance.
func (r *Room) closeStay(c *changeSet, mb *member) {
	at := r.m.opt.Now()
	stay, user, st := mb.stay, mb.user, r.m.opt.Store
	c.add(func(ctx context.Context) error { return ignoreNotFound(st.RecordLeave(ctx, stay, at)) })
	c.add(func(ctx context.Context) error {
		stays, err := st.AttendanceOf(ctx, r.id, user)
		if err != nil {
			return err
		}
		d := Attended(stays, at)
		return ignoreNotFound(st.UpdateAttendance(ctx, r.id, user, len(stays) > 0, Minutes(d)))
	})
}

// End ends the class for everyone: its status becomes ENDED and every
// participant gets Ended.
func (r *Room) End(actor ParticipantID) error {
	return r.change(func(c *changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		r.end(c)
		return nil
	})
}

func (r *Room) end(c *changeSet) {
	r.toAll(Ended{Type: TypeEnded})
	for _, mb := range r.order {
		delete(r.members, mb.ID)
		r.closeStay(c, mb)
		pid := mb.ID
		c.add(r.media(func(md Media) { md.Disconnect(r.id, pid) }))
	}
	r.order, r.hands, r.groups, r.timerEnds = nil, nil, 0, nil
	r.status = store.StatusEnded
	r.endedAt = r.m.opt.Now()
	c.add(func(ctx context.Context) error { return r.m.opt.Store.SetClassStatus(ctx, r.id, store.StatusEnded) })
	c.classChanged = true
	c.countChanged = true
}

// tick does what time decides and reports whether the manager may forget
// the room.
func (r *Room) tick(now time.Time) (forget bool) {
	_ = r.change(func(c *changeSet) error {
		grace := r.m.opt.EndGrace
		if r.status == store.StatusEnded {
			forget = !now.Before(r.endedAt.Add(grace))
			return nil
		}
		if r.timerEnds != nil && !now.Before(*r.timerEnds) {
			r.closeBreakouts(c)
		}
		if len(r.members) == 0 && !now.Before(r.class.EndTime.Add(grace)) {
			if r.status == store.StatusLive {
				r.end(c)
				return nil
			}
			// Nobody hosted it: nothing to end, just nothing to keep.
			forget = true
		}
		return nil
	})
	return forget
}

// Status is the class's status as the room knows it.
func (r *Room) Status() store.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Participants lists who is in the room, in join order.
func (r *Room) Participants() []Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Participant, 0, len(r.order))
	r.each(func(mb *member) { out = append(out, mb.Participant) })
	return out
}

// Snapshot is what the viewer needs to draw the room on (re)joining.
func (r *Room) Snapshot(viewer ParticipantID) (State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, err := r.get(viewer)
	if err != nil {
		return State{}, err
	}
	return r.snapshot(v), nil
}

func (r *Room) snapshot(v *member) State {
	s := State{
		Class: r.id, Status: r.status, You: v.Participant,
		Participants: make([]Participant, 0, len(r.order)),
		Hands:        []ParticipantID{},
		Locked:       r.locked, MicsLocked: r.micsLocked,
		Breakouts: r.breakoutsFor(v),
		Chat:      []ChatMessage{},
		Polls:     []PollView{},
		Results:   []PollResults{},
		Reactions: Reactions(),
	}
	r.each(func(mb *member) { s.Participants = append(s.Participants, mb.Participant) })
	if v.IsHost() {
		s.Hands = slices.Clone(r.hands)
	}
	for _, e := range r.chat[max(0, len(r.chat)-r.m.opt.ChatHistory):] {
		if r.mayRead(v, e) {
			s.Chat = append(s.Chat, e.msg)
		}
	}
	for _, p := range r.polls {
		s.Polls = append(s.Polls, p.viewFor(v.ID))
		if v.IsHost() || p.closed {
			s.Results = append(s.Results, p.results())
		}
	}
	return s
}
