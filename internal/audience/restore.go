package audience

import (
	"context"
	"fmt"
	"slices"

	"github.com/liveclass/liveclass/internal/store"
)

// restore loads what the store holds of the class's audience: the recent
// chat (with the senders' names and roles), the polls with their counts
// and the bans, so that viewers joining after a restart see what those
// before it saw, and those banned before it stay out. It runs once per hall, before the first viewer is let in; a
// failure leaves the hall to be loaded by the next hello.
func (hl *hall) restore(ctx context.Context, class store.LiveClass) error {
	hl.loadMu.Lock()
	defer hl.loadMu.Unlock()
	if hl.loaded {
		return nil
	}
	st := hl.h.opt.Store
	recent, err := st.ListChat(ctx, store.ChatQuery{ClassID: hl.id, Page: store.Page{Limit: hl.h.opt.ChatHistory, Desc: true}})
	if err != nil {
		return fmt.Errorf("audience: restore chat: %w", err)
	}
	msgs := recent.Items
	slices.Reverse(msgs)
	names := map[store.UserID]string{}
	var ids []store.UserID
	for _, m := range msgs {
		if _, ok := names[m.FromUser]; !ok {
			names[m.FromUser] = ""
			ids = append(ids, m.FromUser)
		}
	}
	if len(ids) > 0 {
		users, err := st.UsersByIDs(ctx, ids)
		if err != nil {
			return fmt.Errorf("audience: restore chat senders: %w", err)
		}
		for _, u := range users {
			names[u.ID] = u.Name
		}
	}
	chat := make([]chatOut, 0, len(msgs))
	for _, m := range msgs {
		if m.ToUser != "" || m.ToHosts || m.GroupID != "" {
			continue // not a broadcast message
		}
		role := RoleViewer
		if m.FromUser == class.InstructorID {
			role = RoleHost
		}
		chat = append(chat, chatOut{ID: m.ID, From: m.FromUser, FromName: names[m.FromUser], Role: role, Text: m.Text, SentAt: m.SentAt})
	}
	stored, err := st.PollsOf(ctx, hl.id)
	if err != nil {
		return fmt.Errorf("audience: restore polls: %w", err)
	}
	polls := make([]*poll, 0, len(stored))
	for _, sp := range stored {
		votes, err := st.VotesOf(ctx, sp.ID)
		if err != nil {
			return fmt.Errorf("audience: restore votes: %w", err)
		}
		p := &poll{
			id: sp.ID, question: sp.Question, options: sp.Options, multiple: sp.Multiple, closed: sp.ClosedAt != nil,
			counts: make([]int, len(sp.Options)), votes: make(map[store.UserID][]int, len(votes)), pending: map[store.UserID]bool{},
		}
		for _, v := range votes {
			p.votes[v.UserID] = v.Choices
			for _, c := range v.Choices {
				if c >= 0 && c < len(p.counts) {
					p.counts[c]++
				}
			}
		}
		polls = append(polls, p)
	}
	bans, err := hl.loadBans(ctx)
	if err != nil {
		return err
	}
	hl.mu.Lock()
	hl.mergeBansLocked(bans)
	hl.chat = append(chat, hl.chat...)
	hl.polls = append(polls, hl.polls...)
	hl.mu.Unlock()
	hl.loaded = true
	return nil
}
