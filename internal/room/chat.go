package room

import (
	"fmt"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// ChatTarget is whom a message is for.
type ChatTarget struct {
	// Hosts sends to the hosts only (a student's private question).
	Hosts bool
	// Participant, when set, sends to that participant only.
	Participant ParticipantID
}

// Everyone is the target "everyone in my room" (the main room or the
// sender's breakout room).
var Everyone = ChatTarget{}

// ParseChatTarget reads the protocol's "to": "everyone" (or empty),
// "hosts", or a participant ID.
func ParseChatTarget(s string) ChatTarget {
	switch s {
	case "", "everyone":
		return Everyone
	case "hosts":
		return ChatTarget{Hosts: true}
	}
	return ChatTarget{Participant: ParticipantID(s)}
}

// String is the protocol's "to".
func (t ChatTarget) String() string {
	switch {
	case t.Hosts:
		return "hosts"
	case t.Participant != "":
		return string(t.Participant)
	}
	return "everyone"
}

// Chat sends a text message. To everyone, it reaches the sender's room
// (main or breakout); to the hosts, every host; to a participant, only
// them — a student may write privately to a host only. The message is
// stored before anyone sees it. Text is plain text; clients must not
// render it as HTML.
func (r *Room) Chat(from ParticipantID, to ChatTarget, text string) error {
	text, err := PlainText("text", text, r.m.opt.ChatMax)
	if err != nil {
		return err
	}
	r.mu.Lock()
	e, err := r.prepareChat(from, to, text)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	rec := store.ChatMessage{
		ID: e.msg.ID, ClassID: r.id, GroupID: string(e.msg.Group), FromUser: store.UserID(from),
		ToUser: store.UserID(e.toUser), ToHosts: e.toHosts, Text: text, SentAt: e.msg.SentAt,
	}
	ctx, cancel := r.m.storeCtx()
	err = r.m.opt.Store.SaveChat(ctx, &rec)
	cancel()
	if err != nil {
		return fmt.Errorf("room: store chat message: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == store.StatusEnded {
		return ErrEnded
	}
	// History is trimmed to ChatHistory once it holds twice as much, so a
	// message costs no copying of the whole history.
	r.chat = append(r.chat, e)
	if len(r.chat) >= 2*r.m.opt.ChatHistory {
		r.chat = append(r.chat[:0], r.chat[len(r.chat)-r.m.opt.ChatHistory:]...)
	}
	var ev Event = Chat{Type: TypeChat, ChatMessage: e.msg} // boxed once for all recipients
	r.each(func(mb *member) {
		if r.mayRead(mb, e) {
			mb.sink.Deliver(ev)
		}
	})
	return nil
}

func (r *Room) prepareChat(from ParticipantID, to ChatTarget, text string) (chatEntry, error) {
	mb, err := r.get(from)
	if err != nil {
		return chatEntry{}, err
	}
	if to.Participant != "" {
		if to.Participant == from {
			return chatEntry{}, apperr.Field("to", "cannot write to yourself")
		}
		target, ok := r.members[to.Participant]
		if !ok {
			return chatEntry{}, apperr.New(apperr.NotFound, "participant %s is not in the room", to.Participant)
		}
		if !mb.IsHost() && !target.IsHost() {
			return chatEntry{}, apperr.New(apperr.Forbidden, "students may write privately to hosts only")
		}
	}
	now := r.m.opt.Now()
	if !mb.chatRate.allow(now, r.m.opt.ChatRate) {
		return chatEntry{}, apperr.New(apperr.TooMany, "at most %d messages per %s", r.m.opt.ChatRate.N, r.m.opt.ChatRate.Per)
	}
	return chatEntry{
		msg: ChatMessage{
			ID: store.ChatMessageID(newID()), From: from, FromName: mb.Name, To: to.String(),
			Group: mb.Group, Text: text, SentAt: now,
		},
		toHosts: to.Hosts,
		toUser:  to.Participant,
	}, nil
}

// mayRead reports whether mb may see the message.
func (r *Room) mayRead(mb *member, e chatEntry) bool {
	switch {
	case mb.ID == e.msg.From:
		return true
	case e.toUser != "":
		return mb.ID == e.toUser
	case e.toHosts:
		return mb.IsHost()
	}
	return mb.Group == e.msg.Group
}
