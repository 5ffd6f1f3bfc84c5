package room

import (
	"slices"

	"github.com/liveclass/liveclass/internal/apperr"
)

func (r *Room) sendHands() {
	r.toHosts(Hands{Type: TypeHands, Queue: slices.Clone(r.hands)})
}

// Hands is the raised-hand queue, first raised first.
func (r *Room) Hands() []ParticipantID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.hands)
}

// RaiseHand puts p at the end of the hand queue (again raising is a no-op).
func (r *Room) RaiseHand(p ParticipantID) error {
	return r.change(func(*changeSet) error {
		mb, err := r.get(p)
		if err != nil {
			return err
		}
		if mb.Hand {
			return nil
		}
		mb.Hand = true
		r.hands = append(r.hands, p)
		r.updated(mb)
		r.sendHands()
		return nil
	})
}

// LowerHand lowers target's hand: a host may lower anyone's, a student
// only their own.
func (r *Room) LowerHand(actor, target ParticipantID) error {
	return r.change(func(*changeSet) error {
		a, err := r.get(actor)
		if err != nil {
			return err
		}
		if actor != target && !a.IsHost() {
			return apperr.New(apperr.Forbidden, "only a host may lower another's hand")
		}
		t, err := r.get(target)
		if err != nil {
			return err
		}
		r.lower(t)
		r.sendHands()
		return nil
	})
}

// LowerAllHands empties the hand queue (hosts only).
func (r *Room) LowerAllHands(actor ParticipantID) error {
	return r.change(func(*changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		for _, id := range slices.Clone(r.hands) {
			r.lower(r.members[id])
		}
		r.sendHands()
		return nil
	})
}

func (r *Room) lower(mb *member) {
	if !mb.Hand {
		return
	}
	mb.Hand = false
	r.hands = slices.DeleteFunc(r.hands, func(id ParticipantID) bool { return id == mb.ID })
	r.updated(mb)
}

// SetMedia records what p publishes. Turning the microphone on is
// Forbidden for an attendee while microphones are locked. Turning a source
// on that a host had stopped lifts the server-side block.
func (r *Room) SetMedia(p ParticipantID, s MediaState) error {
	return r.change(func(c *changeSet) error {
		mb, err := r.get(p)
		if err != nil {
			return err
		}
		if s.Mic && !mb.Media.Mic && r.micsLocked && !mb.IsHost() {
			return apperr.New(apperr.Forbidden, "a host has locked microphones")
		}
		for _, src := range []string{SourceMic, SourceCamera} {
			on := (src == SourceMic && s.Mic) || (src == SourceCamera && s.Camera)
			if on && mb.blocked[src] {
				delete(mb.blocked, src)
				c.add(r.media(func(md Media) { md.Block(r.id, p, src, false) }))
			}
		}
		if mb.Media == s {
			return nil
		}
		mb.Media = s
		r.updated(mb)
		return nil
	})
}

// Mute turns target's microphone off and stops forwarding it until they
// unmute (hosts only).
func (r *Room) Mute(actor, target ParticipantID) error {
	return r.change(func(c *changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		t, err := r.get(target)
		if err != nil {
			return err
		}
		r.stop(c, actor, t, SourceMic)
		return nil
	})
}

// MuteAll mutes every attendee (hosts only); they may unmute themselves
// unless microphones are locked.
func (r *Room) MuteAll(actor ParticipantID) error {
	return r.change(func(c *changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		r.each(func(mb *member) {
			if !mb.IsHost() {
				r.stop(c, actor, mb, SourceMic)
			}
		})
		return nil
	})
}

// StopVideo turns target's camera off (hosts only).
func (r *Room) StopVideo(actor, target ParticipantID) error {
	return r.change(func(c *changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		t, err := r.get(target)
		if err != nil {
			return err
		}
		r.stop(c, actor, t, SourceCamera)
		return nil
	})
}

// stop is a host stopping one source of t: state, event, and the block
// in the media plane so that a client that ignores the event is silenced
// anyway.
func (r *Room) stop(c *changeSet, by ParticipantID, t *member, src string) {
	if !t.blocked[src] {
		t.blocked[src] = true
		id := t.ID
		c.add(r.media(func(md Media) { md.Block(r.id, id, src, true) }))
	}
	switch src {
	case SourceMic:
		t.sink.Deliver(Muted{Type: TypeMuted, By: by})
		if t.Media.Mic {
			t.Media.Mic = false
			r.updated(t)
		}
	case SourceCamera:
		t.sink.Deliver(VideoStopped{Type: TypeVideoStopped, By: by})
		if t.Media.Camera {
			t.Media.Camera = false
			r.updated(t)
		}
	}
}

// LockMics keeps attendees from unmuting (hosts only).
func (r *Room) LockMics(actor ParticipantID, locked bool) error {
	return r.change(func(*changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		r.micsLocked = locked
		r.sendLocked()
		return nil
	})
}

// Lock makes the room refuse new attendees; hosts still get in (hosts
// only).
func (r *Room) Lock(actor ParticipantID, locked bool) error {
	return r.change(func(*changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		r.locked = locked
		r.sendLocked()
		return nil
	})
}

func (r *Room) sendLocked() {
	r.toAll(Locked{Type: TypeLocked, Room: r.locked, Mics: r.micsLocked})
}

// Remove sends an attendee out of the class; the join token they used is
// refused from then on (hosts only; a host cannot be removed).
func (r *Room) Remove(actor, target ParticipantID) error {
	return r.change(func(c *changeSet) error {
		if _, err := r.host(actor); err != nil {
			return err
		}
		t, err := r.get(target)
		if err != nil {
			return err
		}
		if t.IsHost() {
			return apperr.New(apperr.Forbidden, "a host cannot be removed")
		}
		if t.tokenID != "" {
			r.banned[t.tokenID] = true
		}
		t.sink.Deliver(Removed{Type: TypeRemoved, By: actor})
		r.drop(c, t, LeftRemoved)
		c.add(r.media(func(md Media) { md.Disconnect(r.id, target) }))
		return nil
	})
}

// React shows an emoji from Reactions on p's tile to those in p's room.
func (r *Room) React(p ParticipantID, emoji string) error {
	if !slices.Contains(Reactions(), emoji) {
		return apperr.Field("emoji", "is not one of %v", Reactions())
	}
	return r.change(func(*changeSet) error {
		mb, err := r.get(p)
		if err != nil {
			return err
		}
		if !mb.reactRate.allow(r.m.opt.Now(), r.m.opt.ReactionRate) {
			return apperr.New(apperr.TooMany, "at most %d reactions per %s", r.m.opt.ReactionRate.N, r.m.opt.ReactionRate.Per)
		}
		r.toGroup(mb.Group, Reaction{Type: TypeReaction, Participant: p, Emoji: emoji})
		return nil
	})
}

// ActiveSpeaker tells p's room that p is speaking (from the sfu's audio
// levels).
func (r *Room) ActiveSpeaker(p ParticipantID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if mb, ok := r.members[p]; ok {
		r.toGroup(mb.Group, Speaker{Type: TypeSpeaker, Participant: p})
	}
}

// Quality tells p and the hosts p's connection quality, 0 (lost) to 3.
func (r *Room) Quality(p ParticipantID, level int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mb, ok := r.members[p]
	if !ok {
		return
	}
	e := Quality{Type: TypeQuality, Participant: p, Level: min(max(level, 0), 3)}
	if !mb.IsHost() {
		mb.sink.Deliver(e)
	}
	r.toHosts(e)
}
