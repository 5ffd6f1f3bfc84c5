package room

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/liveclass/liveclass/internal/apperr"
)

// MaxBreakouts is the most breakout rooms a class may have.
const MaxBreakouts = 25

// Modes of AutoAssign.
const (
	RoundRobin = "round-robin"
	Random     = "random"
)

func breakoutID(i int) GroupID { return GroupID(fmt.Sprintf("b%d", i)) }

func (r *Room) validGroup(g GroupID) bool {
	if g == Main {
		return true
	}
	for i := 1; i <= r.groups; i++ {
		if breakoutID(i) == g {
			return true
		}
	}
	return false
}

func (r *Room) breakoutsFor(mb *member) Breakouts {
	b := Breakouts{Type: TypeBreakouts, Groups: []BreakoutGroup{}, You: mb.Group}
	if r.timerEnds != nil {
		t := *r.timerEnds
		b.TimerEndsAt = &t
	}
	for i := 1; i <= r.groups; i++ {
		g := BreakoutGroup{ID: breakoutID(i), Participants: []ParticipantID{}}
		r.each(func(m *member) {
			if m.Group == g.ID {
				g.Participants = append(g.Participants, m.ID)
			}
		})
		b.Groups = append(b.Groups, g)
	}
	return b
}

func (r *Room) sendBreakouts() {
	r.each(func(mb *member) { mb.sink.Deliver(r.breakoutsFor(mb)) })
}

// move puts mb in group g, telling the media plane.
func (r *Room) move(c *changeSet, mb *member, g GroupID) {
	if mb.Group == g {
		return
	}
	mb.Group = g
	id := mb.ID
	c.add(r.media(func(md Media) { md.SetGroup(r.id, id, g) }))
	r.updated(mb)
}

// CreateBreakouts opens n breakout rooms b1..bn, empty until people are
// assigned (hosts only; Conflict while breakout rooms are open).
func (r *Room) CreateBreakouts(actor ParticipantID, n int) error {
	if n < 1 || n > MaxBreakouts {
		return apperr.Field("count", "must be between 1 and %d", MaxBreakouts)
	}
	return r.change(func(*changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		if r.groups > 0 {
			return apperr.New(apperr.Conflict, "breakout rooms are already open; close them first")
		}
		r.groups = n
		r.sendBreakouts()
		return nil
	})
}

// Assign moves participants into groups by hand (hosts only). Every
// participant and group must exist, or nothing moves.
func (r *Room) Assign(actor ParticipantID, to map[ParticipantID]GroupID) error {
	return r.change(func(c *changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		if r.groups == 0 {
			return apperr.New(apperr.Conflict, "no breakout rooms are open")
		}
		for p, g := range to {
			if _, ok := r.members[p]; !ok {
				return apperr.New(apperr.NotFound, "participant %s is not in the room", p)
			}
			if !r.validGroup(g) {
				return apperr.Field("assignments", "no group %q", g)
			}
		}
		for _, mb := range r.order {
			if g, ok := to[mb.ID]; ok {
				r.move(c, mb, g)
			}
		}
		r.sendBreakouts()
		return nil
	})
}

// AutoAssign spreads every attendee over the breakout rooms, round robin
// in the order they joined or at random (hosts only; hosts stay where they
// are).
func (r *Room) AutoAssign(actor ParticipantID, mode string) error {
	if mode != RoundRobin && mode != Random {
		return apperr.Field("mode", "must be %q or %q", RoundRobin, Random)
	}
	return r.change(func(c *changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		if r.groups == 0 {
			return apperr.New(apperr.Conflict, "no breakout rooms are open")
		}
		var people []*member
		r.each(func(mb *member) {
			if !mb.IsHost() {
				people = append(people, mb)
			}
		})
		if mode == Random {
			r.m.opt.Shuffle(len(people), func(i, j int) { people[i], people[j] = people[j], people[i] })
		}
		for i, mb := range people {
			r.move(c, mb, breakoutID(i%r.groups+1))
		}
		r.sendBreakouts()
		return nil
	})
}

// SetBreakoutTimer closes the breakout rooms after d, a countdown everyone
// sees; 0 clears it (hosts only). Manager.Tick closes them when it runs
// out.
func (r *Room) SetBreakoutTimer(actor ParticipantID, d time.Duration) error {
	if d < 0 || d > 24*time.Hour {
		return apperr.Field("seconds", "must be between 0 and 86400")
	}
	return r.change(func(*changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		if r.groups == 0 {
			return apperr.New(apperr.Conflict, "no breakout rooms are open")
		}
		r.timerEnds = nil
		if d > 0 {
			t := r.m.opt.Now().Add(d)
			r.timerEnds = &t
		}
		r.sendBreakouts()
		return nil
	})
}

// BroadcastToBreakouts shows a host's message in every room (hosts only).
func (r *Room) BroadcastToBreakouts(actor ParticipantID, text string) error {
	text = strings.TrimSpace(text)
	if text == "" || !utf8.ValidString(text) || utf8.RuneCountInString(text) > r.m.opt.ChatMax {
		return apperr.Field("text", "must be 1 to %d characters of text", r.m.opt.ChatMax)
	}
	return r.change(func(*changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		if r.groups == 0 {
			return apperr.New(apperr.Conflict, "no breakout rooms are open")
		}
		r.toAll(BreakoutBroadcast{Type: TypeBreakoutBroadcast, From: actor, Text: text})
		return nil
	})
}

// Visit moves a host into group g (Main to come back); they see and hear
// that room as its members do.
func (r *Room) Visit(actor ParticipantID, g GroupID) error {
	return r.change(func(c *changeSet) error {
		mb, err := r.host(actor)
		if err != nil {
			return err
		}
		if !r.validGroup(g) {
			return apperr.Field("group", "no group %q", g)
		}
		r.move(c, mb, g)
		r.sendBreakouts()
		return nil
	})
}

// CloseBreakouts brings everyone back to the main room (hosts only).
func (r *Room) CloseBreakouts(actor ParticipantID) error {
	return r.change(func(c *changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		if r.groups == 0 {
			return apperr.New(apperr.Conflict, "no breakout rooms are open")
		}
		r.closeBreakouts(c)
		return nil
	})
}

func (r *Room) closeBreakouts(c *changeSet) {
	r.each(func(mb *member) { r.move(c, mb, Main) })
	r.groups, r.timerEnds = 0, nil
	r.sendBreakouts()
}
