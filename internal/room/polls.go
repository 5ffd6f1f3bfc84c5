package room

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// Poll limits.
const (
	MinPollOptions = 2
	MaxPollOptions = 10
	maxQuestion    = 500
	maxOption      = 200
)

type poll struct {
	id       PollID
	question string
	options  []string
	multiple bool
	closed   bool
	counts   []int
	votes    map[ParticipantID][]int
	pending  map[ParticipantID]bool // votes being stored
}

func (p *poll) viewFor(viewer ParticipantID) PollView {
	return PollView{
		ID: p.id, Question: p.question, Options: slices.Clone(p.options), Multiple: p.multiple,
		Closed: p.closed, YourVote: slices.Clone(p.votes[viewer]),
	}
}

func (p *poll) results() PollResults {
	return PollResults{Type: TypePollResults, Poll: p.id, Counts: slices.Clone(p.counts), Voters: len(p.votes)}
}

func (r *Room) poll(id PollID) (*poll, error) {
	for _, p := range r.polls {
		if p.id == id {
			return p, nil
		}
	}
	return nil, apperr.New(apperr.NotFound, "poll %s not found", id)
}

// PlainText trims s and checks that it is non-empty UTF-8 of at most limit
// characters. It is exported so that the broadcast audience's chat and
// polls refuse exactly what the classroom's do, with the same words.
func PlainText(field, s string, limit int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", apperr.Field(field, "is empty")
	case !utf8.ValidString(s):
		return "", apperr.Field(field, "is not valid UTF-8")
	case utf8.RuneCountInString(s) > limit:
		return "", apperr.Field(field, "is longer than %d characters", limit)
	}
	return s, nil
}

// CheckPoll checks a new poll's question and options against the poll
// limits and returns them trimmed. The broadcast audience asks its polls
// under the same limits, so it checks them here too.
func CheckPoll(question string, options []string) (string, []string, error) {
	q, err := PlainText("question", question, maxQuestion)
	if err != nil {
		return "", nil, err
	}
	if len(options) < MinPollOptions || len(options) > MaxPollOptions {
		return "", nil, apperr.Field("options", "must be %d to %d", MinPollOptions, MaxPollOptions)
	}
	opts := make([]string, len(options))
	for i, o := range options {
		if opts[i], err = PlainText(fmt.Sprintf("options[%d]", i), o, maxOption); err != nil {
			return "", nil, err
		}
	}
	return q, opts, nil
}

// CheckChoices checks a vote's option indexes against a poll of n options:
// at least one, only one unless the poll is multiple choice, each in range
// and none twice. Who votes, and whether the poll is still open, are the
// caller's to check first.
func CheckChoices(choices []int, n int, multiple bool) error {
	switch {
	case len(choices) == 0:
		return apperr.Field("choices", "choose an option")
	case !multiple && len(choices) > 1:
		return apperr.Field("choices", "this poll takes one choice")
	}
	seen := make(map[int]bool, len(choices))
	for _, c := range choices {
		if c < 0 || c >= n {
			return apperr.Field("choices", "no option %d", c)
		}
		if seen[c] {
			return apperr.Field("choices", "option %d chosen twice", c)
		}
		seen[c] = true
	}
	return nil
}

// CreatePoll asks everyone a question with 2 to 10 options, single or
// multiple choice (hosts only). The poll is stored before anyone sees it.
func (r *Room) CreatePoll(actor ParticipantID, question string, options []string, multiple bool) (PollID, error) {
	q, opts, err := CheckPoll(question, options)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	mb, err := r.host(actor)
	r.mu.Unlock()
	if err != nil {
		return "", err
	}
	rec := store.Poll{
		ID: PollID(newID()), ClassID: r.id, Question: q, Options: opts, Multiple: multiple,
		CreatedBy: mb.user, CreatedAt: r.m.opt.Now(),
	}
	ctx, cancel := r.m.storeCtx()
	err = r.m.opt.Store.SavePoll(ctx, &rec)
	cancel()
	if err != nil {
		return "", fmt.Errorf("room: store poll: %w", err)
	}
	p := &poll{
		id: rec.ID, question: q, options: opts, multiple: multiple, counts: make([]int, len(opts)),
		votes: map[ParticipantID][]int{}, pending: map[ParticipantID]bool{},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status == store.StatusEnded {
		return "", ErrEnded
	}
	r.polls = append(r.polls, p)
	r.each(func(mb *member) { mb.sink.Deliver(Poll{Type: TypePoll, Poll: p.viewFor(mb.ID)}) })
	r.toHosts(p.results())
	return p.id, nil
}

// Vote answers an open poll with the indexes of the chosen options: one
// for a single-choice poll, one or more distinct ones for a multiple
// choice. Each attendee votes once; hosts see the counts at once.
func (r *Room) Vote(voter ParticipantID, id PollID, choices []int) error {
	r.mu.Lock()
	p, err := r.checkVote(voter, id, choices)
	if err == nil {
		p.pending[voter] = true
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	v := store.PollVote{PollID: id, UserID: store.UserID(voter), Choices: slices.Clone(choices), VotedAt: r.m.opt.Now()}
	ctx, cancel := r.m.storeCtx()
	err = r.m.opt.Store.SaveVote(ctx, v)
	cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(p.pending, voter)
	if err != nil {
		return fmt.Errorf("room: store vote: %w", err)
	}
	p.votes[voter] = slices.Clone(choices)
	for _, c := range choices {
		p.counts[c]++
	}
	if mb, ok := r.members[voter]; ok {
		mb.sink.Deliver(Poll{Type: TypePoll, Poll: p.viewFor(voter)})
	}
	if p.closed {
		// Stored just before the close was: everyone has seen results,
		// so everyone gets the corrected ones.
		r.toAll(p.results())
	} else {
		r.toHosts(p.results())
	}
	return nil
}

func (r *Room) checkVote(voter ParticipantID, id PollID, choices []int) (*poll, error) {
	mb, err := r.get(voter)
	if err != nil {
		return nil, err
	}
	if mb.IsHost() {
		return nil, apperr.New(apperr.Forbidden, "hosts do not vote")
	}
	p, err := r.poll(id)
	if err != nil {
		return nil, err
	}
	switch {
	case p.closed:
		return nil, apperr.New(apperr.Conflict, "the poll is closed")
	case p.pending[voter] || p.votes[voter] != nil:
		return nil, apperr.New(apperr.Conflict, "you have already voted")
	}
	if err := CheckChoices(choices, len(p.options), p.multiple); err != nil {
		return nil, err
	}
	return p, nil
}

// ClosePoll ends voting and shows everyone the results (hosts only).
func (r *Room) ClosePoll(actor ParticipantID, id PollID) error {
	r.mu.Lock()
	_, err := r.host(actor)
	var p *poll
	if err == nil {
		p, err = r.poll(id)
	}
	if err == nil && p.closed {
		err = apperr.New(apperr.Conflict, "the poll is already closed")
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := r.m.storeCtx()
	err = r.m.opt.Store.ClosePoll(ctx, id, r.m.opt.Now())
	cancel()
	if err != nil {
		return fmt.Errorf("room: close poll: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	res := p.results()
	r.each(func(mb *member) {
		mb.sink.Deliver(Poll{Type: TypePoll, Poll: p.viewFor(mb.ID)})
		mb.sink.Deliver(res)
	})
	return nil
}
