package audience

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Bans are the one moderation that lasts: a host who bans a disruptive
// viewer expects the ban to hold whatever the server does, so it is
// stored before it takes effect and loaded when a hall starts. Mutes and
// slow mode stay in memory: they are meant for minutes, not for the
// class's life.

func (hl *hall) isBannedLocked(user store.UserID) bool {
	_, ok := hl.banned[user]
	return ok
}

// bansLocked lists the bans for a host's welcome, oldest first.
func (hl *hall) bansLocked() []bannedOut {
	out := make([]bannedOut, 0, len(hl.banned))
	for _, b := range hl.banned {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b bannedOut) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.User, b.User))
	})
	return out
}

// nameLocked is the user's name as the hall knows it: from a connection
// of theirs, or from a message of theirs in the history.
func (hl *hall) nameLocked(user store.UserID) (string, bool) {
	for c := range hl.conns {
		if c.user == user {
			return c.name, true
		}
	}
	for i := len(hl.chat) - 1; i >= 0; i-- {
		if hl.chat[i].From == user {
			return hl.chat[i].FromName, true
		}
	}
	return "", false
}

// ban stores a ban of user by the host on connection by, then
// disconnects every connection of the user and refuses them until a host
// lifts it. The hosts are told. When the store fails, nothing changes and
// the host gets the error.
func (hl *hall) ban(by *conn, user store.UserID) error {
	if user == "" {
		return apperr.Field("user", "is required")
	}
	hl.banMu.Lock()
	defer hl.banMu.Unlock()
	hl.mu.Lock()
	isHost := hl.hostUserLocked(user)
	name, known := hl.nameLocked(user)
	hl.mu.Unlock()
	if isHost {
		return apperr.New(apperr.Forbidden, "hosts cannot be banned")
	}
	ctx, cancel := hl.storeCtx()
	defer cancel()
	if !known {
		// Someone neither connected nor in the recent chat: the store
		// knows the name, and whether there is such a user at all.
		users, err := hl.h.opt.Store.UsersByIDs(ctx, []store.UserID{user})
		if err != nil {
			return fmt.Errorf("audience: look up banned user: %w", err)
		}
		if len(users) == 0 {
			return apperr.New(apperr.NotFound, "user %s not found", user)
		}
		name = users[0].Name
	}
	if err := hl.h.opt.Store.BanAudienceUser(ctx, hl.id, user, by.user); err != nil {
		return fmt.Errorf("audience: store ban: %w", err)
	}
	if f := hl.h.opt.OnBan; f != nil {
		defer f(hl.id, user)
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	b, already := hl.banned[user]
	if !already {
		b = bannedOut{User: user, Name: name, Since: hl.h.opt.Now().UTC()}
		hl.banned[user] = b
	}
	// Muted too, so that a request the user's closing connection still
	// carries is refused.
	hl.muted[user] = true
	ev := b
	ev.Type = TypeBanned
	msg, ok := hl.encode(ev)
	if !ok {
		return errInternal
	}
	for c := range hl.conns {
		if c.user == user && !c.host {
			c.finish(msg, CloseBanned, "banned")
		}
	}
	for c := range hl.hosts {
		c.send(msg)
	}
	return nil
}

// unban lifts a ban, in the store and then here, and tells the hosts.
// NotFound when the user is not banned from the class.
func (hl *hall) unban(user store.UserID) error {
	if user == "" {
		return apperr.Field("user", "is required")
	}
	hl.banMu.Lock()
	defer hl.banMu.Unlock()
	ctx, cancel := hl.storeCtx()
	err := hl.h.opt.Store.UnbanAudienceUser(ctx, hl.id, user)
	cancel()
	hl.mu.Lock()
	defer hl.mu.Unlock()
	_, inMemory := hl.banned[user]
	switch {
	case err == nil:
	case apperr.Is(err, apperr.NotFound) && inMemory:
		// Lifted in the store by other means (another node, an admin's
		// SQL): this process follows it.
	case apperr.Is(err, apperr.NotFound):
		return apperr.New(apperr.NotFound, "user %s is not banned from this class", user)
	default:
		return fmt.Errorf("audience: store unban: %w", err)
	}
	delete(hl.banned, user)
	// The mute that came with the ban goes with it.
	delete(hl.muted, user)
	hl.toHostsLocked(unbannedOut{Type: TypeUnbanned, User: user})
	return nil
}

// loadBans reads the class's stored bans with the banned users' names,
// for restore.
func (hl *hall) loadBans(ctx context.Context) (map[store.UserID]bannedOut, error) {
	st := hl.h.opt.Store
	stored, err := st.AudienceBans(ctx, hl.id)
	if err != nil {
		return nil, fmt.Errorf("audience: restore bans: %w", err)
	}
	out := make(map[store.UserID]bannedOut, len(stored))
	if len(stored) == 0 {
		return out, nil
	}
	ids := make([]store.UserID, len(stored))
	for i, b := range stored {
		ids[i] = b.UserID
		out[b.UserID] = bannedOut{User: b.UserID, Since: b.CreatedAt}
	}
	users, err := st.UsersByIDs(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("audience: restore banned users: %w", err)
	}
	for _, u := range users {
		b := out[u.ID]
		b.Name = u.Name
		out[u.ID] = b
	}
	return out, nil
}

// mergeBansLocked adds loaded bans to those made since the hall started.
func (hl *hall) mergeBansLocked(loaded map[store.UserID]bannedOut) {
	for u, b := range loaded {
		if _, ok := hl.banned[u]; !ok {
			hl.banned[u] = b
		}
	}
}
