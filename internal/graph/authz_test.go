package graph_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/auth"
	"github.com/liveclass/liveclass/internal/store"
)

// want lists the expected outcome per actor, in actorNames order:
// anonymous, STUDENT (enrolled), MENTOR of the class, another MENTOR, ADMIN.
type want [5]string

const (
	ok     = "ok"
	unauth = "UNAUTHENTICATED"
	forbid = "FORBIDDEN"
)

// fixture is the world one matrix cell runs in: a class of mentorOwn
// starting in five minutes (so join tokens are granted), the student
// enrolled in it, and a recording of it.
type fixture struct {
	class      store.LiveClass
	enrollment store.Enrollment
	recording  store.Recording
}

func (e *env) fixture() fixture {
	c := e.newClass(classSpec{startIn: 5 * time.Minute})
	return fixture{class: c, enrollment: e.enroll(student, c), recording: e.newRecording(c)}
}

type operation struct {
	name  string
	query string
	vars  func(e *env, f fixture) map[string]any
	want  want
}

func classInputVars() map[string]any {
	start := time.Now().Add(24 * time.Hour).UTC()
	return map[string]any{
		"title": "Matrix class", "startTime": start.Format(time.RFC3339), "endTime": start.Add(time.Hour).Format(time.RFC3339),
		"awsService": "CHIME", "requiresEnrollment": true, "accessLevel": "STUDENT", "maxParticipants": 10,
		"category": "go", "level": "BEGINNER", "price": 0, "isFree": true, "tags": []string{"go"},
	}
}

// operations is every query and mutation of the schema with the rules of
// issue 2 section 6 (subscriptions are in TestSubscriptionMatrix).
func operations() []operation {
	id := func(f func(fixture) string) func(*env, fixture) map[string]any {
		return func(_ *env, fx fixture) map[string]any { return map[string]any{"id": f(fx)} }
	}
	return []operation{
		{"getLiveClass", `query($id: ID!) { getLiveClass(id: $id) { id title } }`,
			id(func(f fixture) string { return string(f.class.ID) }), want{ok, ok, ok, ok, ok}},
		{"listLiveClasses", `{ listLiveClasses { items { id } nextToken } }`, nil, want{ok, ok, ok, ok, ok}},
		{"liveClassesByInstructorId", `query($id: ID!) { liveClassesByInstructorId(instructorId: $id) { items { id } } }`,
			func(e *env, _ fixture) map[string]any { return map[string]any{"id": string(e.users[mentorOwn].ID)} }, want{ok, ok, ok, ok, ok}},
		{"getLiveClassEnrollment(id)", `query($id: ID) { getLiveClassEnrollment(id: $id) { id } }`,
			id(func(f fixture) string { return string(f.enrollment.ID) }), want{unauth, ok, ok, forbid, ok}},
		{"getLiveClassEnrollment(userId, liveClassId)", `query($u: ID, $c: ID) { getLiveClassEnrollment(userId: $u, liveClassId: $c) { id } }`,
			func(e *env, f fixture) map[string]any {
				return map[string]any{"u": string(e.users[student].ID), "c": string(f.class.ID)}
			}, want{unauth, ok, ok, forbid, ok}},
		{"listLiveClassEnrollments", `{ listLiveClassEnrollments { items { id } } }`, nil, want{unauth, ok, ok, ok, ok}},
		{"liveClassEnrollmentsByUserId", `query($u: ID!) { liveClassEnrollmentsByUserId(userId: $u) { items { id } } }`,
			func(e *env, _ fixture) map[string]any { return map[string]any{"u": string(e.users[student].ID)} }, want{unauth, ok, forbid, forbid, ok}},
		{"liveClassEnrollmentsByLiveClassId", `query($c: ID!) { liveClassEnrollmentsByLiveClassId(liveClassId: $c) { items { id } } }`,
			func(_ *env, f fixture) map[string]any { return map[string]any{"c": string(f.class.ID)} }, want{unauth, ok, ok, ok, ok}},
		{"getLiveClassRecording", `query($id: ID!) { getLiveClassRecording(id: $id) { id } }`,
			id(func(f fixture) string { return string(f.recording.ID) }), want{unauth, ok, ok, forbid, ok}},
		{"listLiveClassRecordings", `{ listLiveClassRecordings { items { id } } }`, nil, want{unauth, ok, ok, ok, ok}},
		{"liveClassRecordingsByLiveClassId", `query($c: ID!) { liveClassRecordingsByLiveClassId(liveClassId: $c) { items { id } } }`,
			func(_ *env, f fixture) map[string]any { return map[string]any{"c": string(f.class.ID)} }, want{unauth, ok, ok, forbid, ok}},
		{"getUser", `query($id: ID!) { getUser(id: $id) { id name } }`,
			func(e *env, _ fixture) map[string]any { return map[string]any{"id": string(e.users[student].ID)} }, want{unauth, ok, ok, ok, ok}},
		{"listUsers", `{ listUsers { items { id } } }`, nil, want{unauth, forbid, forbid, forbid, ok}},
		{"me", `{ me { id role } }`, nil, want{ok, ok, ok, ok, ok}},
		{"generateLiveClassToken (query)", `query($c: ID!) { generateLiveClassToken(liveClassId: $c) { token role } }`,
			func(_ *env, f fixture) map[string]any { return map[string]any{"c": string(f.class.ID)} }, want{unauth, ok, ok, forbid, ok}},
		{"generateLiveClassToken (mutation)", `mutation($c: ID!) { generateLiveClassToken(liveClassId: $c, userId: "ignored", token: "ignored") { token role } }`,
			func(_ *env, f fixture) map[string]any { return map[string]any{"c": string(f.class.ID)} }, want{unauth, ok, ok, forbid, ok}},

		{"createLiveClass", `mutation($in: CreateLiveClassInput!) { createLiveClass(input: $in) { id } }`,
			func(*env, fixture) map[string]any { return map[string]any{"in": classInputVars()} }, want{unauth, forbid, ok, ok, ok}},
		{"updateLiveClass", `mutation($id: ID!) { updateLiveClass(input: {id: $id, title: "Renamed"}) { id title } }`,
			id(func(f fixture) string { return string(f.class.ID) }), want{unauth, forbid, ok, forbid, ok}},
		{"deleteLiveClass", `mutation($id: ID!) { deleteLiveClass(input: {id: $id}) { id } }`,
			id(func(f fixture) string { return string(f.class.ID) }), want{unauth, forbid, ok, forbid, ok}},
		{"createLiveClassEnrollment", `mutation($c: ID!) { createLiveClassEnrollment(input: {liveClassId: $c}) { id } }`,
			func(e *env, _ fixture) map[string]any {
				return map[string]any{"c": string(e.newClass(classSpec{instructor: admin, startIn: time.Hour}).ID)}
			}, want{unauth, ok, ok, ok, ok}},
		{"updateLiveClassEnrollment", `mutation($id: ID!) { updateLiveClassEnrollment(input: {id: $id, rating: 5, feedback: "Great"}) { id rating } }`,
			func(e *env, _ fixture) map[string]any { return map[string]any{"id": string(e.pastEnrollment().ID)} }, want{unauth, ok, forbid, forbid, forbid}},
		{"deleteLiveClassEnrollment", `mutation($id: ID!) { deleteLiveClassEnrollment(input: {id: $id}) { id } }`,
			id(func(f fixture) string { return string(f.enrollment.ID) }), want{unauth, ok, ok, forbid, ok}},
		{"createLiveClassRecording", `mutation($c: ID!) { createLiveClassRecording(input: {liveClassId: $c, s3Key: "a.mp4", s3Bucket: "b", duration: 10}) { id } }`,
			func(_ *env, f fixture) map[string]any { return map[string]any{"c": string(f.class.ID)} }, want{unauth, forbid, ok, forbid, ok}},
		{"updateLiveClassRecording", `mutation($id: ID!) { updateLiveClassRecording(input: {id: $id, duration: 99}) { id duration } }`,
			id(func(f fixture) string { return string(f.recording.ID) }), want{unauth, forbid, ok, forbid, ok}},
		{"deleteLiveClassRecording", `mutation($id: ID!) { deleteLiveClassRecording(input: {id: $id}) { id } }`,
			id(func(f fixture) string { return string(f.recording.ID) }), want{unauth, forbid, ok, forbid, ok}},
		{"createUser", `mutation($email: AWSEmail) { createUser(input: {name: "New", email: $email}) { id } }`,
			func(e *env, _ fixture) map[string]any {
				return map[string]any{"email": fmt.Sprintf("new%d@example.com", e.seq.Add(1))}
			}, want{unauth, forbid, forbid, forbid, ok}},
		{"updateUser", `mutation($id: ID!) { updateUser(input: {id: $id, name: "Renamed"}) { id name } }`,
			func(e *env, _ fixture) map[string]any { return map[string]any{"id": string(e.users[student].ID)} }, want{unauth, ok, forbid, forbid, ok}},
		{"deleteUser", `mutation($id: ID!) { deleteUser(input: {id: $id}) { id } }`,
			func(e *env, _ fixture) map[string]any { return map[string]any{"id": string(e.throwawayUser().ID)} }, want{unauth, forbid, forbid, forbid, ok}},

		{"streamKeys", `query($c: ID!) { streamKeys(liveClassId: $c) { id prefix } }`,
			func(e *env, _ fixture) map[string]any { return map[string]any{"c": string(e.broadcastClass().ID)} }, want{unauth, forbid, ok, forbid, ok}},
		{"createStreamKey", `mutation($c: ID!) { createStreamKey(liveClassId: $c) { id key ingestUrl } }`,
			func(e *env, _ fixture) map[string]any { return map[string]any{"c": string(e.broadcastClass().ID)} }, want{unauth, forbid, ok, forbid, ok}},
		{"revokeStreamKey", `mutation($id: ID!) { revokeStreamKey(id: $id) { id revokedAt } }`,
			func(e *env, _ fixture) map[string]any {
				return map[string]any{"id": string(e.streamKey(e.broadcastClass()).ID)}
			}, want{unauth, forbid, ok, forbid, ok}},
	}
}

// broadcastClass is a broadcast (IVS) class of mentorOwn, for the stream
// key operations.
func (e *env) broadcastClass() store.LiveClass {
	return e.newClass(classSpec{startIn: time.Hour, service: store.ServiceIVS})
}

// streamKey is a key of class c made by its instructor.
func (e *env) streamKey(c store.LiveClass) store.StreamKey {
	e.t.Helper()
	nk, err := e.classes.CreateStreamKey(context.Background(), e.actor(mentorOwn), c.ID)
	if err != nil {
		e.t.Fatalf("create stream key: %v", err)
	}
	return nk.Key
}

// pastEnrollment is the student's seat in a class that is over, written
// straight to the store (the service refuses to schedule the past).
func (e *env) pastEnrollment() store.Enrollment {
	e.t.Helper()
	c := e.newClass(classSpec{startIn: -3 * time.Hour})
	en := store.Enrollment{ID: store.EnrollmentID(fmt.Sprintf("past-%d", e.seq.Add(1))), UserID: e.users[student].ID,
		ClassID: c.ID, EnrolledAt: c.StartTime, CreatedAt: c.StartTime, UpdatedAt: c.StartTime}
	if err := e.st.Enroll(context.Background(), &en); err != nil {
		e.t.Fatalf("enroll in the past: %v", err)
	}
	return en
}

func (e *env) throwawayUser() store.User {
	e.t.Helper()
	u, err := e.auth.CreateUser(context.Background(), e.actor(admin), auth.UserInput{
		Email: fmt.Sprintf("gone%d@example.com", e.seq.Add(1)), Name: "Throwaway"})
	if err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	return u
}

// TestAuthorizationMatrix runs every query and mutation as each actor on
// a fresh fixture and checks the outcome code.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, op := range operations() {
		for i, actor := range actorNames {
			t.Run(op.name+"/"+actor, func(t *testing.T) {
				e.t = t
				f := e.fixture()
				var vars map[string]any
				if op.vars != nil {
					vars = op.vars(e, f)
				}
				r := e.do(actor, op.query, vars)
				if got := r.code(); got != op.want[i] {
					t.Errorf("%s as %s: got %s, want %s (errors %+v)", op.name, actor, got, op.want[i], r.Errors)
				}
				if r.code() == ok && string(r.Data) == "" {
					t.Errorf("%s as %s: no data", op.name, actor)
				}
			})
		}
	}
}
