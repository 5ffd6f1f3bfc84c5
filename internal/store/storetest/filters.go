package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liveclass/liveclass/internal/store"
)

func c1(field string, op store.Op, vals ...any) store.Cond {
	return store.Cond{Field: field, Op: op, Values: vals}
}

func where(conds ...store.Cond) *store.Filter { return &store.Filter{Conds: conds} }

// filterFixture stores four classes, A to D, that differ in every
// filterable way, and returns the store's IDs by letter.
func filterFixture(t *testing.T, st store.Store) (map[string]store.ClassID, store.UserID) {
	t.Helper()
	m := mkUser(t, st, "m@example.org")
	a := newClass(m.ID, "Intro to Go", base.Add(time.Hour))
	a.Description = ptr("100% practical")
	a.Category, a.Level, a.Price, a.IsFree = "programming", store.LevelBeginner, 0, true
	a.Tags = []string{"go", "backend"}
	a.ChimeRoomID = ptr("room-a")
	a.RequiresEnrollment = true

	b := newClass(m.ID, "Advanced Go_lang", base.Add(-30*time.Minute))
	b.Category, b.Level, b.Price, b.IsFree = "programming", store.LevelAdvanced, 49.5, false
	b.Tags = []string{"go"}
	b.Status = store.StatusLive
	b.Duration, b.MaxParticipants, b.Service = 90, 50, store.ServiceIVS

	c := newClass(m.ID, "intro to painting", base.Add(-2*time.Hour))
	c.Description = ptr("brush_work")
	c.Category, c.Level, c.Price, c.IsFree = "art", store.LevelBeginner, 10, false
	c.Duration = 30

	d := newClass(m.ID, "Cancelled class", base.Add(48*time.Hour))
	d.Description = ptr("a%b")
	d.Category, d.Level, d.Price, d.IsFree = "art", store.LevelIntermediate, 0, true
	d.Tags = []string{"gopher", "art"}
	d.Status = store.StatusCancelled
	d.Duration, d.MaxParticipants = 45, 5

	ids := map[string]store.ClassID{}
	for letter, cl := range map[string]store.LiveClass{"A": a, "B": b, "C": c, "D": d} {
		ids[letter] = mkClass(t, st, cl).ID
	}
	return ids, m.ID
}

func testClassFilters(t *testing.T, st store.Store) {
	ids, instructor := filterFixture(t, st)
	tests := []struct {
		name   string
		filter *store.Filter
		want   string // letters of the classes that match
	}{
		{"none", nil, "ABCD"},
		{"empty", &store.Filter{}, "ABCD"},
		{"id eq", where(c1("id", store.OpEq, string(ids["A"]))), "A"},
		{"id as typed ID", where(c1("id", store.OpEq, ids["C"])), "C"},
		{"instructorId eq", where(c1("instructorId", store.OpEq, string(instructor))), "ABCD"},
		{"title eq", where(c1("title", store.OpEq, "Intro to Go")), "A"},
		{"title eq injection", where(c1("title", store.OpEq, "x' OR '1'='1")), ""},
		{"title ne", where(c1("title", store.OpNe, "Intro to Go")), "BCD"},
		{"title beginsWith is case-sensitive", where(c1("title", store.OpBeginsWith, "Intro")), "A"},
		{"title beginsWith lower", where(c1("title", store.OpBeginsWith, "intro")), "C"},
		{"title contains", where(c1("title", store.OpContains, "Go")), "AB"},
		{"title contains is case-sensitive", where(c1("title", store.OpContains, "go")), ""},
		{"title contains underscore literally", where(c1("title", store.OpContains, "_")), "B"},
		{"title contains percent literally", where(c1("title", store.OpContains, "%")), ""},
		{"title notContains", where(c1("title", store.OpNotContains, "Go")), "CD"},
		{"title lt byte order", where(c1("title", store.OpLt, "a")), "ABD"},
		{"title between", where(c1("title", store.OpBetween, "A", "C")), "B"},
		{"title ge", where(c1("title", store.OpGe, "Intro to Go")), "AC"},
		{"description contains percent", where(c1("description", store.OpContains, "%")), "AD"},
		{"description contains underscore", where(c1("description", store.OpContains, "_")), "C"},
		{"description notContains: missing passes", where(c1("description", store.OpNotContains, "%")), "BC"},
		{"description eq", where(c1("description", store.OpEq, "brush_work")), "C"},
		{"description ne: missing passes", where(c1("description", store.OpNe, "brush_work")), "ABD"},
		{"description gt: missing fails", where(c1("description", store.OpGt, "")), "ACD"},
		{"description beginsWith", where(c1("description", store.OpBeginsWith, "a%")), "D"},
		{"description exists", where(c1("description", store.OpAttributeExists, true)), "ACD"},
		{"description missing", where(c1("description", store.OpAttributeExists, false)), "B"},
		{"chimeRoomId exists", where(c1("chimeRoomId", store.OpAttributeExists, true)), "A"},
		{"title always exists", where(c1("title", store.OpAttributeExists, true)), "ABCD"},
		{"title never missing", where(c1("title", store.OpAttributeExists, false)), ""},
		{"nextReminder missing", where(c1("nextReminder", store.OpAttributeExists, false)), "ABCD"},
		{"duration gt", where(c1("duration", store.OpGt, 45)), "AB"},
		{"duration ge", where(c1("duration", store.OpGe, 45)), "ABD"},
		{"duration lt", where(c1("duration", store.OpLt, 45)), "C"},
		{"duration le", where(c1("duration", store.OpLe, 30)), "C"},
		{"duration eq", where(c1("duration", store.OpEq, 90)), "B"},
		{"duration ne", where(c1("duration", store.OpNe, 60)), "BCD"},
		{"duration between inclusive", where(c1("duration", store.OpBetween, 45, 60)), "AD"},
		{"duration eq float64 of an int", where(c1("duration", store.OpEq, 30.0)), "C"},
		{"maxParticipants le", where(c1("maxParticipants", store.OpLe, 5)), "D"},
		{"currentParticipants eq", where(c1("currentParticipants", store.OpEq, 0)), "ABCD"},
		{"price gt", where(c1("price", store.OpGt, 0.0)), "BC"},
		{"price eq int", where(c1("price", store.OpEq, 0)), "AD"},
		{"price between", where(c1("price", store.OpBetween, 5.0, 20.0)), "C"},
		{"price le", where(c1("price", store.OpLe, 10.0)), "ACD"},
		{"isFree eq", where(c1("isFree", store.OpEq, true)), "AD"},
		{"isFree ne", where(c1("isFree", store.OpNe, true)), "BC"},
		{"requiresEnrollment", where(c1("requiresEnrollment", store.OpEq, true)), "A"},
		{"reminderSent", where(c1("reminderSent", store.OpEq, false)), "ABCD"},
		{"startTime gt", where(c1("startTime", store.OpGt, base)), "AD"},
		{"startTime lt", where(c1("startTime", store.OpLt, base)), "BC"},
		{"startTime le exact ms", where(c1("startTime", store.OpLe, base.Add(time.Hour))), "ABC"},
		{"startTime eq exact ms", where(c1("startTime", store.OpEq, base.Add(time.Hour))), "A"},
		{"startTime between", where(c1("startTime", store.OpBetween, base.Add(-time.Hour), base.Add(2*time.Hour))), "AB"},
		{"startTime ge as ISO string", where(c1("startTime", store.OpGe, base.Add(47*time.Hour).Format(time.RFC3339Nano))), "D"},
		{"endTime gt", where(c1("endTime", store.OpGt, base.Add(2*time.Hour))), "D"},
		{"createdAt attributeExists", where(c1("createdAt", store.OpAttributeExists, true)), "ABCD"},
		{"awsService eq", where(c1("awsService", store.OpEq, "IVS")), "B"},
		{"awsService ne typed", where(c1("awsService", store.OpNe, store.ServiceChime)), "B"},
		{"level eq", where(c1("level", store.OpEq, store.LevelBeginner)), "AC"},
		{"accessLevel eq", where(c1("accessLevel", store.OpEq, "STUDENT")), "ABCD"},
		{"status eq", where(c1("status", store.OpEq, "CANCELLED")), "D"},
		{"status ne", where(c1("status", store.OpNe, "SCHEDULED")), "BD"},
		{"category eq", where(c1("category", store.OpEq, "art")), "CD"},
		{"tags contains is exact membership", where(c1("tags", store.OpContains, "go")), "AB"},
		{"tags eq means one of the tags", where(c1("tags", store.OpEq, "go")), "AB"},
		{"tags contains no substring", where(c1("tags", store.OpContains, "o")), ""},
		{"tags notContains", where(c1("tags", store.OpNotContains, "go")), "CD"},
		{"tags ne", where(c1("tags", store.OpNe, "art")), "ABC"},
		{"tags with a quote", where(c1("tags", store.OpContains, `go"]`)), ""},
		{"isLive true", where(c1("isLive", store.OpEq, true)), "B"},
		{"isLive false", where(c1("isLive", store.OpEq, false)), "ACD"},
		{"isLive ne true", where(c1("isLive", store.OpNe, true)), "ACD"},
		{"isUpcoming true", where(c1("isUpcoming", store.OpEq, true)), "A"},
		{"isUpcoming false", where(c1("isUpcoming", store.OpEq, false)), "BCD"},
		{"conds are ANDed", where(c1("category", store.OpEq, "art"), c1("level", store.OpEq, "BEGINNER")), "C"},
		{"and", &store.Filter{And: []store.Filter{
			{Conds: []store.Cond{c1("category", store.OpEq, "programming")}},
			{Conds: []store.Cond{c1("price", store.OpGt, 0.0)}},
		}}, "B"},
		{"or", &store.Filter{Or: []store.Filter{
			{Conds: []store.Cond{c1("level", store.OpEq, "ADVANCED")}},
			{Conds: []store.Cond{c1("tags", store.OpContains, "art")}},
		}}, "BD"},
		{"or with an empty alternative", &store.Filter{Or: []store.Filter{
			{Conds: []store.Cond{c1("level", store.OpEq, "ADVANCED")}},
			{},
		}}, "ABCD"},
		{"not", &store.Filter{Not: where(c1("category", store.OpEq, "art"))}, "AB"},
		{"not of missing-attribute test", &store.Filter{Not: where(c1("description", store.OpContains, "%"))}, "BC"},
		{"not eq keeps missing", &store.Filter{Not: where(c1("description", store.OpEq, "brush_work"))}, "ABD"},
		{"not exists", &store.Filter{Not: where(c1("description", store.OpAttributeExists, true))}, "B"},
		{"not or", &store.Filter{Not: &store.Filter{Or: []store.Filter{
			{Conds: []store.Cond{c1("level", store.OpEq, "ADVANCED")}},
			{Conds: []store.Cond{c1("tags", store.OpContains, "art")}},
		}}}, "AC"},
		{"not empty", &store.Filter{Not: &store.Filter{}}, ""},
		{"nested", &store.Filter{
			And: []store.Filter{{Or: []store.Filter{
				{Conds: []store.Cond{c1("title", store.OpBeginsWith, "Intro")}},
				{Conds: []store.Cond{c1("title", store.OpBeginsWith, "intro")}},
			}}},
			Not: where(c1("status", store.OpEq, "CANCELLED")),
		}, "AC"},
		{"conds, or and not together", &store.Filter{
			Conds: []store.Cond{c1("duration", store.OpGe, 30)},
			Or: []store.Filter{
				{Conds: []store.Cond{c1("isFree", store.OpEq, true)}},
				{Conds: []store.Cond{c1("isLive", store.OpEq, true)}},
			},
			Not: where(c1("tags", store.OpContains, "art")),
		}, "AB"},
	}
	letter := map[store.ClassID]string{}
	for l, id := range ids {
		letter[id] = l
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := collect(t, st, store.ClassQuery{Filter: tc.filter, Now: base, Page: store.Page{Limit: 2}})
			var ls []string
			for _, c := range got {
				ls = append(ls, letter[c.ID])
			}
			slices.Sort(ls)
			if s := strings.Join(ls, ""); s != tc.want {
				t.Fatalf("filter matched %q, want %q", s, tc.want)
			}
		})
	}
}

func testFilterErrors(t *testing.T, st store.Store) {
	filterFixture(t, st)
	deep := &store.Filter{}
	f := deep
	for range 40 {
		f.Not = &store.Filter{}
		f = f.Not
	}
	tests := []struct {
		name   string
		filter *store.Filter
		field  string
	}{
		{"unknown field", where(c1("colour", store.OpEq, "red")), "filter.colour"},
		{"column name is not a field", where(c1("start_time", store.OpEq, base)), "filter.start_time"},
		{"beginsWith on a time", where(c1("startTime", store.OpBeginsWith, "2030")), "filter.startTime"},
		{"contains on a time", where(c1("createdAt", store.OpContains, "2030")), "filter.createdAt"},
		{"contains on a number", where(c1("duration", store.OpContains, 5)), "filter.duration"},
		{"beginsWith on a float", where(c1("price", store.OpBeginsWith, "1")), "filter.price"},
		{"string for a number", where(c1("duration", store.OpEq, "60")), "filter.duration"},
		{"fractional int", where(c1("duration", store.OpEq, 1.5)), "filter.duration"},
		{"number for a string", where(c1("title", store.OpEq, 5)), "filter.title"},
		{"string for a bool", where(c1("isFree", store.OpEq, "true")), "filter.isFree"},
		{"gt on a bool", where(c1("isFree", store.OpGt, true)), "filter.isFree"},
		{"gt on isLive", where(c1("isLive", store.OpGt, true)), "filter.isLive"},
		{"beginsWith on an enum", where(c1("status", store.OpBeginsWith, "LI")), "filter.status"},
		{"between on an enum", where(c1("level", store.OpBetween, "A", "Z")), "filter.level"},
		{"beginsWith on tags", where(c1("tags", store.OpBeginsWith, "g")), "filter.tags"},
		{"bad time text", where(c1("startTime", store.OpGt, "yesterday")), "filter.startTime"},
		{"between with one value", where(c1("duration", store.OpBetween, 1)), "filter.duration"},
		{"eq with two values", where(c1("duration", store.OpEq, 1, 2)), "filter.duration"},
		{"unknown op", where(c1("title", "like", "x")), "filter.title"},
		{"attributeExists with a string", where(c1("title", store.OpAttributeExists, "yes")), "filter.title"},
		{"inside not", &store.Filter{Not: where(c1("nope", store.OpEq, 1))}, "filter.nope"},
		{"inside or", &store.Filter{Or: []store.Filter{{}, {Conds: []store.Cond{c1("startTime", store.OpContains, "x")}}}}, "filter.startTime"},
		{"too deep", deep, "filter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.ListClasses(context.Background(), store.ClassQuery{Filter: tc.filter})
			wantField(t, err, tc.field, "ListClasses")
		})
	}
}

func testOtherFilters(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := mkUser(t, st, "mentor@example.org")
	s1 := mkUser(t, st, "ann@school.test")
	s2 := mkUser(t, st, "ben@example.org")
	c := mkClass(t, st, newClass(m.ID, "C", base))
	e1 := store.Enrollment{UserID: s1.ID, ClassID: c.ID, Attended: ptr(true), Rating: ptr(5), Feedback: ptr("Great 100%")}
	must(t, st.Enroll(ctx, &e1), "Enroll")
	e2 := store.Enrollment{UserID: s2.ID, ClassID: c.ID}
	must(t, st.Enroll(ctx, &e2), "Enroll")

	enr := func(f *store.Filter) []store.EnrollmentID {
		t.Helper()
		l, err := st.ListEnrollments(ctx, store.EnrollmentQuery{Filter: f, ClassID: c.ID})
		must(t, err, "ListEnrollments")
		var out []store.EnrollmentID
		for _, e := range l.Items {
			out = append(out, e.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(ids ...store.EnrollmentID) []store.EnrollmentID { slices.Sort(ids); return ids }
	same(t, enr(where(c1("owner", store.OpEq, s1.ID))), sorted(e1.ID), "owner eq")
	same(t, enr(where(c1("userId", store.OpNe, s1.ID))), sorted(e2.ID), "userId ne")
	same(t, enr(where(c1("attended", store.OpEq, true))), sorted(e1.ID), "attended eq true")
	same(t, enr(where(c1("attended", store.OpNe, true))), sorted(e2.ID), "attended ne true (missing passes)")
	same(t, enr(where(c1("rating", store.OpGe, 4))), sorted(e1.ID), "rating ge")
	same(t, enr(where(c1("rating", store.OpAttributeExists, false))), sorted(e2.ID), "rating missing")
	same(t, enr(where(c1("feedback", store.OpContains, "%"))), sorted(e1.ID), "feedback contains %")
	same(t, enr(where(c1("liveClassId", store.OpEq, c.ID))), sorted(e1.ID, e2.ID), "liveClassId eq")
	same(t, enr(where(c1("enrolledAt", store.OpLe, time.Now().Add(time.Hour)))), sorted(e1.ID, e2.ID), "enrolledAt le")
	_, err := st.ListEnrollments(ctx, store.EnrollmentQuery{Filter: where(c1("enrolledAt", store.OpBeginsWith, "2"))})
	wantField(t, err, "filter.enrolledAt", "enrolledAt beginsWith")
	_, err = st.ListEnrollments(ctx, store.EnrollmentQuery{Filter: where(c1("title", store.OpEq, "x"))})
	wantField(t, err, "filter.title", "a class field on enrollments")

	r1 := store.Recording{ClassID: c.ID, S3Key: "rec/2030/a.mp4", S3Bucket: "b", Duration: 3600, ThumbnailURL: ptr("https://x/t.jpg")}
	must(t, st.CreateRecording(ctx, &r1), "CreateRecording")
	r2 := store.Recording{ClassID: c.ID, S3Key: "other/b.mp4", S3Bucket: "b", Duration: 60}
	must(t, st.CreateRecording(ctx, &r2), "CreateRecording")
	rec := func(f *store.Filter) []store.RecordingID {
		t.Helper()
		l, err := st.ListRecordings(ctx, store.RecordingQuery{Filter: f})
		must(t, err, "ListRecordings")
		var out []store.RecordingID
		for _, r := range l.Items {
			out = append(out, r.ID)
		}
		return out
	}
	same(t, rec(where(c1("s3Key", store.OpBeginsWith, "rec/"))), []store.RecordingID{r1.ID}, "s3Key beginsWith")
	same(t, rec(where(c1("duration", store.OpGt, 60))), []store.RecordingID{r1.ID}, "duration gt")
	same(t, rec(where(c1("thumbnailUrl", store.OpAttributeExists, false))), []store.RecordingID{r2.ID}, "thumbnailUrl missing")
	_, err = st.ListRecordings(ctx, store.RecordingQuery{Filter: where(c1("duration", store.OpContains, 1))})
	wantField(t, err, "filter.duration", "recording duration contains")

	usr := func(f *store.Filter) []store.UserID {
		t.Helper()
		l, err := st.ListUsers(ctx, store.UserQuery{Filter: f})
		must(t, err, "ListUsers")
		var out []store.UserID
		for _, u := range l.Items {
			out = append(out, u.ID)
		}
		slices.Sort(out)
		return out
	}
	sortedU := func(ids ...store.UserID) []store.UserID { slices.Sort(ids); return ids }
	same(t, usr(where(c1("email", store.OpContains, "example.org"))), sortedU(m.ID, s2.ID), "email contains")
	same(t, usr(where(c1("name", store.OpEq, s1.Name))), sortedU(s1.ID), "name eq")
	same(t, usr(&store.Filter{Not: where(c1("email", store.OpBeginsWith, "ann"))}), sortedU(m.ID, s2.ID), "not email beginsWith")
	_, err = st.ListUsers(ctx, store.UserQuery{Filter: where(c1("passwordHash", store.OpEq, "hash"))})
	wantField(t, err, "filter.passwordHash", "password hashes are not filterable")
}
