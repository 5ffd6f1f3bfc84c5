package audience

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/room"
	"github.com/liveclass/liveclass/internal/store"
)

func (hl *hall) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), hl.h.opt.StoreTimeout)
}

// chatFrom sends c's message to everyone. It is stored before anyone sees
// it; hosts are exempt from slow mode, nobody from the rate limit.
func (hl *hall) chatFrom(c *conn, text string) (store.ChatMessageID, error) {
	text, err := room.PlainText("text", text, hl.h.opt.ChatMax)
	if err != nil {
		return "", err
	}
	now := hl.h.opt.Now()
	hl.mu.Lock()
	err = hl.mayChatLocked(c, now)
	hl.mu.Unlock()
	if err != nil {
		return "", err
	}
	rec := store.ChatMessage{ClassID: hl.id, FromUser: c.user, Text: text, SentAt: now}
	ctx, cancel := hl.storeCtx()
	err = hl.h.opt.Store.SaveChat(ctx, &rec)
	cancel()
	if err != nil {
		return "", fmt.Errorf("audience: store chat message: %w", err)
	}
	msg := chatOut{Type: TypeChat, ID: rec.ID, From: c.user, FromName: c.name, Role: c.role(), Text: text, SentAt: now}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if hl.ended {
		return "", errEnded
	}
	// History is trimmed once it holds twice as much, so that a message
	// costs no copying of the whole history.
	hist := msg
	hist.Type = ""
	hl.chat = append(hl.chat, hist)
	if n := hl.h.opt.ChatHistory; len(hl.chat) >= 2*n {
		hl.chat = append(hl.chat[:0], hl.chat[len(hl.chat)-n:]...)
	}
	hl.toAllLocked(msg)
	return rec.ID, nil
}

func (hl *hall) mayChatLocked(c *conn, now time.Time) error {
	switch {
	case hl.ended:
		return errEnded
	case hl.muted[c.user] && !c.host:
		return withReason(apperr.New(apperr.Forbidden, "a host has muted you in this chat"), ReasonMuted)
	}
	l := hl.limitsLocked(c.user)
	if !c.host && hl.slowMode > 0 && !l.lastChat.IsZero() {
		if wait := l.lastChat.Add(hl.slowMode).Sub(now); wait > 0 {
			secs := int((wait + time.Second - 1) / time.Second)
			return withReason(apperr.New(apperr.TooMany, "slow mode: one message every %d s; wait %d s", int(hl.slowMode/time.Second), secs), ReasonSlowMode)
		}
	}
	if !l.chat.Allow(now) {
		r := hl.h.opt.ChatRate
		return withReason(apperr.New(apperr.TooMany, "at most %d messages per %s", r.N, r.Per), ReasonRateLimit)
	}
	l.lastChat = now
	return nil
}

// deleteChat marks a message deleted in the store and removes it from
// every screen and from the history.
func (hl *hall) deleteChat(id store.ChatMessageID) error {
	if id == "" {
		return apperr.Field("message", "is required")
	}
	// The store says whether the message exists in this class (NotFound
	// otherwise), also for one older than the history kept in memory.
	ctx, cancel := hl.storeCtx()
	err := hl.h.opt.Store.DeleteChat(ctx, hl.id, id, hl.h.opt.Now())
	cancel()
	if err != nil {
		return err
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	hl.chat = slices.DeleteFunc(hl.chat, func(m chatOut) bool { return m.ID == id })
	hl.toAllLocked(chatDeleted{Type: TypeChatDeleted, ID: id})
	return nil
}

// hostUserLocked reports whether user is connected as a host.
func (hl *hall) hostUserLocked(user store.UserID) bool {
	for c := range hl.hosts {
		if c.user == user {
			return true
		}
	}
	return false
}

// mute stops (or lets again) a user from chatting. The user and the hosts
// are told.
func (hl *hall) mute(user store.UserID, muted bool) error {
	if user == "" {
		return apperr.Field("user", "is required")
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if hl.hostUserLocked(user) {
		return apperr.New(apperr.Forbidden, "hosts cannot be muted")
	}
	if muted {
		hl.muted[user] = true
	} else {
		delete(hl.muted, user)
	}
	b := hl.toHostsLocked(mutedOut{Type: TypeMuted, User: user, Muted: muted})
	if b == nil {
		b, _ = hl.encode(mutedOut{Type: TypeMuted, User: user, Muted: muted})
	}
	for c := range hl.conns {
		if c.user == user && !c.host {
			c.send(b)
		}
	}
	return nil
}

// setSlowMode lets each viewer send one message per seconds (0: off).
func (hl *hall) setSlowMode(seconds int) error {
	if seconds < 0 || time.Duration(seconds)*time.Second > hl.h.opt.MaxSlowMode {
		return apperr.Field("seconds", "must be 0 to %d", int(hl.h.opt.MaxSlowMode/time.Second))
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	hl.slowMode = time.Duration(seconds) * time.Second
	hl.toAllLocked(slowModeOut{Type: TypeSlowMode, Seconds: seconds})
	return nil
}

// react counts an emoji into the current interval's totals.
func (hl *hall) react(c *conn, emoji string) error {
	if !slices.Contains(reactionSet(), emoji) {
		return apperr.Field("emoji", "must be one of %s", strings.Join(reactionSet(), " "))
	}
	now := hl.h.opt.Now()
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if !hl.limitsLocked(c.user).react.Allow(now) {
		r := hl.h.opt.ReactionRate
		return withReason(apperr.New(apperr.TooMany, "at most %d reactions per %s", r.N, r.Per), ReasonRateLimit)
	}
	hl.reactions[emoji]++
	return nil
}

// poll is a poll and its count, kept in memory; votes are stored first.
type poll struct {
	id       store.PollID
	question string
	options  []string
	multiple bool
	closed   bool
	counts   []int
	votes    map[store.UserID][]int
	pending  map[store.UserID]bool // votes being stored
	dirty    bool                  // counts changed since hosts were told
}

func (p *poll) viewFor(u store.UserID) pollView {
	return pollView{ID: p.id, Question: p.question, Options: p.options, Multiple: p.multiple, Closed: p.closed, YourVote: p.votes[u]}
}

func (p *poll) results(typ string) pollResults {
	return pollResults{Type: typ, Poll: p.id, Counts: slices.Clone(p.counts), Voters: len(p.votes)}
}

func (hl *hall) pollLocked(id store.PollID) (*poll, error) {
	for _, p := range hl.polls {
		if p.id == id {
			return p, nil
		}
	}
	return nil, apperr.New(apperr.NotFound, "poll %s not found", id)
}

// createPoll asks everyone a question with 2 to 10 options.
func (hl *hall) createPoll(c *conn, question string, options []string, multiple bool) (store.PollID, error) {
	// The classroom's limits and words, so that a poll a host knows from
	// one class is asked the same way in the other.
	q, opts, err := room.CheckPoll(question, options)
	if err != nil {
		return "", err
	}
	rec := store.Poll{ClassID: hl.id, Question: q, Options: opts, Multiple: multiple, CreatedBy: c.user, CreatedAt: hl.h.opt.Now()}
	ctx, cancel := hl.storeCtx()
	err = hl.h.opt.Store.SavePoll(ctx, &rec)
	cancel()
	if err != nil {
		return "", fmt.Errorf("audience: store poll: %w", err)
	}
	p := &poll{
		id: rec.ID, question: q, options: opts, multiple: multiple, counts: make([]int, len(opts)),
		votes: map[store.UserID][]int{}, pending: map[store.UserID]bool{},
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if hl.ended {
		return "", errEnded
	}
	hl.polls = append(hl.polls, p)
	hl.toAllLocked(pollOut{Type: TypePoll, Poll: p.viewFor("")})
	hl.toHostsLocked(p.results(TypePollResults))
	return p.id, nil
}

// vote answers an open poll once. Hosts see the counts within
// ResultsInterval; the voter's ok confirms the vote.
func (hl *hall) vote(c *conn, id store.PollID, choices []int) error {
	hl.mu.Lock()
	p, err := hl.checkVoteLocked(c, id, choices)
	if err == nil {
		p.pending[c.user] = true
	}
	hl.mu.Unlock()
	if err != nil {
		return err
	}
	v := store.PollVote{PollID: id, UserID: c.user, Choices: slices.Clone(choices), VotedAt: hl.h.opt.Now()}
	ctx, cancel := hl.storeCtx()
	err = hl.h.opt.Store.SaveVote(ctx, v)
	cancel()
	hl.mu.Lock()
	defer hl.mu.Unlock()
	delete(p.pending, c.user)
	if err != nil {
		if apperr.Is(err, apperr.Conflict) {
			return apperr.New(apperr.Conflict, "you have already voted")
		}
		return fmt.Errorf("audience: store vote: %w", err)
	}
	p.votes[c.user] = v.Choices
	for _, ch := range choices {
		p.counts[ch]++
	}
	if p.closed {
		// Stored just before the close was: everyone has seen results,
		// so everyone gets the corrected ones.
		hl.toAllLocked(p.results(TypePollResults))
	} else {
		p.dirty = true
	}
	return nil
}

func (hl *hall) checkVoteLocked(c *conn, id store.PollID, choices []int) (*poll, error) {
	if c.host {
		return nil, apperr.New(apperr.Forbidden, "hosts do not vote")
	}
	p, err := hl.pollLocked(id)
	if err != nil {
		return nil, err
	}
	switch {
	case p.closed:
		return nil, apperr.New(apperr.Conflict, "the poll is closed")
	case p.pending[c.user] || p.votes[c.user] != nil:
		return nil, apperr.New(apperr.Conflict, "you have already voted")
	}
	if err := room.CheckChoices(choices, len(p.options), p.multiple); err != nil {
		return nil, err
	}
	return p, nil
}

// closePoll ends voting and shows everyone the results.
func (hl *hall) closePoll(id store.PollID) error {
	hl.mu.Lock()
	p, err := hl.pollLocked(id)
	if err == nil && p.closed {
		err = apperr.New(apperr.Conflict, "the poll is already closed")
	}
	hl.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := hl.storeCtx()
	err = hl.h.opt.Store.ClosePoll(ctx, id, hl.h.opt.Now())
	cancel()
	if err != nil {
		return fmt.Errorf("audience: close poll: %w", err)
	}
	hl.mu.Lock()
	defer hl.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed, p.dirty = true, false
	hl.toAllLocked(pollOut{Type: TypePoll, Poll: p.viewFor("")})
	hl.toAllLocked(p.results(TypePollResults))
	return nil
}
