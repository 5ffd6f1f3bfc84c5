package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/apperr"
	"github.com/liveclass/liveclass/internal/store"
)

// The live classroom's records (store.Live).

func testAttendance(t *testing.T, st store.Store) {
	ctx := context.Background()
	teacher := mkUser(t, st, "teacher@example.org")
	ann := mkUser(t, st, "ann@example.org")
	c := mkClass(t, st, newClass(teacher.ID, "Live", base))
	e := store.Enrollment{UserID: ann.ID, ClassID: c.ID}
	must(t, st.Enroll(ctx, &e), "Enroll")

	a := store.Attendance{ClassID: c.ID, UserID: ann.ID, JoinedAt: base}
	must(t, st.RecordJoin(ctx, &a), "RecordJoin")
	if a.ID == "" || !a.JoinedAt.Equal(ms(base)) {
		t.Fatalf("RecordJoin wrote back %+v", a)
	}
	b := store.Attendance{ID: "stay-2", ClassID: c.ID, UserID: ann.ID, JoinedAt: base.Add(10 * time.Minute)}
	must(t, st.RecordJoin(ctx, &b), "RecordJoin(with id)")
	wantKind(t, st.RecordJoin(ctx, &b), apperr.Conflict, "RecordJoin(same id)")
	wantKind(t, st.RecordJoin(ctx, &store.Attendance{ClassID: "nope", UserID: ann.ID, JoinedAt: base}),
		apperr.Invalid, "RecordJoin(missing class)")

	left := base.Add(20 * time.Minute)
	must(t, st.RecordLeave(ctx, a.ID, left), "RecordLeave")
	wantKind(t, st.RecordLeave(ctx, a.ID, left), apperr.NotFound, "RecordLeave(twice)")
	wantKind(t, st.RecordLeave(ctx, "nope", left), apperr.NotFound, "RecordLeave(missing)")

	got, err := st.AttendanceOf(ctx, c.ID, ann.ID)
	must(t, err, "AttendanceOf")
	lm := ms(left)
	same(t, got, []store.Attendance{
		{ID: a.ID, ClassID: c.ID, UserID: ann.ID, JoinedAt: ms(base), LeftAt: &lm},
		{ID: "stay-2", ClassID: c.ID, UserID: ann.ID, JoinedAt: ms(base.Add(10 * time.Minute))},
	}, "AttendanceOf")
	none, err := st.AttendanceOf(ctx, c.ID, teacher.ID)
	must(t, err, "AttendanceOf(none)")
	if len(none) != 0 {
		t.Fatalf("teacher has stays %+v", none)
	}

	must(t, st.UpdateAttendance(ctx, c.ID, ann.ID, true, 42), "UpdateAttendance")
	en, err := st.EnrollmentByID(ctx, e.ID)
	must(t, err, "EnrollmentByID")
	if en.Attended == nil || !*en.Attended || en.AttendanceDuration == nil || *en.AttendanceDuration != 42 {
		t.Fatalf("enrollment after UpdateAttendance: %+v", en)
	}
	if en.Feedback != nil || en.Rating != nil || !en.EnrolledAt.Equal(e.EnrolledAt) {
		t.Fatalf("UpdateAttendance touched other fields: %+v", en)
	}
	wantKind(t, st.UpdateAttendance(ctx, c.ID, teacher.ID, true, 5), apperr.NotFound, "UpdateAttendance(not enrolled)")
	wantField(t, st.UpdateAttendance(ctx, c.ID, ann.ID, true, -1), "attendanceDuration", "UpdateAttendance(negative)")
}

func testChat(t *testing.T, st store.Store) {
	ctx := context.Background()
	teacher := mkUser(t, st, "teacher@example.org")
	ann := mkUser(t, st, "ann@example.org")
	c := mkClass(t, st, newClass(teacher.ID, "Live", base))
	other := mkClass(t, st, newClass(teacher.ID, "Other", base))

	var want []store.ChatMessage
	for i := range 5 {
		m := store.ChatMessage{ClassID: c.ID, FromUser: ann.ID, Text: fmt.Sprintf("<i>message</i> %d", i),
			SentAt: base.Add(time.Duration(i) * time.Second)}
		switch i {
		case 1:
			m.ToHosts = true
		case 2:
			m.ToUser = teacher.ID
		case 3:
			m.GroupID = "b1"
		}
		must(t, st.SaveChat(ctx, &m), "SaveChat")
		if m.ID == "" || !m.SentAt.Equal(ms(m.SentAt)) {
			t.Fatalf("SaveChat wrote back %+v", m)
		}
		want = append(want, m)
	}
	must(t, st.SaveChat(ctx, &store.ChatMessage{ClassID: other.ID, FromUser: ann.ID, Text: "elsewhere", SentAt: base}), "SaveChat(other)")
	wantField(t, st.SaveChat(ctx, &store.ChatMessage{ClassID: c.ID, FromUser: ann.ID}), "text", "SaveChat(empty)")
	wantKind(t, st.SaveChat(ctx, &store.ChatMessage{ClassID: c.ID, FromUser: "ghost", Text: "x"}), apperr.Invalid, "SaveChat(no user)")

	// Paging returns every message once, in order.
	var got []store.ChatMessage
	page := store.Page{Limit: 2}
	for {
		l, err := st.ListChat(ctx, store.ChatQuery{ClassID: c.ID, Page: page})
		must(t, err, "ListChat")
		got = append(got, l.Items...)
		if l.Next == "" {
			break
		}
		page.After = l.Next
	}
	same(t, got, want, "ListChat")
	_, err := st.ListChat(ctx, store.ChatQuery{})
	wantField(t, err, "classId", "ListChat(no class)")
}

func testPolls(t *testing.T, st store.Store) {
	ctx := context.Background()
	teacher := mkUser(t, st, "teacher@example.org")
	ann := mkUser(t, st, "ann@example.org")
	bob := mkUser(t, st, "bob@example.org")
	c := mkClass(t, st, newClass(teacher.ID, "Live", base))

	p := store.Poll{ClassID: c.ID, Question: "Tabs or spaces?", Options: []string{"tabs", "spaces", "both"},
		Multiple: true, CreatedBy: teacher.ID, CreatedAt: base}
	must(t, st.SavePoll(ctx, &p), "SavePoll")
	if p.ID == "" {
		t.Fatal("SavePoll left the ID empty")
	}
	q := store.Poll{ClassID: c.ID, Question: "Ready?", Options: []string{"yes", "no"}, CreatedBy: teacher.ID,
		CreatedAt: base.Add(time.Minute)}
	must(t, st.SavePoll(ctx, &q), "SavePoll(2)")
	wantField(t, st.SavePoll(ctx, &store.Poll{ClassID: c.ID, Question: "?", Options: []string{"one"}, CreatedBy: teacher.ID}),
		"options", "SavePoll(one option)")
	wantField(t, st.SavePoll(ctx, &store.Poll{ClassID: c.ID, Options: []string{"a", "b"}, CreatedBy: teacher.ID}),
		"question", "SavePoll(no question)")

	must(t, st.SaveVote(ctx, store.PollVote{PollID: p.ID, UserID: ann.ID, Choices: []int{0, 2}, VotedAt: base}), "SaveVote")
	wantKind(t, st.SaveVote(ctx, store.PollVote{PollID: p.ID, UserID: ann.ID, Choices: []int{1}, VotedAt: base}),
		apperr.Conflict, "SaveVote(again)")
	wantField(t, st.SaveVote(ctx, store.PollVote{PollID: p.ID, UserID: bob.ID, Choices: []int{3}}), "choices", "SaveVote(no such option)")
	wantField(t, st.SaveVote(ctx, store.PollVote{PollID: p.ID, UserID: bob.ID}), "choices", "SaveVote(no choice)")
	wantKind(t, st.SaveVote(ctx, store.PollVote{PollID: "nope", UserID: bob.ID, Choices: []int{0}}), apperr.NotFound, "SaveVote(no poll)")
	must(t, st.SaveVote(ctx, store.PollVote{PollID: p.ID, UserID: bob.ID, Choices: []int{1}, VotedAt: base.Add(time.Second)}), "SaveVote(bob)")

	closed := base.Add(2 * time.Minute)
	must(t, st.ClosePoll(ctx, p.ID, closed), "ClosePoll")
	wantKind(t, st.ClosePoll(ctx, p.ID, closed), apperr.NotFound, "ClosePoll(again)")
	wantKind(t, st.SaveVote(ctx, store.PollVote{PollID: p.ID, UserID: teacher.ID, Choices: []int{0}}), apperr.Conflict, "SaveVote(closed)")

	polls, err := st.PollsOf(ctx, c.ID)
	must(t, err, "PollsOf")
	cm := ms(closed)
	wantP := p
	wantP.CreatedAt, wantP.ClosedAt = ms(base), &cm
	wantQ := q
	wantQ.CreatedAt = ms(q.CreatedAt)
	same(t, polls, []store.Poll{wantP, wantQ}, "PollsOf")

	votes, err := st.VotesOf(ctx, p.ID)
	must(t, err, "VotesOf")
	same(t, votes, []store.PollVote{
		{PollID: p.ID, UserID: ann.ID, Choices: []int{0, 2}, VotedAt: ms(base)},
		{PollID: p.ID, UserID: bob.ID, Choices: []int{1}, VotedAt: ms(base.Add(time.Second))},
	}, "VotesOf")
}

func testClassStatus(t *testing.T, st store.Store) {
	ctx := context.Background()
	teacher := mkUser(t, st, "teacher@example.org")
	c := mkClass(t, st, newClass(teacher.ID, "Live", base))
	must(t, st.SetCurrentParticipants(ctx, c.ID, 3), "SetCurrentParticipants")
	must(t, st.SetClassStatus(ctx, c.ID, store.StatusLive), "SetClassStatus")
	got, err := st.ClassByID(ctx, c.ID)
	must(t, err, "ClassByID")
	if got.Status != store.StatusLive || got.CurrentParticipants != 3 || got.Title != c.Title || got.UpdatedAt.Before(c.UpdatedAt) {
		t.Fatalf("after SetClassStatus: %+v", got)
	}
	wantField(t, st.SetClassStatus(ctx, c.ID, "PAUSED"), "status", "SetClassStatus(unknown)")
	wantKind(t, st.SetClassStatus(ctx, "nope", store.StatusEnded), apperr.NotFound, "SetClassStatus(missing)")
}

// testLiveCascade checks that deleting a class takes its live records along.
func testLiveCascade(t *testing.T, st store.Store) {
	ctx := context.Background()
	teacher := mkUser(t, st, "teacher@example.org")
	ann := mkUser(t, st, "ann@example.org")
	c := mkClass(t, st, newClass(teacher.ID, "Live", base))
	must(t, st.RecordJoin(ctx, &store.Attendance{ClassID: c.ID, UserID: ann.ID, JoinedAt: base}), "RecordJoin")
	must(t, st.SaveChat(ctx, &store.ChatMessage{ClassID: c.ID, FromUser: ann.ID, Text: "hi"}), "SaveChat")
	p := store.Poll{ClassID: c.ID, Question: "?", Options: []string{"a", "b"}, CreatedBy: teacher.ID}
	must(t, st.SavePoll(ctx, &p), "SavePoll")
	must(t, st.SaveVote(ctx, store.PollVote{PollID: p.ID, UserID: ann.ID, Choices: []int{1}}), "SaveVote")
	must(t, st.DeleteClass(ctx, c.ID), "DeleteClass")
	stays, err := st.AttendanceOf(ctx, c.ID, ann.ID)
	must(t, err, "AttendanceOf")
	chat, err := st.ListChat(ctx, store.ChatQuery{ClassID: c.ID})
	must(t, err, "ListChat")
	polls, err := st.PollsOf(ctx, c.ID)
	must(t, err, "PollsOf")
	votes, err := st.VotesOf(ctx, p.ID)
	must(t, err, "VotesOf")
	if len(stays)+len(chat.Items)+len(polls)+len(votes) != 0 {
		t.Fatalf("left behind: %d stays, %d messages, %d polls, %d votes", len(stays), len(chat.Items), len(polls), len(votes))
	}
}

func testDeleteChat(t *testing.T, st store.Store) {
	ctx := context.Background()
	teacher := mkUser(t, st, "teacher@example.org")
	ann := mkUser(t, st, "ann@example.org")
	c := mkClass(t, st, newClass(teacher.ID, "Live", base))
	other := mkClass(t, st, newClass(teacher.ID, "Other", base))

	var msgs []store.ChatMessage
	for i := range 3 {
		m := store.ChatMessage{ClassID: c.ID, FromUser: ann.ID, Text: fmt.Sprintf("m%d", i), SentAt: base.Add(time.Duration(i) * time.Second)}
		must(t, st.SaveChat(ctx, &m), "SaveChat")
		msgs = append(msgs, m)
	}
	at := base.Add(time.Minute)
	wantKind(t, st.DeleteChat(ctx, other.ID, msgs[1].ID, at), apperr.NotFound, "DeleteChat(other class)")
	must(t, st.DeleteChat(ctx, c.ID, msgs[1].ID, at), "DeleteChat")
	wantKind(t, st.DeleteChat(ctx, c.ID, msgs[1].ID, at), apperr.NotFound, "DeleteChat(twice)")
	wantKind(t, st.DeleteChat(ctx, c.ID, "nope", at), apperr.NotFound, "DeleteChat(missing)")

	l, err := st.ListChat(ctx, store.ChatQuery{ClassID: c.ID})
	must(t, err, "ListChat")
	same(t, l.Items, []store.ChatMessage{msgs[0], msgs[2]}, "ListChat after DeleteChat")
	// Paging past a deleted message still returns every other one once.
	first, err := st.ListChat(ctx, store.ChatQuery{ClassID: c.ID, Page: store.Page{Limit: 1}})
	must(t, err, "ListChat(page 1)")
	rest, err := st.ListChat(ctx, store.ChatQuery{ClassID: c.ID, Page: store.Page{Limit: 1, After: first.Next}})
	must(t, err, "ListChat(page 2)")
	same(t, append(first.Items, rest.Items...), []store.ChatMessage{msgs[0], msgs[2]}, "ListChat pages after DeleteChat")
	if rest.Next != "" {
		t.Fatalf("ListChat page 2 has Next %q", rest.Next)
	}
}

func testStreamKeys(t *testing.T, st store.Store) {
	ctx := context.Background()
	teacher := mkUser(t, st, "teacher@example.org")
	admin := mkUser(t, st, "admin@example.org")
	c := mkClass(t, st, newClass(teacher.ID, "Broadcast", base))
	other := mkClass(t, st, newClass(teacher.ID, "Other", base))

	hash := func(b byte) []byte {
		h := make([]byte, 32)
		for i := range h {
			h[i] = b ^ byte(i)
		}
		return h
	}
	k1 := store.StreamKey{ClassID: c.ID, Hash: hash(1), Prefix: "abcdefgh", CreatedBy: teacher.ID, CreatedAt: base}
	must(t, st.CreateStreamKey(ctx, &k1), "CreateStreamKey")
	if k1.ID == "" || !k1.CreatedAt.Equal(ms(base)) {
		t.Fatalf("CreateStreamKey wrote back %+v", k1)
	}
	k2 := store.StreamKey{ID: "key-2", ClassID: c.ID, Hash: hash(2), Prefix: "ijklmnop", CreatedBy: admin.ID, CreatedAt: base.Add(time.Second)}
	must(t, st.CreateStreamKey(ctx, &k2), "CreateStreamKey(with id)")
	k3 := store.StreamKey{ClassID: other.ID, Hash: hash(3), Prefix: "qrstuvwx", CreatedBy: teacher.ID, CreatedAt: base}
	must(t, st.CreateStreamKey(ctx, &k3), "CreateStreamKey(other class)")

	wantKind(t, st.CreateStreamKey(ctx, &store.StreamKey{ClassID: c.ID, Hash: hash(1), Prefix: "abcdefgh", CreatedBy: teacher.ID}),
		apperr.Conflict, "CreateStreamKey(same hash)")
	wantKind(t, st.CreateStreamKey(ctx, &store.StreamKey{ID: "key-2", ClassID: c.ID, Hash: hash(4), Prefix: "x", CreatedBy: teacher.ID}),
		apperr.Conflict, "CreateStreamKey(same id)")
	wantKind(t, st.CreateStreamKey(ctx, &store.StreamKey{ClassID: "nope", Hash: hash(5), Prefix: "x", CreatedBy: teacher.ID}),
		apperr.Invalid, "CreateStreamKey(missing class)")
	wantField(t, st.CreateStreamKey(ctx, &store.StreamKey{ClassID: c.ID, Prefix: "x", CreatedBy: teacher.ID}), "hash", "CreateStreamKey(no hash)")

	got, err := st.StreamKeyByHash(ctx, hash(2))
	must(t, err, "StreamKeyByHash")
	same(t, got, store.StreamKey{ID: "key-2", ClassID: c.ID, Hash: hash(2), Prefix: "ijklmnop", CreatedBy: admin.ID, CreatedAt: ms(base.Add(time.Second))}, "StreamKeyByHash")
	_, err = st.StreamKeyByHash(ctx, hash(9))
	wantKind(t, err, apperr.NotFound, "StreamKeyByHash(missing)")
	byID, err := st.StreamKeyByID(ctx, k1.ID)
	must(t, err, "StreamKeyByID")
	same(t, byID, k1, "StreamKeyByID")
	_, err = st.StreamKeyByID(ctx, "nope")
	wantKind(t, err, apperr.NotFound, "StreamKeyByID(missing)")

	revoked := base.Add(time.Hour)
	must(t, st.RevokeStreamKey(ctx, k1.ID, revoked), "RevokeStreamKey")
	must(t, st.RevokeStreamKey(ctx, k1.ID, revoked.Add(time.Hour)), "RevokeStreamKey(again)")
	wantKind(t, st.RevokeStreamKey(ctx, "nope", revoked), apperr.NotFound, "RevokeStreamKey(missing)")
	list, err := st.ListStreamKeys(ctx, c.ID)
	must(t, err, "ListStreamKeys")
	rv := ms(revoked)
	k1.RevokedAt = &rv
	same(t, list, []store.StreamKey{k1, k2}, "ListStreamKeys (the first revocation's time kept)")

	// Deleting the admin keeps the admin's key, without its author;
	// deleting the class deletes its keys.
	must(t, st.DeleteUser(ctx, admin.ID), "DeleteUser(admin)")
	got, err = st.StreamKeyByID(ctx, "key-2")
	must(t, err, "StreamKeyByID after DeleteUser")
	if got.CreatedBy != "" {
		t.Fatalf("key of a deleted user still names them: %+v", got)
	}
	must(t, st.DeleteClass(ctx, c.ID), "DeleteClass")
	list, err = st.ListStreamKeys(ctx, c.ID)
	must(t, err, "ListStreamKeys(deleted class)")
	if len(list) != 0 {
		t.Fatalf("keys of a deleted class remain: %+v", list)
	}
	_, err = st.StreamKeyByHash(ctx, hash(3))
	must(t, err, "StreamKeyByHash(other class's key survives)")
}
