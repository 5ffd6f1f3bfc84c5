package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// The live classroom's records: attendance, chat, polls and votes.

const attendanceCols = `attendance.id, attendance.class_id, attendance.user_id, attendance.joined_at, attendance.left_at`

func scanAttendance(r *sql.Rows) (store.Attendance, error) {
	var a store.Attendance
	err := r.Scan(&a.ID, &a.ClassID, &a.UserID, timeScan{&a.JoinedAt}, nullTimeScan{&a.LeftAt})
	return a, err
}

// RecordJoin stores the start of a stay, filling a missing ID.
func (db *DB) RecordJoin(ctx context.Context, a *store.Attendance) error {
	if a.ID == "" {
		a.ID = store.AttendanceID(newID())
	}
	if a.JoinedAt.IsZero() {
		a.JoinedAt = now()
	}
	a.JoinedAt = ts(a.JoinedAt)
	if a.LeftAt != nil {
		t := ts(*a.LeftAt)
		a.LeftAt = &t
	}
	_, err := db.exec(ctx, `INSERT INTO attendance (id, class_id, user_id, joined_at, left_at) VALUES (?, ?, ?, ?, ?)`,
		string(a.ID), string(a.ClassID), string(a.UserID), db.tm(a.JoinedAt), db.tmp(a.LeftAt))
	switch {
	case err == nil:
		return nil
	case db.d.IsForeignKey(err):
		return apperr.New(apperr.Invalid, "no class %s or no user %s", a.ClassID, a.UserID)
	case db.d.IsUnique(err):
		return conflictField("id", "a stay with this id already exists")
	}
	return db.wrap(err, "record join")
}

// RecordLeave closes an open stay; NotFound when there is no such open stay.
func (db *DB) RecordLeave(ctx context.Context, id store.AttendanceID, at time.Time) error {
	res, err := db.exec(ctx, "UPDATE attendance SET left_at = ? WHERE id = ? AND left_at IS NULL", db.tm(at), string(id))
	if err != nil {
		return db.wrap(err, "record leave")
	}
	return affected(db, res, "open stay", id)
}

// AttendanceOf returns a user's stays in a class, oldest first.
func (db *DB) AttendanceOf(ctx context.Context, class store.ClassID, user store.UserID) ([]store.Attendance, error) {
	out, err := queryAll(ctx, db, "SELECT "+attendanceCols+` FROM attendance
		WHERE class_id = ? AND user_id = ? ORDER BY joined_at, id`,
		[]any{string(class), string(user)}, scanAttendance)
	return out, db.wrap(err, "attendance of")
}

// UpdateAttendance sets the enrollment's attended flag and minutes.
func (db *DB) UpdateAttendance(ctx context.Context, class store.ClassID, user store.UserID, attended bool, minutes int) error {
	if minutes < 0 {
		return apperr.Field("attendanceDuration", "must not be negative")
	}
	res, err := db.exec(ctx, `UPDATE enrollments SET attended = ?, attendance_duration = ?, updated_at = ?
		WHERE live_class_id = ? AND user_id = ?`, attended, minutes, db.tm(now()), string(class), string(user))
	if err != nil {
		return db.wrap(err, "update attendance")
	}
	return affected(db, res, "enrollment of user in class", fmt.Sprintf("%s/%s", user, class))
}

const chatCols = `chat_messages.id, chat_messages.class_id, chat_messages.group_id, chat_messages.from_user,
	chat_messages.to_user, chat_messages.to_hosts, chat_messages.text, chat_messages.sent_at`

func scanChat(r *sql.Rows) (store.ChatMessage, error) {
	var m store.ChatMessage
	var to sql.NullString
	err := r.Scan(&m.ID, &m.ClassID, &m.GroupID, &m.FromUser, &to, &m.ToHosts, &m.Text, timeScan{&m.SentAt})
	m.ToUser = store.UserID(to.String)
	return m, err
}

// SaveChat stores a message, filling a missing ID and time.
func (db *DB) SaveChat(ctx context.Context, m *store.ChatMessage) error {
	if m.Text == "" {
		return apperr.Field("text", "is empty")
	}
	if m.ID == "" {
		m.ID = store.ChatMessageID(newID())
	}
	if m.SentAt.IsZero() {
		m.SentAt = now()
	}
	m.SentAt = ts(m.SentAt)
	var to any
	if m.ToUser != "" {
		to = string(m.ToUser)
	}
	_, err := db.exec(ctx, `INSERT INTO chat_messages (id, class_id, group_id, from_user, to_user, to_hosts, text, sent_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		string(m.ID), string(m.ClassID), m.GroupID, string(m.FromUser), to, m.ToHosts, m.Text, db.tm(m.SentAt))
	switch {
	case err == nil:
		return nil
	case db.d.IsForeignKey(err):
		return apperr.New(apperr.Invalid, "no class %s or no user %s", m.ClassID, m.FromUser)
	case db.d.IsUnique(err):
		return conflictField("id", "a message with this id already exists")
	}
	return db.wrap(err, "save chat")
}

// DeleteChat marks a message deleted; the row stays for the record.
func (db *DB) DeleteChat(ctx context.Context, class store.ClassID, id store.ChatMessageID, at time.Time) error {
	res, err := db.exec(ctx, "UPDATE chat_messages SET deleted_at = ? WHERE class_id = ? AND id = ? AND deleted_at IS NULL",
		db.tm(at), string(class), string(id))
	if err != nil {
		return db.wrap(err, "delete chat")
	}
	return affected(db, res, "chat message", id)
}

// ListChat pages through a class's messages in the order they were sent.
func (db *DB) ListChat(ctx context.Context, q store.ChatQuery) (store.List[store.ChatMessage], error) {
	if q.ClassID == "" {
		return store.List[store.ChatMessage]{}, apperr.Field("classId", "is required")
	}
	return list(ctx, db, listSpec[store.ChatMessage]{
		table: "chat_messages", cols: chatCols, sortCol: "sent_at",
		where: []string{"chat_messages.class_id = ?", "chat_messages.deleted_at IS NULL"}, args: []any{string(q.ClassID)},
		page: q.Page, scan: scanChat,
		key: func(m *store.ChatMessage) (time.Time, string) { return m.SentAt, string(m.ID) },
	})
}

const pollCols = `polls.id, polls.class_id, polls.question, polls.options, polls.multiple, polls.created_by,
	polls.created_at, polls.closed_at`

func scanPoll(r *sql.Rows) (store.Poll, error) {
	var p store.Poll
	var opts string
	err := r.Scan(&p.ID, &p.ClassID, &p.Question, &opts, &p.Multiple, &p.CreatedBy,
		timeScan{&p.CreatedAt}, nullTimeScan{&p.ClosedAt})
	if err == nil {
		err = json.Unmarshal([]byte(opts), &p.Options)
	}
	return p, err
}

// SavePoll stores a new poll, filling a missing ID and time.
func (db *DB) SavePoll(ctx context.Context, p *store.Poll) error {
	switch {
	case p.Question == "":
		return apperr.Field("question", "is empty")
	case len(p.Options) < 2:
		return apperr.Field("options", "a poll needs at least two")
	}
	if p.ID == "" {
		p.ID = store.PollID(newID())
	}
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now()
	}
	p.CreatedAt = ts(p.CreatedAt)
	if p.ClosedAt != nil {
		t := ts(*p.ClosedAt)
		p.ClosedAt = &t
	}
	opts, err := json.Marshal(p.Options)
	if err != nil {
		return apperr.Field("options", "cannot encode: %v", err)
	}
	_, err = db.exec(ctx, `INSERT INTO polls (id, class_id, question, options, multiple, created_by, created_at, closed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		string(p.ID), string(p.ClassID), p.Question, string(opts), p.Multiple, string(p.CreatedBy),
		db.tm(p.CreatedAt), db.tmp(p.ClosedAt))
	switch {
	case err == nil:
		return nil
	case db.d.IsForeignKey(err):
		return apperr.New(apperr.Invalid, "no class %s or no user %s", p.ClassID, p.CreatedBy)
	case db.d.IsUnique(err):
		return conflictField("id", "a poll with this id already exists")
	}
	return db.wrap(err, "save poll")
}

// ClosePoll closes an open poll.
func (db *DB) ClosePoll(ctx context.Context, id store.PollID, at time.Time) error {
	res, err := db.exec(ctx, "UPDATE polls SET closed_at = ? WHERE id = ? AND closed_at IS NULL", db.tm(at), string(id))
	if err != nil {
		return db.wrap(err, "close poll")
	}
	return affected(db, res, "open poll", id)
}

// PollsOf returns a class's polls, oldest first.
func (db *DB) PollsOf(ctx context.Context, class store.ClassID) ([]store.Poll, error) {
	out, err := queryAll(ctx, db, "SELECT "+pollCols+" FROM polls WHERE class_id = ? ORDER BY created_at, id",
		[]any{string(class)}, scanPoll)
	return out, db.wrap(err, "polls of")
}

// SaveVote stores a vote in one transaction with the check that the poll
// is open: NotFound for no such poll, Conflict for a closed poll or a
// second vote, Invalid for a choice the poll does not have.
func (db *DB) SaveVote(ctx context.Context, v store.PollVote) error {
	if len(v.Choices) == 0 {
		return apperr.Field("choices", "choose an option")
	}
	if v.VotedAt.IsZero() {
		v.VotedAt = now()
	}
	choices, err := json.Marshal(v.Choices)
	if err != nil {
		return apperr.Field("choices", "cannot encode: %v", err)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		var opts string
		var closedAt *time.Time
		err := tx.QueryRowContext(ctx, db.q("SELECT options, closed_at FROM polls WHERE id = ?"), string(v.PollID)).
			Scan(&opts, nullTimeScan{&closedAt})
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("poll", v.PollID)
		}
		if err != nil {
			return db.wrap(err, "save vote")
		}
		if closedAt != nil {
			return apperr.New(apperr.Conflict, "the poll is closed")
		}
		var options []string
		if err := json.Unmarshal([]byte(opts), &options); err != nil {
			return db.wrap(err, "save vote: options")
		}
		for _, c := range v.Choices {
			if c < 0 || c >= len(options) {
				return apperr.Field("choices", "no option %d", c)
			}
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO poll_votes (poll_id, user_id, choices, voted_at) VALUES (?, ?, ?, ?)`),
			string(v.PollID), string(v.UserID), string(choices), db.tm(v.VotedAt))
		switch {
		case err == nil:
			return nil
		case db.d.IsUnique(err):
			return apperr.New(apperr.Conflict, "already voted in this poll")
		case db.d.IsForeignKey(err):
			return apperr.New(apperr.Invalid, "no user %s", v.UserID)
		}
		return db.wrap(err, "save vote")
	})
}

// VotesOf returns a poll's votes, oldest first.
func (db *DB) VotesOf(ctx context.Context, id store.PollID) ([]store.PollVote, error) {
	out, err := queryAll(ctx, db, "SELECT poll_id, user_id, choices, voted_at FROM poll_votes WHERE poll_id = ? ORDER BY voted_at, user_id",
		[]any{string(id)}, func(r *sql.Rows) (store.PollVote, error) {
			var v store.PollVote
			var choices string
			err := r.Scan(&v.PollID, &v.UserID, &choices, timeScan{&v.VotedAt})
			if err == nil {
				err = json.Unmarshal([]byte(choices), &v.Choices)
			}
			return v, err
		})
	return out, db.wrap(err, "votes of")
}

// SetClassStatus moves the class's status and updatedAt alone.
func (db *DB) SetClassStatus(ctx context.Context, id store.ClassID, s store.Status) error {
	switch s {
	case store.StatusScheduled, store.StatusLive, store.StatusEnded, store.StatusCancelled:
	default:
		return apperr.Field("status", "unknown status %q", s)
	}
	res, err := db.exec(ctx, "UPDATE live_classes SET status = ?, updated_at = ? WHERE id = ?", string(s), db.tm(now()), string(id))
	if err != nil {
		return db.wrap(err, "set class status")
	}
	return affected(db, res, "class", id)
}
